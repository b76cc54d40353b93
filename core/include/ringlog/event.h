// Events: the 16-byte EventHeader and the record format shared by the ring,
// the log files and the wire. Byte-level spec: docs/format.md.
//
//   record = EventHeader | payload | zero padding to a multiple of 8 bytes
//
//   bytes 0-7   timestamp    u64, producer-supplied (ns since the Unix epoch by convention)
//   byte  8     event_type   u8
//   byte  9     flags        u8
//   bytes 10-11 payload_len  u16, so a payload is at most 65,535 bytes
//   bytes 12-15 checksum     u32 CRC32C over bytes 0-11 and the payload
//
// Every record starts 8-byte aligned, in the ring and in the log alike, so a
// batch of records moves between them with one copy.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"

namespace ringlog {

static_assert(std::endian::native == std::endian::little,
              "the record format is little-endian and read in place");

inline constexpr size_t kHeaderSize = 16;
inline constexpr size_t kMaxPayload = 65535;
inline constexpr size_t kRecordAlign = 8;
inline constexpr size_t kMaxRecordSize = (kHeaderSize + kMaxPayload + kRecordAlign - 1) &
                                         ~(kRecordAlign - 1);

// Bytes a record with `payload_len` payload bytes occupies, padding included.
constexpr size_t padded_size(size_t payload_len) noexcept {
  return (kHeaderSize + payload_len + kRecordAlign - 1) & ~(kRecordAlign - 1);
}

using ByteSpan = std::span<const std::byte>;

// The bytes of a string, for payloads built from text.
inline ByteSpan as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

struct EventHeader {
  uint64_t timestamp = 0;
  uint8_t event_type = 0;
  uint8_t flags = 0;
  uint16_t payload_len = 0;
  uint32_t checksum = 0;

  constexpr EventHeader() = default;
  constexpr EventHeader(uint64_t ts, uint8_t type, uint16_t len) noexcept
      : timestamp(ts), event_type(type), payload_len(len) {}

  // Header plus payload, without padding (as in the seed).
  constexpr size_t total_size() const noexcept { return kHeaderSize + payload_len; }
  // What the record occupies in the ring and in the log.
  constexpr size_t padded_size() const noexcept { return ringlog::padded_size(payload_len); }

  // CRC32C over header bytes 0-11 and `payload`.
  uint32_t compute_checksum(ByteSpan payload) const noexcept;
  void fill_checksum(ByteSpan payload) noexcept { checksum = compute_checksum(payload); }
  bool verify_checksum(ByteSpan payload) const noexcept {
    return payload.size() == payload_len && checksum == compute_checksum(payload);
  }
};

static_assert(sizeof(EventHeader) == kHeaderSize);
static_assert(alignof(EventHeader) == 8);
static_assert(offsetof(EventHeader, timestamp) == 0);
static_assert(offsetof(EventHeader, event_type) == 8);
static_assert(offsetof(EventHeader, flags) == 9);
static_assert(offsetof(EventHeader, payload_len) == 10);
static_assert(offsetof(EventHeader, checksum) == 12);

// A record read in place: the header and payload point into the ring or the
// mapped file they came from; nothing is copied.
struct EventView {
  const EventHeader* header = nullptr;
  ByteSpan payload;

  uint64_t timestamp() const noexcept { return header->timestamp; }
  uint8_t event_type() const noexcept { return header->event_type; }
  // The whole record, header to end of padding.
  ByteSpan record() const noexcept {
    return {reinterpret_cast<const std::byte*>(header), header->padded_size()};
  }
};

// Writes header (with its checksum computed here), payload and zero padding
// to `dst`, which must have room for padded_size(payload.size()) bytes.
// Returns the bytes written. `header.payload_len` must equal payload.size().
inline size_t encode_record(std::byte* dst, const EventHeader& header, ByteSpan payload) noexcept {
  const size_t size = padded_size(payload.size());
  // Zero the last 8-byte word first: it holds the padding, and the payload
  // copy below overwrites whatever part of it is payload.
  std::memset(dst + size - kRecordAlign, 0, kRecordAlign);
  EventHeader h = header;
  h.fill_checksum(payload);
  std::memcpy(dst, &h, kHeaderSize);
  if (!payload.empty()) std::memcpy(dst + kHeaderSize, payload.data(), payload.size());
  return size;
}

// What validation found at a position in a buffer of records.
enum class RecordStatus : uint8_t {
  kOk,
  kZero,         // an all-zero header: the end of a log's records
  kTruncated,    // the record runs past the end of the bytes given
  kBadChecksum,  // checksum does not match header and payload
  kBadPadding,   // nonzero bytes in the padding
};

const char* record_status_name(RecordStatus s) noexcept;

// Checks the record at `data` (8-byte aligned) with `size` readable bytes.
// On kOk, fills `*out` with a view into `data`.
RecordStatus check_record(const std::byte* data, size_t size, EventView* out) noexcept;

// Checks that `records` (8-byte aligned) is a run of whole, valid records.
// Returns how many, or INVALID_ARGUMENT naming the first bad record, its
// byte position and the reason.
absl::StatusOr<size_t> check_records(ByteSpan records);

// True when the 16 bytes at `p` are all zero (the end marker of a log, and the
// wrap marker of a ring: no valid record has an all-zero header, because the
// checksum of twelve zero bytes is not zero).
inline bool is_zero_header(const std::byte* p) noexcept {
  uint64_t a;
  uint64_t b;
  std::memcpy(&a, p, 8);
  std::memcpy(&b, p + 8, 8);
  return (a | b) == 0;
}

// Reads the header at `p` (8-byte aligned record start).
inline const EventHeader* header_at(const std::byte* p) noexcept {
  return reinterpret_cast<const EventHeader*>(p);
}

}  // namespace ringlog
