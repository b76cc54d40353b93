#include "commit_tracker.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace ringlog {

std::optional<LogPosition> commit_position(LogPosition durable, std::vector<LogPosition> acks,
                                           uint32_t min_acks) {
  if (min_acks == 0) return durable;
  if (acks.size() < min_acks) return std::nullopt;
  std::sort(acks.begin(), acks.end(),
            [](const LogPosition& a, const LogPosition& b) { return a.offset > b.offset; });
  return acks[min_acks - 1].offset < durable.offset ? acks[min_acks - 1] : durable;
}

void CommitTracker::start_term(LogPosition end) {
  durable_.store(end);
  if (min_replica_acks_ == 0) commit_notifier_.advance(end);
}

void CommitTracker::on_durable(LogPosition durable) {
  durable_.store(durable);
  update_commit();
  durable_notifier_.advance(durable);
}

void CommitTracker::update_commit() {
  std::lock_guard l(mu_);
  std::vector<LogPosition> acks;
  for (const auto& [id, r] : replicas_) acks.push_back(r.acked);
  const std::optional<LogPosition> c = commit_position(durable_.load(), std::move(acks),
                                                       min_replica_acks_);
  if (c && c->offset > commit_notifier_.commit().offset) commit_notifier_.advance(*c);
}

void CommitTracker::replica_connected(const std::string& id, const std::string& peer,
                                      const std::string& advertise, LogPosition from) {
  std::lock_guard l(mu_);
  ReplicaView& v = replicas_[id];
  v.node_id = id;
  v.peer = peer;
  v.advertise = advertise;
  v.connected = true;
  v.storage_error.clear();  // its acks say again if it still cannot store
  // A replica that truncated has less than it acknowledged before.
  if (from.offset < v.acked.offset || v.last_ack == absl::Time()) v.acked = from;
  v.last_ack = absl::Now();
  if (v.caught_up_at == absl::Time()) v.caught_up_at = v.last_ack;
}

void CommitTracker::replica_disconnected(const std::string& id) {
  std::lock_guard l(mu_);
  replicas_[id].connected = false;
}

void CommitTracker::replica_ack(const std::string& id, LogPosition durable) {
  {
    std::lock_guard l(mu_);
    ReplicaView& v = replicas_[id];
    if (durable.offset >= v.acked.offset) v.acked = durable;
    v.last_ack = absl::Now();
    if (durable.offset >= durable_.load().offset) v.caught_up_at = v.last_ack;
    v.connected = true;
  }
  update_commit();
}

bool CommitTracker::replica_storage(const std::string& id, const std::string& error) {
  std::lock_guard l(mu_);
  ReplicaView& v = replicas_[id];
  const bool flips = v.storage_error.empty() != error.empty();
  if (flips && !error.empty()) v.storage_error_since = absl::Now();
  v.storage_error = error;
  return flips;
}

std::vector<ReplicaView> CommitTracker::replicas() const {
  std::lock_guard l(mu_);
  std::vector<ReplicaView> out;
  for (const auto& [id, v] : replicas_) out.push_back(v);
  return out;
}

std::vector<ReplicaLag> CommitTracker::lag_seconds() const {
  std::vector<ReplicaLag> out;
  const uint64_t durable = durable_.load().offset;
  const absl::Time now = absl::Now();
  for (const ReplicaView& v : replicas()) {
    out.push_back({v.node_id, v.acked.offset >= durable ? 0.0
                                                        : absl::ToDoubleSeconds(now - v.caught_up_at)});
  }
  return out;
}

void CommitTracker::forget_replicas() {
  std::lock_guard l(mu_);
  replicas_.clear();
}

}  // namespace ringlog
