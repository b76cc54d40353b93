// Node: what it reports of itself (GetStatus, metrics).
#include <algorithm>

#include "absl/time/clock.h"
#include "node.h"
#include "ringlog/version.h"

namespace ringlog {

void Node::fill_status(v1::NodeStatus* out) const {
  out->set_role(role() == Role::kPrimary ? v1::ROLE_PRIMARY : v1::ROLE_REPLICA);
  out->set_node_id(node_id_);
  out->set_epoch(epoch());
  out->set_listen(advertise());
  out->set_version(version_string());
  const LogPosition start = log_->start();
  const LogPosition end = log_->end();
  out->set_log_start_offset(start.offset);
  out->set_log_end_offset(end.offset);
  out->set_first_seq(start.seq);
  out->set_next_seq(end.seq);
  out->set_durable_offset(log_->durable_offset());
  out->set_commit_offset(commit().offset);
  uint64_t file_bytes = 0;
  const std::vector<SegmentInfo> segs = log_->segments();
  for (const SegmentInfo& s : segs) file_bytes += s.file_bytes;
  out->set_segment_count(segs.size());
  out->set_segment_bytes(file_bytes);
  if (std::shared_ptr<Pipeline> pl = pipeline()) {
    out->set_ring_used_bytes(pl->ring_used(0));
    out->set_ring_capacity_bytes(options_.pipeline.ring_bytes);
    const PipelineStats st = pl->stats();
    out->set_events_appended(st.events);
    out->set_bytes_appended(st.bytes);
    if (absl::Status e = pl->error(); !e.ok()) out->set_storage_error(std::string(e.message()));
  }
  out->set_active_append_streams(append_streams_.load(std::memory_order_relaxed));
  out->set_active_replay_streams(replay_streams_.load(std::memory_order_relaxed));
  out->set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - started_));
  out->set_min_replica_acks(options_.min_replica_acks);
  if (std::optional<LostRange> lost = log_->lost()) {
    out->set_data_loss(std::string(data_loss().message()));
    out->set_lost_from_offset(lost->from);
    out->set_lost_to_offset(lost->to);
  }
  absl::Status replica_disk;
  absl::Time replica_since;
  if (role() == Role::kPrimary) {
    const LogPosition end = log_->end();
    const absl::Time now = absl::Now();
    for (const ReplicaView& v : replicas()) {
      v1::ReplicaInfo* r = out->add_replicas();
      r->set_node_id(v.node_id);
      r->set_peer(v.advertise.empty() ? v.peer : v.advertise);
      r->set_acked_offset(v.acked.offset);
      r->set_lag_bytes(end.offset - std::min(end.offset, v.acked.offset));
      r->set_lag_events(end.seq - std::min(end.seq, v.acked.seq));
      r->set_seconds_since_ack(absl::ToDoubleSeconds(now - v.last_ack));
      r->set_connected(v.connected);
      r->set_storage_error(v.storage_error);
    }
  } else if (std::lock_guard rl(role_mu_); follower_) {
    replica_disk = follower_->disk_full(&replica_since);
    out->set_primary(follower_->primary());
    out->set_primary_known(!out->primary().empty());
    out->set_applied_offset(follower_->applied_offset());
    switch (follower_->state()) {
      case FollowerState::kConnecting:
      case FollowerState::kStopped:
        out->set_replica_state(v1::REPLICA_STATE_CONNECTING);
        break;
      case FollowerState::kCatchingUp:
        out->set_replica_state(v1::REPLICA_STATE_CATCHING_UP);
        break;
      case FollowerState::kStreaming:
        out->set_replica_state(v1::REPLICA_STATE_STREAMING);
        break;
    }
    if (const std::string e = follower_->last_error(); !e.empty() &&
        follower_->state() == FollowerState::kConnecting) {
      out->set_replication_error(e);
    }
  } else if (role() == Role::kReplica) {
    out->set_no_primary_reason(fenced_);
  }
  fill_storage_status(out, replica_disk, replica_since);
}

NodeCounters Node::counters() const {
  NodeCounters c;
  {
    std::lock_guard l(counters_mu_);
    c = past_;
  }
  if (std::shared_ptr<Pipeline> pl = pipeline()) {
    const PipelineStats st = pl->stats();
    c.events_appended += st.events;
    c.bytes_appended += st.bytes;
    for (size_t i = 0; i < kFsyncBucketCount; ++i) c.fsync_buckets[i] += st.fsync_buckets[i];
    c.fsync_seconds += st.fsync_seconds;
  }
  c.ring_full = intake_.ring_full();
  return c;
}

}  // namespace ringlog
