#!/usr/bin/env bash
# Copyright 2026 The ripcord Authors.
#
# callgrind.sh: instruction counts per task for the fib workload (scenario 1),
# ripcord vs oneTBB, under valgrind --tool=callgrind. Repeatable where wall
# time on a shared 2-core VM is not (it does not see cache-line transfers
# between cores, which wall time and perf do).
#
#   benchmarks/callgrind.sh                 # fib(20), workers 1 and 2
#   N=18 RUNS=4 benchmarks/callgrind.sh
#   SKIP_BUILD=1 OUT_DIR=/tmp/cg benchmarks/callgrind.sh
#
# For each variant it runs `fib_callgrind <variant> N 1 W` and
# `fib_callgrind <variant> N 1+RUNS W` and reports
#   (Ir(1+RUNS) - Ir(1)) / (RUNS x tasks)
# which cancels start-up (dynamic loading, thread creation). With 2 workers the
# count includes what idle workers spend searching and spinning (valgrind runs
# one thread at a time, so that share is schedule-dependent). Also prints the
# functions that account for ripcord's per-task instructions (1 worker).
set -euo pipefail

cd "$(dirname "$0")/.."
N="${N:-20}"
RUNS="${RUNS:-2}"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/ripcord-callgrind.XXXXXX)}"
mkdir -p "$OUT_DIR"

# Own bazel-bin symlink: see compare.sh.
if [[ -z "${SKIP_BUILD:-}" ]]; then
  bazel build -c opt --symlink_prefix="$OUT_DIR/bazel-" \
    //benchmarks:fib_callgrind >&2
  BIN="$OUT_DIR/bazel-bin/benchmarks/fib_callgrind"
else
  BIN="$(bazel info -c opt bazel-bin 2>/dev/null)/benchmarks/fib_callgrind"
fi
cp "$BIN" "$OUT_DIR/fib_callgrind"
BIN="$OUT_DIR/fib_callgrind"

ir() {  # ir <variant> <runs> <workers> -> total Ir
  local out="$OUT_DIR/cg.$1.w$3.r$2.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$BIN" "$1" "$N" "$2" "$3" 2>"$out.log" >/dev/null
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out.log"
}

echo "fib($N), Ir per task = (Ir(1+$RUNS runs) - Ir(1 run)) / ($RUNS x tasks)"
echo
echo "| variant | workers | Ir per task | overhead Ir per task (minus sequential per call) |"
echo "|---|---|---|---|"
SEQ1=$(ir seq 1 1)
SEQ2=$(ir seq $((1 + RUNS)) 1)
for w in 1 2; do
  for v in ripcord tbb; do
    A=$(ir "$v" 1 "$w")
    B=$(ir "$v" $((1 + RUNS)) "$w")
    python3 - "$v" "$w" "$A" "$B" "$SEQ1" "$SEQ2" "$N" "$RUNS" <<'PY'
import sys
v, w, a, b, s1, s2, n, runs = sys.argv[1:]
n, runs = int(n), int(runs)
fa, fb = 0, 1
for _ in range(n + 1):
    fa, fb = fb, fa + fb
tasks = fa - 1  # fib(n+1) - 1 calls with n >= 2
per = (int(b) - int(a)) / (runs * tasks)
seq = (int(s2) - int(s1)) / (runs * tasks)
print(f"| {v} | {w} | {per:.0f} | {per - seq:.0f} |")
PY
  done
done
SEQ_PER=$(python3 -c "
n=$N; fa,fb=0,1
for _ in range(n+1): fa,fb=fb,fa+fb
print(round(($SEQ2-$SEQ1)/($RUNS*(fa-1))))")
echo "| sequential | – | $SEQ_PER per call | – |"
echo

# Where ripcord's per-task instructions go (1 worker), by function (self).
python3 - "$OUT_DIR/cg.ripcord.w1.r1.out" \
  "$OUT_DIR/cg.ripcord.w1.r$((1 + RUNS)).out" "$N" "$RUNS" <<'PY'
import re, subprocess, sys
def load(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path],
                         capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            fn = re.sub(r"'\d+", "", m.group(2))
            fn = re.sub(r" \[.*\]$", "", fn)
            fn = re.sub(r"^\?\?\?:", "", fn)
            d[fn] = d.get(fn, 0) + int(m.group(1).replace(",", ""))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
n, runs = int(sys.argv[3]), int(sys.argv[4])
fa, fb = 0, 1
for _ in range(n + 1):
    fa, fb = fb, fa + fb
div = runs * (fa - 1)
rows = sorted(((b.get(k, 0) - a.get(k, 0)) / div, k) for k in set(a) | set(b))
print("ripcord, 1 worker: Ir per task by function (self cost, >= 5 Ir)")
print()
print("| Ir/task | function |")
print("|---|---|")
for v, k in reversed(rows):
    if v >= 5:
        k = k.replace("|", "\\|")
        print(f"| {v:.0f} | `{k[:110]}` |")
PY
echo "callgrind files in $OUT_DIR" >&2
