#!/usr/bin/env bash
# Runs every ripcord test three times: plain (gcc, fastbuild), under
# ThreadSanitizer (--config=tsan) and under AddressSanitizer + UBSan
# (--config=asan). Runs all three even if one fails, then exits non-zero if
# any test failed, timed out, was flaky, or any target failed to build.
#
#   bash bazel/test_all.sh                          # //...
#   bash bazel/test_all.sh //tests:timer_test       # chosen targets
#   bash bazel/test_all.sh --test_filter=Stop.*     # extra Bazel flags
#
# The plain run builds everything (benchmarks and examples too, so they keep
# compiling); the sanitizer runs build test targets only (--build_tests_only),
# since benchmark binaries link the uninstrumented oneTBB.
#
# The last line printed is "N passed, N failed", counting one per test target
# per configuration; a configuration whose build failed counts as at least one
# failure even when no test could report.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

targets=()
flags=()
for arg in "$@"; do
  if [[ "${arg}" == -* ]]; then flags+=("${arg}"); else targets+=("${arg}"); fi
done
((${#targets[@]})) || targets=(//...)

common=(--keep_going)
if [[ -n "${CI:-}" ]]; then
  # Logs, not a terminal: no colour, progress at most every 30 s.
  common+=(--color=no --curses=no --show_progress_rate_limit=30)
fi

# name|flags for `bazel test`
configs=(
  "plain|"
  "tsan|--config=tsan --build_tests_only"
  "asan|--config=asan --build_tests_only"
)

log="$(mktemp -t ripcord-test-all.XXXXXX)"
trap 'rm -f "${log}"' EXIT

total_passed=0
total_failed=0
summary=()

for entry in "${configs[@]}"; do
  name="${entry%%|*}"
  read -r -a config_flags <<<"${entry#*|}"

  echo "==== ${name}: bazel test ${config_flags[*]} ${targets[*]}"
  bazel test "${common[@]}" "${config_flags[@]}" "${flags[@]}" -- \
    "${targets[@]}" 2>&1 | tee "${log}"
  rc=${PIPESTATUS[0]}

  # Bazel's per-target summary lines, e.g.
  #   //tests:timer_test        (cached) PASSED in 0.3s
  #   //tests:ws_deque_test     FAILED in 2.1s | TIMEOUT | NO STATUS | ...
  status_re='^//[^ ]+ +(\(cached\) )?'
  passed=$(grep -cE "${status_re}PASSED" "${log}")
  failed=$(grep -cE "${status_re}(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE|REMOTE FAILURE|BLAZE HALTED)" "${log}")

  note=""
  if ((rc == 4)); then
    note=" (no test targets found)"
    ((failed == 0)) && failed=1
  elif ((rc != 0 && failed == 0)); then
    note=" (bazel exited ${rc}: build error)"
    failed=1
  fi

  summary+=("${name}: ${passed} passed, ${failed} failed${note}")
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
done

echo "==== summary"
printf '%s\n' "${summary[@]}"
echo "${total_passed} passed, ${total_failed} failed"
((total_failed == 0))
