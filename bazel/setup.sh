#!/usr/bin/env bash
# Installs what ripcord's Bazel and CMake builds need, from Debian only.
# Idempotent: does nothing when every package is already installed.
#
#   bash bazel/setup.sh               # Bazel 4.2.3, gcc 12, system libraries
#   bash bazel/setup.sh --with-clang  # also clang 14, for --config=clang
#
# Works unattended (CI, no stdin): uses sudo -n when not root.
set -euo pipefail

# libgmock-dev is separate from libgtest-dev in Debian 12, and //bazel:gtest
# links -lgmock. gcc 12's sanitizer runtimes (libtsan2, libasan8, libubsan1)
# come with build-essential, which bazel-bootstrap depends on. cmake and
# pkg-config are for the CMake build and its CI check (cmake/ci.sh).
packages=(
  bazel-bootstrap
  libtbb-dev
  libabsl-dev
  libbenchmark-dev
  libgtest-dev
  libgmock-dev
  cmake
  pkg-config
)

for arg in "$@"; do
  case "${arg}" in
    --with-clang) packages+=(clang-14 libclang-rt-14-dev) ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '${arg}' (try --help)" >&2; exit 2 ;;
  esac
done

installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

missing=()
for p in "${packages[@]}"; do
  installed "${p}" || missing+=("${p}")
done

if ((${#missing[@]} == 0)) && command -v bazel >/dev/null; then
  echo "setup.sh: all packages present (${packages[*]})"
  exit 0
fi

if [[ "$(id -u)" == 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo -n)
else
  echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

echo "setup.sh: installing ${missing[*]:-bazel-bootstrap}"
export DEBIAN_FRONTEND=noninteractive
apt_quiet=(-qq -o Dpkg::Use-Pty=0)
"${as_root[@]}" apt-get "${apt_quiet[@]}" update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get "${apt_quiet[@]}" install -y --no-install-recommends \
  "${packages[@]}" >/dev/null

command -v bazel >/dev/null || {
  echo "setup.sh: bazel not on PATH after installing bazel-bootstrap" >&2
  exit 1
}
echo "setup.sh: done ($(bazel --version 2>/dev/null || echo bazel), $(g++ --version | head -n1))"
