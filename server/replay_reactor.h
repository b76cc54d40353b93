// EventLog.Replay: one reactor per stream.
//
// Copies whole records straight from the mapped segments into each response
// (one copy, no re-encoding), never past the commit offset. With `follow`,
// when it has caught up it parks on the node's commit notifier, which resumes
// it when the commit offset moves; no thread waits and nothing polls.
#pragma once

#include <bitset>
#include <mutex>
#include <optional>

#include "grpcpp/grpcpp.h"
#include "node.h"
#include "ringlog/storage.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

class ReplayReactor final : public grpc::ServerWriteReactor<v1::ReplayResponse> {
 public:
  ReplayReactor(Node* node, const v1::ReplayRequest* request);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  static constexpr size_t kDefaultBatchBytes = size_t{1} << 20;
  static constexpr size_t kMaxBatchBytes = size_t{16} << 20;

 private:
  static absl::StatusOr<LogPosition> resolve(Node* node, const v1::ReplayRequest& r);
  // With mu_ held: fill and start the next write, park, or finish.
  void next_locked();
  void resume();  // from the notifier
  void finish_locked(const grpc::Status& s);

  Node* node_;
  std::mutex mu_;
  std::optional<LogReader> reader_;
  v1::ReplayResponse resp_;
  std::bitset<256> types_;
  bool filtered_ = false;
  uint64_t remaining_ = 0;  // events still to send; UINT64_MAX without a limit
  bool follow_ = false;
  bool include_control_ = false;
  size_t max_bytes_ = kDefaultBatchBytes;
  bool parked_ = false;
  CommitNotifier::Token token_ = 0;
  bool cancelled_ = false;
  bool finished_ = false;
};

}  // namespace ringlog
