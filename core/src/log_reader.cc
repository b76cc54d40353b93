// LogReader: reads a SegmentedLog in order, an event or a slice at a time.
#include "ringlog/log_reader.h"

#include <algorithm>

namespace ringlog {
namespace {
constexpr size_t kReaderFetchBytes = size_t{256} << 10;
}  // namespace

std::optional<LogSlice> LogReader::next_slice(uint64_t limit_offset, size_t max_bytes) {
  if (pos_.offset >= limit_offset) return std::nullopt;
  // Hand out the rest of what next() fetched first, within the limits.
  if (slice_used_ < slice_.records.bytes.size()) {
    LogSlice rest = slice_;
    const ByteSpan bytes = slice_.records.bytes.subspan(slice_used_);
    const uint64_t room = std::min<uint64_t>(limit_offset - pos_.offset, max_bytes);
    size_t used = 0;
    size_t count = 0;
    while (used < bytes.size()) {
      const size_t rs = header_at(bytes.data() + used)->padded_size();
      if (used + rs > limit_offset - pos_.offset) break;
      if (used + rs > room && count > 0) break;
      used += rs;
      ++count;
    }
    if (count == 0) return std::nullopt;
    rest.position = pos_;
    rest.records = RecordBatch{bytes.first(used), count};
    rest.starts_segment = false;
    slice_used_ += used;
    pos_ = LogPosition{pos_.offset + used, pos_.seq + count};
    return rest;
  }
  absl::StatusOr<LogSlice> s = log_->read(pos_, limit_offset, max_bytes);
  if (!s.ok()) {
    status_ = s.status();
    return std::nullopt;
  }
  if (s->records.empty()) return std::nullopt;
  pos_ = LogPosition{pos_.offset + s->records.bytes.size(), pos_.seq + s->records.count};
  slice_ = LogSlice{};
  slice_used_ = 0;
  return std::move(*s);
}

std::optional<EventView> LogReader::next(uint64_t limit_offset) {
  std::optional<EventView> ev = peek(limit_offset);
  if (ev) {
    const size_t size = ev->header->padded_size();
    slice_used_ += size;
    pos_ = LogPosition{pos_.offset + size, pos_.seq + 1};
  }
  return ev;
}

std::optional<EventView> LogReader::peek(uint64_t limit_offset) {
  if (pos_.offset >= limit_offset) return std::nullopt;
  if (slice_used_ >= slice_.records.bytes.size()) {
    absl::StatusOr<LogSlice> s = log_->read(pos_, limit_offset, kReaderFetchBytes);
    if (!s.ok()) {
      status_ = s.status();
      return std::nullopt;
    }
    if (s->records.empty()) return std::nullopt;
    slice_ = std::move(*s);
    slice_used_ = 0;
  }
  const std::byte* p = slice_.records.bytes.data() + slice_used_;
  const EventHeader* h = header_at(p);
  const size_t size = h->padded_size();
  if (pos_.offset + size > limit_offset) return std::nullopt;
  return EventView{h, ByteSpan{p + kHeaderSize, h->payload_len}};
}

}  // namespace ringlog
