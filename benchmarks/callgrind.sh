#!/usr/bin/env bash
# Copyright 2026 The ripcord Authors.
#
# callgrind.sh: instructions per task for fib (scenario 1) and skynet
# (scenario 2), ripcord vs oneTBB, under valgrind --tool=callgrind.
# Repeatable where wall time on a shared 2-core VM is not; blind to what wall
# time and perf do see, such as cache-line transfers between cores.
#
#   benchmarks/callgrind.sh                 # fib(20), skynet(10^4), 1 worker
#   FIB_N=18 SKYNET_LEAVES=1000 RUNS=4 WORKERS=2 benchmarks/callgrind.sh
#   OUT_DIR=/tmp/cg benchmarks/callgrind.sh # keep the callgrind files there
#
# For each workload and variant it runs
#   callgrind_driver <workload> <variant> <size> 1 W        and
#   callgrind_driver <workload> <variant> <size> 1+RUNS W
# and reports (Ir(1+RUNS) - Ir(1)) / (RUNS x tasks), which cancels start-up
# (dynamic loading, thread creation). The default is 1 worker: valgrind runs
# one thread at a time, so with 2 the idle worker's searching and spinning add
# a schedule-dependent share. Also prints, per function, where ripcord's
# per-task instructions go.
set -euo pipefail

cd "$(dirname "$0")/.."
FIB_N="${FIB_N:-20}"
SKYNET_LEAVES="${SKYNET_LEAVES:-10000}"
RUNS="${RUNS:-2}"
WORKERS="${WORKERS:-1}"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/ripcord-callgrind.XXXXXX)}"
mkdir -p "$OUT_DIR"

# Own bazel-bin symlink: see compare.sh.
if [[ -z "${SKIP_BUILD:-}" ]]; then
  bazel build -c opt --symlink_prefix="$OUT_DIR/bazel-" \
    //benchmarks:callgrind_driver >&2
  BIN="$OUT_DIR/bazel-bin/benchmarks/callgrind_driver"
else
  BIN="$(bazel info -c opt bazel-bin 2>/dev/null)/benchmarks/callgrind_driver"
fi
cp "$BIN" "$OUT_DIR/callgrind_driver"
BIN="$OUT_DIR/callgrind_driver"

# run <workload> <variant> <size> <runs>: prints "<Ir> <tasks per run>".
run() {
  local out="$OUT_DIR/cg.$1.$2.r$4.out"
  local stdout
  stdout=$(valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$BIN" "$1" "$2" "$3" "$4" "$WORKERS" 2>"$out.log")
  echo "$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out.log")" \
    "$(echo "$stdout" | sed -n 's/.*, \([0-9]*\) tasks per run/\1/p')"
}

echo "Ir per task = (Ir(1+$RUNS runs) - Ir(1 run)) / ($RUNS x tasks), $WORKERS worker(s)"
echo
echo "| workload | ripcord Ir/task | oneTBB Ir/task | ratio | sequential Ir per call | ripcord overhead Ir/task | oneTBB overhead Ir/task |"
echo "|---|---|---|---|---|---|---|"
declare -A TASKS=()
for spec in "fib $FIB_N" "skynet $SKYNET_LEAVES"; do
  set -- $spec
  declare -A per=()
  for v in ripcord tbb seq; do
    read -r a tasks < <(run "$1" "$v" "$2" 1)
    read -r b _ < <(run "$1" "$v" "$2" $((1 + RUNS)))
    TASKS[$1]=$tasks
    per[$v]=$(python3 -c "print(($b - $a) / ($RUNS * $tasks))")
  done
  python3 - "$1($2)" "${per[ripcord]}" "${per[tbb]}" "${per[seq]}" <<'PY'
import sys
name, r, t, s = sys.argv[1], *map(float, sys.argv[2:])
print(f"| {name} | {r:.0f} | {t:.0f} | {r / t:.2f} | {s:.0f} | {r - s:.0f} | "
      f"{t - s:.0f} |")
PY
done
echo

# Where ripcord's per-task instructions go, by function (self cost).
for spec in "fib $FIB_N" "skynet $SKYNET_LEAVES"; do
  set -- $spec
  tasks=${TASKS[$1]}
  python3 - "$OUT_DIR/cg.$1.ripcord.r1.out" \
    "$OUT_DIR/cg.$1.ripcord.r$((1 + RUNS)).out" "$RUNS" "$tasks" "$1($2)" <<'PY'
import re, subprocess, sys
def short(fn):
    """Drops the argument list and template arguments of a demangled name."""
    fn = fn.replace("(anonymous namespace)", "{anon}")
    out, depth = [], 0
    for ch in fn:
        if ch == "<":
            depth += 1
            if depth == 1:
                out.append("<...>")
            continue
        if ch == ">":
            depth -= 1
            continue
        if depth == 0:
            if ch == "(":
                break
            out.append(ch)
    return "".join(out)
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
            fn = short(fn)
            d[fn] = d.get(fn, 0) + int(m.group(1).replace(",", ""))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
div = int(sys.argv[3]) * int(sys.argv[4])
rows = sorted(((b.get(k, 0) - a.get(k, 0)) / div, k) for k in set(a) | set(b))
print(f"ripcord, {sys.argv[5]}: Ir per task by function (self cost, >= 5)")
print()
print("| Ir/task | function |")
print("|---|---|")
for v, k in reversed(rows):
    if v >= 5:
        k = k.replace("|", "\\|")
        print(f"| {v:.0f} | `{k[:100]}` |")
print()
PY
done
echo "callgrind files in $OUT_DIR" >&2
