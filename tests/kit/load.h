// A background load: a thread appending test events (kit/events.h) through
// one Appender while the test kills, restarts or promotes nodes.
//
//   testkit::BackgroundLoad load({.endpoints = {p.address()}, .payload_bytes = 64,
//                                 .events_per_second = 200'000});
//   ASSERT_TRUE(testkit::wait_until([&] { return load.acked() >= 1000 || load.failed(); }));
//   absl::StatusOr<Ack> last = load.stop();
//
// The Appender fails over by itself; the thread stops on stop(), after
// `max_events`, or on an error. The counters may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kit/events.h"
#include "ringlog/client.h"

namespace ringlog::testkit {

struct LoadOptions {
  std::vector<std::string> endpoints{};
  size_t payload_bytes = kMinPayloadBytes;
  uint64_t stream = 0;
  uint64_t first = 0;  // the index of the first event
  uint64_t max_events = std::numeric_limits<uint64_t>::max();
  // At most this many events a second (0: as fast as it can), which keeps
  // the log small however long the test waits.
  uint64_t events_per_second = 0;
  absl::Duration failover_timeout = absl::Seconds(30);
  // Drain after each burst, so acknowledgements are counted as they come
  // (acked(), last_epoch()); otherwise only flush and drain at the end.
  bool drain_each_burst = false;
};

class BackgroundLoad {
 public:
  explicit BackgroundLoad(LoadOptions options);
  ~BackgroundLoad();  // stop()
  BackgroundLoad(const BackgroundLoad&) = delete;
  BackgroundLoad& operator=(const BackgroundLoad&) = delete;

  // Events handed to the Appender so far.
  uint64_t appended() const { return appended_.load(std::memory_order_acquire); }
  uint64_t sent() const { return appended(); }
  // Events acknowledged so far (as of the last drain).
  uint64_t acked() const { return acked_.load(std::memory_order_acquire); }
  // The epoch of the last acknowledgement.
  uint64_t last_epoch() const { return epoch_.load(std::memory_order_acquire); }
  // The thread has ended (max_events reached, stopped, or failed).
  bool done() const { return done_.load(std::memory_order_acquire); }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Stops appending, drains and closes (everything appended is acknowledged
  // or an error is returned); the last ack. Later calls return the same.
  absl::StatusOr<Ack> stop();
  uint64_t failovers() const { return failovers_; }    // valid after stop()
  uint64_t duplicates() const { return duplicates_; }  // valid after stop()

 private:
  void run();
  absl::StatusOr<Ack> append_all(Appender& a);
  absl::Status append_burst(Appender& a, uint64_t n, uint64_t end);
  void finish(absl::StatusOr<Ack> result);

  const LoadOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> appended_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> epoch_{0};
  // Written by the thread before done_ (release); read after the join.
  std::optional<absl::StatusOr<Ack>> result_;
  uint64_t failovers_ = 0;
  uint64_t duplicates_ = 0;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace ringlog::testkit
