// Consumers: pluggable handlers that a dispatcher feeds from a ring.
//
//   struct Printer : ringlog::EventConsumer {
//     bool consume(const ringlog::EventHeader& h, ringlog::ByteSpan payload) override { ...; return true; }
//     std::string_view name() const override { return "printer"; }
//   };
//   ringlog::EventDispatcher d;
//   d.emplace_consumer<Printer>();
//   ringlog::DrainStats s = d.drain(ring);
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "ringlog/event.h"
#include "ringlog/ring.h"

namespace ringlog {

class EventConsumer {
 public:
  virtual ~EventConsumer() = default;
  // Handles one event; false counts as a failed delivery. The payload is a
  // view into the ring, valid only during the call.
  virtual bool consume(const EventHeader& header, ByteSpan payload) = 0;
  virtual std::string_view name() const = 0;
  // Called by EventDispatcher::flush(), e.g. after a drain.
  virtual void flush() {}
};

struct DrainStats {
  uint64_t events_read = 0;  // events taken from the ring
  uint64_t delivered = 0;    // consume() calls that returned true
  uint64_t failed = 0;       // consume() calls that returned false

  // delivered / (delivered + failed); 1.0 when nothing was delivered or failed.
  double success_rate() const noexcept {
    const uint64_t total = delivered + failed;
    return total == 0 ? 1.0 : static_cast<double>(delivered) / static_cast<double>(total);
  }
  DrainStats& operator+=(const DrainStats& o) noexcept {
    events_read += o.events_read;
    delivered += o.delivered;
    failed += o.failed;
    return *this;
  }
};

// Delivers every event it reads to every consumer, in the order they were added.
class EventDispatcher {
 public:
  EventConsumer& add_consumer(std::unique_ptr<EventConsumer> consumer);
  template <typename T, typename... Args>
  T& emplace_consumer(Args&&... args) {
    return static_cast<T&>(add_consumer(std::make_unique<T>(std::forward<Args>(args)...)));
  }
  size_t consumer_count() const noexcept { return consumers_.size(); }

  // Reads until the ring is empty.
  DrainStats drain(RingBuffer& ring);
  DrainStats drain(SpscRingBuffer::Consumer& ring);
  // Reads at most `limit` events.
  DrainStats drain_batch(RingBuffer& ring, size_t limit);
  DrainStats drain_batch(SpscRingBuffer::Consumer& ring, size_t limit);

  void flush();
  // Everything drained by this dispatcher so far.
  const DrainStats& totals() const noexcept { return totals_; }

 private:
  template <typename Ring>
  DrainStats drain_impl(Ring& ring, size_t limit);

  std::vector<std::unique_ptr<EventConsumer>> consumers_;
  DrainStats totals_;
};

}  // namespace ringlog
