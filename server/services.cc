#include "services.h"

#include "append_reactor.h"
#include "follow_reactor.h"
#include "ringlog/grpc_status.h"
#include "replay_reactor.h"

namespace ringlog {

grpc::ServerBidiReactor<v1::AppendRequest, v1::AppendResponse>* EventLogService::Append(
    grpc::CallbackServerContext* ctx) {
  return new AppendReactor(node_, ctx);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* EventLogService::Replay(
    grpc::CallbackServerContext*, const grpc::ByteBuffer* req) {
  return new ReplayReactor(node_, req);
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ReplicationService::Follow(
    grpc::CallbackServerContext* ctx) {
  return new FollowReactor(node_, ctx);
}

grpc::ServerUnaryReactor* AdminService::GetStatus(grpc::CallbackServerContext* ctx,
                                                  const v1::GetStatusRequest*,
                                                  v1::NodeStatus* resp) {
  node_->fill_status(resp);
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(grpc::Status::OK);
  return r;
}

grpc::ServerUnaryReactor* AdminService::Promote(grpc::CallbackServerContext* ctx,
                                                const v1::PromoteRequest* req,
                                                v1::PromoteResponse* resp) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  std::vector<std::string> peers(req->peers().begin(), req->peers().end());
  // Promotion blocks (it stops the follower, asks the peers): not on this thread.
  node_->run_admin([node = node_, ctx, r, resp, force = req->force(), peers] {
    absl::StatusOr<Node::Promoted> p = node->promote(force, peers);
    if (p.ok()) {
      resp->set_epoch(p->epoch);
      resp->set_start_offset(p->start_offset);
    }
    r->Finish(to_grpc(p.status(), ctx));
  });
  return r;
}

grpc::ServerUnaryReactor* AdminService::Follow(grpc::CallbackServerContext* ctx,
                                               const v1::FollowCommand* req,
                                               v1::FollowCommandResponse* resp) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  if (req->primary().empty()) {
    r->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give the primary to follow"));
    return r;
  }
  node_->run_admin([node = node_, ctx, r, resp, primary = req->primary(), force = req->force()] {
    absl::StatusOr<uint64_t> e = node->follow(primary, force);
    if (e.ok()) resp->set_epoch(*e);
    r->Finish(to_grpc(e.status(), ctx));
  });
  return r;
}

}  // namespace ringlog
