// The gRPC services of a node. Each streaming method's reactor lives in its
// own file; these classes only create them.
#pragma once

#include "node.h"
#include "security.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

// The health service's names (grpc.health.v1; docs/operations.md):
//   ""                          SERVING while the process serves, until it
//                               stops (liveness);
//   "ringlog.v1.EventLog"       SERVING while replays are current: a primary
//                               with its log whole, or a replica streaming
//                               from its primary (readiness of a reader);
//   "ringlog.v1.EventLog/Append" SERVING while appends are taken: the primary,
//                               its disk and the replicas it needs able to
//                               store (readiness of a writer);
//   "ringlog.v1.Replication"    SERVING while replicas can follow this node:
//                               a primary with its log whole.
inline constexpr char kReplayHealthService[] = "ringlog.v1.EventLog";
inline constexpr char kAppendHealthService[] = "ringlog.v1.EventLog/Append";
inline constexpr char kReplicationHealthService[] = "ringlog.v1.Replication";

// Replay is served raw: its responses point into the log's mapping. Append
// too: its reactor parses each frame, so that a malformed one gets an error.
class EventLogService final
    : public v1::EventLog::WithRawCallbackMethod_Replay<
          v1::EventLog::WithRawCallbackMethod_Append<v1::EventLog::Service>> {
 public:
  // `security` (null: every call allowed) must outlive the service.
  EventLogService(Node* node, const Security* security) : node_(node), security_(security) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Append(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Replay(grpc::CallbackServerContext* ctx,
                                                     const grpc::ByteBuffer* req) override;

 private:
  Node* node_;
  const Security* security_;
};

// Follow is served raw: its chunks point into the log's mapping.
class ReplicationService final
    : public v1::Replication::WithRawCallbackMethod_Follow<v1::Replication::Service> {
 public:
  ReplicationService(Node* node, const Security* security) : node_(node), security_(security) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Follow(
      grpc::CallbackServerContext* ctx) override;

 private:
  Node* node_;
  const Security* security_;
};

// Admin is served raw too, so that a request that does not parse is
// INVALID_ARGUMENT (a typed unary method answers it UNIMPLEMENTED).
class AdminService final
    : public v1::Admin::WithRawCallbackMethod_GetStatus<v1::Admin::WithRawCallbackMethod_Promote<
          v1::Admin::WithRawCallbackMethod_Follow<v1::Admin::Service>>> {
 public:
  AdminService(Node* node, const Security* security) : node_(node), security_(security) {}
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* ctx,
                                      const grpc::ByteBuffer* req,
                                      grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* Promote(grpc::CallbackServerContext* ctx,
                                    const grpc::ByteBuffer* req,
                                    grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* Follow(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* req,
                                   grpc::ByteBuffer* resp) override;

 private:
  Node* node_;
  const Security* security_;
};

}  // namespace ringlog
