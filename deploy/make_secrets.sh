#!/usr/bin/env bash
# The TLS certificates and tokens of the compose and Kubernetes deployments,
# made by tools/make_certs.sh into deploy/tls/ (git-ignored, never in an image):
#
#   deploy/make_secrets.sh [--namespace NS] [--dir DIR] [make_certs.sh flags, e.g. --renew]
#
#   ca.pem                        the CA every node and client trusts
#   node1.pem .. node3.pem, .key  the compose nodes (node1..3 on their network,
#                                 localhost and 127.0.0.1 for the health check
#                                 and the ports published on the host)
#   ringlog.pem, ringlog.key      the Kubernetes pods, one certificate for the
#                                 StatefulSet: ringlog-0..2.ringlog, the Services
#                                 ringlog and ringlog-primary, short and in
#                                 namespace NS (default: default), and localhost
#                                 for the probes
#   client.pem, client.key        a client certificate for ringlogctl or an
#                                 application outside the containers
#   tokens, token-*               the nodes' --auth_tokens and each token alone
#
# Run again, it keeps what is there (see tools/make_certs.sh --help). The
# files are readable by all (in a directory only its owner enters): compose
# mounts them as they are into containers that run as another user.
set -euo pipefail
cd "$(dirname "$0")/.."
ns=default dir=deploy/tls pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    --namespace) ns=${2:?--namespace NS}; shift ;;
    --namespace=*) ns=${1#*=} ;;
    --dir) dir=${2:?--dir DIR}; shift ;;
    --dir=*) dir=${1#*=} ;;
    *) pass+=("$1") ;;
  esac
  shift
done

# The names a pod is reached by: its own, the Services', each short, in the
# namespace, and fully qualified.
k8s=ringlog
for host in ringlog-0.ringlog ringlog-1.ringlog ringlog-2.ringlog ringlog ringlog-primary; do
  [ "$host" = ringlog ] || k8s+=",$host"
  k8s+=",$host.$ns.svc,$host.$ns.svc.cluster.local"
done
k8s+=",localhost,127.0.0.1"

tools/make_certs.sh "$dir" --readable \
  --node node1,localhost,127.0.0.1 --node node2,localhost,127.0.0.1 --node node3,localhost,127.0.0.1 \
  --node "$k8s" --client client "${pass[@]}"
