// The primary's live Replication.Follow streams, and the ticker that drives
// their heartbeats.
//
// Each stream (one per connected replica, served by a FollowReactor) adds
// itself once it has sent its directive and removes itself when it ends.
// The node resumes parked streams when the role or epoch changes; the ticker
// thread calls tick() on every stream every 100 ms so that an idle stream
// sends a heartbeat, then runs the node's periodic check (peer watch).
//
// Threads: add/remove/resume from gRPC and admin threads; tick from the
// ticker. Streams are called with mu_ held, so a stream that removed itself
// is never called again.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"

namespace ringlog {

// What the registry may ask of a stream. Both calls must not block.
class ReplicationStream {
 public:
  virtual void resume() = 0;  // look again at the log, the commit and the role
  virtual void tick(absl::Time now, absl::Duration heartbeat) = 0;

 protected:
  ~ReplicationStream() = default;
};

class ReplicationStreams {
 public:
  static constexpr absl::Duration kHeartbeat = absl::Milliseconds(500);

  // Starts the ticker; `periodic` runs on it after each round of ticks,
  // without the registry's lock.
  explicit ReplicationStreams(std::function<void(absl::Time)> periodic);
  ~ReplicationStreams() { stop(); }
  void stop();  // ends the ticker; idempotent

  uint64_t add(ReplicationStream* stream, const std::string& replica_id);
  // Removes stream `id`; returns the replica it served when no other stream
  // of that replica is left (it reconnected meanwhile otherwise).
  std::optional<std::string> remove(uint64_t id);
  void resume(uint64_t id);
  void resume_all();

 private:
  void ticker_loop();

  const std::function<void(absl::Time)> periodic_;
  std::mutex mu_;
  std::map<uint64_t, std::pair<ReplicationStream*, std::string>> streams_;  // id -> stream, replica
  uint64_t next_id_ = 1;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread ticker_;
};

}  // namespace ringlog
