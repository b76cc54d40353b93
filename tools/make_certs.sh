#!/usr/bin/env bash
# Makes what a ringlog cluster with TLS and tokens needs, with the openssl CLI:
# a CA, node and client certificates signed by it, and bearer tokens.
#
#   tools/make_certs.sh DIR [--node NAME[,SAN...]]... [--client NAME[:ROLES]]...
#                       [--renew] [--renew-tokens] [--days N] [--readable] [--quiet]
#
# In DIR:
#   ca.pem, ca.key       the CA (10 years): --tls_ca and --tls_client_ca of the nodes,
#                        --tls_ca / RINGLOG_TLS_CA of the clients
#   NAME.pem, NAME.key   a node (--node): CN=NAME, subjectAltName NAME and each SAN
#                        (an IPv4 or IPv6 address becomes an IP SAN, anything else a DNS
#                        name), extendedKeyUsage serverAuth and clientAuth, as a node
#                        presents it to clients and to the nodes it connects to
#                        a client (--client): CN=NAME, clientAuth; with :ROLES, tokens
#                        gets a line "cert:NAME ROLES" (roles without a token)
#   tokens               the nodes' --auth_tokens: a random token per line with its roles
#   token-node           replicate,replay  a node's own --token_file
#   token-admin          all               operators: promote, follow, status
#   token-app            append,replay     applications
#   token-reader         replay            readers
#
# What exists is kept, so running it again changes nothing: a certificate is
# made again only when asked (--renew: those named here, with new keys), when
# its names differ from those asked for, when the CA no longer verifies it, or
# when it expires within 30 days. --renew-tokens makes the four tokens again.
# Nodes read new files on SIGHUP. To replace the CA, remove ca.pem and ca.key:
# every certificate named is then made again.
#
# Keys are EC P-256: as strong as RSA 3072, with smaller certificates and
# faster handshakes and signatures than RSA 2048, and every TLS stack gRPC
# runs on (OpenSSL, BoringSSL, Java, Go) takes them. Leaves last 825 days
# (--days), the most Apple's TLS stack takes from a private CA.
#
# Private keys and tokens are mode 0600, DIR 0700 when made here. --readable
# makes them 0644 and DIR 0700, which keeps other users of this machine out:
# for files bind-mounted into containers that run as another user, such as
# compose secrets, which keep the file's owner and mode.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; }

dir="" renew=0 renew_tokens=0 days=825 readable=0 quiet=0
nodes=() clients=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --node) nodes+=("${2:?--node NAME[,SAN...]}"); shift ;;
    --node=*) nodes+=("${1#*=}") ;;
    --client) clients+=("${2:?--client NAME[:ROLES]}"); shift ;;
    --client=*) clients+=("${1#*=}") ;;
    --days) days=${2:?--days N}; shift ;;
    --days=*) days=${1#*=} ;;
    --renew) renew=1 ;;
    --renew-tokens) renew_tokens=1 ;;
    --readable) readable=1 ;;
    --quiet) quiet=1 ;;
    -*) echo "make_certs: unknown flag $1 (--help)" >&2; exit 2 ;;
    *) [ -z "$dir" ] || { echo "make_certs: one DIR only (--help)" >&2; exit 2; }; dir=$1 ;;
  esac
  shift
done
[ -n "$dir" ] || { usage >&2; exit 2; }
[[ "$days" =~ ^[1-9][0-9]*$ ]] || { echo "make_certs: --days takes a number of days" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make_certs: needs openssl (apt-get install openssl)" >&2; exit 1; }

[ -d "$dir" ] || mkdir -p -m 700 "$dir"
secret_mode=600
# The files are then only as private as their directory.
[ "$readable" = 1 ] && secret_mode=644 && chmod 700 "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Nothing made here is ever readable by others before its mode is set.
umask 077
made=()   # what this run made, for the summary

name_ok() { [[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] && [ "$1" != ca ] && [ "$1" != tokens ] && [[ "$1" != token-* ]]; }
roles_ok() { [[ "$1" =~ ^(all|append|replay|admin|replicate)(,(append|replay|admin|replicate))*$ ]]; }

# "DNS:a,IP:b" from "a,b": an address (IPv4, or anything with a colon) is an IP.
san_list() {
  local out="" s
  for s in "$@"; do
    if [[ "$s" =~ ^[0-9]+(\.[0-9]+){3}$ || "$s" == *:* ]]; then out+="${out:+,}IP:$s"
    else out+="${out:+,}DNS:$s"; fi
  done
  echo "$out"
}

# The names a certificate carries, as openssl prints them, sorted: to compare
# with those asked for. openssl prints IPv6 addresses in full, so compare the
# same way: "IP Address:0:0:0:0:0:0:0:1".
cert_sans() {
  openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | tail -n +2 | tr ',' '\n' |
    sed 's/^ *//; s/^IP Address:/IP:/' | grep -v '^$' | sort
}
wanted_sans() {
  # Through openssl, so that an address reads as openssl prints it.
  printf '[req]\ndistinguished_name=dn\n[dn]\n[x]\nsubjectAltName=%s\n' "$1" >"$tmp/san.cnf"
  openssl req -new -x509 -key "$dir/ca.key" -subj /CN=x -days 1 -config "$tmp/san.cnf" \
    -extensions x -out "$tmp/san.pem" 2>/dev/null
  cert_sans "$tmp/san.pem"
}

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# The CA: kept if it is there; only a missing one is made.
if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca.key" ]; then
  new_key "$tmp/ca.key"
  cat >"$tmp/ca.cnf" <<EOF
[req]
distinguished_name = dn
x509_extensions = ca
prompt = no
[dn]
O = ringlog
# A name of its own, so two CAs made apart are never taken for each other.
CN = ringlog CA $(openssl rand -hex 4)
[ca]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -new -x509 -key "$tmp/ca.key" -config "$tmp/ca.cnf" -days 3650 -sha256 \
    -set_serial "0x$(openssl rand -hex 16)" -out "$tmp/ca.pem"
  mv "$tmp/ca.key" "$dir/ca.key"
  mv "$tmp/ca.pem" "$dir/ca.pem"
  made+=("ca.pem")
fi
chmod 600 "$dir/ca.key"   # never leaves this directory, whatever --readable says
chmod 644 "$dir/ca.pem"

# issue NAME EKU SANS: NAME.pem and NAME.key, signed by the CA, unless a good
# one is there. SANS is empty for a client.
issue() {
  local name=$1 eku=$2 sans=$3 why=""
  if [ ! -f "$dir/$name.pem" ] || [ ! -f "$dir/$name.key" ]; then why="made"
  elif [ "$renew" = 1 ]; then why="renewed"
  elif ! openssl verify -CAfile "$dir/ca.pem" "$dir/$name.pem" >/dev/null 2>&1; then why="made again: not from this CA"
  elif ! openssl x509 -in "$dir/$name.pem" -noout -checkend 2592000 >/dev/null; then why="renewed: expiring"
  elif [ "$(openssl x509 -in "$dir/$name.pem" -noout -ext extendedKeyUsage 2>/dev/null | sed -n '2s/^ *//p')" != "$eku_name" ]; then
    why="made again: another use"
  elif [ "$(cert_sans "$dir/$name.pem")" != "$( [ -n "$sans" ] && wanted_sans "$sans")" ]; then
    why="made again: other names"
  fi
  [ -n "$why" ] || return 0
  new_key "$tmp/$name.key"
  {
    echo "basicConstraints = critical,CA:FALSE"
    echo "keyUsage = critical,digitalSignature"
    echo "extendedKeyUsage = $eku"
    [ -n "$sans" ] && echo "subjectAltName = $sans"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
  } >"$tmp/$name.ext"
  openssl req -new -key "$tmp/$name.key" -subj "/O=ringlog/CN=$name" -out "$tmp/$name.csr"
  openssl x509 -req -in "$tmp/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -days "$days" \
    -sha256 -set_serial "0x$(openssl rand -hex 16)" -extfile "$tmp/$name.ext" \
    -out "$tmp/$name.pem" 2>/dev/null
  mv "$tmp/$name.key" "$dir/$name.key"
  mv "$tmp/$name.pem" "$dir/$name.pem"
  chmod 644 "$dir/$name.pem"
  made+=("$name.pem ($why)")
}

summary=()
for spec in "${nodes[@]}"; do
  IFS=, read -r -a names <<<"$spec"
  name=${names[0]}
  name_ok "$name" || { echo "make_certs: bad node name '$name'" >&2; exit 2; }
  for s in "${names[@]}"; do
    [[ "$s" =~ ^[A-Za-z0-9*:][A-Za-z0-9.:*-]*$ ]] || { echo "make_certs: bad name '$s'" >&2; exit 2; }
  done
  eku_name="TLS Web Server Authentication, TLS Web Client Authentication"
  issue "$name" "serverAuth,clientAuth" "$(san_list "${names[@]}")"
  line="  $name.pem $name.key  node: $(IFS=,; echo "${names[*]:0:4}")"
  [ ${#names[@]} -gt 4 ] && line+=" and $((${#names[@]} - 4)) more names"
  summary+=("$line")
done
for spec in "${clients[@]}"; do
  name=${spec%%:*}
  name_ok "$name" || { echo "make_certs: bad client name '$name'" >&2; exit 2; }
  if [[ "$spec" == *:* ]] && ! roles_ok "${spec#*:}"; then
    echo "make_certs: bad roles '${spec#*:}' (append,replay,admin,replicate or all)" >&2; exit 2
  fi
  eku_name="TLS Web Client Authentication"
  issue "$name" "clientAuth" ""
  line="  $name.pem $name.key  client: CN=$name"
  [[ "$spec" == *:* ]] && line+=", roles ${spec#*:} (cert:$name in tokens)"
  summary+=("$line")
done

# Tokens: each in token-ROLE (its first line, for --token_file), all of them
# in tokens (--auth_tokens). A token kept keeps its line; lines added by hand
# stay.
touch "$dir/tokens"
if ! grep -q '^# ringlog' "$dir/tokens"; then
  {
    echo "# ringlog tokens (--auth_tokens): TOKEN ROLES [name=NAME] [expires=RFC3339],"
    echo "# or cert:NAME ROLES for a client certificate; ROLES from append,replay,admin,replicate or all."
    cat "$dir/tokens"
  } >"$tmp/tokens"
  cat "$tmp/tokens" >"$dir/tokens"
fi
for spec in node:replicate,replay admin:all app:append,replay reader:replay; do
  who=${spec%%:*} roles=${spec#*:} file="$dir/token-${spec%%:*}"
  old=""
  [ -s "$file" ] && old=$(head -n 1 "$file")
  if [ -z "$old" ] || [ "$renew_tokens" = 1 ]; then
    openssl rand -hex 32 >"$tmp/token"
    mv "$tmp/token" "$file"
    made+=("token-$who")
  fi
  token=$(head -n 1 "$file")
  if [ -n "$old" ] && [ "$old" != "$token" ]; then
    awk -v t="$old" '$1 != t' "$dir/tokens" >"$tmp/tokens"
    cat "$tmp/tokens" >"$dir/tokens"
  fi
  awk -v t="$token" '$1 == t {found = 1} END {exit !found}' "$dir/tokens" || echo "$token $roles name=$who" >>"$dir/tokens"
done
for spec in "${clients[@]}"; do
  [[ "$spec" == *:* ]] || continue
  name=${spec%%:*}
  line="cert:$name ${spec#*:}"
  grep -qx "$line" "$dir/tokens" && continue
  awk -v c="cert:$name" '$1 != c' "$dir/tokens" >"$tmp/tokens"
  echo "$line" >>"$tmp/tokens"
  cat "$tmp/tokens" >"$dir/tokens"
  made+=("tokens: $line")
done
chmod "$secret_mode" "$dir/tokens" "$dir"/token-node "$dir"/token-admin "$dir"/token-app "$dir"/token-reader
for spec in "${nodes[@]}" "${clients[@]}"; do
  name=${spec%%[,:]*}
  chmod "$secret_mode" "$dir/$name.key"
done

[ "$quiet" = 1 ] && [ ${#made[@]} -eq 0 ] && exit 0
echo "ringlog TLS and tokens in $dir (EC P-256; the CA until $(openssl x509 -in "$dir/ca.pem" -noout -enddate | cut -d= -f2))"
[ ${#made[@]} -gt 0 ] && echo "  made now: ${made[*]}"
echo "  ca.pem  the CA: --tls_ca, --tls_client_ca (ca.key signs; keep it here)"
for line in "${summary[@]}"; do echo "$line"; done
echo "  tokens  --auth_tokens; each token alone: token-node (replicate,replay), token-admin (all),"
echo "          token-app (append,replay), token-reader (replay)"
