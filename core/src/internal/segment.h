// One mapped segment file: its records, its sparse index (sparse_index.h),
// recovery and writer-side bookkeeping. Used by SegmentedLog, MmapWriter and
// MmapReader. The methods live by concern: the file and its I/O in
// segment_file.cc, appends and truncation in segment_append.cc, the scan on
// open in segment_recovery.cc, lookups through the index in segment_index.cc.
//
// Threads: one writer (append*, seal, sync, truncate, recover); any number of
// readers (size, count, records_from, find_*), which see a record only after
// the writer has published the size that covers it.
//
// Writes go through pwrite into the page cache and reads through a read-only
// shared map of the same file, which the kernel keeps coherent. Storing
// through a writable map would make the kernel read or zero-fill every page
// before the store overwrites it, which halves the write rate, and a full
// disk would surface as SIGBUS instead of ENOSPC.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "internal/sparse_index.h"
#include "ringlog/event.h"
#include "ringlog/ring.h"
#include "ringlog/file_header.h"
#include "ringlog/log_position.h"

namespace ringlog {

class Segment {
 public:
  using IndexEntry = SparseIndex::Entry;

  // A new file at `path`, sized to `file_size` bytes and mapped, with no
  // header yet (see start()).
  static absl::StatusOr<std::unique_ptr<Segment>> Create(const std::string& path,
                                                         uint64_t file_size,
                                                         uint32_t index_interval);
  // Maps an existing file and checks its header. Call recover() next.
  static absl::StatusOr<std::unique_ptr<Segment>> Open(const std::string& path, bool writable,
                                                       uint32_t index_interval);
  ~Segment();

  // Writes `header` (checksummed here unless `exact`) and renames the file to
  // `final_path` (when not empty). Writer only.
  absl::Status start(FileHeader header, const std::string& final_path, bool exact);

  // Scans the records, verifying every checksum, and builds the index. When
  // writable, zeroes nonzero bytes after the last valid record. Returns the
  // problem that ended the scan ("" for a clean end) in *problem. When there
  // is one, `before_change(log offset where the valid records end)` runs
  // before anything in the file is changed (recovery keeps a copy of a
  // damaged file); its error stops the recovery.
  absl::Status recover(uint64_t max_ts_before, std::string* problem, uint64_t* cleared_bytes,
                       const std::function<absl::Status(uint64_t)>& before_change = {});

  // The header as it is in the file now (counters set once sealed).
  // For a new, empty segment: the running max of timestamps before it.
  void init_empty(uint64_t max_ts_before) noexcept;

  const FileHeader& header() const noexcept { return *reinterpret_cast<const FileHeader*>(base_); }
  // The header as it was written when the segment started (unsealed); what a
  // replica must write to start the same segment. Immutable after start().
  const FileHeader& initial_header() const noexcept { return initial_header_; }
  const std::string& path() const noexcept { return path_; }
  uint64_t base_offset() const noexcept { return header().base_offset; }
  uint64_t base_seq() const noexcept { return header().base_seq; }
  uint64_t capacity() const noexcept { return capacity_; }
  const std::byte* records() const noexcept { return base_ + kFileHeaderSize; }
  bool sealed() const noexcept { return sealed_.load(std::memory_order_acquire); }

  // Published record bytes and events. acquire: pairs with the release in
  // publish(); the records below size() are complete.
  uint64_t size() const noexcept { return size_.load(std::memory_order_acquire); }
  uint64_t count() const noexcept { return count_.load(std::memory_order_acquire); }
  uint64_t max_timestamp() const noexcept { return max_ts_.load(std::memory_order_acquire); }
  uint64_t max_ts_before() const noexcept { return max_ts_before_; }
  uint64_t end_offset() const noexcept { return base_offset() + size(); }
  uint64_t end_seq() const noexcept { return base_seq() + count(); }

  // ---- writer ----
  struct Appended {
    uint64_t bytes = 0;
    uint64_t events = 0;
    absl::Status status;  // an I/O error (e.g. a full disk); nothing was appended
  };
  // Appends the longest prefix of whole records that fits.
  Appended append(ByteSpan records);
  WriteResult append_event(const EventHeader& header, ByteSpan payload) noexcept;
  // Writes the final counters into the header; nothing is appended after.
  absl::Status seal();
  // fdatasync: everything written so far is on disk.
  absl::Status sync();
  // Drops records from `rel` on; `rel` must be a record boundary.
  absl::Status truncate(uint64_t rel);
  // Asks the kernel to bring record bytes [from, to) into the page cache
  // (zero pages for space never written), so a later write finds them there.
  void warm(uint64_t from, uint64_t to) const noexcept;
  // Deletes the file (the mapping stays valid for readers holding it).
  absl::Status remove_file();

  // ---- readers ----
  // Relative offset of event `seq` (base_seq <= seq < end_seq()).
  uint64_t rel_of_seq(uint64_t seq) const noexcept;
  // Relative offset and seq of the first event with timestamp >= ts, or
  // nullopt when every event here is older.
  std::optional<LogPosition> find_time(uint64_t ts) const noexcept;
  // Seq of the record at `rel`, or nullopt when rel is not a record boundary.
  std::optional<uint64_t> seq_at(uint64_t rel) const noexcept;
  // Whole records from `rel` before `limit_rel`, at most max_bytes (but at least one).
  RecordBatch records_from(uint64_t rel, uint64_t limit_rel, size_t max_bytes) const noexcept;

 private:
  Segment(std::string path, int fd, std::byte* base, uint64_t file_size, bool writable,
          uint32_t index_interval);
  // The writer's bookkeeping, saved before a write that may fail.
  struct Bookkeeping {
    uint64_t count;
    uint64_t max_ts;
    SparseIndex::Mark index;
  };
  Bookkeeping bookkeeping() const noexcept { return {count_local_, max_ts_local_, index_.mark()}; }
  void restore(const Bookkeeping& b) noexcept {
    count_local_ = b.count;
    max_ts_local_ = b.max_ts;
    index_.restore(b.index);
  }
  absl::Status write_at(uint64_t file_offset, const void* data, size_t n);
  // Makes file bytes [from, to) zero.
  absl::Status zero_range(uint64_t from, uint64_t to);
  // Bookkeeping for a record at `rel`; writer only.
  void note_record(uint64_t rel, uint64_t ts) noexcept {
    index_.note(rel, count_local_, max_ts_local_);
    if (ts > max_ts_local_) max_ts_local_ = ts;
    ++count_local_;
  }
  void publish() noexcept;

  std::string path_;
  int fd_ = -1;
  std::byte* base_ = nullptr;
  uint64_t file_size_ = 0;
  uint64_t capacity_ = 0;  // record bytes
  bool writable_ = false;

  // Published state (writer stores with release, readers load with acquire).
  std::atomic<uint64_t> size_{0};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> max_ts_{0};
  std::atomic<bool> sealed_{false};
  // The sparse index: readers see the entries below the count published with size_.
  SparseIndex index_;

  // Writer-local state.
  uint64_t size_local_ = 0;
  uint64_t count_local_ = 0;
  uint64_t max_ts_local_ = 0;
  uint64_t max_ts_before_ = 0;
  FileHeader initial_header_;
};

}  // namespace ringlog
