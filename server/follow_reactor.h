// Replication.Follow on the primary: one reactor per replica.
//
// After the replica's hello it sends a directive (where to truncate, the
// epoch history), then chunks of raw record bytes sent straight from the
// mapped segments (see mapped_message.h), each at most kChunkBytes and
// within one segment, with the segment's header when a chunk starts one. At
// most the replica's window of bytes is sent ahead of its acks, so a slow
// replica only slows itself. When caught up the reactor parks on the node's
// durable and commit notifiers; the registry's ticker makes it send a heartbeat
// when nothing else was sent for a while.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "node.h"
#include "security.h"
#include "ringlog/storage.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

// The method is served raw (ByteBuffers) so that chunks can point into the
// mapping; requests are parsed as FollowRequest.
class FollowReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                            public ReplicationStream {
 public:
  static constexpr size_t kChunkBytes = size_t{1} << 20;
  static constexpr uint64_t kDefaultWindow = uint64_t{64} << 20;

  // `ctx` is the call's: a "not the primary" answer puts its redirect there.
  FollowReactor(Node* node, grpc::CallbackServerContext* ctx);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // From the node's stream registry, with it locked (so never after OnDone).
  void resume() override;
  void tick(absl::Time now, absl::Duration heartbeat) override;

  // The credentials the call was admitted with (services.cc), set before
  // the reactor is returned to gRPC.
  void set_auth(StreamAuth auth) { auth_ = std::move(auth); }

 private:
  void on_hello(const v1::FollowHello& hello);
  void next_locked();
  void finish_locked(const grpc::Status& s);
  // Sends `resp` (its epoch and commit fields are filled in here), with
  // the records of `slice` as its chunk's records when given.
  void write_locked(v1::FollowResponse& resp, const LogSlice* slice = nullptr);

  Node* node_;
  StreamAuth auth_;
  grpc::CallbackServerContext* ctx_;
  const std::string peer_;
  std::mutex mu_;
  grpc::ByteBuffer req_buf_;
  v1::FollowRequest req_;
  grpc::ByteBuffer resp_buf_;  // being written
  bool hello_done_ = false;
  bool writing_ = false;
  bool parked_ = false;
  bool finished_ = false;
  std::optional<CommitNotifier::Token> durable_token_;
  std::optional<CommitNotifier::Token> commit_token_;
  std::optional<LogReader> reader_;
  std::string replica_id_;
  uint64_t window_ = kDefaultWindow;
  uint64_t sent_offset_ = 0;   // end of what was sent
  uint64_t acked_offset_ = 0;  // what the replica has applied
  uint64_t sent_commit_ = UINT64_MAX;
  absl::Time last_write_;
  uint64_t registry_id_ = 0;
  uint64_t epoch_ = 0;  // the epoch the directive described
};

}  // namespace ringlog
