#include "services.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "append_reactor.h"
#include "follow_reactor.h"
#include "peers.h"
#include "ringlog/grpc_status.h"
#include "replay_reactor.h"

namespace ringlog {
namespace {

// The call's credentials against the role it needs (security.h); OK when
// the node checks none.
grpc::Status admit(const Security* security, grpc::CallbackServerContext* ctx, Roles need,
                   const char* method, StreamAuth* auth = nullptr) {
  if (security == nullptr) return grpc::Status::OK;
  Grant grant;
  grpc::Status s = security->authorize(ctx, need, method, &grant);
  if (s.ok() && auth != nullptr) *auth = StreamAuth{security, std::move(grant), need, method};
  return s;
}

// A streaming call refused before it started: finished with `status` at
// once (gRPC holds the Finish until the reactor is bound), then deleted.
template <class Base>
class Refused final : public Base {
 public:
  explicit Refused(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* EventLogService::Append(
    grpc::CallbackServerContext* ctx) {
  StreamAuth auth;
  if (grpc::Status s = admit(security_, ctx, kRoleAppend, "Append", &auth); !s.ok()) {
    return new Refused<grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>>(s);
  }
  auto* r = new AppendReactor(node_, ctx);
  r->set_auth(std::move(auth));
  return r;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* EventLogService::Replay(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req) {
  StreamAuth auth;
  if (grpc::Status s = admit(security_, ctx, kRoleReplay, "Replay", &auth); !s.ok()) {
    return new Refused<grpc::ServerWriteReactor<grpc::ByteBuffer>>(s);
  }
  auto* r = new ReplayReactor(node_, req);
  r->set_auth(std::move(auth));
  return r;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ReplicationService::Follow(
    grpc::CallbackServerContext* ctx) {
  StreamAuth auth;
  if (grpc::Status s = admit(security_, ctx, kRoleReplicate, "Replication.Follow", &auth);
      !s.ok()) {
    return new Refused<grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>>(s);
  }
  auto* r = new FollowReactor(node_, ctx);
  r->set_auth(std::move(auth));
  return r;
}

namespace {

// Parses a raw request; false (and the call finished with INVALID_ARGUMENT)
// when it is not a `Req`.
template <class Req>
bool parse_request(const grpc::ByteBuffer* raw, Req* req, grpc::ServerUnaryReactor* r) {
  grpc::ByteBuffer copy(*raw);  // Deserialize consumes its buffer
  if (grpc::SerializationTraits<Req>::Deserialize(&copy, req).ok()) return true;
  r->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         "malformed " + Req::descriptor()->name()));
  return false;
}

// Finishes the call with `s`, and with `resp` as its response when OK.
template <class Resp>
void finish_with(grpc::ServerUnaryReactor* r, const grpc::Status& s, const Resp& resp,
                 grpc::ByteBuffer* out) {
  if (s.ok()) {
    bool own;
    (void)grpc::SerializationTraits<Resp>::Serialize(resp, out, &own);
  }
  r->Finish(s);
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::GetStatus(grpc::CallbackServerContext* ctx,
                                                  const grpc::ByteBuffer* raw,
                                                  grpc::ByteBuffer* out) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  if (grpc::Status s = admit(security_, ctx, kRoleReplay | kRoleAdmin, "GetStatus"); !s.ok()) {
    r->Finish(s);
    return r;
  }
  v1::GetStatusRequest req;
  if (!parse_request(raw, &req, r)) return r;
  v1::NodeStatus resp;
  node_->fill_status(&resp);
  finish_with(r, grpc::Status::OK, resp, out);
  return r;
}

grpc::ServerUnaryReactor* AdminService::Promote(grpc::CallbackServerContext* ctx,
                                                const grpc::ByteBuffer* raw,
                                                grpc::ByteBuffer* out) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  if (grpc::Status s = admit(security_, ctx, kRoleAdmin, "Promote"); !s.ok()) {
    r->Finish(s);
    return r;
  }
  v1::PromoteRequest req;
  if (!parse_request(raw, &req, r)) return r;
  std::vector<std::string> peers(req.peers().begin(), req.peers().end());
  // Promotion blocks (it stops the follower, asks the peers): not on this thread.
  node_->run_admin([node = node_, ctx, r, out, force = req.force(), peers] {
    absl::StatusOr<Node::Promoted> p = node->promote(force, peers);
    v1::PromoteResponse resp;
    if (p.ok()) {
      resp.set_epoch(p->epoch);
      resp.set_start_offset(p->start_offset);
    }
    finish_with(r, to_grpc(p.status(), ctx), resp, out);
  });
  return r;
}

namespace {

// A node told to follow `primary` asks it first: a replica would never
// serve it (and a replica's redirect may name a primary that is being
// replaced), so following one is refused, naming whom it follows. A node
// that does not answer is taken: it may be starting, and the follower
// retries. Admin thread: blocks up to kTargetCheckTimeout.
absl::StatusOr<uint64_t> check_follow_target(const std::string& primary,
                                             const std::string& self_id) {
  constexpr absl::Duration kTargetCheckTimeout = absl::Seconds(2);
  std::vector<PeerStatus> answered = query_peers({primary}, self_id, kTargetCheckTimeout);
  if (answered.empty()) return 0;
  const v1::NodeStatus& st = answered.front().status;
  if (st.role() == v1::ROLE_PRIMARY) return 0;
  const std::string follows = st.primary_known()
      ? absl::StrCat("it follows ", st.primary(), "; point this node at that primary")
      : absl::StrCat("it knows no primary (", st.no_primary_reason(), ")");
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s is a replica in epoch %d, not a primary: %s (to point this node there before "
      "promoting it, set to_be_promoted: ringlogctl follow --to-be-promoted)",
      primary, st.epoch(), follows));
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::Follow(grpc::CallbackServerContext* ctx,
                                               const grpc::ByteBuffer* raw,
                                               grpc::ByteBuffer* out) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  if (grpc::Status s = admit(security_, ctx, kRoleAdmin, "Admin.Follow"); !s.ok()) {
    r->Finish(s);
    return r;
  }
  v1::FollowCommand req;
  if (!parse_request(raw, &req, r)) return r;
  if (req.primary().empty()) {
    r->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give the primary to follow"));
    return r;
  }
  node_->run_admin([node = node_, ctx, r, out, primary = req.primary(), force = req.force(),
                    check = !req.to_be_promoted()] {
    absl::StatusOr<uint64_t> e = check ? check_follow_target(primary, node->node_id())
                                       : absl::StatusOr<uint64_t>(0);
    if (e.ok()) e = node->follow(primary, force);
    v1::FollowCommandResponse resp;
    if (e.ok()) resp.set_epoch(*e);
    finish_with(r, to_grpc(e.status(), ctx), resp, out);
  });
  return r;
}

}  // namespace ringlog
