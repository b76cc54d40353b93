// The gRPC services of a node. Each streaming method's reactor lives in its
// own file; these classes only create them.
#pragma once

#include "node.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

// The health service's name for write readiness: SERVING while the node
// takes appends (the primary, its disk and the replicas it needs able to
// store), NOT_SERVING otherwise. The service "" is SERVING until shutdown.
inline constexpr char kAppendHealthService[] = "ringlog.v1.EventLog/Append";

// Replay is served raw: its responses point into the log's mapping.
class EventLogService final
    : public v1::EventLog::WithRawCallbackMethod_Replay<
          v1::EventLog::WithCallbackMethod_Append<v1::EventLog::Service>> {
 public:
  explicit EventLogService(Node* node) : node_(node) {}
  grpc::ServerBidiReactor<v1::AppendRequest, v1::AppendResponse>* Append(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Replay(grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* req) override;

 private:
  Node* node_;
};

// Follow is served raw: its chunks point into the log's mapping.
class ReplicationService final
    : public v1::Replication::WithRawCallbackMethod_Follow<v1::Replication::Service> {
 public:
  explicit ReplicationService(Node* node) : node_(node) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Follow(
      grpc::CallbackServerContext* ctx) override;

 private:
  Node* node_;
};

class AdminService final : public v1::Admin::CallbackService {
 public:
  explicit AdminService(Node* node) : node_(node) {}
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* ctx,
                                      const v1::GetStatusRequest* req,
                                      v1::NodeStatus* resp) override;
  grpc::ServerUnaryReactor* Promote(grpc::CallbackServerContext* ctx,
                                    const v1::PromoteRequest* req,
                                    v1::PromoteResponse* resp) override;
  grpc::ServerUnaryReactor* Follow(grpc::CallbackServerContext* ctx,
                                   const v1::FollowCommand* req,
                                   v1::FollowCommandResponse* resp) override;

 private:
  Node* node_;
};

}  // namespace ringlog
