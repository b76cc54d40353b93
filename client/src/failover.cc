#include "ringlog/failover.h"

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "internal.h"
#include "ringlog/client.h"

namespace ringlog {
namespace {

using client_internal::deadline_after;
using client_internal::status_of;

FailoverStep make_step(FailoverStep::Kind kind, std::string node, std::string primary,
                       absl::Status status) {
  FailoverStep s;
  s.kind = kind;
  s.node = std::move(node);
  s.primary = std::move(primary);
  s.status = std::move(status);
  return s;
}

// What the other nodes are, read before anyone moves.
struct Survey {
  std::vector<std::string> old_primaries;
  std::vector<std::pair<std::string, std::string>> replicas;  // address, the primary it follows ("": none)
};

// Reads the other nodes' status; refuses when a replica has a longer log
// than `self` (unless forced). Unreachable nodes become kSkipped steps.
absl::StatusOr<Survey> survey(const std::string& node, const v1::NodeStatus& self,
                              const std::vector<std::string>& others, const FailoverOptions& o,
                              const std::function<void(FailoverStep)>& step) {
  using Kind = FailoverStep::Kind;
  Survey out;
  for (const std::string& other : others) {
    absl::StatusOr<v1::NodeStatus> st = status_of(make_channel(other), o.status_timeout);
    if (!st.ok()) {
      step(make_step(Kind::kSkipped, other, "", st.status()));
      continue;
    }
    if (st->role() == v1::ROLE_PRIMARY) {
      out.old_primaries.push_back(other);
      continue;
    }
    if (!o.force && st->log_end_offset() > self.log_end_offset()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "replica %s has a longer log (ends at offset %d) than %s (%d): promote it instead, or "
          "use --force",
          other, st->log_end_offset(), node, self.log_end_offset()));
    }
    out.replicas.emplace_back(other, st->primary_known() ? st->primary() : "");
  }
  return out;
}

// Admin.Promote on `node`, telling it `others` as peers to check.
absl::StatusOr<v1::PromoteResponse> promote(const std::string& node,
                                            const std::vector<std::string>& others,
                                            const FailoverOptions& o) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(make_channel(node));
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline_after(o.command_timeout));
  v1::PromoteRequest req;
  req.set_force(o.force);
  for (const std::string& other : others) req.add_peers(other);
  v1::PromoteResponse resp;
  const grpc::Status s = stub->Promote(&ctx, req, &resp);
  if (!s.ok()) return from_grpc(s, ctx);
  return resp;
}

}  // namespace

absl::StatusOr<uint64_t> point_at(const std::string& node, const std::string& primary, bool force,
                                  absl::Duration timeout, bool to_be_promoted) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(make_channel(node));
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline_after(timeout));
  v1::FollowCommand req;
  req.set_primary(primary);
  req.set_force(force);
  req.set_to_be_promoted(to_be_promoted);
  v1::FollowCommandResponse resp;
  const grpc::Status s = stub->Follow(&ctx, req, &resp);
  if (!s.ok()) return from_grpc(s, ctx);
  return resp.epoch();
}

FailoverResult fail_over_to(const std::string& node, const FailoverOptions& o) {
  FailoverResult out;
  auto step = [&](FailoverStep s) {
    if (o.on_step) o.on_step(s);
    out.steps.push_back(std::move(s));
  };
  std::vector<std::string> others;
  for (const std::string& n : o.nodes) {
    if (n != node) others.push_back(n);
  }
  absl::StatusOr<v1::NodeStatus> self = status_of(make_channel(node), o.status_timeout);
  if (!self.ok()) {
    out.status = self.status();
    return out;
  }
  if (self->role() == v1::ROLE_PRIMARY && !o.force) {
    out.status = absl::FailedPreconditionError(absl::StrFormat(
        "%s is already the primary (epoch %d); use --force to start a new epoch anyway", node,
        self->epoch()));
    return out;
  }
  absl::StatusOr<Survey> cluster = survey(node, *self, others, o, step);
  if (!cluster.ok()) {
    out.status = cluster.status();
    return out;
  }
  using Kind = FailoverStep::Kind;
  for (const auto& [replica, was] : cluster->replicas) {
    step(make_step(Kind::kPointed, replica, node,
                   point_at(replica, node, false, o.command_timeout, /*to_be_promoted=*/true)
                       .status()));
  }
  const absl::Time t0 = absl::Now();
  absl::StatusOr<v1::PromoteResponse> p = promote(node, others, o);
  const absl::Duration took = absl::Now() - t0;
  if (!p.ok()) {
    for (const auto& [replica, was] : cluster->replicas) {
      if (was.empty()) continue;
      step(make_step(Kind::kPointedBack, replica, was,
                     point_at(replica, was, false, o.command_timeout).status()));
    }
    out.status = p.status();
    return out;
  }
  out.epoch = p->epoch();
  out.start_offset = p->start_offset();
  FailoverStep promoted = make_step(Kind::kPromoted, node, "", absl::OkStatus());
  promoted.epoch = out.epoch;
  promoted.start_offset = out.start_offset;
  promoted.took = took;
  step(std::move(promoted));
  for (const std::string& old : cluster->old_primaries) {
    step(make_step(Kind::kOldPrimaryFollows, old, node,
                   point_at(old, node, false, o.command_timeout).status()));
  }
  return out;
}

}  // namespace ringlog
