// ringlogctl commands that talk to a node: status, append, replay, promote, follow.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ctl.h"
#include "format.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "ringlog/client.h"
#include "ringlog/failover.h"
#include "ringlog/grpc_status.h"
#include "ringlog/security.h"

ABSL_FLAG(uint32_t, type, 0, "the event type of every event (0-255)");
ABSL_FLAG(std::string, input, "lines", "lines (each line an event) or jsonl (each line a JSON value)");
ABSL_FLAG(int64_t, from_seq, -1, "start at the event with this seq");
ABSL_FLAG(std::string, from_time, "", "start at the first event at or after this time (RFC 3339, "
                                      "e.g. 2026-11-27T10:00:00Z, or ns since the Unix epoch)");
ABSL_FLAG(bool, from_start, false, "start at the oldest event (the default)");
ABSL_FLAG(bool, from_end, false, "only events committed from now on");
ABSL_FLAG(std::string, types, "", "only these event types, comma-separated");
ABSL_FLAG(uint64_t, limit, 0, "stop after this many events (0: no limit)");
ABSL_FLAG(bool, follow, false, "keep printing new events as they commit, like tail -f");
ABSL_FLAG(std::string, format, "text", "text (one line per event), json (one object per line) or raw (the records)");
ABSL_FLAG(bool, force, false, "even if another replica has a longer log");
ABSL_FLAG(std::string, primary, "", "the new primary");
ABSL_FLAG(bool, to_be_promoted, false,
          "--primary is a replica about to be promoted (the first step of a failover done by "
          "hand); without it a --primary that is a replica is refused");
ABSL_FLAG(std::string, service, "",
          "the service to ask about: \"\" (the node serves), ringlog.v1.EventLog (its "
          "replays are current), ringlog.v1.EventLog/Append (it takes appends now) or "
          "ringlog.v1.Replication (replicas can follow it)");

namespace ringlog::ctl {
namespace {

// How long a node may take to answer a call before it counts as unreachable.
constexpr absl::Duration kCallTimeout = absl::Seconds(3);

}  // namespace

absl::StatusOr<v1::NodeStatus> node_status(const std::string& node) {
  // A call that does not wait for the channel to be ready fails as soon as
  // the connection is refused, with gRPC's reason, instead of waiting out
  // the timeout while gRPC tries to connect again; a node that accepts the
  // connection but is slow to answer still has kCallTimeout.
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(make_channel(node));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(kCallTimeout));
  v1::NodeStatus out;
  if (const grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &out); !s.ok()) {
    return from_grpc(s);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Client>> connect(const std::string& node) {
  // Client::Connect waits for a connection for its whole timeout, even one
  // refused at once: ask for the node's status first, which fails fast.
  if (absl::StatusOr<v1::NodeStatus> st = node_status(node); !st.ok()) {
    return absl::Status(st.status().code(), absl::StrCat(node, ": ", st.status().message()));
  }
  ClientOptions o;
  o.endpoints = {node};
  o.connect_timeout = kCallTimeout;
  return Client::Connect(o);
}

namespace {

const char* role_name(v1::Role r) {
  switch (r) {
    case v1::ROLE_PRIMARY: return "primary";
    case v1::ROLE_REPLICA: return "replica";
    default: return "?";
  }
}

const char* state_name(v1::ReplicaState s) {
  switch (s) {
    case v1::REPLICA_STATE_CONNECTING: return "connecting";
    case v1::REPLICA_STATE_CATCHING_UP: return "catching-up";
    case v1::REPLICA_STATE_STREAMING: return "streaming";
    default: return "-";
  }
}

}  // namespace

int exit_code(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk: return kOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return kUnavailable;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied: return kNotAllowed;
    default: return kFailed;
  }
}

std::string hint(const absl::Status& s) {
  const std::string msg = absl::AsciiStrToLower(s.message());
  const std::shared_ptr<const ChannelSecurity> security = default_channel_security();
  if (absl::IsUnauthenticated(s)) {
    return " (give a token with --token-file or RINGLOG_TOKEN_FILE, or a client certificate "
           "with --tls-cert and --tls-key)";
  }
  if (!absl::IsUnavailable(s)) return "";
  const auto has = [&](const char* what) { return absl::StrContains(msg, what); };
  if (security->tls() && has("wrong version number")) {
    return " (the node does not serve TLS)";
  }
  if (security->tls() && (has("handshake") || has("ssl") || has("certificate"))) {
    return " (TLS failed: is the node's certificate from the CA of --tls-ca, for this address "
           "or --tls-server-name?)";
  }
  if (has("socket closed") || has("connection reset") || has("end of tcp stream")) {
    if (!security->tls()) return " (does the node serve TLS? give its CA with --tls-ca)";
    if (!security->has_client_cert()) {
      return " (does the node require a client certificate? give --tls-cert and --tls-key)";
    }
  }
  return "";
}

int report(const absl::Status& s) {
  std::fprintf(stderr, "ringlogctl: %s%s\n",
               s.ToString(absl::StatusToStringMode::kWithNoExtraData).c_str(), hint(s).c_str());
  return exit_code(s);
}

int cmd_status() {
  std::vector<std::string> nodes;
  if (const std::string n = absl::GetFlag(FLAGS_nodes); !n.empty()) {
    nodes = absl::StrSplit(n, ',', absl::SkipEmpty());
  } else {
    nodes.push_back(absl::GetFlag(FLAGS_node));
  }
  const bool json = absl::GetFlag(FLAGS_json);
  int rc = kOk;
  if (!json) {
    std::printf("%-22s %-8s %-14s %5s %14s %14s %14s %12s %5s  %s\n", "NODE", "ROLE", "ID", "EPOCH",
                "END_OFFSET", "COMMIT", "DURABLE", "NEXT_SEQ", "SEGS", "STATE");
  }
  for (const std::string& node : nodes) {
    const absl::StatusOr<v1::NodeStatus> st = node_status(node);
    if (!st.ok()) {
      // The first failure decides; a node that refuses the credentials is
      // not an unreachable one.
      if (rc == kOk) rc = exit_code(st.status()) == kNotAllowed ? kNotAllowed : kUnavailable;
      if (json) {
        std::printf("{\"node\":%s,\"error\":%s}\n", json_string(node).c_str(),
                    json_string(st.status().message()).c_str());
      } else {
        std::printf("%-22s %-8s %s%s\n", node.c_str(), "down",
                    std::string(st.status().message()).c_str(), hint(st.status()).c_str());
      }
      continue;
    }
    if (json) {
      std::string out;
      google::protobuf::util::JsonPrintOptions po;
      po.always_print_primitive_fields = true;
      (void)google::protobuf::util::MessageToJsonString(*st, &out, po);
      std::printf("{\"node\":%s,\"status\":%s}\n", json_string(node).c_str(), out.c_str());
      continue;
    }
    std::string state;
    if (st->role() == v1::ROLE_REPLICA) {
      const std::string of = st->primary_known() ? st->primary()
                             : st->no_primary_reason().empty()
                                 ? "no primary"
                                 : absl::StrCat("no primary (", st->no_primary_reason(), ")");
      state = absl::StrFormat("%s of %s, applied %d", state_name(st->replica_state()), of,
                              st->applied_offset());
    } else {
      state = absl::StrFormat("acks>=%d", st->min_replica_acks());
      for (const v1::ReplicaInfo& r : st->replicas()) {
        absl::StrAppendFormat(&state, "; %s lag %dB/%dev %.1fs%s%s", r.node_id(), r.lag_bytes(),
                              r.lag_events(), r.seconds_since_ack(), r.connected() ? "" : " (gone)",
                              r.storage_error().empty() ? "" : " (DISK FULL)");
      }
    }
    if (!st->storage_error().empty()) absl::StrAppend(&state, "; STORAGE ERROR: ", st->storage_error());
    if (!st->data_loss().empty()) absl::StrAppend(&state, "; DATA LOSS: ", st->data_loss());
    if (!st->disk_full().empty()) {
      absl::StrAppendFormat(&state, "; DISK FULL for %.1fs", st->disk_full_seconds());
    }
    if (!st->append_refusal().empty()) absl::StrAppend(&state, "; APPENDS REFUSED: ", st->append_refusal());
    std::printf("%-22s %-8s %-14s %5llu %14llu %14llu %14llu %12llu %5llu  %s\n", node.c_str(),
                role_name(st->role()), st->node_id().c_str(),
                static_cast<unsigned long long>(st->epoch()),
                static_cast<unsigned long long>(st->log_end_offset()),
                static_cast<unsigned long long>(st->commit_offset()),
                static_cast<unsigned long long>(st->durable_offset()),
                static_cast<unsigned long long>(st->next_seq()),
                static_cast<unsigned long long>(st->segment_count()), state.c_str());
  }
  return rc;
}

int cmd_append() {
  const uint32_t type = absl::GetFlag(FLAGS_type);
  const std::string input = absl::GetFlag(FLAGS_input);
  if (type > 255) return report_usage(absl::InvalidArgumentError("--type must be 0-255"));
  if (input != "lines" && input != "jsonl") {
    std::fprintf(stderr, "ringlogctl: --input must be lines or jsonl\n");
    return kUsage;
  }
  absl::StatusOr<std::unique_ptr<Client>> c = connect(absl::GetFlag(FLAGS_node));
  if (!c.ok()) return report(c.status());
  absl::StatusOr<std::unique_ptr<Appender>> a = (*c)->appender();
  if (!a.ok()) return report(a.status());
  std::string line;
  uint64_t n = 0;
  uint64_t lineno = 0;
  absl::Status bad;
  while (std::getline(std::cin, line)) {
    ++lineno;
    if (line.size() > kMaxPayload) {
      bad = absl::InvalidArgumentError(absl::StrFormat(
          "line %d has %d bytes, over the payload limit of %d", lineno, line.size(), kMaxPayload));
      break;
    }
    if (input == "jsonl") {
      google::protobuf::Value v;
      if (!google::protobuf::util::JsonStringToMessage(line, &v).ok()) {
        bad = absl::InvalidArgumentError(absl::StrFormat("line %d is not JSON", lineno));
        break;
      }
    }
    const auto ts = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
    if (absl::Status s = (*a)->append(static_cast<uint8_t>(type), ts, as_bytes(line)); !s.ok()) {
      return report(s);
    }
    ++n;
  }
  // What was read before a bad line still goes in.
  absl::StatusOr<Ack> last = (*a)->drain();
  if (!last.ok() && !(n == 0 && absl::IsNotFound(last.status()))) return report(last.status());
  if (n > 0) {
    std::printf("appended %llu events: seqs %llu..%llu, commit offset %llu\n",
                static_cast<unsigned long long>(n),
                static_cast<unsigned long long>(last->last_seq + 1 - n),
                static_cast<unsigned long long>(last->last_seq),
                static_cast<unsigned long long>(last->commit_offset));
  } else if (bad.ok()) {
    std::printf("appended 0 events (empty input)\n");
  }
  if (!bad.ok()) return report(bad);
  return kOk;
}

int cmd_replay() {
  Format f;
  if (!parse_format(absl::GetFlag(FLAGS_format), &f)) {
    std::fprintf(stderr, "ringlogctl: --format must be text, json or raw\n");
    return kUsage;
  }
  ReplayOptions r;
  int starts = 0;
  if (absl::GetFlag(FLAGS_from_seq) >= 0) {
    r.from_seq = static_cast<uint64_t>(absl::GetFlag(FLAGS_from_seq));
    ++starts;
  }
  if (const std::string t = absl::GetFlag(FLAGS_from_time); !t.empty()) {
    uint64_t ns = 0;
    if (!parse_time(t, &ns)) {
      std::fprintf(stderr, "ringlogctl: --from-time \"%s\" is not RFC 3339 or ns\n", t.c_str());
      return kUsage;
    }
    r.from_timestamp = ns;
    ++starts;
  }
  if (absl::GetFlag(FLAGS_from_start)) ++starts;
  if (absl::GetFlag(FLAGS_from_end)) {
    r.from_end = true;
    ++starts;
  }
  if (starts > 1) {
    std::fprintf(stderr, "ringlogctl: give at most one of --from-seq, --from-time, --from-start, --from-end\n");
    return kUsage;
  }
  for (absl::string_view t : absl::StrSplit(absl::GetFlag(FLAGS_types), ',', absl::SkipEmpty())) {
    uint32_t v = 0;
    if (!absl::SimpleAtoi(t, &v) || v > 255) {
      std::fprintf(stderr, "ringlogctl: --types must be numbers 0-255\n");
      return kUsage;
    }
    r.event_types.push_back(static_cast<uint8_t>(v));
  }
  r.limit = absl::GetFlag(FLAGS_limit);
  r.follow = absl::GetFlag(FLAGS_follow);
  absl::StatusOr<std::unique_ptr<Client>> c = connect(absl::GetFlag(FLAGS_node));
  if (!c.ok()) return report(c.status());
  std::unique_ptr<Replayer> rp = (*c)->replay(r);
  // Without a type filter, a node sends every event from where the replay
  // starts, leaving out only control records (log metadata, see
  // docs/format.md), whose seqs it skips: say so where seqs jump, so that
  // nobody takes the jump for lost events.
  const bool every_event = r.event_types.empty();
  std::optional<uint64_t> expected = r.from_seq;
  while (std::optional<ReplayEvent> ev = rp->next()) {
    std::optional<SeqRange> skipped;
    if (every_event && expected && ev->seq > *expected) skipped = SeqRange{*expected, ev->seq - 1};
    print_event(stdout, f, ev->seq, ev->view, skipped ? &*skipped : nullptr);
    expected = ev->seq + 1;
    if (r.follow) std::fflush(stdout);
  }
  std::fflush(stdout);
  return rp->status().ok() ? kOk : report(rp->status());
}

namespace {

void print_step(const FailoverStep& s) {
  const char* node = s.node.c_str();
  const char* primary = s.primary.c_str();
  const std::string why = s.status.ToString(absl::StatusToStringMode::kWithNoExtraData);
  switch (s.kind) {
    case FailoverStep::Kind::kSkipped:
      std::printf("%s: unreachable (%s), skipped\n", node, std::string(s.status.message()).c_str());
      break;
    case FailoverStep::Kind::kPointed:
      if (s.status.ok()) {
        std::printf("%s: now follows %s\n", node, primary);
      } else {
        std::printf("%s: cannot point it at %s: %s\n", node, primary, why.c_str());
      }
      break;
    case FailoverStep::Kind::kPromoted:
      std::printf("promoted %s: epoch %llu from offset %llu (%.1f ms)\n", node,
                  static_cast<unsigned long long>(s.epoch),
                  static_cast<unsigned long long>(s.start_offset), absl::ToDoubleMilliseconds(s.took));
      break;
    case FailoverStep::Kind::kPointedBack:
      std::printf("%s: pointed back at %s%s\n", node, primary,
                  s.status.ok() ? "" : (": " + why).c_str());
      break;
    case FailoverStep::Kind::kOldPrimaryFollows:
      if (s.status.ok()) {
        std::printf("%s (old primary): stepped down, follows %s\n", node, primary);
      } else {
        std::printf("%s (old primary): cannot make it follow: %s\n", node, why.c_str());
      }
      break;
  }
}

}  // namespace

int cmd_promote() {
  // With --nodes (the whole cluster), the failover is done in the order that
  // loses nothing acknowledged (see ringlog/failover.h); each step is printed
  // as it is done.
  FailoverOptions o;
  const std::string node = absl::GetFlag(FLAGS_node);
  o.nodes = absl::StrSplit(absl::GetFlag(FLAGS_nodes), ',', absl::SkipEmpty());
  o.force = absl::GetFlag(FLAGS_force);
  o.on_step = print_step;
  const FailoverResult r = fail_over_to(node, o);
  return r.status.ok() ? kOk : report(r.status);
}

int cmd_follow() {
  const std::string primary = absl::GetFlag(FLAGS_primary);
  if (primary.empty()) {
    std::fprintf(stderr, "ringlogctl: follow needs --primary HOST:PORT\n");
    return kUsage;
  }
  const std::string node = absl::GetFlag(FLAGS_node);
  absl::StatusOr<uint64_t> epoch = point_at(node, primary, absl::GetFlag(FLAGS_force),
                                            absl::Seconds(10), absl::GetFlag(FLAGS_to_be_promoted));
  if (!epoch.ok()) return report(epoch.status());
  std::printf("%s now follows %s (epoch %llu)\n", node.c_str(), primary.c_str(),
              static_cast<unsigned long long>(*epoch));
  return kOk;
}

}  // namespace ringlog::ctl

#include "grpc/health/v1/health.grpc.pb.h"

namespace ringlog::ctl {

int cmd_health() {
  const std::string node = absl::GetFlag(FLAGS_node);
  auto stub = grpc::health::v1::Health::NewStub(make_channel(node));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(absl::GetFlag(FLAGS_service));
  grpc::health::v1::HealthCheckResponse resp;
  const grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) {
    return report(from_grpc(s));
  }
  const bool serving = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::printf("%s: %s\n", node.c_str(),
              grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status()).c_str());
  return serving ? kOk : kFailed;
}

}  // namespace ringlog::ctl
