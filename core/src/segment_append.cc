// Segment: the writer's side. Appending records (checked against the room
// left, noted in the index and the counters, then published), and cutting
// the records back at a boundary.
#include <sys/uio.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "internal/segment.h"
#include "ringlog/status_macros.h"

namespace ringlog {

void Segment::init_empty(uint64_t max_ts_before) noexcept {
  max_ts_before_ = max_ts_before;
  max_ts_local_ = max_ts_before;
  publish();
}

void Segment::publish() noexcept {
  // release (all four): the index entries, counters and record bytes written
  // before are visible to a reader that acquires the new value. size_ goes
  // last, so a reader that sees a size also sees the index and records below it.
  index_.publish();
  max_ts_.store(max_ts_local_, std::memory_order_release);
  count_.store(count_local_, std::memory_order_release);
  size_.store(size_local_, std::memory_order_release);
}

Segment::Appended Segment::append(ByteSpan records) {
  const std::byte* src = records.data();
  const uint64_t room = capacity_ - size_local_;
  const Bookkeeping saved = bookkeeping();
  size_t off = 0;
  while (off < records.size()) {
    const EventHeader* h = header_at(src + off);
    const size_t rs = h->padded_size();
    if (off + rs > room) break;
    note_record(size_local_ + off, h->timestamp);
    off += rs;
  }
  if (off == 0) return {};
  // One copy, into the page cache. A store through a writable shared map
  // would first make the kernel read or zero-fill every page it touches.
  if (absl::Status s = write_at(kFileHeaderSize + size_local_, src, off); !s.ok()) {
    restore(saved);
    return Appended{0, 0, std::move(s)};
  }
  size_local_ += off;
  publish();
  return Appended{off, count_local_ - saved.count, absl::OkStatus()};
}

WriteResult Segment::append_event(const EventHeader& header, ByteSpan payload) noexcept {
  if (payload.size() > kMaxPayload) {
    return WriteResult::error(RingErrorCode::kPayloadTooLarge, payload.size(), kMaxPayload);
  }
  if (header.payload_len != payload.size()) {
    return WriteResult::error(RingErrorCode::kLengthMismatch, payload.size(), header.payload_len);
  }
  const size_t size = padded_size(payload.size());
  if (size > capacity_ - size_local_) {
    return WriteResult::not_enough_space(size, capacity_ - size_local_);
  }
  EventHeader h = header;
  h.fill_checksum(payload);
  static constexpr std::byte kPad[kRecordAlign] = {};
  iovec iov[3] = {{&h, kHeaderSize},
                  {const_cast<std::byte*>(payload.data()), payload.size()},
                  {const_cast<std::byte*>(kPad), size - h.total_size()}};
  const auto want = static_cast<ssize_t>(size);
  ssize_t w;
  do {
    w = pwritev(fd_, iov, 3, static_cast<off_t>(kFileHeaderSize + size_local_));
  } while (w < 0 && errno == EINTR);
  if (w != want) {
    // Nothing is published; a partial record past the end is overwritten by
    // the next write, or cleared by recovery.
    return WriteResult::error(RingErrorCode::kIoError, size, capacity_ - size_local_);
  }
  note_record(size_local_, header.timestamp);
  size_local_ += size;
  publish();
  return {};
}

absl::Status Segment::truncate(uint64_t rel) {
  if (rel > size_local_) {
    return absl::OutOfRangeError(absl::StrFormat("cannot truncate %s to record offset %d: only %d bytes",
                                                 path_, rel, size_local_));
  }
  std::optional<uint64_t> seq = seq_at(rel);
  if (!seq) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot truncate to log offset %d: not a record boundary", base_offset() + rel));
  }
  // Keep the index entries of records before rel and rebuild the running max.
  const IndexEntry* last = index_.truncate(rel);
  uint64_t p = last != nullptr ? last->rel : 0;
  max_ts_local_ = last != nullptr ? last->max_ts_before : max_ts_before_;
  for (; p < rel; p += header_at(records() + p)->padded_size()) {
    max_ts_local_ = std::max(max_ts_local_, header_at(records() + p)->timestamp);
  }
  count_local_ = *seq - base_seq();
  const uint64_t old_size = size_local_;
  size_local_ = rel;
  publish();
  RINGLOG_RETURN_IF_ERROR(zero_range(kFileHeaderSize + rel, kFileHeaderSize + old_size));
  if (sealed()) {
    RINGLOG_RETURN_IF_ERROR(write_at(0, &initial_header_, sizeof initial_header_));
    sealed_.store(false, std::memory_order_release);
  }
  // Persist the cut now: records left behind could come back after a crash.
  return sync();
}

}  // namespace ringlog
