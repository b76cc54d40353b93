// The segmented log over a directory: segment files (file_header.h) named by
// the log offset of their first record, rolled when full, recovered on open,
// looked up by seq, time or offset, trimmed by retention and truncation.
// LogReader (log_reader.h) reads it in order.
//
//   auto log = ringlog::SegmentedLog::Open("/var/lib/ringlog", {});
//   (*log)->append_event(header, payload);       // writer thread
//   ringlog::LogReader reader(**log, (*log)->start());
//   while (auto ev = reader.next((*log)->end().offset)) use(*ev);
//
// Threads: one writer thread appends, rolls, syncs, truncates and applies
// retention; any thread looks up and reads. A background thread prepares the
// next segment file (options.prepare_ahead); its state is private to the log.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ringlog/event.h"
#include "ringlog/file_header.h"
#include "ringlog/log_position.h"
#include "ringlog/ring.h"

namespace ringlog {

class Segment;
class SegmentPreparer;
namespace internal {
class LogCheckpoint;
struct CheckpointState;
}

// Records a log once held and lacks now (SegmentedLog::lost()).
struct LostRange {
  uint64_t from = 0;  // [from, to) of the log's offsets
  uint64_t to = 0;
  bool at_start = false;  // before the log's start (a first segment missing), else after its end
};

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
  // Record bytes that still fit in the active segment.
  uint64_t active_room() const noexcept;
  // Makes sure the next roll has its file: takes the one prepared ahead, or
  // creates and allocates one now. RESOURCE_EXHAUSTED, with nothing changed,
  // when the disk cannot hold another segment: a writer asks before a batch
  // that needs a roll (so that a full disk refuses it before any of it is
  // written), and to learn that space is back.
  absl::Status reserve_next_segment();
  // Makes everything appended durable: fdatasync when `flush` is set,
  // otherwise only publishes the durable offset (fsync policy "none").
  absl::Status sync(bool flush = true);
  // Drops every record at or after `offset` (a record boundary).
  absl::Status truncate(uint64_t offset);
  // Deletes sealed segments beyond the retention limits; returns how many.
  absl::StatusOr<size_t> apply_retention(absl::Time now);
  // Gives up the records lost() names: the checkpoint is set to what the
  // log holds now, so that it opens without them from now on.
  absl::Status accept_loss();

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

  // ---- The checkpoint (what recovery must find again) ----

  // Records this log held (by its checkpoint) that it lacks now: damaged or
  // deleted, found at open; nullopt when it lacks none. A replica fetching
  // its primary's log fills the range after its end again.
  std::optional<LostRange> lost() const;
  // Everything below `offset` is committed (acknowledged to clients): kept
  // in the checkpoint, written at most once per millisecond and at close.
  void note_committed(uint64_t offset);
  // Writes what note_committed() (or another change) left for the next
  // write, if anything: the owner calls it now and then (a node: every
  // 100 ms), so that a crash loses at most that much of the commit offset.
  void write_pending_checkpoint();
  // The commit offset the checkpoint holds (what note_committed() said last).
  uint64_t committed_offset() const noexcept {
    return committed_.load(std::memory_order_acquire);
  }

  std::vector<SegmentInfo> segments() const;
  size_t segment_count() const;
  const std::string& dir() const noexcept { return dir_; }
  const LogOptions& options() const noexcept { return options_; }

 private:
  SegmentedLog(std::string dir, LogOptions options);
  absl::Status lock_dir();
  // Open: lists the segment files, scans them in order (each continues the
  // one before; the first damaged one ends the log), moves aside those
  // after the end, and takes the rest as the log.
  absl::Status recover(RecoveryReport* report);
  absl::StatusOr<std::vector<std::shared_ptr<Segment>>> scan_segments(
      std::vector<uint64_t>& bases, const std::optional<internal::CheckpointState>& want,
      RecoveryReport* report);
  absl::Status finish_retention(std::vector<uint64_t>& bases, uint64_t start, bool writable);
  absl::Status quarantine(uint64_t base_offset, RecoveryReport* report);
  std::string quarantine_path(uint64_t base_offset, std::string_view what) const;
  absl::Status adopt_segments(std::vector<std::shared_ptr<Segment>> segs);
  absl::StatusOr<std::shared_ptr<Segment>> new_segment(const FileHeader& header, bool exact);
  // A new, allocated segment file under a temporary name in the directory.
  absl::StatusOr<std::unique_ptr<Segment>> create_segment_file(uint64_t file_size);
  std::shared_ptr<Segment> segment_for(uint64_t offset) const;
  std::shared_ptr<Segment> segment_for_seq(uint64_t seq) const;
  void publish_end();
  void want_warm();
  // Writes the checkpoint with the log as it is now (writer thread, or Open
  // and close); `force` writes even when one was written less than 1 ms ago.
  absl::Status write_checkpoint(bool force, bool sync);
  absl::Status write_checkpoint_locked(bool force, bool sync);
  void note_active_base();
  // Open: how the segments found compare with the checkpoint.
  void check_against_checkpoint(const std::optional<internal::CheckpointState>& want,
                                const std::vector<uint64_t>& bases, size_t kept,
                                RecoveryReport* report);
  absl::Status keep_aside(uint64_t base_offset, RecoveryReport* report);
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
  std::unique_ptr<Segment> reserved_;  // writer only: the next segment's file, if reserved

  AtomicPosition start_;
  AtomicPosition end_;
  std::atomic<uint64_t> durable_offset_{0};

  // The checkpoint: written by the writer thread (sync, roll, retention,
  // truncate) and by whoever calls note_committed(), under ckpt_mu_.
  mutable std::mutex ckpt_mu_;
  std::unique_ptr<internal::LogCheckpoint> ckpt_;  // null when read-only and absent
  uint64_t ckpt_written_ns_ = 0;
  bool ckpt_dirty_ = false;
  uint64_t ckpt_last_base_ = 0;
  // What the checkpoint holds that lost() compares with (atomics so that
  // lost() takes no lock; relaxed ordering would do for a report, acquire
  // and release keep them in step with end_ for the readers that act on it).
  std::atomic<uint64_t> must_start_{0};   // the log's start by the checkpoint
  std::atomic<uint64_t> must_reach_{0};   // the log held everything below this
  std::atomic<uint64_t> committed_{0};

  // The background thread that prepares the next segment file and warms the
  // active one (null when options_.prepare_ahead is off or read-only). Its
  // state lives behind this pointer, in core/src/internal: the writer follows
  // it only to take a prepared file at a roll and to ask for more warming
  // once per warm_bytes / 2 of appends, so an append tests the pointer and
  // warm_asked_ and goes no further.
  std::unique_ptr<SegmentPreparer> preparer_;
  uint64_t warm_asked_ = 0;    // writer only: the last warm target it asked for
  uint64_t prep_counter_ = 0;  // writer only: names its own temporary files
};

}  // namespace ringlog
