#!/usr/bin/env bash
# Checks the deployment recipes as far as a machine without a container
# engine allows:
#  1. the Dockerfile's build stage (deploy/build.sh) builds from a clean copy
#     of the committed tree into an empty prefix, with no build tree of ours;
#  2. the installed binaries run: a node starts, is healthy, appends, replays
#     and stops cleanly; again with TLS and tokens as compose and Kubernetes
#     give them (deploy/make_secrets.sh's files, named by the environment);
#  3. every shared library they load comes from a package that the
#     Dockerfile's runtime stage installs (or from the base image);
#  4. deploy/docker-compose.yml passes `docker-compose config`, and the
#     Kubernetes manifests parse and hold what the README relies on;
#  5. deploy/make_secrets.sh makes what compose and Kubernetes mount: every
#     file they name, certificates from the CA that carry the names the nodes
#     are reached by.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $(cat "$work/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== 1. build recipe from a clean copy of HEAD"
git archive --format=tar HEAD | tar -x -C "$work" --one-top-level=src
deploy/build.sh "$work/src" "$work/prefix" "$work/build"

echo "== 2. the installed binaries work"
"$work/prefix/bin/ringlogd" --data_dir="$work/data" --listen=127.0.0.1:0 \
  --port_file="$work/port" >"$work/node.log" 2>&1 &
echo $! >"$work/pid"
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
node="127.0.0.1:$(cat "$work/port")"
"$work/prefix/bin/ringlogctl" health --node "$node"
printf 'one\ntwo\n' | "$work/prefix/bin/ringlogctl" append --node "$node"
[ "$("$work/prefix/bin/ringlogctl" replay --node "$node" --format=json | wc -l)" = 2 ]
kill -TERM "$(cat "$work/pid")"
wait "$(cat "$work/pid")"
grep -q "stopped cleanly" "$work/node.log"

echo "== 2b. with TLS and tokens, as compose and Kubernetes run them"
"$work/src/deploy/make_secrets.sh" --dir "$work/tls" --quiet >/dev/null
(
  # The containers' environment: for ringlogd, and for ringlogctl beside it
  # (the health checks, exec), which connects with the node's own credentials.
  t="$work/tls" bin="$work/prefix/bin"
  export RINGLOG_TLS_CERT="$t/node1.pem" RINGLOG_TLS_KEY="$t/node1.key" RINGLOG_TLS_CA="$t/ca.pem" \
    RINGLOG_TLS_CLIENT_CA="$t/ca.pem" RINGLOG_AUTH_TOKENS="$t/tokens" RINGLOG_TOKEN_FILE="$t/token-node"
  refused() { if "$@" >/dev/null 2>&1; then echo "not refused: $*"; return 1; fi; }
  "$bin/ringlogd" --data_dir="$work/data-tls" --listen=127.0.0.1:0 --port_file="$work/port-tls" \
    >"$work/node-tls.log" 2>&1 &
  echo $! >"$work/pid"
  for _ in $(seq 100); do [ -s "$work/port-tls" ] && break; sleep 0.1; done
  node="127.0.0.1:$(cat "$work/port-tls")"
  "$bin/ringlogctl" health --node "$node"                  # the probes: a certificate, no token
  "$bin/ringlogctl" status --node "$node" >/dev/null       # the node's token reads the status
  printf 'x\n' | refused "$bin/ringlogctl" append --node "$node"   # but appends nothing
  printf 'one\ntwo\n' | RINGLOG_TOKEN_FILE="$t/token-app" "$bin/ringlogctl" append --node "$node"
  [ "$(RINGLOG_TOKEN_FILE="$t/token-reader" "$bin/ringlogctl" replay --node "$node" --format=json | wc -l)" = 2 ]
  refused env -u RINGLOG_TLS_CERT -u RINGLOG_TLS_KEY "$bin/ringlogctl" health --node "$node"
  refused env -u RINGLOG_TLS_CA -u RINGLOG_TLS_CERT -u RINGLOG_TLS_KEY "$bin/ringlogctl" health --node "$node"
  kill -TERM "$(cat "$work/pid")"
  wait "$(cat "$work/pid")"
  grep -q "stopped cleanly" "$work/node-tls.log"
)

echo "== 3. runtime libraries are in the runtime stage"
# The packages named after --no-install-recommends in the runtime stage.
listed=$(awk '/^FROM debian:bookworm-slim$/ {rt=1} rt' Dockerfile | tr -d '\\\n' |
  sed -n 's/.*--no-install-recommends\([^&]*\)&&.*/\1/p' | tr ' ' '\n' | grep -v '^$' | sort -u)
base="libc6 libgcc-s1 libstdc++6"
missing=""
for lib in $(ldd "$work/prefix/bin/ringlogd" "$work/prefix/bin/ringlogctl" | awk '/=>/ {print $3}' | sort -u); do
  # dpkg knows a library by one of its paths (/lib or /usr/lib, link or file).
  pkg=$( (dpkg -S "$lib" || dpkg -S "$(readlink -f "$lib")" || dpkg -S "*/$(basename "$(readlink -f "$lib")")") \
    2>/dev/null | head -1 | cut -d: -f1)
  [ -z "$pkg" ] && { echo "no package owns $lib"; exit 1; }
  if ! grep -qx "$pkg" <<<"$listed" && [[ " $base " != *" $pkg "* ]]; then missing+=" $pkg"; fi
done
if [ -n "$missing" ]; then echo "the Dockerfile's runtime stage lacks:$missing"; exit 1; fi
echo "all libraries covered by: $(echo $listed)"

echo "== 4. compose and Kubernetes files"
(cd deploy && docker-compose -f docker-compose.yml config -q)
python3 - <<'PY'
import yaml
docs = [d for d in yaml.safe_load_all(open("deploy/k8s/ringlog.yaml")) if d]
kinds = {d["kind"]: d for d in docs}
for k in ("StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap"):
    assert k in kinds, f"no {k}"
sts = kinds["StatefulSet"]
spec = sts["spec"]
assert spec["replicas"] == 3 and spec["serviceName"] == "ringlog"
assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
c = spec["template"]["spec"]["containers"][0]
for probe in ("readinessProbe", "livenessProbe"):
    cmd = c[probe]["exec"]["command"]
    assert cmd[:4] == ["ringlogctl", "health", "--node", "127.0.0.1:7400"], cmd
assert any(m["mountPath"] == "/var/lib/ringlog" for m in c["volumeMounts"])
services = [d for d in docs if d["kind"] == "Service"]
assert any(s["spec"].get("clusterIP") == "None" for s in services), "no headless service"
assert any("ringlog.dev/role" in s["spec"]["selector"] for s in services), "no primary service"
assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 2
print("k8s manifests: ok (" + ", ".join(sorted(kinds)) + ")")
PY

echo "== 5. TLS and tokens of compose and Kubernetes (deploy/make_secrets.sh's files, made in 2b)"
TLS="$work/tls" python3 - <<'PY'
import os, re, subprocess, yaml
tls = os.environ["TLS"]

def names(pem):
    """The certificate's SANs and extended key usages, after openssl verifies it."""
    path = os.path.join(tls, pem)
    subprocess.run(["openssl", "verify", "-CAfile", os.path.join(tls, "ca.pem"), path],
                   check=True, capture_output=True)
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-ext",
                          "subjectAltName,extendedKeyUsage"], check=True,
                         capture_output=True, text=True).stdout
    return {n.strip().replace("IP Address:", "").replace("DNS:", "") for n in re.split(r"[,\n]", out)}

def is_node_cert(pem, hosts):
    got = names(pem)
    for want in ["TLS Web Server Authentication", "TLS Web Client Authentication", "127.0.0.1", *hosts]:
        assert want in got, f"{pem} lacks {want}"

def secret_env(env, root, files):
    # Each path the node's environment names is a file it is given.
    for k, v in env.items():
        if k.startswith(("RINGLOG_TLS_", "RINGLOG_AUTH_TOKENS", "RINGLOG_TOKEN_FILE")):
            assert v.startswith(root) and v[len(root):] in files, f"{k}={v}: not mounted"

# compose: each node mounts its own certificate and the shared files.
compose = yaml.safe_load(open("deploy/docker-compose.yml"))
for name, svc in compose["services"].items():
    mounted = {}
    for sec in svc["secrets"]:
        src = sec if isinstance(sec, str) else sec["source"]
        target = src if isinstance(sec, str) else sec.get("target", src)
        path = compose["secrets"][src]["file"]
        assert path.startswith("./tls/"), path
        assert os.path.isfile(os.path.join(tls, path[len("./tls/"):])), f"{path}: not made"
        mounted[target] = path[len("./tls/"):]
    secret_env(svc["environment"], "/run/secrets/", mounted)
    host = svc["environment"]["RINGLOG_ADVERTISE"].split(":")[0]
    is_node_cert(mounted["node.pem"], [host])
    assert mounted["node.pem"] == name + ".pem" and mounted["node.key"] == name + ".key"

# Kubernetes: the Secret as the manifest's header makes it, mounted where the
# environment says; one certificate for every name a pod is reached by.
text = open("deploy/k8s/ringlog.yaml").read()
keys = {}
for spec in re.findall(r"--from-file=(\S+)", text):
    key, _, path = spec.rpartition("=")
    assert path.startswith("deploy/tls/"), spec
    keys[key or os.path.basename(path)] = path[len("deploy/tls/"):]
for f in keys.values():
    assert os.path.isfile(os.path.join(tls, f)), f"{f}: not made"
docs = {d["kind"]: d for d in yaml.safe_load_all(text) if d}
pod = docs["StatefulSet"]["spec"]["template"]["spec"]
c = pod["containers"][0]
vol = next(v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "ringlog-tls")
root = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == vol["name"]) + "/"
secret_env({e["name"]: e["value"] for e in c["env"]}, root, keys)
conf = docs["ConfigMap"]["data"]["ringlog.conf"]
peers = re.search(r"^peers = (.*)$", conf, re.M).group(1).split(",")
services = [d["metadata"]["name"] for d in yaml.safe_load_all(text) if d and d["kind"] == "Service"]
is_node_cert(keys["node.pem"], [p.split(":")[0] for p in peers] + services)
print("secrets: ok (compose: %d nodes; Kubernetes: %s)" % (len(compose["services"]), ", ".join(sorted(keys))))
PY
echo "deploy checks passed"
