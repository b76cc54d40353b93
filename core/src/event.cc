#include "ringlog/event.h"

#include "absl/strings/str_format.h"
#include "ringlog/crc32c.h"

namespace ringlog {

uint32_t EventHeader::compute_checksum(ByteSpan payload) const noexcept {
  // Bytes 0-11: the header without its checksum field.
  const uint32_t c = crc32c::extend(0, this, 12);
  return crc32c::extend(c, payload.data(), payload.size());
}

const char* record_status_name(RecordStatus s) noexcept {
  switch (s) {
    case RecordStatus::kOk: return "ok";
    case RecordStatus::kZero: return "zero header";
    case RecordStatus::kTruncated: return "truncated record";
    case RecordStatus::kBadChecksum: return "checksum mismatch";
    case RecordStatus::kBadPadding: return "nonzero padding";
  }
  return "unknown";
}

RecordStatus check_record(const std::byte* data, size_t size, EventView* out) noexcept {
  if (size < kHeaderSize) {
    // Fewer bytes than a header: zero bytes are a clean end, others a torn write.
    for (size_t i = 0; i < size; ++i) {
      if (data[i] != std::byte{0}) return RecordStatus::kTruncated;
    }
    return RecordStatus::kZero;
  }
  if (is_zero_header(data)) return RecordStatus::kZero;
  const EventHeader* h = header_at(data);
  const size_t padded = h->padded_size();
  if (padded > size) return RecordStatus::kTruncated;
  const ByteSpan payload{data + kHeaderSize, h->payload_len};
  if (!h->verify_checksum(payload)) return RecordStatus::kBadChecksum;
  for (size_t i = h->total_size(); i < padded; ++i) {
    if (data[i] != std::byte{0}) return RecordStatus::kBadPadding;
  }
  if (out != nullptr) *out = EventView{h, payload};
  return RecordStatus::kOk;
}

namespace {

// When the four records at `data` are whole, valid and of one payload
// length, their bytes; else 0.
size_t check_four_alike(const std::byte* data, size_t size) noexcept {
  if (size < 4 * kHeaderSize) return 0;
  const EventHeader* h[4];
  const EventHeader* first = header_at(data);
  const size_t padded = first->padded_size();
  if (4 * padded > size) return 0;
  const uint16_t len = first->payload_len;
  for (int i = 0; i < 4; ++i) {
    h[i] = header_at(data + i * padded);
    if (h[i]->payload_len != len || is_zero_header(data + i * padded)) return 0;
  }
  uint32_t crc[4] = {0, 0, 0, 0};
  const void* parts[4];
  // Header bytes 0-11, then the payload: as EventHeader::compute_checksum.
  for (int i = 0; i < 4; ++i) parts[i] = h[i];
  crc32c::extend4(crc, parts, 12);
  for (int i = 0; i < 4; ++i) parts[i] = data + i * padded + kHeaderSize;
  crc32c::extend4(crc, parts, len);
  for (int i = 0; i < 4; ++i) {
    if (crc[i] != h[i]->checksum) return 0;
    for (size_t b = kHeaderSize + len; b < padded; ++b) {
      if (data[i * padded + b] != std::byte{0}) return 0;
    }
  }
  return 4 * padded;
}

}  // namespace

absl::StatusOr<size_t> check_records(ByteSpan records) {
  if (reinterpret_cast<uintptr_t>(records.data()) % kRecordAlign != 0) {
    return absl::InvalidArgumentError("records are not 8-byte aligned in memory");
  }
  size_t pos = 0;
  size_t n = 0;
  while (pos < records.size()) {
    // Four records of one payload length (the usual case) are checked
    // together; anything wrong is found again, and described, below.
    if (const size_t k = check_four_alike(records.data() + pos, records.size() - pos); k > 0) {
      pos += k;
      n += 4;
      continue;
    }
    EventView v;
    const RecordStatus st = check_record(records.data() + pos, records.size() - pos, &v);
    if (st != RecordStatus::kOk) {
      std::string why = record_status_name(st);
      if (st == RecordStatus::kTruncated && records.size() - pos >= kHeaderSize) {
        const EventHeader* h = header_at(records.data() + pos);
        why = absl::StrFormat("truncated record (payload_len %d needs %d bytes, %d left)",
                              h->payload_len, h->padded_size(), records.size() - pos);
      } else if (st == RecordStatus::kZero) {
        why = "all-zero header";
      }
      return absl::InvalidArgumentError(absl::StrFormat("record %d at byte %d: %s", n, pos, why));
    }
    pos += v.header->padded_size();
    ++n;
  }
  return n;
}

}  // namespace ringlog
