#include "ringlog/consumer.h"

#include <limits>

namespace ringlog {

EventConsumer& EventDispatcher::add_consumer(std::unique_ptr<EventConsumer> consumer) {
  consumers_.push_back(std::move(consumer));
  return *consumers_.back();
}

template <typename Ring>
DrainStats EventDispatcher::drain_impl(Ring& ring, size_t limit) {
  DrainStats s;
  while (s.events_read < limit) {
    std::optional<EventView> ev = ring.read_event();
    if (!ev) break;
    ++s.events_read;
    for (const std::unique_ptr<EventConsumer>& c : consumers_) {
      if (c->consume(*ev->header, ev->payload)) {
        ++s.delivered;
      } else {
        ++s.failed;
      }
    }
  }
  totals_ += s;
  return s;
}

DrainStats EventDispatcher::drain(RingBuffer& ring) {
  return drain_impl(ring, std::numeric_limits<size_t>::max());
}

DrainStats EventDispatcher::drain(SpscRingBuffer::Consumer& ring) {
  DrainStats s = drain_impl(ring, std::numeric_limits<size_t>::max());
  ring.release();
  return s;
}

DrainStats EventDispatcher::drain_batch(RingBuffer& ring, size_t limit) {
  return drain_impl(ring, limit);
}

DrainStats EventDispatcher::drain_batch(SpscRingBuffer::Consumer& ring, size_t limit) {
  DrainStats s = drain_impl(ring, limit);
  ring.release();  // the last event was delivered; hand its space back
  return s;
}

void EventDispatcher::flush() {
  for (const std::unique_ptr<EventConsumer>& c : consumers_) c->flush();
}

}  // namespace ringlog
