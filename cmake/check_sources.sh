#!/usr/bin/env bash
# Fails, with a diff, when the CMake build and the Bazel build disagree on
# what they compile: the library's .cc files (CMake: every executor/**/*.cc;
# Bazel: the srcs of the cc_libraries under //:ripcord in the default
# configuration), its public headers (include/ripcord/**/*.h; the hdrs of
# //:ripcord) and the test files (tests/**/*_test.cc; the srcs of every
# cc_test under //tests/...).
#
#   bash cmake/check_sources.sh              # configures a scratch CMake tree
#   bash cmake/check_sources.sh BUILD_DIR    # uses BUILD_DIR's manifests
#
# CMake writes what it compiled into BUILD_DIR/ripcord_sources.txt and
# BUILD_DIR/ripcord_test_sources.txt at configure time (the latter only with
# RIPCORD_BUILD_TESTS=ON). A file moved to a new folder needs no change to
# CMake; a file Bazel does not build (or builds from outside executor/) shows
# up here.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir="${1:-}"
scratch=""
cleanup() { [[ -z "${scratch}" ]] || rm -rf "${scratch}"; }
trap cleanup EXIT
if [[ -z "${build_dir}" ]]; then
  scratch="$(mktemp -d -t ripcord-check-sources.XXXXXX)"
  build_dir="${scratch}"
  cmake -S . -B "${build_dir}" -DRIPCORD_BUILD_TESTS=ON \
    -DRIPCORD_BUILD_BENCHMARKS=OFF -DRIPCORD_BUILD_EXAMPLES=OFF >/dev/null
fi
for f in ripcord_sources.txt ripcord_test_sources.txt; do
  [[ -f "${build_dir}/${f}" ]] || {
    echo "check_sources.sh: ${build_dir}/${f} missing (configure with" \
      "RIPCORD_BUILD_TESTS=ON)" >&2
    exit 2
  }
done

# //pkg/sub:file.cc -> pkg/sub/file.cc; //:include/x.h -> include/x.h.
# cquery appends the configuration, " (null)" for source files.
label_to_path() { sed -E 's/ \(.*\)$//; s#^//:##; s#^//##; s#:#/#' | sort; }

bazel_flags=(--noshow_progress --color=no)
bazel_lib="$(bazel cquery "${bazel_flags[@]}" \
  'labels(srcs, kind("cc_library", deps(//:ripcord)))' 2>/dev/null |
  label_to_path | grep -E '\.cc$')"
bazel_hdrs="$(bazel query "${bazel_flags[@]}" 'labels(hdrs, //:ripcord)' \
  2>/dev/null | label_to_path)"
bazel_tests="$(bazel query "${bazel_flags[@]}" \
  'labels(srcs, kind("cc_test", //tests/...))' 2>/dev/null |
  label_to_path | grep -E '_test\.cc$')"
[[ -n "${bazel_lib}" && -n "${bazel_hdrs}" && -n "${bazel_tests}" ]] || {
  echo "check_sources.sh: bazel query returned nothing; run it by hand" >&2
  exit 2
}

status=0
compare() {  # compare WHAT BAZEL_LIST CMAKE_LIST
  local what="$1"
  if ! diff -u --label "bazel: ${what}" --label "cmake: ${what}" \
    <(printf '%s\n' "$2") <(printf '%s\n' "$3"); then
    echo "check_sources.sh: CMake and Bazel disagree on ${what} (above:" \
      "- only in Bazel, + only in CMake). CMake compiles every" \
      "executor/**/*.cc and tests/**/*_test.cc; list the file in the" \
      "Bazel BUILD file or move it out of those folders." >&2
    status=1
  fi
}
cmake_all="$(sort "${build_dir}/ripcord_sources.txt")"
compare "//:ripcord sources" "${bazel_lib}" \
  "$(grep -E '\.cc$' <<<"${cmake_all}")"
compare "//:ripcord public headers" "${bazel_hdrs}" \
  "$(grep -E '\.h$' <<<"${cmake_all}")"
compare "test files" "${bazel_tests}" \
  "$(sort "${build_dir}/ripcord_test_sources.txt")"

((status == 0)) && echo "check_sources.sh: CMake and Bazel build the same" \
  "$(wc -l <<<"${bazel_lib}") sources, $(wc -l <<<"${bazel_hdrs}") public" \
  "headers and $(wc -l <<<"${bazel_tests}") test files"
exit "${status}"
