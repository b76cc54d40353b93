#!/usr/bin/env bash
# A three-node ringlog cluster on this machine: a primary and two replicas,
# with a live workload, for trying ringlog out and for failover drills.
#
#   tools/cluster.sh up       start the nodes (if not running) and the workload;
#                             print the cluster's status every 5 s until Ctrl+C,
#                             which stops the workload and the nodes
#   tools/cluster.sh node N   (re)start node N (1-3) alone, e.g. after kill -9
#   tools/cluster.sh status   one status row per node
#   tools/cluster.sh down     stop every node (SIGTERM: drain and sync)
#   tools/cluster.sh env      the exports that let ringlogctl in a shell reach the
#                             cluster as its admin: eval "$(tools/cluster.sh env)"
#
# Data in $RINGLOG_DATA (default ./data): nodeN/ (the log), nodeN.log, nodeN.pid,
# tls/ (made on the first start by tools/make_certs.sh: the CA, node1-3 and
# client certificates, the tokens). Ports 7401-7403 (RINGLOG_BASE_PORT=7400).
# Node 1 starts as the primary; every node gets the others as --peers, so a
# restarted old primary finds the new one and follows it. The nodes speak TLS
# and ask every client, each other included, for a certificate from the CA and
# a token: theirs is token-node; this script's calls use the admin's, the
# workload the app's.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${RINGLOG_BUILD_DIR:-build}
DATA=${RINGLOG_DATA:-./data}
BASE=${RINGLOG_BASE_PORT:-7400}
RATE=${RINGLOG_LOAD_RATE:-20000}
D="$BUILD/server/ringlogd"
CTL="$BUILD/tools/ringlogctl/ringlogctl"
TLS="$DATA/tls"
addr() { echo "127.0.0.1:$((BASE + $1))"; }
ALL="$(addr 1),$(addr 2),$(addr 3)"
mkdir -p "$DATA"

certs() {
  tools/make_certs.sh "$TLS" --quiet --client client \
    --node node1,localhost,127.0.0.1 --node node2,localhost,127.0.0.1 --node node3,localhost,127.0.0.1
}

# ringlogctl's credentials, whatever the caller's environment holds: the
# client certificate, and a token after them.
AUTH=(env -u RINGLOG_TOKEN -u RINGLOG_TLS_SERVER_NAME RINGLOG_TLS_CA="$TLS/ca.pem"
  RINGLOG_TLS_CERT="$TLS/client.pem" RINGLOG_TLS_KEY="$TLS/client.key")
ctl() { "${AUTH[@]}" RINGLOG_TOKEN_FILE="$TLS/token-admin" "$CTL" "$@"; }

env_exports() {
  local t
  t=$(cd "$TLS" && pwd)
  echo "export RINGLOG_TLS_CA=$t/ca.pem RINGLOG_TLS_CERT=$t/client.pem RINGLOG_TLS_KEY=$t/client.key RINGLOG_TOKEN_FILE=$t/token-admin"
}

running() { [ -f "$DATA/node$1.pid" ] && kill -0 "$(cat "$DATA/node$1.pid")" 2>/dev/null; }

start_node() {
  local n=$1 peers=() role=()
  running "$n" && return 0
  for m in 1 2 3; do [ "$m" != "$n" ] && peers+=("$(addr "$m")"); done
  # The first start of node 1 makes the primary; every other start (and any
  # node whose log already exists) comes up as a replica of the current primary.
  if [ "$n" != 1 ] || [ -d "$DATA/node$n" ]; then
    local primary=""
    for m in 1 2 3; do
      [ "$m" = "$n" ] && continue
      if ctl status --node "$(addr "$m")" 2>/dev/null | grep -q " primary "; then primary=$(addr "$m"); fi
    done
    if [ -n "$primary" ]; then role=(--role=replica --primary="$primary"); fi
  fi
  # Mutual TLS: the node's certificate serves clients and, presented on its
  # own calls, identifies it to the other nodes.
  "$D" --data_dir="$DATA/node$n" --listen="$(addr "$n")" --peers="$(IFS=,; echo "${peers[*]}")" \
    --min_replica_acks=1 --segment_bytes=67108864 "${role[@]}" \
    --tls_cert="$TLS/node$n.pem" --tls_key="$TLS/node$n.key" --tls_ca="$TLS/ca.pem" \
    --tls_client_ca="$TLS/ca.pem" --auth_tokens="$TLS/tokens" --token_file="$TLS/token-node" \
    >>"$DATA/node$n.log" 2>&1 &
  echo $! >"$DATA/node$n.pid"
  for _ in $(seq 100); do
    ctl status --node "$(addr "$n")" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $n did not start; see $DATA/node$n.log" >&2
  return 1
}

stop_all() {
  [ -n "${LOAD_PID:-}" ] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null || true
  # A node may be gone already: Ctrl+C reaches the whole process group.
  for n in 1 2 3; do running "$n" && kill -TERM "$(cat "$DATA/node$n.pid")" 2>/dev/null || true; done
  for n in 1 2 3; do
    while running "$n"; do sleep 0.1; done
    rm -f "$DATA/node$n.pid"
  done
  echo "stopped; logs in $DATA/node*.log"
}

case "${1:-up}" in
  up)
    certs
    start_node 1
    start_node 2
    start_node 3
    echo "cluster up: $ALL (data in $DATA); workload: $RATE events/s"
    echo "TLS and tokens: ringlogctl in another shell connects as the admin after"
    echo "  $(env_exports)"
    echo
    # The workload appends as an application: the app token (append, replay).
    "${AUTH[@]}" RINGLOG_TOKEN_FILE="$TLS/token-app" "$CTL" load --nodes "$ALL" --rate "$RATE" >"$DATA/load.log" 2>&1 &
    LOAD_PID=$!
    trap 'stop_all; exit 0' INT TERM
    while true; do
      ctl status --nodes "$ALL" || true
      tail -n 1 "$DATA/load.log" || true
      echo
      sleep 5
    done
    ;;
  node) certs; start_node "${2:?node number 1-3}" ;;
  status) ctl status --nodes "$ALL" ;;
  down) stop_all ;;
  env) certs; env_exports ;;
  *) sed -n '2,21p' "$0"; exit 2 ;;
esac
