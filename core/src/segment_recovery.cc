// Segment: the scan on open. Every record is checked, the index and counters
// rebuilt, and nonzero bytes after the last valid record cleared.
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "internal/segment.h"
#include "internal/sys.h"
#include "ringlog/status_macros.h"

namespace ringlog {
namespace {

// The first byte past the last nonzero byte in [from, to) of the mapped file,
// or `from` when all are zero. Skips holes (never-written preallocated space)
// without reading them.
uint64_t nonzero_end(int fd, const std::byte* base, uint64_t from, uint64_t to) {
  uint64_t last = from;
  uint64_t pos = from;
  while (pos < to) {
    off_t data = lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // no data after pos
      data = static_cast<off_t>(pos);  // SEEK_DATA unsupported: scan everything
    }
    off_t hole = lseek(fd, data, SEEK_HOLE);
    const uint64_t stop = hole < 0 ? to : std::min<uint64_t>(to, static_cast<uint64_t>(hole));
    // Scan 64-byte blocks; only the block holding the last nonzero byte matters.
    uint64_t p = std::max<uint64_t>(pos, static_cast<uint64_t>(data));
    while (p < stop) {
      const uint64_t n = std::min<uint64_t>(64, stop - p);
      uint64_t acc = 0;
      for (uint64_t i = 0; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, base + p + i, 8);
        acc |= w;
      }
      for (uint64_t i = n & ~uint64_t{7}; i < n; ++i) acc |= std::to_integer<uint64_t>(base[p + i]);
      if (acc != 0) {
        for (uint64_t i = n; i > 0; --i) {
          if (base[p + i - 1] != std::byte{0}) {
            last = p + i;
            break;
          }
        }
      }
      p += n;
    }
    pos = stop;
  }
  return last;
}

}  // namespace

absl::Status Segment::recover(uint64_t max_ts_before, std::string* problem,
                              uint64_t* cleared_bytes,
                              const std::function<absl::Status(uint64_t)>& before_change) {
  max_ts_before_ = max_ts_before;
  max_ts_local_ = max_ts_before;
  uint64_t rel = 0;
  RecordStatus st = RecordStatus::kZero;  // a full segment ends cleanly too
  while (rel < capacity_) {
    EventView v;
    const RecordStatus r = check_record(records() + rel, capacity_ - rel, &v);
    if (r != RecordStatus::kOk) {
      st = r;
      break;
    }
    note_record(rel, v.timestamp());
    rel += v.header->padded_size();
  }
  size_local_ = rel;
  problem->clear();
  if (st != RecordStatus::kZero) {
    *problem = absl::StrFormat("%s: %s at log offset %d", path_, record_status_name(st),
                               base_offset() + rel);
  } else if (header().sealed() && header().write_offset != rel) {
    *problem = absl::StrFormat("%s: sealed with %d record bytes but only %d are valid", path_,
                               header().write_offset, rel);
  }
  *cleared_bytes = 0;
  if (!problem->empty() && before_change) RINGLOG_RETURN_IF_ERROR(before_change(base_offset() + rel));
  if (writable_ && !problem->empty() && header().sealed()) {
    // The log ends in this segment now: it is the active one again, and its
    // stale counters must not flag it at the next open.
    RINGLOG_RETURN_IF_ERROR(write_at(0, &initial_header_, sizeof initial_header_));
    sealed_.store(false, std::memory_order_release);
  }
  if (writable_) {
    const uint64_t from = kFileHeaderSize + rel;
    const uint64_t end = nonzero_end(fd_, base_, from, kFileHeaderSize + capacity_);
    if (end > from) {
      RINGLOG_RETURN_IF_ERROR(zero_range(from, end));
      if (fdatasync(fd_) != 0) return internal::errno_status(errno, "cannot sync", path_);
      *cleared_bytes = end - from;
    }
  }
  publish();
  return absl::OkStatus();
}

}  // namespace ringlog
