// Node: a log that lacks records it once held (SegmentedLog::lost(): files
// damaged or deleted while the node was down). Such a node never serves as
// primary with the gap, never makes a replica cut what it lost, and says
// which node to promote instead.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "node.h"
#include "peers.h"
#include "spdlog/spdlog.h"

namespace ringlog {

absl::Status Node::open_with_loss(const RecoveryReport& report) {
  const std::optional<LostRange> lost = log_->lost();
  if (!lost) return absl::OkStatus();
  if (options_.accept_data_loss) {
    spdlog::error("DATA LOSS accepted (--accept_data_loss): going on without log offsets {} to "
                  "{}: {}",
                  lost->from, lost->to, report.data_loss);
    return log_->accept_loss();
  }
  {
    std::lock_guard l(loss_mu_);
    loss_detail_ = report.data_loss.empty() ? report.problem : report.data_loss;
    for (const std::string& q : report.quarantined) {
      if (absl::StrContains(q, ".damaged.")) absl::StrAppend(&loss_detail_, "; damaged file kept as ", q);
    }
  }
  // Replicas named as peers that hold the lost records are the ones to promote.
  for (const PeerStatus& ps : query_peers(options_.peers, node_id_, absl::Milliseconds(500))) {
    if (ps.status.role() == v1::ROLE_REPLICA) {
      note_replica_candidate(ps.address, ps.status.log_end_offset());
    }
  }
  spdlog::error("DATA LOSS: {}", std::string(data_loss().message()));
  return absl::OkStatus();
}

void Node::restore_commit() {
  // Everything below the checkpoint's commit offset was acknowledged: a
  // restarted node serves it at once and a replica never cuts below it.
  const uint64_t c = std::min(log_->committed_offset(), log_->end().offset);
  if (c <= log_->start().offset) return;
  if (absl::StatusOr<LogPosition> at = log_->find_offset(c); at.ok()) commits_.advance_commit(*at);
}

void Node::note_replica_candidate(const std::string& address, uint64_t log_end) {
  const std::optional<LostRange> lost = log_->lost();
  if (!lost || lost->at_start || address.empty()) return;
  bool is_new = false;
  {
    std::lock_guard l(loss_mu_);
    uint64_t& end = loss_candidates_[address];
    is_new = end < lost->to && log_end >= lost->to;
    end = std::max(end, log_end);
  }
  if (is_new) {
    spdlog::error("DATA LOSS: replica {} holds the records this node lost (its log ends at "
                  "offset {}): promote it",
                  address, log_end);
  }
}

absl::Status Node::data_loss() const {
  const std::optional<LostRange> lost = log_->lost();
  if (!lost) return absl::OkStatus();
  std::lock_guard l(loss_mu_);
  if (lost->at_start) {
    return absl::DataLossError(absl::StrFormat(
        "this node's log lacks its first records, offsets %d to %d (%s); they cannot be fetched "
        "into it again: restart it with --accept_data_loss to go on without them, or empty its "
        "data directory to copy the whole log from the primary",
        lost->from, lost->to, loss_detail_));
  }
  if (role() == Role::kReplica) {
    return absl::DataLossError(absl::StrFormat(
        "this replica lacks log offsets %d to %d, which it held before (%s); it is fetching them "
        "from its primary again",
        lost->from, lost->to, loss_detail_));
  }
  std::string best;
  uint64_t best_end = 0;
  for (const auto& [address, end] : loss_candidates_) {
    if (end >= lost->to && end > best_end) {
      best = address;
      best_end = end;
    }
  }
  const std::string promote =
      best.empty() ? "promote the replica whose log reaches that offset (ringlogctl status on "
                     "each shows log_end_offset)"
                   : absl::StrFormat("promote %s, whose log ends at offset %d (ringlogctl "
                                     "promote --node %s)",
                                     best, best_end, best);
  return absl::DataLossError(absl::StrFormat(
      "this primary lacks log offsets %d to %d, which it had acknowledged or made durable (%s); "
      "it takes no appends and serves no replicas: %s, then make this node follow it "
      "(ringlogctl follow), or restart this node with --accept_data_loss to go on without them",
      lost->from, lost->to, loss_detail_, promote));
}

}  // namespace ringlog
