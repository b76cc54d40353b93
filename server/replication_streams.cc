#include "replication_streams.h"

#include <vector>

#include "absl/time/clock.h"

namespace ringlog {

ReplicationStreams::ReplicationStreams(std::function<void(absl::Time)> periodic)
    : periodic_(std::move(periodic)) {
  ticker_ = std::thread([this] { ticker_loop(); });
}

void ReplicationStreams::stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

uint64_t ReplicationStreams::add(ReplicationStream* stream, const std::string& replica_id) {
  std::lock_guard l(mu_);
  const uint64_t id = next_id_++;
  streams_[id] = {stream, replica_id};
  return id;
}

std::optional<std::string> ReplicationStreams::remove(uint64_t id) {
  std::lock_guard l(mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return std::nullopt;
  std::string replica_id = it->second.second;
  streams_.erase(it);
  for (const auto& [other, s] : streams_) {
    if (s.second == replica_id) return std::nullopt;
  }
  return replica_id;
}

void ReplicationStreams::resume(uint64_t id) {
  std::lock_guard l(mu_);
  auto it = streams_.find(id);
  if (it != streams_.end()) it->second.first->resume();
}

void ReplicationStreams::resume_all() {
  std::vector<uint64_t> ids;
  {
    std::lock_guard l(mu_);
    for (const auto& [id, s] : streams_) ids.push_back(id);
  }
  for (uint64_t id : ids) resume(id);
}

void ReplicationStreams::ticker_loop() {
  std::unique_lock l(mu_);
  while (!stop_) {
    cv_.wait_for(l, std::chrono::milliseconds(100));
    const absl::Time now = absl::Now();
    for (auto& [id, s] : streams_) s.first->tick(now, kHeartbeat);
    l.unlock();
    if (periodic_) periodic_(now);
    l.lock();
  }
}

}  // namespace ringlog
