#!/usr/bin/env bash
# Copyright 2026 The ripcord Authors.
#
# compare.sh: builds the ripcord-vs-oneTBB benchmarks with -c opt, runs each
# binary with repetitions and prints the comparison table (medians, ratio
# ripcord/oneTBB, counters, each row's bar and pass/miss) as markdown.
# Works offline. Run from anywhere inside the repository:
#
#   benchmarks/compare.sh                    # 5 repetitions of everything
#   REPETITIONS=9 benchmarks/compare.sh      # more repetitions
#   BINARIES="fib_bench dnc_bench" benchmarks/compare.sh
#   OUT_DIR=/tmp/bench benchmarks/compare.sh # keep the JSON there
#   SKIP_BUILD=1 benchmarks/compare.sh       # reuse the last -c opt build
#   WORKERS="1 2 4 8 16" benchmarks/compare.sh  # worker counts (default:
#                                            # 1, 2 and the core count)
#
# Each binary runs as
#   <bin> --benchmark_repetitions=N --benchmark_report_aggregates_only=true
#         --benchmark_enable_random_interleaving=true --benchmark_format=json
# (random interleaving runs the repetitions of the ripcord and oneTBB variants
# in a shuffled order, so a change of machine load hits both alike).
# and its JSON is kept in $OUT_DIR. The table is printed to stdout (progress
# goes to stderr) and also written to $OUT_DIR/table.md.
set -euo pipefail

cd "$(dirname "$0")/.."
REPETITIONS="${REPETITIONS:-5}"
BINARIES="${BINARIES:-fib_bench skynet_bench submit_bench dnc_bench call_bench cancel_bench signal_bench blocking_bench coro_bench idle_bench memory_bench}"
OUT_DIR="${OUT_DIR:-$(mktemp -d /tmp/ripcord-bench.XXXXXX)}"
# Worker counts to run every binary with (both libraries get the same):
# default 1, 2 and the core count.
WORKERS="${WORKERS:-$(printf '%s\n' 1 2 "$(nproc)" | sort -nu | tr '\n' ' ')}"
mkdir -p "$OUT_DIR"

# --symlink_prefix gives this run its own bazel-bin symlink: the workspace's
# bazel-bin/bazel-out links follow whoever built last (another config or
# output base) and `bazel info` can wait long behind other builds. It does not
# change the configuration, so the analysis cache is kept.
if [[ -z "${SKIP_BUILD:-}" ]]; then
  echo "== bazel build -c opt //benchmarks:all" >&2
  bazel build -c opt --symlink_prefix="$OUT_DIR/bazel-" //benchmarks:all >&2
  BIN_DIR="$OUT_DIR/bazel-bin/benchmarks"
else
  BIN_DIR="$(bazel info -c opt bazel-bin 2>/dev/null)/benchmarks"
fi
# Run private copies: a concurrent -c opt build by someone else must not
# replace a binary between repetitions.
mkdir -p "$OUT_DIR/bin"
for b in $BINARIES; do cp "$BIN_DIR/$b" "$OUT_DIR/bin/"; done
BIN_DIR="$OUT_DIR/bin"

# One pass per worker count (RIPCORD_BENCH_WORKERS, bench_util.h), into
# $OUT_DIR/w<N>/. The table is the pass with 2 workers (the reference
# machine's cores), or the first pass if 2 is not among them; its JSON is
# copied to $OUT_DIR itself.
MAIN_WORKERS=""
for n in $WORKERS; do
  [[ -z "$MAIN_WORKERS" || "$n" == 2 ]] && MAIN_WORKERS="$n"
done
for n in $WORKERS; do
  mkdir -p "$OUT_DIR/w$n"
  for b in $BINARIES; do
    echo "== $b (workers=$n, repetitions=$REPETITIONS)" >&2
    RIPCORD_BENCH_WORKERS="$n" "$BIN_DIR/$b" \
      --benchmark_repetitions="$REPETITIONS" \
      --benchmark_report_aggregates_only=true \
      --benchmark_enable_random_interleaving=true \
      --benchmark_format=json \
      >"$OUT_DIR/w$n/$b.json" 2>"$OUT_DIR/w$n/$b.stderr"
  done
done
for b in $BINARIES; do
  cp "$OUT_DIR/w$MAIN_WORKERS/$b.json" "$OUT_DIR/w$MAIN_WORKERS/$b.stderr" \
    "$OUT_DIR/"
done

# Row 8's memory per sleeping coroutine is the cold cost: the first stop in
# a process. Later repetitions find the blocks the earlier stops gave back in
# the task cache's depots (~30 B/task), so one more process runs the stop
# once, into cold/ (compare_table.py reads it for row 8).
if [[ " $BINARIES " == *" coro_bench "* ]]; then
  echo "== coro_bench, the first stop in a fresh process (cold memory)" >&2
  mkdir -p "$OUT_DIR/cold"
  RIPCORD_BENCH_WORKERS="$MAIN_WORKERS" \
    "$BIN_DIR/coro_bench" --benchmark_filter='CoroStop' \
    --benchmark_repetitions=1 --benchmark_min_time=0 \
    --benchmark_format=json \
    >"$OUT_DIR/cold/coro_bench.json" 2>"$OUT_DIR/cold/coro_bench.stderr"
fi

{
  echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Linux $(uname -r)"
  echo "Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (working tree modified)'), date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "Command: REPETITIONS=$REPETITIONS WORKERS=\"$WORKERS\" benchmarks/compare.sh (table: $MAIN_WORKERS workers) (bazel build -c opt; each binary with --benchmark_repetitions=$REPETITIONS --benchmark_report_aggregates_only=true --benchmark_enable_random_interleaving=true --benchmark_format=json)"
  echo
  python3 benchmarks/compare_table.py "$OUT_DIR"
} | tee "$OUT_DIR/table.md"
# With more than one worker count: speed-up over one worker, both
# libraries side by side (scaling.md, and scaling.svg with matplotlib).
if [[ $(wc -w <<<"$WORKERS") -gt 1 ]]; then
  python3 benchmarks/scaling.py "$OUT_DIR" | tee "$OUT_DIR/scaling.md"
fi
echo "JSON and table in $OUT_DIR" >&2
