// Storage: memory-mapped segment files and the segmented log over a directory.
// Byte-level spec: docs/format.md.
//
// A segment file is a 64-byte FileHeader followed by records (event.h),
// sized to the segment size when it is created. Records are written with
// pwrite and read through a shared read-only map of the file:
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
//
//   auto log = ringlog::SegmentedLog::Open("/var/lib/ringlog", {});
//   (*log)->append_event(header, payload);       // writer thread
//   ringlog::LogReader reader(**log, (*log)->start());
//   while (auto ev = reader.next((*log)->end().offset)) use(*ev);
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ringlog/event.h"
#include "ringlog/ring.h"

namespace ringlog {

inline constexpr size_t kFileHeaderSize = 64;
inline constexpr char kFileMagic[4] = {'E', 'V', 'T', 'L'};
inline constexpr uint16_t kFileVersion = 1;
inline constexpr uint32_t kSegmentSealed = 1u << 0;

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
  std::vector<std::string> quarantined;  // later segments moved aside after a corrupt one
};

// A position in the log: byte offset (record bytes only) and event seq.
struct LogPosition {
  uint64_t offset = 0;
  uint64_t seq = 0;
  friend bool operator==(const LogPosition&, const LogPosition&) = default;
};

class Segment;

// A position that one thread stores and any thread loads whole: a seqlock
// keeps the offset and seq of one moment together.
class AtomicPosition {
 public:
  void store(LogPosition p) noexcept;
  LogPosition load() const noexcept;

 private:
  std::atomic<uint64_t> version_{0};
  std::atomic<uint64_t> offset_{0};
  std::atomic<uint64_t> seq_{0};
};

// ---------------------------------------------------------------------------
// One file, the seed's interface.

class MmapWriter {
 public:
  // Creates (or replaces) `path`, preallocated to `capacity` bytes, header included.
  static absl::StatusOr<MmapWriter> Create(const std::string& path, uint64_t capacity);
  // Opens an existing file, recovers it, and appends after its last valid record.
  static absl::StatusOr<MmapWriter> Open(const std::string& path,
                                         RecoveryReport* report = nullptr);

  MmapWriter(MmapWriter&&) noexcept;
  MmapWriter& operator=(MmapWriter&&) noexcept;
  ~MmapWriter();

  // kNotEnoughSpace when the file is full: nothing is written.
  WriteResult write_event(const EventHeader& header, ByteSpan payload) noexcept;
  // Flushes written records to disk (fdatasync).
  absl::Status sync();

  uint64_t event_count() const noexcept;
  uint64_t write_offset() const noexcept;  // record bytes written
  uint64_t capacity() const noexcept;      // record bytes the file holds

 private:
  explicit MmapWriter(std::unique_ptr<Segment> s);
  std::unique_ptr<Segment> segment_;
};

class MmapReader {
 public:
  // Maps `path` read-only and finds its valid records; does not modify it.
  static absl::StatusOr<MmapReader> Open(const std::string& path);

  MmapReader(MmapReader&&) noexcept;
  MmapReader& operator=(MmapReader&&) noexcept;
  ~MmapReader();

  // Calls `fn` with each valid record in order; returns how many.
  size_t replay(const std::function<void(const EventView&)>& fn) const;

  class Iterator {
   public:
    using value_type = EventView;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    Iterator(const std::byte* p, const std::byte* end) : p_(p), end_(end) {}
    EventView operator*() const noexcept {
      const EventHeader* h = header_at(p_);
      return EventView{h, ByteSpan{p_ + kHeaderSize, h->payload_len}};
    }
    Iterator& operator++() noexcept {
      p_ += header_at(p_)->padded_size();
      return *this;
    }
    Iterator operator++(int) noexcept {
      Iterator t = *this;
      ++*this;
      return t;
    }
    bool operator==(const Iterator& o) const noexcept { return p_ == o.p_; }

   private:
    const std::byte* p_ = nullptr;
    const std::byte* end_ = nullptr;
  };
  Iterator begin() const noexcept;
  Iterator end() const noexcept;

  uint64_t event_count() const noexcept;
  uint64_t valid_bytes() const noexcept;
  const FileHeader& header() const noexcept;
  // Empty when the records end cleanly; otherwise what stopped the scan.
  const std::string& problem() const noexcept;

 private:
  MmapReader(std::unique_ptr<Segment> s, std::string problem);
  std::unique_ptr<Segment> segment_;
  std::string problem_;
};

// ---------------------------------------------------------------------------
// The segmented log over a directory.

struct LogOptions {
  // Size of each segment file, header included. A record never spans two files.
  uint64_t segment_bytes = uint64_t{256} << 20;
  // Retention: keep at most this many record bytes (0: no limit) ...
  uint64_t retention_bytes = 0;
  // ... and drop sealed segments whose newest event is older than this.
  absl::Duration retention_age = absl::InfiniteDuration();
  // One index entry per this many bytes of log; lookups scan at most this far.
  uint32_t index_interval_bytes = 4096;
  // Prepare the next segment file in a background thread ...
  bool prepare_ahead = true;
  // ... which also keeps this many bytes ahead of the writer in the page
  // cache, so that appends copy into pages that already exist instead of
  // allocating them on the writer's thread (0: off).
  uint64_t warm_bytes = uint64_t{64} << 20;
  // Open without modifying anything (no recovery writes, no new segments).
  bool read_only = false;
};

struct SegmentInfo {
  std::string path;
  uint64_t base_offset = 0;
  uint64_t base_seq = 0;
  uint64_t bytes = 0;   // record bytes
  uint64_t events = 0;
  uint64_t max_timestamp = 0;
  uint64_t file_bytes = 0;  // size of the file, header included
  bool sealed = false;
};

struct AppendResult {
  uint64_t bytes = 0;   // record bytes appended (a prefix of what was given)
  uint64_t events = 0;
  absl::Status status;  // not OK when not everything was appended
};

// A run of whole records from one segment, kept mapped while this lives.
struct LogSlice {
  std::shared_ptr<const Segment> segment;
  LogPosition position;  // of the first record
  RecordBatch records;
  // The header of the segment the records are in, and whether the first
  // record is the segment's first (replication sends the header then).
  const FileHeader* segment_header = nullptr;
  bool starts_segment = false;
};

class SegmentedLog {
 public:
  static absl::StatusOr<std::unique_ptr<SegmentedLog>> Open(const std::string& dir,
                                                            const LogOptions& options,
                                                            RecoveryReport* report = nullptr);
  ~SegmentedLog();
  SegmentedLog(const SegmentedLog&) = delete;
  SegmentedLog& operator=(const SegmentedLog&) = delete;

  // ---- Writer thread only ----

  // Appends whole, valid records (a batch from a ring or a peer), rolling to
  // new segments as needed (unless `auto_roll` is false: a replica rolls only
  // where its primary did). On error (no space for a new segment) the result
  // says how much of the batch went in; retry the rest later.
  AppendResult append(ByteSpan records, bool auto_roll = true);
  // Encodes and appends one record.
  absl::Status append_event(const EventHeader& header, ByteSpan payload);
  // Seals the active segment and starts the next. With `header` (a replica
  // copying its primary), the new segment gets exactly those 64 bytes.
  absl::Status roll(const FileHeader* header = nullptr);
  // A replica: makes the segment that starts at the log's end exactly
  // `header` (its primary's). Rolls when the active segment holds records;
  // rewrites the active segment when it is empty; starts the log over at the
  // header's base when the log is empty. FAILED_PRECONDITION when the header
  // does not start at the log's end.
  absl::Status start_segment(const FileHeader& header);
  // Makes everything appended durable: fdatasync when `flush` is set,
  // otherwise only publishes the durable offset (fsync policy "none").
  absl::Status sync(bool flush = true);
  // Drops every record at or after `offset` (a record boundary).
  absl::Status truncate(uint64_t offset);
  // Deletes sealed segments beyond the retention limits; returns how many.
  absl::StatusOr<size_t> apply_retention(absl::Time now);

  // ---- Any thread ----

  LogPosition start() const;
  LogPosition end() const;
  uint64_t durable_offset() const noexcept {
    return durable_offset_.load(std::memory_order_acquire);
  }
  // The position of event `seq`, or end() when seq == end().seq. OUT_OF_RANGE
  // names the valid range otherwise.
  absl::StatusOr<LogPosition> find_seq(uint64_t seq) const;
  // The first event whose timestamp is >= ts (end() when there is none).
  absl::StatusOr<LogPosition> find_time(uint64_t ts) const;
  // Position of the record at byte `offset`; OUT_OF_RANGE or INVALID_ARGUMENT
  // when it is outside the log or not a record boundary.
  absl::StatusOr<LogPosition> find_offset(uint64_t offset) const;
  // Whole records from `from` (a record boundary) before `limit_offset`, at
  // most `max_bytes` (but at least one record), from a single segment.
  absl::StatusOr<LogSlice> read(LogPosition from, uint64_t limit_offset, size_t max_bytes) const;

  std::vector<SegmentInfo> segments() const;
  size_t segment_count() const;
  const std::string& dir() const noexcept { return dir_; }
  const LogOptions& options() const noexcept { return options_; }

 private:
  SegmentedLog(std::string dir, LogOptions options);
  absl::Status lock_dir();
  absl::Status recover(RecoveryReport* report);
  absl::StatusOr<std::shared_ptr<Segment>> new_segment(const FileHeader& header, bool exact);
  std::shared_ptr<Segment> segment_for(uint64_t offset) const;
  std::shared_ptr<Segment> segment_for_seq(uint64_t seq) const;
  void publish_end();
  void preparer_loop();
  void want_prepared();
  void want_warm();
  std::string segment_path(uint64_t base_offset) const;

  const std::string dir_;
  const LogOptions options_;
  int lock_fd_ = -1;
  int dir_fd_ = -1;
  bool dir_dirty_ = false;  // a segment was created or deleted since the last sync; writer only

  mutable std::shared_mutex mu_;  // guards segments_ (the list, not their contents)
  std::vector<std::shared_ptr<Segment>> segments_;
  Segment* active_ = nullptr;  // writer thread only
  std::vector<std::shared_ptr<Segment>> unsynced_;  // sealed, not yet msynced; writer only

  AtomicPosition start_;
  AtomicPosition end_;
  std::atomic<uint64_t> durable_offset_{0};

  // The next segment file, prepared ahead by a background thread.
  // Guarded by prep_mu_: the fields up to warmed_.
  std::mutex prep_mu_;
  std::condition_variable prep_cv_;
  bool prep_wanted_ = false;
  bool prep_stop_ = false;
  std::unique_ptr<Segment> prepared_;
  std::shared_ptr<Segment> warm_segment_;  // the active one
  uint64_t warm_wanted_ = 0;  // warm up to here (relative)
  uint64_t warmed_ = 0;
  uint64_t warm_asked_ = 0;  // writer only: the last warm_wanted_ it set
  uint64_t prep_counter_ = 0;
  std::thread preparer_;
};

// Reads events in order from a position, following the log across segments.
// One thread per reader; many readers may run beside the writer.
class LogReader {
 public:
  LogReader(const SegmentedLog& log, LogPosition from) : log_(&log), pos_(from) {}

  // The next record before `limit_offset`, or nullopt (nothing yet, or an
  // error: see status()). The view stays valid while this reader lives.
  std::optional<EventView> next(uint64_t limit_offset);
  // Like SegmentedLog::read, from this reader's position, and moves past it.
  std::optional<LogSlice> next_slice(uint64_t limit_offset, size_t max_bytes);

  // After the last record handed out.
  LogPosition position() const noexcept { return pos_; }
  const absl::Status& status() const noexcept { return status_; }

 private:
  const SegmentedLog* log_;
  LogPosition pos_;
  LogSlice slice_;         // fetched, partly handed out by next()
  size_t slice_used_ = 0;  // bytes of slice_ handed out
  absl::Status status_;
};

}  // namespace ringlog
