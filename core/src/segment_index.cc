// The sparse index, and Segment's lookups through it: each finds the last
// entry before what it looks for and walks record headers from there.
#include <algorithm>

#include "internal/segment.h"
#include "internal/sparse_index.h"

namespace ringlog {

// ---- SparseIndex ----

SparseIndex::SparseIndex(uint64_t capacity, uint32_t interval)
    : interval_(std::max<uint32_t>(interval, kRecordAlign)),
      entries_(std::make_unique<Entry[]>(capacity / interval_ + 2)) {}

const SparseIndex::Entry* SparseIndex::truncate(uint64_t rel) noexcept {
  size_t keep = 0;
  while (keep < count_local_ && entries_[keep].rel < rel) ++keep;
  count_local_ = keep;
  if (keep == 0) {
    next_ = 0;
    return nullptr;
  }
  const Entry* last = &entries_[keep - 1];
  next_ = (last->rel / interval_ + 1) * interval_;
  return last;
}

const SparseIndex::Entry* SparseIndex::before_rel(uint64_t rel) const noexcept {
  const Entry* first = entries_.get();
  const Entry* it = std::upper_bound(first, first + published(), rel,
                                     [](uint64_t r, const Entry& e) { return r < e.rel; });
  return it == first ? nullptr : it - 1;
}

const SparseIndex::Entry* SparseIndex::before_seq(uint64_t seq_delta) const noexcept {
  const Entry* first = entries_.get();
  const Entry* it = std::upper_bound(first, first + published(), seq_delta,
                                     [](uint64_t v, const Entry& e) { return v < e.seq_delta; });
  return it == first ? nullptr : it - 1;
}

const SparseIndex::Entry* SparseIndex::before_time(uint64_t ts) const noexcept {
  const size_t n = published();
  if (n == 0) return nullptr;
  const Entry* first = entries_.get();
  const Entry* it = std::lower_bound(
      first, first + n, ts, [](const Entry& e, uint64_t t) { return e.max_ts_before < t; });
  return it == first ? first : it - 1;
}

// ---- Segment's lookups ----

std::optional<uint64_t> Segment::seq_at(uint64_t rel) const noexcept {
  const uint64_t size = this->size();
  if (rel > size) return std::nullopt;
  const IndexEntry* e = index_.before_rel(rel);
  if (e == nullptr) return rel == 0 ? std::optional<uint64_t>(base_seq()) : std::nullopt;
  uint64_t p = e->rel;
  uint64_t seq = base_seq() + e->seq_delta;
  while (p < rel) {
    p += header_at(records() + p)->padded_size();
    ++seq;
  }
  if (p != rel) return std::nullopt;
  return seq;
}

uint64_t Segment::rel_of_seq(uint64_t seq) const noexcept {
  const uint64_t d = seq - base_seq();
  const IndexEntry* e = index_.before_seq(d);
  uint64_t p = e != nullptr ? e->rel : 0;
  uint64_t s = e != nullptr ? e->seq_delta : 0;
  for (; s < d; ++s) p += header_at(records() + p)->padded_size();
  return p;
}

std::optional<LogPosition> Segment::find_time(uint64_t ts) const noexcept {
  const IndexEntry* e = index_.before_time(ts);
  if (e == nullptr) return std::nullopt;
  const uint64_t size = this->size();
  uint64_t p = e->rel;
  uint64_t seq = base_seq() + e->seq_delta;
  while (p < size) {
    const EventHeader* h = header_at(records() + p);
    if (h->timestamp >= ts) return LogPosition{p, seq};
    p += h->padded_size();
    ++seq;
  }
  return std::nullopt;
}

RecordBatch Segment::records_from(uint64_t rel, uint64_t limit_rel,
                                  size_t max_bytes) const noexcept {
  const uint64_t limit = std::min(limit_rel, size());
  if (rel >= limit) return {};
  uint64_t p = rel;
  size_t count = 0;
  // The sparse index names a record boundary, with its seq, at most one
  // index interval before any point: jump to the last one before where the
  // batch must end, so that only the records near the batch's two ends are
  // walked and not every header of a megabyte batch.
  const uint64_t target = rel + std::min<uint64_t>(max_bytes, limit - rel);
  const IndexEntry* e = index_.before_rel(target);
  // The boundary at or before rel gives rel's seq (only needed for a jump).
  const IndexEntry* b = e != nullptr && e->rel > rel ? index_.before_rel(rel) : nullptr;
  if (b != nullptr) {
    uint64_t bp = b->rel;
    uint64_t seq_delta = b->seq_delta;
    for (; bp < rel; bp += header_at(records() + bp)->padded_size()) ++seq_delta;
    p = e->rel;
    count = e->seq_delta - seq_delta;
  }
  while (p < limit) {
    const size_t rs = header_at(records() + p)->padded_size();
    if (p + rs > limit) break;                      // not published yet
    if (p + rs - rel > max_bytes && p > rel) break;  // full (but never empty)
    p += rs;
    ++count;
  }
  return RecordBatch{ByteSpan{records() + rel, p - rel}, count};
}

}  // namespace ringlog
