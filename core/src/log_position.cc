// AtomicPosition: a seqlock over (offset, seq).
#include "ringlog/log_position.h"

namespace ringlog {

void AtomicPosition::store(LogPosition p) noexcept {
  // One writer. An odd version marks a store in progress.
  const uint64_t v = version_.load(std::memory_order_relaxed);
  version_.store(v + 1, std::memory_order_relaxed);
  // release (fields): a reader that sees a new field value also sees the odd
  // version stored before it, and retries.
  offset_.store(p.offset, std::memory_order_release);
  seq_.store(p.seq, std::memory_order_release);
  // release: the fields above are visible before the even version; pairs
  // with the first acquire load in load().
  version_.store(v + 2, std::memory_order_release);
}

LogPosition AtomicPosition::load() const noexcept {
  for (;;) {
    const uint64_t v1 = version_.load(std::memory_order_acquire);
    // acquire (fields): the version re-check below cannot move above them.
    LogPosition p{offset_.load(std::memory_order_acquire), seq_.load(std::memory_order_acquire)};
    const uint64_t v2 = version_.load(std::memory_order_relaxed);
    if (v1 == v2 && (v1 & 1) == 0) return p;
  }
}

}  // namespace ringlog
