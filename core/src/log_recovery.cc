// SegmentedLog: opening a log directory and recovering its segments.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
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
  absl::StatusOr<std::vector<uint64_t>> bases = list_segments(dir_, !options_.read_only);
  if (!bases.ok()) return bases.status();
  absl::StatusOr<std::vector<std::shared_ptr<Segment>>> segs = scan_segments(*bases, report);
  if (!segs.ok()) return segs.status();
  // Segments after the end of the log are moved aside, not deleted: an
  // operator may want them, and they must not look like part of the log.
  for (size_t i = segs->size(); !options_.read_only && i < bases->size(); ++i) {
    RINGLOG_RETURN_IF_ERROR(quarantine((*bases)[i], report));
  }
  return adopt_segments(std::move(*segs));
}

absl::StatusOr<std::vector<std::shared_ptr<Segment>>> SegmentedLog::scan_segments(
    std::vector<uint64_t>& bases, RecoveryReport* report) {
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
      return s.status();
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
    uint64_t cleared = 0;
    RINGLOG_RETURN_IF_ERROR(seg.recover(max_ts, &problem, &cleared));
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

absl::Status SegmentedLog::quarantine(uint64_t base_offset, RecoveryReport* report) {
  const std::string from = segment_path(base_offset);
  const std::string qdir = dir_ + "/quarantine";
  RINGLOG_RETURN_IF_ERROR(make_dirs(qdir));
  const std::string to = absl::StrFormat("%s/%020d%s.%d", qdir, base_offset, kSegmentSuffix,
                                         absl::ToUnixSeconds(absl::Now()));
  if (rename(from.c_str(), to.c_str()) != 0) {
    return internal::errno_status(errno, "cannot move aside", from);
  }
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

}  // namespace ringlog
