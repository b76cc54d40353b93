// Node: replication bookkeeping on the primary, and role changes (promotion,
// following, stepping down, watching peers for a later epoch).
#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "divergence.h"
#include "node.h"
#include "peers.h"
#include "ringlog/redirect.h"
#include "ringlog/status_macros.h"
#include "spdlog/spdlog.h"

namespace ringlog {

absl::StatusOr<uint64_t> Node::divergence_point(const std::vector<EpochEntry>& replica_epochs,
                                                uint64_t replica_end) const {
  std::lock_guard l(epochs_mu_);
  return ringlog::divergence_point(epochs_->entries(), log_->end().offset, replica_epochs,
                                   replica_end);
}

std::vector<EpochEntry> Node::epoch_entries() const {
  std::lock_guard l(epochs_mu_);
  return epochs_->entries();
}

uint64_t Node::add_replication_stream(ReplicationStream* s, const std::string& replica_id,
                                      const std::string& peer, const std::string& advertise,
                                      LogPosition from) {
  commits_.replica_connected(replica_id, peer, advertise, from);
  return streams_->add(s, replica_id);
}

void Node::remove_replication_stream(uint64_t id) {
  if (std::optional<std::string> replica = streams_->remove(id)) {
    commits_.replica_disconnected(*replica);
  }
}

void Node::resume_replication_stream(uint64_t id) { streams_->resume(id); }

absl::StatusOr<Node::Promoted> Node::promote(bool force, std::vector<std::string> peers) {
  const absl::Time t0 = absl::Now();
  std::lock_guard rl(role_mu_);
  if (stopping()) return absl::UnavailableError("the node is shutting down");
  if (role() == Role::kPrimary && !force) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is already the primary (epoch %d); use --force to start a new epoch anyway", node_id_,
        epoch()));
  }
  if (std::optional<LostRange> lost = log_->lost()) {
    if (!force) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "this node's log lacks offsets %d to %d, which it held before (damaged or deleted "
          "files): promote a node whose log has them, or use --force to go on without them",
          lost->from, lost->to));
    }
    spdlog::error("DATA LOSS accepted by a forced promotion: going on without log offsets {} to {}",
                  lost->from, lost->to);
    RINGLOG_RETURN_IF_ERROR(log_->accept_loss());
  }
  const LogPosition end = log_->end();
  uint64_t top_epoch = epoch();
  for (const std::string& p : options_.peers) peers.push_back(p);
  for (const PeerStatus& ps : query_peers(peers, node_id_, absl::Milliseconds(100))) {
    top_epoch = std::max(top_epoch, ps.status.epoch());
    if (force) continue;
    if (ps.status.role() == v1::ROLE_PRIMARY && ps.status.epoch() > epoch()) {
      return NotPrimary(ps.address, ps.status.epoch(), absl::StrFormat(
          "%s (%s) is the primary in epoch %d, later than this node's %d; follow it instead, "
          "or use --force",
          ps.address, ps.status.node_id(), ps.status.epoch(), epoch()));
    }
    if (ps.status.role() == v1::ROLE_REPLICA && ps.status.log_end_offset() > end.offset) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "replica %s (%s) has a longer log (ends at offset %d) than this node (%d): promote it "
          "instead, or use --force",
          ps.address, ps.status.node_id(), ps.status.log_end_offset(), end.offset));
    }
  }
  if (follower_) {
    follower_->stop();
    top_epoch = std::max(top_epoch, follower_->primary_epoch());
    follower_.reset();
  }
  if (role() == Role::kPrimary) {
    RINGLOG_RETURN_IF_ERROR(
        stop_primary(absl::AbortedError("the primary started a new epoch; append again")));
  }
  const uint64_t new_epoch = top_epoch + 1;
  const uint64_t start = log_->end().offset;
  {
    std::lock_guard el(epochs_mu_);
    RINGLOG_RETURN_IF_ERROR(epochs_->truncate_after(start));
    RINGLOG_RETURN_IF_ERROR(epochs_->append(new_epoch, start));
  }
  epoch_.store(new_epoch, std::memory_order_release);
  role_.store(Role::kPrimary, std::memory_order_release);
  fenced_.clear();
  RINGLOG_RETURN_IF_ERROR(start_primary());
  save_role(options_.data_dir, Role::kPrimary, "");
  streams_->resume_all();  // streams of the old epoch end; replicas take the new history
  spdlog::warn("promoted to primary: epoch {} from offset {} in {}", new_epoch, start,
               absl::FormatDuration(absl::Now() - t0));
  return Promoted{new_epoch, start};
}

absl::StatusOr<uint64_t> Node::follow(const std::string& primary, bool force) {
  std::lock_guard rl(role_mu_);
  if (stopping()) return absl::UnavailableError("the node is shutting down");
  if (primary == advertise()) {
    return absl::InvalidArgumentError("a node cannot follow itself");
  }
  if (role() == Role::kPrimary) {
    spdlog::warn("stepping down: following {} from now on", primary);
    RINGLOG_RETURN_IF_ERROR(stop_primary(NotPrimary(primary, epoch(), absl::StrFormat(
        "this node stepped down before the append was committed; append to the primary at %s",
        primary))));
    role_.store(Role::kReplica, std::memory_order_release);
  }
  if (follower_) {
    follower_->set_primary(primary);
    follower_->set_allow_truncate_below_commit(force);
  } else {
    start_follower(primary, force);
  }
  save_role(options_.data_dir, Role::kReplica, primary);
  return epoch();
}

void Node::step_down(uint64_t later_epoch, const std::string& why) {
  run_admin([this, later_epoch, why] {
    std::lock_guard rl(role_mu_);
    if (role() != Role::kPrimary || later_epoch <= epoch()) return;
    spdlog::error("stepping down: {} (epoch {} is later than ours, {}); appends are refused "
                  "until this node is told whom to follow",
                  why, later_epoch, epoch());
    const absl::Status s = stop_primary(NotPrimary("", later_epoch, absl::StrFormat(
        "this node was fenced by epoch %d; append to the current primary", later_epoch)));
    if (!s.ok()) spdlog::error("stepping down: {}", s.ToString());
    role_.store(Role::kReplica, std::memory_order_release);
    fenced_ = absl::StrFormat("fenced by epoch %d: %s", later_epoch, why);
    save_role(options_.data_dir, Role::kReplica, "");
  });
}

void Node::peer_watch(absl::Time now) {
  // Ticker thread: a primary looks for a primary of a later epoch among its
  // peers, and follows it if there is one (the old primary after a failover).
  if (options_.peers.empty() || role() != Role::kPrimary || now - last_peer_check_ < absl::Seconds(1)) {
    return;
  }
  last_peer_check_ = now;
  for (const PeerStatus& ps : query_peers(options_.peers, node_id_, absl::Milliseconds(200))) {
    if (ps.status.role() == v1::ROLE_PRIMARY && ps.status.epoch() > epoch()) {
      const std::string addr = ps.address;
      spdlog::warn("{} is primary in epoch {}, later than ours ({}): following it", addr,
                   ps.status.epoch(), epoch());
      run_admin([this, addr] {
        if (absl::StatusOr<uint64_t> r = follow(addr, false); !r.ok()) {
          spdlog::error("cannot follow {}: {}", addr, r.status().ToString());
        }
      });
      return;
    }
  }
}

}  // namespace ringlog
