#!/usr/bin/env bash
# Plaintext and TLS side by side: replication_bench (replica catch-up, commit
# latency with one replica ack) and e2e_bench (append and replay through one
# client), each run without and with --tls (mutual TLS between every node and
# client, and a token on every call), alternately for ROUNDS rounds (which of
# the two goes first changes every round); then the median of each figure and
# the ratio TLS / plaintext.
#
#   bench/tls_compare.sh [--rounds N] [--build DIR] [--catchup_events N]
#                        [--commits N] [--events N]
#
# Output: every run's JSON line tagged with "round" and "security", then one
# line per figure:
#   tls_compare metric=catchup_mb_per_sec plain=M tls=M ratio=R [delta=D] [target=...]
# (delta: TLS minus plaintext, for latencies; target: the goal for TLS's cost
# and whether the medians meet it). Catch-up in MB/s of records and
# throughputs in events/s (higher is better); latencies in microseconds
# (lower is better). Each run removes its temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${RINGLOG_BUILD_DIR:-build}
ROUNDS=5
CATCHUP_EVENTS=2000000  # 160 MB of 64-byte events on each of two nodes
COMMITS=3000
EVENTS=2000000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --rounds=*) ROUNDS=${1#*=}; shift ;;
    --build) BUILD=$2; shift 2 ;;
    --build=*) BUILD=${1#*=}; shift ;;
    --catchup_events) CATCHUP_EVENTS=$2; shift 2 ;;
    --catchup_events=*) CATCHUP_EVENTS=${1#*=}; shift ;;
    --commits) COMMITS=$2; shift 2 ;;
    --commits=*) COMMITS=${1#*=}; shift ;;
    --events) EVENTS=$2; shift 2 ;;
    --events=*) EVENTS=${1#*=}; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "tls_compare.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done
REPL="$BUILD/bench/replication_bench"
E2E="$BUILD/bench/e2e_bench"
for b in "$REPL" "$E2E"; do
  [ -x "$b" ] || { echo "tls_compare.sh: $b is not built" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "tls_compare.sh: the openssl command is needed" >&2; exit 2; }

OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

# Tags each JSON line of a run with its round and security.
tag() { sed -u "s/^{/{\"round\":$1,\"security\":\"$2\",/" | tee -a "$OUT"; }
one() {  # round, plain|tls
  local flag=()
  [ "$2" = tls ] && flag=(--tls)
  "$REPL" --runs=catchup,commit --catchup_events="$CATCHUP_EVENTS" --commits="$COMMITS" \
    "${flag[@]}" | tag "$1" "$2"
  "$E2E" --events="$EVENTS" "${flag[@]}" | tag "$1" "$2"
}

for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then one "$r" plain; one "$r" tls; else one "$r" tls; one "$r" plain; fi
done

# The median of one field of one bench's lines of one security.
median() {  # bench, security, field
  { grep "\"security\":\"$2\"" "$OUT" | grep "\"bench\":\"$1\"" || true; } |
    sed -n "s/.*\"$3\":\([0-9.]*\).*/\1/p" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "null";
          else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# name, bench, field, "latency" or "rate", then optionally the target: for a
# rate the lowest ratio TLS / plaintext, for a latency the most microseconds TLS adds.
compare() {
  local p t line
  p=$(median "$2" plain "$3")
  t=$(median "$2" tls "$3")
  line="tls_compare metric=$1 rounds=$ROUNDS plain=$p tls=$t"
  line+=$(awk -v p="$p" -v t="$t" -v kind="$4" -v goal="${5:-}" 'BEGIN {
    if (p == "null" || t == "null" || p == 0) { print " ratio=null"; exit }
    printf " ratio=%.3f", t / p
    if (kind == "latency") printf " delta=%.1f", t - p
    if (goal != "" && kind == "rate")
      printf " target=ratio>=%s:%s", goal, (t / p >= goal ? "met" : "missed")
    if (goal != "" && kind == "latency")
      printf " target=delta<=%s:%s", goal, (t - p <= goal ? "met" : "missed")
  }')
  echo "$line"
}
compare catchup_mb_per_sec replica_catchup mb_per_sec rate 0.75
compare commit_p50_us commit_latency_1_ack p50_us latency 50
compare commit_p99_us commit_latency_1_ack p99_us latency
compare replay_events_per_sec e2e_replay events_per_sec rate
compare append_events_per_sec e2e_append events_per_sec rate
