// ringlogctl commands that talk to a node: status, append, replay, promote, follow.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ctl.h"
#include "format.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "ringlog/client.h"
#include "ringlog/grpc_status.h"

ABSL_FLAG(uint32_t, type, 0, "append: event type of every event (0-255)");
ABSL_FLAG(std::string, input, "lines", "append: lines (each line an event) or jsonl (each line a JSON value)");
ABSL_FLAG(int64_t, from_seq, -1, "replay, dump: start at this seq");
ABSL_FLAG(std::string, from_time, "", "replay: start at the first event at or after this time "
                                      "(RFC 3339, or ns since the Unix epoch)");
ABSL_FLAG(bool, from_start, false, "replay: start at the oldest event (the default)");
ABSL_FLAG(bool, from_end, false, "replay: only events committed from now on");
ABSL_FLAG(std::string, types, "", "replay: only these event types, comma-separated");
ABSL_FLAG(uint64_t, limit, 0, "replay, dump: stop after this many events (0: no limit)");
ABSL_FLAG(bool, follow, false, "replay: keep streaming new events as they commit");
ABSL_FLAG(std::string, format, "text", "replay, dump: text, json or raw");
ABSL_FLAG(bool, force, false, "promote: even if another replica has a longer log");
ABSL_FLAG(std::string, primary, "", "follow: HOST:PORT of the new primary");

namespace ringlog::ctl {
namespace {

absl::StatusOr<std::unique_ptr<Client>> connect(const std::string& node) {
  ClientOptions o;
  o.endpoints = {node};
  o.connect_timeout = absl::Seconds(3);
  return Client::Connect(o);
}

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

int report(const absl::Status& s) {
  std::fprintf(stderr, "ringlogctl: %s\n", s.ToString().c_str());
  switch (s.code()) {
    case absl::StatusCode::kOk: return kOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded: return kUnavailable;
    default: return kFailed;
  }
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
    absl::StatusOr<v1::NodeStatus> st = absl::UnavailableError("unreachable");
    if (absl::StatusOr<std::unique_ptr<Client>> c = connect(node); c.ok()) {
      st = (*c)->status(absl::Seconds(3));
    } else {
      st = c.status();
    }
    if (!st.ok()) {
      rc = kUnavailable;
      if (json) {
        std::printf("{\"node\":\"%s\",\"error\":\"%s\"}\n", node.c_str(),
                    std::string(st.status().message()).c_str());
      } else {
        std::printf("%-22s %-8s %s\n", node.c_str(), "down", std::string(st.status().message()).c_str());
      }
      continue;
    }
    if (json) {
      std::string out;
      google::protobuf::util::JsonPrintOptions po;
      po.always_print_primitive_fields = true;
      (void)google::protobuf::util::MessageToJsonString(*st, &out, po);
      std::printf("{\"node\":\"%s\",\"status\":%s}\n", node.c_str(), out.c_str());
      continue;
    }
    std::string state;
    if (st->role() == v1::ROLE_REPLICA) {
      state = absl::StrFormat("%s of %s, applied %d", state_name(st->replica_state()),
                              st->primary(), st->applied_offset());
    } else {
      state = absl::StrFormat("acks>=%d", st->min_replica_acks());
      for (const v1::ReplicaInfo& r : st->replicas()) {
        absl::StrAppendFormat(&state, "; %s lag %dB/%dev %.1fs%s", r.node_id(), r.lag_bytes(),
                              r.lag_events(), r.seconds_since_ack(), r.connected() ? "" : " (gone)");
      }
    }
    if (!st->storage_error().empty()) absl::StrAppend(&state, "; STORAGE ERROR: ", st->storage_error());
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
  while (std::optional<ReplayEvent> ev = rp->next()) {
    print_event(stdout, f, ev->seq, ev->view);
    if (r.follow) std::fflush(stdout);
  }
  std::fflush(stdout);
  return rp->status().ok() ? kOk : report(rp->status());
}

namespace {

absl::Status admin_follow(const std::string& node, const std::string& primary, bool force,
                          uint64_t* epoch) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(make_channel(node));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::FollowCommand req;
  req.set_primary(primary);
  req.set_force(force);
  v1::FollowCommandResponse resp;
  const grpc::Status s = stub->Follow(&ctx, req, &resp);
  if (epoch != nullptr) *epoch = resp.epoch();
  return from_grpc(s);
}

absl::StatusOr<v1::NodeStatus> node_status(const std::string& node) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(make_channel(node));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v1::NodeStatus out;
  const grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &out);
  if (!s.ok()) return from_grpc(s);
  return out;
}

}  // namespace

int cmd_promote() {
  // With --nodes (the whole cluster), the failover is done in the order that
  // loses nothing acknowledged: the other replicas are pointed at the new
  // primary first (so the old primary, if alive, can commit only what the new
  // one has), then the node is promoted, then the old primary told to follow.
  // What would make the promotion refused is checked before anyone moves; if
  // it is refused anyway, the replicas are pointed back.
  const std::string node = absl::GetFlag(FLAGS_node);
  const bool force = absl::GetFlag(FLAGS_force);
  std::vector<std::string> others;
  for (absl::string_view n : absl::StrSplit(absl::GetFlag(FLAGS_nodes), ',', absl::SkipEmpty())) {
    if (n != node) others.emplace_back(n);
  }
  absl::StatusOr<v1::NodeStatus> self = node_status(node);
  if (!self.ok()) return report(self.status());
  if (self->role() == v1::ROLE_PRIMARY && !force) {
    return report(absl::FailedPreconditionError(absl::StrFormat(
        "%s is already the primary (epoch %d); use --force to start a new epoch anyway", node,
        self->epoch())));
  }
  std::vector<std::string> old_primaries;
  std::vector<std::pair<std::string, std::string>> replicas;  // address, its primary now
  for (const std::string& o : others) {
    absl::StatusOr<v1::NodeStatus> st = node_status(o);
    if (!st.ok()) {
      std::printf("%s: unreachable (%s), skipped\n", o.c_str(), std::string(st.status().message()).c_str());
      continue;
    }
    if (st->role() == v1::ROLE_PRIMARY) {
      old_primaries.push_back(o);
      continue;
    }
    if (!force && st->log_end_offset() > self->log_end_offset()) {
      return report(absl::FailedPreconditionError(absl::StrFormat(
          "replica %s has a longer log (ends at offset %d) than %s (%d): promote it instead, or "
          "use --force",
          o, st->log_end_offset(), node, self->log_end_offset())));
    }
    replicas.emplace_back(o, st->primary());
  }
  for (const auto& [o, was] : replicas) {
    if (absl::Status s = admin_follow(o, node, false, nullptr); !s.ok()) {
      std::printf("%s: cannot point it at %s: %s\n", o.c_str(), node.c_str(), s.ToString().c_str());
    } else {
      std::printf("%s: now follows %s\n", o.c_str(), node.c_str());
    }
  }
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(make_channel(node));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::PromoteRequest req;
  req.set_force(force);
  for (const std::string& o : others) req.add_peers(o);
  v1::PromoteResponse resp;
  const auto t0 = std::chrono::steady_clock::now();
  const grpc::Status s = stub->Promote(&ctx, req, &resp);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!s.ok()) {
    for (const auto& [o, was] : replicas) {
      if (was.empty() || was[0] == '(') continue;
      const absl::Status back = admin_follow(o, was, false, nullptr);
      std::printf("%s: pointed back at %s%s\n", o.c_str(), was.c_str(),
                  back.ok() ? "" : (": " + back.ToString()).c_str());
    }
    return report(from_grpc(s));
  }
  std::printf("promoted %s: epoch %llu from offset %llu (%.1f ms)\n", node.c_str(),
              static_cast<unsigned long long>(resp.epoch()),
              static_cast<unsigned long long>(resp.start_offset()), ms);
  for (const std::string& o : old_primaries) {
    if (absl::Status f = admin_follow(o, node, false, nullptr); !f.ok()) {
      std::printf("%s (old primary): cannot make it follow: %s\n", o.c_str(), f.ToString().c_str());
    } else {
      std::printf("%s (old primary): stepped down, follows %s\n", o.c_str(), node.c_str());
    }
  }
  return kOk;
}

int cmd_follow() {
  const std::string primary = absl::GetFlag(FLAGS_primary);
  if (primary.empty()) {
    std::fprintf(stderr, "ringlogctl: follow needs --primary HOST:PORT\n");
    return kUsage;
  }
  const std::string node = absl::GetFlag(FLAGS_node);
  uint64_t epoch = 0;
  if (absl::Status s = admin_follow(node, primary, absl::GetFlag(FLAGS_force), &epoch); !s.ok()) {
    return report(s);
  }
  std::printf("%s now follows %s (epoch %llu)\n", node.c_str(), primary.c_str(),
              static_cast<unsigned long long>(epoch));
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
