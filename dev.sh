#!/usr/bin/env bash
# Build, test and run ringlog on Debian 12.
#
#   ./dev.sh run      build, then start a primary and two replicas with a live
#                     workload and show their status (tools/cluster.sh up)
#   ./dev.sh stress   build, then the stress test (tools/stress)
#   ./dev.sh test     build, then run every test (unit, integration, ThreadSanitizer)
#   ./dev.sh build    install the build dependencies and build (Release) into build/
#   ./dev.sh deps     install the build dependencies only (apt-get; needs root or sudo)
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libcivetweb-dev libgtest-dev libgmock-dev libbenchmark-dev
  docker-compose python3-yaml curl iproute2)
BUILD=${RINGLOG_BUILD_DIR:-build}
JOBS=${RINGLOG_JOBS:-$(nproc)}

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  deps
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j "$JOBS"
}

test_all() {
  build
  ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure --timeout 600
  # The lock-free ring, the pipeline and the log again under ThreadSanitizer.
  local tsan="$BUILD-tsan" t
  # Every SegmentedLog test runs the log's preparer thread beside the writer;
  # log_reader_test also reads beside a concurrent writer.
  local tsan_tests=(spsc_stress_test ring_test pipeline_test segmented_log_test sparse_index_test
    log_retention_test log_truncate_test segment_recovery_test log_reader_test)
  cmake -S . -B "$tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGLOG_SANITIZE=thread \
    -DRINGLOG_BUILD_BENCH=OFF -DRINGLOG_BUILD_SERVER=OFF >/dev/null
  cmake --build "$tsan" -j "$JOBS" --target "${tsan_tests[@]}"
  for t in "${tsan_tests[@]}"; do
    echo "== ThreadSanitizer: $t"
    RINGLOG_SPSC_EVENTS=300000 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      "$tsan/tests/core/$t" --gtest_brief=1
  done
  # The container recipe, as far as a machine without a container engine allows.
  deploy/check.sh
}

run() {
  build
  RINGLOG_BUILD_DIR="$BUILD" tools/cluster.sh up
}

stress() {
  build
  "$BUILD/tools/stress/stress" "$@"
}

cmd=${1:-}
shift || true
case "$cmd" in
  deps) deps ;;
  build) build ;;
  test) test_all ;;
  run) run ;;
  stress) stress "$@" ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
