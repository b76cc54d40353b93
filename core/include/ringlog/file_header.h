// The 64-byte header at the start of every segment file, and what recovery
// of segment files reports. Byte-level spec: docs/format.md.
//
// A segment file is this header followed by records (event.h), sized to the
// segment size when it is created; after the last record it holds zeros:
//
//   +--------------------------------------------------------------+
//   | FileHeader (64 bytes)                                        |
//   |   0 magic "EVTL"   4 version u16   6 header size u16         |
//   |   8 created ns     16 base offset  24 base seq               |
//   |  32 event count   40 write offset  (advisory, set when sealed)|
//   |  48 file size     56 flags u32     60 CRC32C of bytes 0-59   |
//   +--------------------------------------------------------------+
//   | record | record | ... | zeros to the end of the file         |
//   +--------------------------------------------------------------+
//
// On open the records are scanned and every checksum checked; the log ends at
// the first record that is zero, torn or corrupt, and nonzero bytes after that
// point are cleared, so that a later crash cannot bring stale records back.
// RecoveryReport says what that scan found and did.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ringlog {

inline constexpr size_t kFileHeaderSize = 64;
inline constexpr char kFileMagic[4] = {'E', 'V', 'T', 'L'};
inline constexpr uint16_t kFileVersion = 1;
inline constexpr uint32_t kSegmentSealed = 1u << 0;
// A segment's base offset and seq are at most this, so that no position in
// it (base + at most 4 GiB) can wrap around; a header past it is corrupt.
inline constexpr uint64_t kMaxBasePosition = uint64_t{1} << 62;

struct FileHeader {
  char magic[4] = {'E', 'V', 'T', 'L'};
  uint16_t version = kFileVersion;
  uint16_t header_size = kFileHeaderSize;
  uint64_t created_ns = 0;
  uint64_t base_offset = 0;
  uint64_t base_seq = 0;
  uint64_t event_count = 0;   // advisory: written when the segment is sealed
  uint64_t write_offset = 0;  // advisory: record bytes, written when sealed
  uint64_t file_size = 0;
  uint32_t flags = 0;
  uint32_t checksum = 0;  // CRC32C of bytes 0-59

  uint32_t compute_checksum() const noexcept;
  void fill_checksum() noexcept { checksum = compute_checksum(); }
  bool sealed() const noexcept { return (flags & kSegmentSealed) != 0; }
  // OK, or why these 64 bytes are not a valid header (naming `path`).
  absl::Status validate(const std::string& path) const;
};
static_assert(sizeof(FileHeader) == kFileHeaderSize);
static_assert(offsetof(FileHeader, checksum) == 60);

// What recovery found and did. Nothing in the core logs; the caller reports.
struct RecoveryReport {
  size_t segments = 0;
  uint64_t events = 0;
  uint64_t bytes = 0;           // record bytes kept
  uint64_t cleared_bytes = 0;   // nonzero bytes after the end that were zeroed
  std::string problem;          // the first problem found, empty when clean
  std::vector<std::string> quarantined;  // files moved or copied aside (quarantine/)
  // Records the log's checkpoint says it held (durable, or before a segment
  // that exists) but that are damaged or missing: [lost_from, lost_to) of
  // the log's offsets. Not a torn tail, which is only ever past the durable
  // offset of the last segment. Empty `data_loss` when none.
  std::string data_loss;
  uint64_t lost_from = 0;
  uint64_t lost_to = 0;
};

}  // namespace ringlog
