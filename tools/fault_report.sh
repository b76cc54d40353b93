#!/usr/bin/env bash
# Runs the fault suite (the ctest label "fault": real processes under
# crashes, freezes, corruption, full disks, hostile peers) ROUNDS times and
# adds up, per scenario, its runs and the events acknowledged, lost and
# duplicated, from the FAULT_RESULT lines the tests print.
#
#   tools/fault_report.sh [ROUNDS] [BUILD_DIR]      (defaults: 3, build)
#
# Exits non-zero when a test failed or any event was lost or duplicated.
set -euo pipefail
rounds=${1:-3}
build=${2:-build}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
ctest --test-dir "$build" -L fault -j "${RINGLOG_JOBS:-2}" -V --timeout 600 \
  --repeat until-fail:"$rounds" >"$out" 2>&1 || rc=$?
grep -E '^[0-9]+% tests passed|tests failed out of|\*\*\*Failed|\*\*\*Timeout' "$out" || true
grep -o 'FAULT_RESULT .*' "$out" | awk '
  {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    s = f["scenario"]; runs[s]++; acked[s] += f["acknowledged"]
    lost[s] += f["lost"]; dup[s] += f["duplicated"]
  }
  END {
    printf "%-46s %6s %14s %8s %11s\n", "SCENARIO", "RUNS", "ACKNOWLEDGED", "LOST", "DUPLICATED"
    bad = 0
    for (s in runs) {
      printf "%-46s %6d %14d %8d %11d\n", s, runs[s], acked[s], lost[s], dup[s]
      if (lost[s] || dup[s]) bad = 1
    }
    exit bad
  }' || rc=1
exit $rc
