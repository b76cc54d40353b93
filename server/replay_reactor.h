// EventLog.Replay: one reactor per stream.
//
// Sends whole records, never past the commit offset, with no re-encoding:
// an unfiltered replay sends runs of records straight from the mapped
// segments (see mapped_message.h); a filtered or limited one copies each
// record it picks into the response. With `follow`,
// when it has caught up it parks on the node's commit notifier, which resumes
// it when the commit offset moves; no thread waits and nothing polls.
#pragma once

#include <bitset>
#include <mutex>
#include <optional>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "mapped_message.h"
#include "node.h"
#include "security.h"
#include "request_checks.h"
#include "ringlog/storage.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

// The method is served raw (ByteBuffers) so that responses can point into
// the mapping; the request is parsed as ReplayRequest.
class ReplayReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  ReplayReactor(Node* node, const grpc::ByteBuffer* request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // The credentials the call was admitted with (services.cc), set before
  // the reactor is returned to gRPC.
  void set_auth(StreamAuth auth) { auth_ = std::move(auth); }

 private:
  void start_locked(const v1::ReplayRequest& request);
  // Gathers the next response's records: runs of the mapping, or copies.
  void add_slice(const LogSlice& s, bool* first);
  void add_event(const EventView& ev, uint64_t seq, bool* first);
  void write_locked();
  // With mu_ held: fill and start the next write, park, or finish.
  void next_locked();
  void resume();  // from the notifier
  void finish_locked(const grpc::Status& s);

  Node* node_;
  StreamAuth auth_;
  std::mutex mu_;
  std::optional<LogReader> reader_;
  v1::ReplayResponse resp_;        // the next response, without mapped runs
  std::vector<MappedRun> runs_;    // its records, when they are mapped
  size_t run_bytes_ = 0;
  grpc::ByteBuffer buf_;           // being written
  std::bitset<256> types_;
  bool filtered_ = false;
  uint64_t remaining_ = 0;  // events still to send; UINT64_MAX without a limit
  bool follow_ = false;
  bool include_control_ = false;
  size_t max_bytes_ = kReplayDefaultBatchBytes;
  bool parked_ = false;
  CommitNotifier::Token token_ = 0;
  bool cancelled_ = false;
  bool finished_ = false;
};

}  // namespace ringlog
