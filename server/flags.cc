// ringlogd's flags. Their help text is what `ringlogd --help` prints and
// what README.md's table of flags sums up.
#include "flags.h"

#include <algorithm>
#include <cstdint>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, data_dir, "./data", "directory of the log (created if missing)");
ABSL_FLAG(std::string, listen, "127.0.0.1:7400", "gRPC address; port 0 picks a free port");
ABSL_FLAG(std::string, advertise, "",
          "the address others reach this node at (default: --listen, with the port chosen)");
ABSL_FLAG(std::string, port_file, "", "write the port listened on to this file once serving");
ABSL_FLAG(std::string, node_id, "", "node id (default: kept in <data_dir>/NODE_ID)");
ABSL_FLAG(std::string, role, "primary", "primary or replica");
ABSL_FLAG(std::string, primary, "", "replica: HOST:PORT of the primary to follow");
ABSL_FLAG(std::vector<std::string>, peers, {},
          "the other nodes, HOST:PORT,...: a primary that finds one of them primary in a later "
          "epoch follows it (also at start); promotion checks their logs");
ABSL_FLAG(uint64_t, segment_bytes, uint64_t{256} << 20, "size of each segment file");
ABSL_FLAG(uint64_t, ring_bytes, uint64_t{64} << 20, "ring capacity, a power of two");
ABSL_FLAG(std::string, fsync, "none",
          "when the log is flushed to disk: none (the kernel decides), batch (after every "
          "batch), or an interval such as 10ms");
ABSL_FLAG(uint64_t, max_batch_bytes, uint64_t{4} << 20, "largest Append request batch");
ABSL_FLAG(bool, accept_data_loss, false,
          "start even though the log lacks records it once held (damaged or deleted files): "
          "forget them and go on from what is left; without it such a primary takes no appends");
ABSL_FLAG(uint32_t, min_replica_acks, 0,
          "replicas that must have a batch durable before it is acknowledged");
ABSL_FLAG(uint64_t, retention_bytes, 0, "keep at most this many bytes of log (0: no limit)");
ABSL_FLAG(absl::Duration, retention_age, absl::InfiniteDuration(),
          "drop segments whose newest event is older than this (e.g. 168h)");
ABSL_FLAG(absl::Duration, disk_full_timeout, absl::Seconds(1),
          "an append that cannot be stored (a full disk here, or on the replicas a commit "
          "needs) is refused with RESOURCE_EXHAUSTED once that has lasted this long");
ABSL_FLAG(uint64_t, max_producers, 100'000,
          "idempotent producers (producer_id) remembered at most; beyond it the least recently "
          "seen one is forgotten, and its resends of old batches can no longer be recognized "
          "(0: no limit; each takes about 1 KiB at most)");
ABSL_FLAG(absl::Duration, producer_expiry, absl::Hours(7 * 24),
          "an idempotent producer not seen for this long is forgotten (e.g. 168h; inf: never); "
          "a forgotten producer may start again from any producer_seq");
ABSL_FLAG(std::string, tls_cert, "",
          "serve TLS with this PEM certificate chain (with --tls_key); also this node's client "
          "certificate when it calls other nodes (re-read on SIGHUP)");
ABSL_FLAG(std::string, tls_key, "", "the PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "require client certificates signed by this PEM CA (mutual TLS)");
ABSL_FLAG(std::string, tls_ca, "",
          "the PEM CA that signed the other nodes' certificates, to verify them when this node "
          "calls them (default: --tls_client_ca; calls are TLS when this or --tls_cert is set)");
ABSL_FLAG(std::string, auth_tokens, "",
          "require a token or a client certificate with the right role on every call: one "
          "\"TOKEN ROLES [name=NAME] [expires=TIME]\" or \"cert:NAME ROLES\" per line, roles "
          "from append,replay,admin,replicate,all (re-read on SIGHUP)");
ABSL_FLAG(std::string, token_file, "",
          "this node's token (the file's first line), sent when it calls other nodes: needs "
          "replicate to follow a primary, replay to read a peer's status");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error");
ABSL_FLAG(std::string, metrics_listen, "",
          "serve Prometheus metrics at http://HOST:PORT/metrics (empty: off); PORT alone "
          "(or :PORT) listens on 127.0.0.1 only, 0.0.0.0:PORT on every interface");
ABSL_FLAG(std::string, metrics_tls_cert, "",
          "PEM certificate (chain) for the metrics endpoint: with --metrics_tls_key it "
          "serves HTTPS only");
ABSL_FLAG(std::string, metrics_tls_key, "", "PEM private key of --metrics_tls_cert");
ABSL_FLAG(std::string, metrics_auth_file, "",
          "require HTTP Basic authentication for metrics: a file of user:SHA256HEX lines, the "
          "hex being the SHA-256 of the password (printf %s PASSWORD | sha256sum)");
ABSL_FLAG(std::string, config, "",
          "a file of flag settings, one \"name = value\" per line (# comments); the "
          "environment (RINGLOG_<NAME>) overrides it, and the command line both");

namespace ringlog {
namespace {

NodeOptions node_options_from_flags() {
  NodeOptions o;
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  o.listen = absl::GetFlag(FLAGS_listen);
  o.node_id = absl::GetFlag(FLAGS_node_id);
  o.primary = absl::GetFlag(FLAGS_primary);
  o.peers = absl::GetFlag(FLAGS_peers);
  o.pipeline.ring_bytes = absl::GetFlag(FLAGS_ring_bytes);
  o.pipeline.log.segment_bytes = absl::GetFlag(FLAGS_segment_bytes);
  o.pipeline.log.retention_bytes = absl::GetFlag(FLAGS_retention_bytes);
  o.pipeline.log.retention_age = absl::GetFlag(FLAGS_retention_age);
  o.max_request_bytes = absl::GetFlag(FLAGS_max_batch_bytes);
  o.min_replica_acks = absl::GetFlag(FLAGS_min_replica_acks);
  o.accept_data_loss = absl::GetFlag(FLAGS_accept_data_loss);
  o.disk_full_timeout = absl::GetFlag(FLAGS_disk_full_timeout);
  o.producers.max_producers = absl::GetFlag(FLAGS_max_producers);
  o.producers.expiry = absl::GetFlag(FLAGS_producer_expiry);
  return o;
}

absl::Status set_role(const std::string& role, NodeOptions* o) {
  if (role == "primary") {
    o->role = Role::kPrimary;
  } else if (role == "replica") {
    o->role = Role::kReplica;
    if (o->primary.empty()) return absl::InvalidArgumentError("--role=replica needs --primary=HOST:PORT");
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("--role must be primary or replica, not \"%s\"", role));
  }
  return absl::OkStatus();
}

absl::Status check_batch_size(const NodeOptions& o) {
  if (o.max_request_bytes >= kMaxRecordSize && o.max_request_bytes <= o.pipeline.ring_bytes / 2) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "--max_batch_bytes=%d must be between %d (the largest record) and half of --ring_bytes",
      o.max_request_bytes, kMaxRecordSize));
}

}  // namespace

std::vector<absl::CommandLineFlag*> own_flags() {
  std::vector<absl::CommandLineFlag*> out;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "server/flags.cc")) out.push_back(flag);
  }
  std::sort(out.begin(), out.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  return out;
}

std::string describe_own_flags() {
  std::string out;
  for (absl::CommandLineFlag* f : own_flags()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", f->Name(), "=", f->CurrentValue());
  }
  return out;
}

absl::StatusOr<DaemonOptions> daemon_options_from_flags() {
  DaemonOptions d;
  d.node = node_options_from_flags();
  if (absl::Status s = set_role(absl::GetFlag(FLAGS_role), &d.node); !s.ok()) return s;
  if (absl::Status s = parse_fsync_policy(absl::GetFlag(FLAGS_fsync), &d.node.pipeline.fsync,
                                          &d.node.pipeline.fsync_interval);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = check_batch_size(d.node); !s.ok()) return s;
  if (d.node.disk_full_timeout < absl::ZeroDuration() ||
      d.node.disk_full_timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--disk_full_timeout=%s must be a duration of 0 or more, such as 1s",
        absl::FormatDuration(d.node.disk_full_timeout)));
  }
  if (d.node.producers.expiry <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--producer_expiry=%s must be a duration above 0, such as 168h, or inf",
        absl::FormatDuration(d.node.producers.expiry)));
  }
  d.security.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  d.security.tls_key = absl::GetFlag(FLAGS_tls_key);
  d.security.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  d.security.tls_ca = absl::GetFlag(FLAGS_tls_ca);
  d.security.auth_tokens = absl::GetFlag(FLAGS_auth_tokens);
  d.security.token_file = absl::GetFlag(FLAGS_token_file);
  d.security.stage_dir = d.node.data_dir + "/.tls";
  d.advertise = absl::GetFlag(FLAGS_advertise);
  d.metrics = {absl::GetFlag(FLAGS_metrics_listen), absl::GetFlag(FLAGS_metrics_tls_cert),
               absl::GetFlag(FLAGS_metrics_tls_key), absl::GetFlag(FLAGS_metrics_auth_file)};
  d.port_file = absl::GetFlag(FLAGS_port_file);
  d.log_level = absl::GetFlag(FLAGS_log_level);
  return d;
}

}  // namespace ringlog
