#include "services.h"

#include "append_reactor.h"
#include "grpc_status.h"
#include "replay_reactor.h"

namespace ringlog {

grpc::ServerBidiReactor<v1::AppendRequest, v1::AppendResponse>* EventLogService::Append(
    grpc::CallbackServerContext*) {
  return new AppendReactor(node_);
}

grpc::ServerWriteReactor<v1::ReplayResponse>* EventLogService::Replay(
    grpc::CallbackServerContext*, const v1::ReplayRequest* req) {
  return new ReplayReactor(node_, req);
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
                                                const v1::PromoteRequest*,
                                                v1::PromoteResponse*) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "promotion is not available yet"));
  return r;
}

grpc::ServerUnaryReactor* AdminService::Follow(grpc::CallbackServerContext* ctx,
                                               const v1::FollowCommand*,
                                               v1::FollowCommandResponse*) {
  grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
  r->Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "follow is not available yet"));
  return r;
}

}  // namespace ringlog
