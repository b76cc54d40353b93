#!/usr/bin/env bash
# Build, test and run ringlog on Debian 12.
#
#   ./dev.sh run      build, then start a primary and two replicas with a live
#                     workload and show their status (tools/cluster.sh up), with
#                     TLS and tokens made into ./data/tls on the first run
#   ./dev.sh stress   build, then the stress test (tools/stress)
#   ./dev.sh test     build, then run every test (unit, integration, the fault suite, the
#                     library as a package, ThreadSanitizer, fuzzing, the container recipe)
#   ./dev.sh fuzz [S] build the libFuzzer targets (clang, ASan, UBSan) into build-fuzz/
#                     and run each for S seconds (default 20) from fuzz/corpus/
#   ./dev.sh build    install the build dependencies and build (Release) into build/
#   ./dev.sh deps     install the build dependencies only (apt-get; needs root or sudo)
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libspdlog-dev libcivetweb-dev libgtest-dev libgmock-dev libbenchmark-dev
  openssl docker-compose python3-yaml python3-grpcio python3-grpc-tools python3-pkg-resources curl iproute2 libhiredis-dev
  libssl-dev
  clang-14 libclang-rt-14-dev)
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
  # Every test once: first those outside the fault suite, then the fault
  # suite (ctest label `fault`: real processes under crashes, signals under
  # load, frozen and hostile peers, corruption) under its own heading. Both
  # run before a failure of either stops the script.
  local failed=0
  echo "== Tests (ctest -LE fault)"
  ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure --timeout 600 -LE fault || failed=1
  echo "== Fault suite (ctest -L fault)"
  ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure --timeout 600 -L fault || failed=1
  [ "$failed" -eq 0 ] || return 1
  # The library as other projects use it: installed (CMake package and
  # pkg-config) and through add_subdirectory, with README.md's example.
  echo "== Package (tools/check_package.sh)"
  RINGLOG_JOBS="$JOBS" tools/check_package.sh "$BUILD"
  # The lock-free ring, the pipeline and the log again under ThreadSanitizer.
  local tsan="$BUILD-tsan" t
  # Every SegmentedLog test runs the log's preparer thread beside the writer;
  # log_reader_test also reads beside a concurrent writer.
  local tsan_tests=(spsc_stress_test ring_test pipeline_test segmented_log_test sparse_index_test
    log_retention_test log_truncate_test segment_recovery_test log_reader_test log_checkpoint_test)
  cmake -S . -B "$tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGLOG_SANITIZE=thread \
    -DRINGLOG_BUILD_BENCH=OFF -DRINGLOG_BUILD_SERVER=OFF >/dev/null
  cmake --build "$tsan" -j "$JOBS" --target "${tsan_tests[@]}"
  for t in "${tsan_tests[@]}"; do
    echo "== ThreadSanitizer: $t"
    RINGLOG_SPSC_EVENTS=300000 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
      "$tsan/tests/core/$t" --gtest_brief=1
  done
  fuzz 20
  # The container recipe, as far as a machine without a container engine allows.
  deploy/check.sh
}

# Every reader of untrusted bytes under libFuzzer, ASan and UBSan, each for
# $1 seconds from its seeds; a crash, a sanitizer report or a leak fails.
fuzz() {
  deps
  local seconds=${1:-20} dir="${RINGLOG_FUZZ_BUILD_DIR:-build-fuzz}" t
  local targets=(validate_batch segment_recovery apply_chunk requests config_parser)
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
    -DRINGLOG_FUZZ=ON -DRINGLOG_BUILD_TESTS=OFF -DRINGLOG_BUILD_BENCH=OFF >/dev/null
  cmake --build "$dir" -j "$JOBS" --target "${targets[@]/#/fuzz_}"
  # The fuzzer adds what it finds to its corpus: work on a copy, not the repo.
  # On tmpfs when there is one: the targets that write segment files then
  # pay nothing for their syncs (segment_recovery: 15 times the inputs/s).
  local work
  work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
  for t in "${targets[@]}"; do
    echo "== libFuzzer: $t (${seconds}s)"
    mkdir -p "$work/$t"
    cp fuzz/corpus/"$t"/* "$work/$t/"
    TMPDIR="$work" "$dir/fuzz/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$work/$t-" "$work/$t" 2>"$work/$t.log" || {
      tail -n 60 "$work/$t.log"
      cp "$work/$t"-* "$dir/" 2>/dev/null || true
      echo "fuzz_$t failed; the input that failed is in $dir/" >&2
      rm -rf "$work"
      return 1
    }
    grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec))' "$work/$t.log"
  done
  rm -rf "$work"
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
  fuzz) fuzz "$@" ;;
  run) run ;;
  stress) stress "$@" ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
