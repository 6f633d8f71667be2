#!/usr/bin/env bash
# CI's CMake part (called by .ci/run): checks that CMake and Bazel compile the
# same files, builds and installs the library into a scratch prefix, builds
# and runs examples/cmake_consumer against that prefix with
# find_package(ripcord), and compiles and runs the same program with the
# README's pkg-config line. Plain gcc build, no sanitizers (Bazel covers
# those). Prints how long each step took.
#
#   bash cmake/ci.sh              # the steps above
#   RIPCORD_CI_CTEST=1 bash cmake/ci.sh   # also build and run the CTest
#                                         # suite (~14 more minutes on 2 cores)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs="${RIPCORD_CI_JOBS:-2}"
ctest_too="${RIPCORD_CI_CTEST:-0}"
work="$(mktemp -d -t ripcord-cmake-ci.XXXXXX)"
trap 'rm -rf "${work}"' EXIT
prefix="${work}/prefix"
on_off() { if [[ "$1" == 1 ]]; then echo ON; else echo OFF; fi; }

step() {  # step NAME COMMAND...
  local name="$1" start="${SECONDS}"
  shift
  echo "==== cmake: ${name}"
  "$@"
  echo "==== cmake: ${name}: ok in $((SECONDS - start)) s"
}

step "same sources as Bazel" bash cmake/check_sources.sh

step "configure" cmake -S . -B "${work}/build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="${prefix}" \
  -DRIPCORD_BUILD_TESTS="$(on_off "${ctest_too}")" \
  -DRIPCORD_BUILD_EXAMPLES="$(on_off "${ctest_too}")" \
  -DRIPCORD_BUILD_BENCHMARKS=OFF
step "build (-j${jobs})" cmake --build "${work}/build" -j"${jobs}"
if [[ "${ctest_too}" == 1 ]]; then
  step "ctest" ctest --test-dir "${work}/build" -j"${jobs}" --output-on-failure
fi
step "install" cmake --install "${work}/build"

check_installed() {
  local f
  for f in include/ripcord/ripcord.h include/ripcord/internal/spawn.h \
    lib/libripcord.a lib/cmake/ripcord/ripcordConfig.cmake \
    lib/cmake/ripcord/ripcordConfigVersion.cmake lib/pkgconfig/ripcord.pc; do
    [[ -f "${prefix}/${f}" ]] || { echo "not installed: ${f}" >&2; return 1; }
  done
}
step "installed files" check_installed

consumer() {
  cmake -S examples/cmake_consumer -B "${work}/consumer" \
    -DCMAKE_PREFIX_PATH="${prefix}"
  cmake --build "${work}/consumer" -j"${jobs}"
  "${work}/consumer/consumer"
}
step "find_package consumer" consumer

pkg_config_app() {
  local flags
  flags="$(PKG_CONFIG_PATH="${prefix}/lib/pkgconfig" \
    pkg-config --cflags --libs ripcord)"
  echo "pkg-config --cflags --libs ripcord: ${flags}"
  # shellcheck disable=SC2086  # the flags are meant to split
  g++ -std=c++20 examples/cmake_consumer/main.cc ${flags} \
    -o "${work}/pkg_config_app"
  "${work}/pkg_config_app"
}
step "pkg-config one-file program" pkg_config_app
