#!/usr/bin/env bash
# Checks ringlog as a library for other projects, from a build tree that is
# already built (./dev.sh build):
#  1. README.md's library example is examples/embed/embed_core.cc's, word for word;
#  2. `cmake --install` puts headers, libraries, the CMake package and the
#     pkg-config files under an empty prefix;
#  3. examples/embed builds against that prefix with find_package(ringlog)
#     and runs: embed_core in-process, embed_client against the installed ringlogd;
#  4. embed_core builds with one compiler line from `pkg-config ringlog-core`;
#  5. examples/embed builds ringlog itself through add_subdirectory, as a
#     C++17 project with no build type: only ringlog_core and the example are
#     built, and the project's cache keeps its own build type.
#
#   tools/check_package.sh [BUILD_DIR]      (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=${RINGLOG_JOBS:-$(nproc)}
start=$SECONDS
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== 1. README.md's library example is examples/embed/embed_core.cc"
awk '/^## Using the library/ {s=1} s && /^```cpp/ {b=1; next} b && /^```/ {exit} b' README.md \
  >"$work/readme.cc"
{
  printf '#include "ringlog/ringlog.h"\n\n'
  sed -n '/\/\/ README begin/,/\/\/ README end/p' examples/embed/embed_core.cc | sed '1d;$d;s/^  //'
} >"$work/example.cc"
diff -u "$work/readme.cc" "$work/example.cc" || {
  echo "README.md's example and examples/embed/embed_core.cc differ" >&2
  exit 1
}

echo "== 2. cmake --install"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/ringlog/ringlog.h include/ringlog/client.h include/ringlog/v1/ringlog.grpc.pb.h \
  lib/cmake/ringlog/ringlogConfig.cmake lib/cmake/ringlog/ringlogConfigVersion.cmake \
  lib/cmake/ringlog/ringlogCoreTargets.cmake lib/cmake/ringlog/ringlogClientTargets.cmake \
  lib/pkgconfig/ringlog-core.pc lib/pkgconfig/ringlog-client.pc bin/ringlogd bin/ringlogctl; do
  [ -e "$prefix/$f" ] || { echo "not installed: $f" >&2; exit 1; }
done

echo "== 3. find_package(ringlog CONFIG)"
cmake -S examples/embed -B "$work/find" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/find" -j "$jobs" >/dev/null
"$work/find/embed_core" "$work/log-find"
"$prefix/bin/ringlogd" --data_dir="$work/node" --listen=127.0.0.1:0 --port_file="$work/port" \
  >"$work/node.log" 2>&1 &
echo $! >"$work/pid"
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
"$work/find/embed_client" "127.0.0.1:$(cat "$work/port")" || {
  tail -n 20 "$work/node.log"
  exit 1
}
kill -TERM "$(cat "$work/pid")"
wait "$(cat "$work/pid")"
rm "$work/pid"

echo "== 4. pkg-config"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pkg-config --exists --print-errors ringlog-client
# shellcheck disable=SC2046
g++ -std=c++20 -o "$work/embed_core_pc" examples/embed/embed_core.cc \
  $(pkg-config --cflags --libs ringlog-core)
"$work/embed_core_pc" "$work/log-pc"

echo "== 5. add_subdirectory from a C++17 project"
cmake -S examples/embed -B "$work/sub" -DRINGLOG_SOURCE_DIR="$PWD" >/dev/null
cmake --build "$work/sub" -j "$jobs" --target embed_core >/dev/null
"$work/sub/embed_core" "$work/log-sub"
cache="$work/sub/CMakeCache.txt"
if ! grep -qx 'CMAKE_BUILD_TYPE:STRING=' "$cache"; then
  echo "ringlog changed its parent's build type: $(grep '^CMAKE_BUILD_TYPE:' "$cache")" >&2
  exit 1
fi
for o in RINGLOG_BUILD_TESTS RINGLOG_BUILD_BENCH RINGLOG_BUILD_SERVER RINGLOG_BUILD_CLIENT \
  RINGLOG_INSTALL; do
  grep -qx "$o:BOOL=OFF" "$cache" || { echo "$o is not OFF under add_subdirectory" >&2; exit 1; }
done

echo "package checks passed ($((SECONDS - start)) s)"
