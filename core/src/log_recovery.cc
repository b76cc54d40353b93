// SegmentedLog: opening a log directory and recovering its segments.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "internal/log_checkpoint.h"
#include "internal/log_files.h"
#include "internal/segment.h"
#include "internal/segment_preparer.h"
#include "internal/sys.h"
#include "ringlog/segmented_log.h"

namespace ringlog {

using internal::kPreparedPrefix;
using internal::kSegmentSuffix;
using internal::make_dirs;
using internal::parse_segment_name;

// ---- Open, recovery ----

SegmentedLog::SegmentedLog(std::string dir, LogOptions options)
    : dir_(std::move(dir)), options_(options) {}

SegmentedLog::~SegmentedLog() {
  preparer_.reset();  // stops the thread and deletes an unused prepared file
  if (ckpt_ && active_ != nullptr) (void)write_checkpoint(/*force=*/true, /*sync=*/true);
  if (reserved_) (void)reserved_->remove_file();
  if (dir_fd_ >= 0) close(dir_fd_);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

std::string SegmentedLog::segment_path(uint64_t base_offset) const {
  return absl::StrFormat("%s/%020d%s", dir_, base_offset, kSegmentSuffix);
}

absl::StatusOr<std::unique_ptr<SegmentedLog>> SegmentedLog::Open(const std::string& dir,
                                                                 const LogOptions& options,
                                                                 RecoveryReport* report) {
  if (options.segment_bytes < kFileHeaderSize + kMaxRecordSize ||
      options.segment_bytes > (uint64_t{4} << 30)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "segment size %d is invalid: must be between %d bytes (a header and the largest "
        "record) and 4 GiB",
        options.segment_bytes, kFileHeaderSize + kMaxRecordSize));
  }
  std::unique_ptr<SegmentedLog> log(new SegmentedLog(dir, options));
  if (!options.read_only) {
    RINGLOG_RETURN_IF_ERROR(make_dirs(dir));
    RINGLOG_RETURN_IF_ERROR(log->lock_dir());
  }
  RecoveryReport local;
  RINGLOG_RETURN_IF_ERROR(log->recover(report != nullptr ? report : &local));
  if (!options.read_only && options.prepare_ahead) {
    log->preparer_ = std::make_unique<SegmentPreparer>(
        dir, options.segment_bytes, options.index_interval_bytes,
        log->segment_for(log->end().offset));
    log->preparer_->want_prepared();
    log->want_warm();
  }
  return log;
}

absl::Status SegmentedLog::lock_dir() {
  const std::string lock_path = dir_ + "/LOCK";
  lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return internal::errno_status(errno, "cannot open", lock_path);
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrFormat("data directory %s is in use by another process", dir_));
    }
    return internal::errno_status(errno, "cannot lock", lock_path);
  }
  dir_fd_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return internal::errno_status(errno, "cannot open directory", dir_);
  return absl::OkStatus();
}

namespace {

// The base offsets of the segment files in `dir`, in order. Removes
// prepared files that were never used when `writable`.
absl::StatusOr<std::vector<uint64_t>> list_segments(const std::string& dir, bool writable) {
  std::vector<uint64_t> bases;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return internal::errno_status(errno, "cannot read directory", dir);
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (std::optional<uint64_t> base = parse_segment_name(name)) {
      bases.push_back(*base);
    } else if (name.starts_with(kPreparedPrefix) && writable) {
      unlinkat(dirfd(d), e->d_name, 0);  // a prepared file that was never used
    }
  }
  closedir(d);
  std::sort(bases.begin(), bases.end());
  return bases;
}

}  // namespace

absl::Status SegmentedLog::recover(RecoveryReport* report) {
  *report = RecoveryReport{};
  const bool writable = !options_.read_only;
  absl::StatusOr<internal::LogCheckpoint> ck = internal::LogCheckpoint::Open(dir_, writable);
  if (!ck.ok()) return ck.status();
  ckpt_ = std::make_unique<internal::LogCheckpoint>(std::move(*ck));
  const std::optional<internal::CheckpointState> want = ckpt_->loaded();
  absl::StatusOr<std::vector<uint64_t>> bases = list_segments(dir_, writable);
  if (!bases.ok()) return bases.status();
  if (want) RINGLOG_RETURN_IF_ERROR(finish_retention(*bases, want->start_offset, writable));
  absl::StatusOr<std::vector<std::shared_ptr<Segment>>> segs =
      scan_segments(*bases, want, report);
  if (!segs.ok()) return segs.status();
  const size_t kept = segs->size();
  // Segments after the end of the log are moved aside, not deleted: an
  // operator may want them, and they must not look like part of the log.
  for (size_t i = kept; writable && i < bases->size(); ++i) {
    RINGLOG_RETURN_IF_ERROR(quarantine((*bases)[i], report));
  }
  RINGLOG_RETURN_IF_ERROR(adopt_segments(std::move(*segs)));
  check_against_checkpoint(want, *bases, kept, report);
  if (!writable) return absl::OkStatus();
  std::lock_guard l(ckpt_mu_);
  return write_checkpoint_locked(/*force=*/true, /*sync=*/true);
}

absl::Status SegmentedLog::finish_retention(std::vector<uint64_t>& bases, uint64_t start,
                                            bool writable) {
  // Retention writes the new start to the checkpoint before it deletes: a
  // crash in between leaves segments wholly before the start, to delete now.
  while (bases.size() >= 2 && bases[1] <= start) {
    const std::string path = segment_path(bases.front());
    if (writable && unlink(path.c_str()) != 0 && errno != ENOENT) {
      return internal::errno_status(errno, "cannot remove", path);
    }
    bases.erase(bases.begin());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::shared_ptr<Segment>>> SegmentedLog::scan_segments(
    std::vector<uint64_t>& bases, const std::optional<internal::CheckpointState>& want,
    RecoveryReport* report) {
  const bool writable = !options_.read_only;
  uint64_t max_ts = 0;
  LogPosition expect{};
  std::vector<std::shared_ptr<Segment>> segs;
  for (size_t i = 0; i < bases.size(); ++i) {
    const std::string path = segment_path(bases[i]);
    const bool last = i + 1 == bases.size();
    absl::StatusOr<std::unique_ptr<Segment>> s =
        Segment::Open(path, writable, options_.index_interval_bytes);
    if (!s.ok()) {
      // A crash between creating the last segment and writing its header
      // leaves an all-zero header: that segment never held a record.
      if (last && absl::IsDataLoss(s.status()) && writable &&
          absl::StrContains(s.status().message(), "never started")) {
        report->problem = std::string(s.status().message());
        unlink(path.c_str());
        bases.pop_back();
        break;
      }
      if (absl::IsDataLoss(s.status())) {
        // A damaged header: the log ends where this segment began, and the
        // file is moved aside with the ones after it.
        report->problem = std::string(s.status().message());
        break;
      }
      return absl::Status(s.status().code(),
                          absl::StrCat(s.status().message(),
                                       "; move it out of the data directory if it is not a "
                                       "segment of this log, or put the right file back"));
    }
    Segment& seg = **s;
    std::string problem;
    if (seg.base_offset() != bases[i]) {
      problem = absl::StrFormat("%s: header says base offset %d", path, seg.base_offset());
    } else if (!segs.empty() && (seg.base_offset() != expect.offset || seg.base_seq() != expect.seq)) {
      problem = absl::StrFormat("%s: starts at offset %d seq %d, but the log before ends at offset %d seq %d",
                                path, seg.base_offset(), seg.base_seq(), expect.offset, expect.seq);
    }
    if (!problem.empty()) {
      report->problem = problem;  // this and later segments are quarantined
      break;
    }
    // Damage before the durable offset, or in a segment that others follow,
    // is not a torn tail: the damaged file is kept aside before it changes.
    const uint64_t must = want ? want->owed_offset() : 0;
    auto before_change = [&, base = bases[i]](uint64_t at) -> absl::Status {
      if (last && at >= must) return absl::OkStatus();
      return writable ? keep_aside(base, report) : absl::OkStatus();
    };
    uint64_t cleared = 0;
    RINGLOG_RETURN_IF_ERROR(seg.recover(max_ts, &problem, &cleared, before_change));
    report->cleared_bytes += cleared;
    max_ts = seg.max_timestamp();
    expect = LogPosition{seg.end_offset(), seg.end_seq()};
    report->segments++;
    report->events += seg.count();
    report->bytes += seg.size();
    if (writable && !last && !seg.sealed() && problem.empty()) RINGLOG_RETURN_IF_ERROR(seg.seal());
    segs.push_back(std::move(*s));
    if (!problem.empty()) {
      // The log ends here; what follows cannot be trusted to continue it.
      report->problem = problem;
      break;
    }
  }
  return segs;
}

std::string SegmentedLog::quarantine_path(uint64_t base_offset, std::string_view what) const {
  return absl::StrFormat("%s/quarantine/%020d%s.%s%d", dir_, base_offset, kSegmentSuffix, what,
                         absl::ToUnixSeconds(absl::Now()));
}

absl::Status SegmentedLog::quarantine(uint64_t base_offset, RecoveryReport* report) {
  const std::string from = segment_path(base_offset);
  RINGLOG_RETURN_IF_ERROR(make_dirs(dir_ + "/quarantine"));
  const std::string to = quarantine_path(base_offset, "");
  if (rename(from.c_str(), to.c_str()) != 0) {
    return internal::errno_status(errno, "cannot move aside", from);
  }
  report->quarantined.push_back(to);
  return absl::OkStatus();
}

absl::Status SegmentedLog::keep_aside(uint64_t base_offset, RecoveryReport* report) {
  // A copy, not the file: the records before the damage stay in the log.
  RINGLOG_RETURN_IF_ERROR(make_dirs(dir_ + "/quarantine"));
  const std::string from = segment_path(base_offset);
  const std::string to = quarantine_path(base_offset, "damaged.");
  RINGLOG_RETURN_IF_ERROR(internal::copy_file(from, to));
  report->quarantined.push_back(to);
  return absl::OkStatus();
}

absl::Status SegmentedLog::adopt_segments(std::vector<std::shared_ptr<Segment>> segs) {
  const bool writable = !options_.read_only;
  {
    std::unique_lock l(mu_);
    segments_ = segs;
  }
  if (segs.empty()) {
    if (!writable) return absl::NotFoundError(absl::StrFormat("%s holds no log segments", dir_));
    FileHeader h;
    h.created_ns = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
    absl::StatusOr<std::shared_ptr<Segment>> s = new_segment(h, false);
    if (!s.ok()) return s.status();
    (*s)->init_empty(0);
    std::unique_lock l(mu_);
    segments_.push_back(*s);
    segs.push_back(*s);
  }
  start_.store(LogPosition{segs.front()->base_offset(), segs.front()->base_seq()});
  active_ = segs.back().get();
  publish_end();
  durable_offset_.store(segs.back()->end_offset(), std::memory_order_release);
  if (writable && active_->sealed()) RINGLOG_RETURN_IF_ERROR(roll());
  return absl::OkStatus();
}

// ---- The checkpoint ----

void SegmentedLog::check_against_checkpoint(const std::optional<internal::CheckpointState>& want,
                                            const std::vector<uint64_t>& bases, size_t kept,
                                            RecoveryReport* report) {
  const uint64_t start = start_.load().offset;
  const uint64_t end = end_.load().offset;
  // The log held everything below `reach`: what was durable or committed,
  // and the start of any segment file that could not be kept.
  uint64_t reach = want ? want->owed_offset() : 0;
  if (kept < bases.size()) reach = std::max(reach, bases.back() + 1);
  must_start_.store(want ? std::min(want->start_offset, start) : start, std::memory_order_release);
  // Not raised to the end: what recovery found is durable only once synced.
  must_reach_.store(reach, std::memory_order_release);
  committed_.store(want ? want->committed_offset : 0, std::memory_order_release);
  {
    std::lock_guard l(ckpt_mu_);
    ckpt_last_base_ = active_->base_offset();
  }
  if (ckpt_->damaged() && report->problem.empty()) {
    report->problem = absl::StrFormat(
        "%s is damaged (neither copy is valid): lost records cannot be told from a torn tail "
        "at this open",
        ckpt_->path());
  }
  const std::optional<LostRange> gone = lost();
  if (!gone) return;
  report->lost_from = gone->from;
  report->lost_to = gone->to;
  if (gone->at_start) {
    report->data_loss = absl::StrFormat(
        "the log starts at offset %d, but its checkpoint says it held records from offset %d: "
        "the segment file(s) before %s are missing",
        start, gone->from, segment_path(start));
  } else {
    report->data_loss = absl::StrFormat(
        "the log ends at offset %d, but it held records up to offset %d (durable or "
        "committed, by %s): %s",
        end, gone->to, ckpt_->path(),
        report->problem.empty() ? "the segment file(s) after the end are missing"
                                : report->problem);
  }
  if (report->problem.empty()) report->problem = report->data_loss;
}

std::optional<LostRange> SegmentedLog::lost() const {
  // acquire: pairs with the release stores of the checkpoint's fields.
  const uint64_t must_start = must_start_.load(std::memory_order_acquire);
  const uint64_t must_reach = must_reach_.load(std::memory_order_acquire);
  const uint64_t start = start_.load().offset;
  const uint64_t end = end_.load().offset;
  if (start > must_start) return LostRange{must_start, start, true};
  if (end < must_reach) return LostRange{end, must_reach, false};
  return std::nullopt;
}

void SegmentedLog::note_committed(uint64_t offset) {
  std::lock_guard l(ckpt_mu_);
  if (offset <= committed_.load(std::memory_order_relaxed)) return;
  // release: lost() and committed_offset() readers see it with the log's end.
  committed_.store(offset, std::memory_order_release);
  (void)write_checkpoint_locked(/*force=*/false, /*sync=*/false);  // a failed write is retried
}

void SegmentedLog::write_pending_checkpoint() {
  std::lock_guard l(ckpt_mu_);
  if (ckpt_dirty_) (void)write_checkpoint_locked(/*force=*/true, /*sync=*/false);  // retried
}

absl::Status SegmentedLog::accept_loss() {
  std::lock_guard l(ckpt_mu_);
  const LogPosition start = start_.load();
  const LogPosition end = end_.load();
  must_start_.store(start.offset, std::memory_order_release);
  must_reach_.store(end.offset, std::memory_order_release);
  if (committed_.load(std::memory_order_relaxed) > end.offset) {
    committed_.store(end.offset, std::memory_order_release);
  }
  return write_checkpoint_locked(/*force=*/true, /*sync=*/true);
}

absl::Status SegmentedLog::write_checkpoint(bool force, bool sync) {
  std::lock_guard l(ckpt_mu_);
  return write_checkpoint_locked(force, sync);
}

absl::Status SegmentedLog::write_checkpoint_locked(bool force, bool sync) {
  if (!ckpt_ || options_.read_only) return absl::OkStatus();
  const uint64_t now = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
  if (!force && now - ckpt_written_ns_ < 1'000'000) {
    ckpt_dirty_ = true;  // the next write, or close, takes it
    return absl::OkStatus();
  }
  internal::CheckpointState st;
  st.start_offset = must_start_.load(std::memory_order_relaxed);
  st.last_base = ckpt_last_base_;
  st.durable_offset = must_reach_.load(std::memory_order_relaxed);
  st.committed_offset = committed_.load(std::memory_order_relaxed);
  ckpt_written_ns_ = now;
  ckpt_dirty_ = false;
  return ckpt_->write(st, sync);
}

}  // namespace ringlog
