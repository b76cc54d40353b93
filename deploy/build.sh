#!/usr/bin/env bash
# Builds ringlogd and ringlogctl from a source tree and installs them under a
# prefix. The Dockerfile's build stage runs exactly this; so does the CI
# (deploy/check.sh) in a clean copy of the tree.
#
#   deploy/build.sh SRC_DIR PREFIX [BUILD_DIR]
set -euo pipefail
src=$(cd "${1:?source dir}" && pwd)
prefix=${2:?install prefix}
build=${3:-$(mktemp -d)}
packages=(build-essential cmake pkg-config libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
  protobuf-compiler libabsl-dev libspdlog-dev libcivetweb-dev libssl-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRINGLOG_BUILD_TESTS=OFF \
  -DRINGLOG_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build "$build" -j "$(nproc)" --target ringlogd ringlogctl
cmake --install "$build" --strip >/dev/null
echo "installed: $(ls "$prefix/bin" | tr '\n' ' ')into $prefix/bin"
