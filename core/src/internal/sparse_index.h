// The sparse index of one segment: an entry for the first record at or after
// every index_interval bytes of its records, so that a lookup by offset, seq
// or time scans at most one interval of record headers.
//
//   rel:           0        interval     2*interval    ...
//   records:   | r0 | r1 | r2 | r3 | r4 | r5 | r6 | r7 | ...
//   entries:     ^e0          ^e1           ^e2             (first record at or after each mark)
//
// Threads: one writer (note, publish, save, restore, truncate); any number of
// readers (the lookups), which see the entries below the count the writer
// last published.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "ringlog/event.h"

namespace ringlog {

class SparseIndex {
 public:
  // An entry: a record at `rel` (offset within the segment's records) that
  // is the segment's event `seq_delta`, and the largest timestamp of all
  // events before it in the whole log (a running max, so it never decreases
  // and a binary search over it finds the first event at or after a time).
  struct Entry {
    uint32_t rel;
    uint32_t seq_delta;
    uint64_t max_ts_before;
  };

  // Room for every entry `capacity` record bytes can need; an interval below
  // the record alignment is raised to it.
  SparseIndex(uint64_t capacity, uint32_t interval);

  uint32_t interval() const noexcept { return interval_; }

  // ---- Writer only ----

  // A record at `rel`, the segment's event `seq_delta`, after events whose
  // largest timestamp is `max_ts_before`: makes an entry when it is the first
  // at or after the next mark. On the append path: inline, no allocation.
  void note(uint64_t rel, uint64_t seq_delta, uint64_t max_ts_before) noexcept {
    if (rel >= next_) {
      entries_[count_local_++] = Entry{static_cast<uint32_t>(rel),
                                       static_cast<uint32_t>(seq_delta), max_ts_before};
      next_ = (rel / interval_ + 1) * interval_;
    }
  }
  // release: the entries written by note() are visible to a reader that
  // acquires the new count in published().
  void publish() noexcept { count_.store(count_local_, std::memory_order_release); }

  // What note() changes, saved before a write that may fail.
  struct Mark {
    size_t count;
    uint64_t next;
  };
  Mark mark() const noexcept { return {count_local_, next_}; }
  void restore(const Mark& m) noexcept {
    count_local_ = m.count;
    next_ = m.next;
  }
  // Drops the entries of records at or after `rel`; returns the last one
  // kept, or null when none is. Publish afterwards.
  const Entry* truncate(uint64_t rel) noexcept;

  // ---- Readers ----

  // The last published entry at or before `rel`, or null.
  const Entry* before_rel(uint64_t rel) const noexcept;
  // The last published entry at or before the segment's event `seq_delta`, or null.
  const Entry* before_seq(uint64_t seq_delta) const noexcept;
  // The last published entry before which every event is older than `ts`
  // (the first entry when there is none), or null when there are no entries.
  const Entry* before_time(uint64_t ts) const noexcept;

 private:
  // acquire: pairs with the release in publish().
  size_t published() const noexcept { return count_.load(std::memory_order_acquire); }

  const uint32_t interval_;
  std::unique_ptr<Entry[]> entries_;
  std::atomic<size_t> count_{0};  // published entries
  size_t count_local_ = 0;        // writer only
  uint64_t next_ = 0;             // writer only: the next rel that gets an entry
};

}  // namespace ringlog
