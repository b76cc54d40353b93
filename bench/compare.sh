#!/usr/bin/env bash
# ringlog and Redis side by side: replication_bench (ringlog) and redis_bench
# (Redis 7 Streams through hiredis), which measure with the same definitions,
# run alternately for ROUNDS rounds (the first of the two changes every
# round), then the median of each figure and the ratio ringlog / Redis.
#
#   bench/compare.sh [--rounds N] [--runs lag,commit] [--build DIR] [FLAG...]
#
# FLAGs go to both programs: --rate, --lag_seconds, --commits,
# --commit_warmup, --payload, --catchup_events. --runs may add catchup (then
# pass e.g. --catchup_events=1000000: the same number of events to both).
#
# Output, one JSON line each: every run's figure with "round" and "system",
# then per figure {"compare":..., "ringlog":median, "redis":median,
# "ringlog_over_redis":ratio}. Latencies are in microseconds (lower is
# better), catch-up in MB/s of ringlog-sized records (higher is better).
# Needs redis-server on the PATH and redis_bench built (it is, when hiredis is
# installed: libhiredis-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${RINGLOG_BUILD_DIR:-build}
ROUNDS=5
RUNS=lag,commit
FLAGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --rounds=*) ROUNDS=${1#*=}; shift ;;
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --build) BUILD=$2; shift 2 ;;
    --build=*) BUILD=${1#*=}; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) FLAGS+=("$1"); shift ;;
  esac
done
RINGLOG="$BUILD/bench/replication_bench"
REDIS="$BUILD/bench/redis_bench"
for b in "$RINGLOG" "$REDIS"; do
  [ -x "$b" ] || { echo "compare.sh: $b is not built" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "compare.sh: redis-server is not installed" >&2; exit 2; }

OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

# Tags each JSON line of a run with its round and system.
tag() { sed -u "s/^{/{\"round\":$1,\"system\":\"$2\",/" | tee -a "$OUT"; }
ringlog() { "$RINGLOG" --runs="$RUNS" "${FLAGS[@]}" | tag "$1" ringlog; }
redis() { "$REDIS" --runs="$RUNS" "${FLAGS[@]}" | tag "$1" redis; }

for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then ringlog "$r"; redis "$r"; else redis "$r"; ringlog "$r"; fi
done

# The median of one field of one bench's lines.
median() {
  { grep "\"bench\":\"$1\"" "$OUT" || true; } | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "null";
          else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
compare() {  # name, ringlog bench, redis bench, field
  local a b
  a=$(median "$2" "$4")
  b=$(median "$3" "$4")
  [ "$a" = null ] && [ "$b" = null ] && return 0
  printf '{"compare":"%s","rounds":%s,"ringlog":%s,"redis":%s,"ringlog_over_redis":%s}\n' \
    "$1" "$ROUNDS" "$a" "$b" "$(awk -v a="$a" -v b="$b" \
      'BEGIN { if (a == "null" || b == "null" || b == 0) print "null"; else printf "%.2f", a / b }')"
}
compare lag_p50_us replication_lag redis_replication_lag p50_us
compare lag_p99_us replication_lag redis_replication_lag p99_us
compare lag_p999_us replication_lag redis_replication_lag p999_us
compare commit_p50_us commit_latency_1_ack redis_commit_latency_1_ack p50_us
compare commit_p99_us commit_latency_1_ack redis_commit_latency_1_ack p99_us
compare commit_p999_us commit_latency_1_ack redis_commit_latency_1_ack p999_us
compare catchup_mb_per_sec replica_catchup redis_replica_catchup mb_per_sec
# Lag from the primary's ack (of the event's batch, at the writer) to readable on the replica.
compare lag_from_ack_p50_us replication_lag_from_ack redis_replication_lag_from_ack p50_us
compare lag_from_ack_p99_us replication_lag_from_ack redis_replication_lag_from_ack p99_us
