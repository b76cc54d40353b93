// SegmentedLog: the writer, lookups and reads.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cstdio>

#include "absl/strings/match.h"
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

// ---- Writer ----

absl::Status SegmentedLog::roll(const FileHeader* header) {
  const LogPosition end{active_->end_offset(), active_->end_seq()};
  FileHeader h;
  if (header != nullptr) {
    h = *header;
    if (absl::Status st = h.validate("segment header"); !st.ok()) return st;
    if (h.base_offset != end.offset || h.base_seq != end.seq) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "new segment starts at offset %d seq %d but the log ends at offset %d seq %d",
          h.base_offset, h.base_seq, end.offset, end.seq));
    }
  } else {
    h.created_ns = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
    h.base_offset = end.offset;
    h.base_seq = end.seq;
  }
  // Create the next segment first: if that fails (a full disk), the active
  // segment stays open and nothing changes.
  absl::StatusOr<std::shared_ptr<Segment>> next = new_segment(h, header != nullptr);
  if (!next.ok()) return next.status();
  (*next)->init_empty(active_->max_timestamp());
  std::shared_ptr<Segment> old;
  {
    std::unique_lock l(mu_);
    old = segments_.back();
    segments_.push_back(*next);
  }
  if (!old->sealed()) RINGLOG_RETURN_IF_ERROR(old->seal());
  unsynced_.push_back(std::move(old));
  active_ = next->get();
  note_active_base();
  warm_asked_ = 0;
  if (preparer_) {
    preparer_->warm_from_start(*next);
    preparer_->want_prepared();
  }
  want_warm();
  return absl::OkStatus();
}

uint64_t SegmentedLog::active_room() const noexcept {
  return active_->capacity() - active_->size();
}

absl::Status SegmentedLog::start_segment(const FileHeader& header) {
  RINGLOG_RETURN_IF_ERROR(header.validate("segment header from the primary"));
  const LogPosition start = start_.load();
  const LogPosition end = end_.load();
  const bool log_empty = start == end;
  const bool at_end = header.base_offset == end.offset && header.base_seq == end.seq;
  if (!at_end && !log_empty) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "a segment starting at offset %d seq %d cannot follow a log that ends at offset %d seq %d",
        header.base_offset, header.base_seq, end.offset, end.seq));
  }
  if (at_end && active_->size() != 0) return roll(&header);
  if (at_end && std::memcmp(&active_->initial_header(), &header, sizeof header) == 0) {
    return absl::OkStatus();  // already this segment (a chunk sent again)
  }
  // The active segment is empty (or the log is, and starts over at the
  // header's base): replace it by a segment with exactly this header. Only an
  // empty log drops its other (empty) segments; records are never dropped.
  absl::StatusOr<std::shared_ptr<Segment>> next = new_segment(header, /*exact=*/true);
  if (!next.ok()) return next.status();
  (*next)->init_empty(log_empty ? 0 : active_->max_ts_before());
  std::vector<std::shared_ptr<Segment>> old;
  {
    std::unique_lock l(mu_);
    if (log_empty) {
      old.swap(segments_);
    } else {
      old.push_back(segments_.back());
      segments_.pop_back();
    }
    segments_.push_back(*next);
  }
  for (const std::shared_ptr<Segment>& s : old) {
    std::erase(unsynced_, s);
    // The same base means the same name: the new file has replaced it.
    if (s->path() != (*next)->path()) RINGLOG_RETURN_IF_ERROR(s->remove_file());
  }
  active_ = next->get();
  warm_asked_ = 0;
  if (preparer_) preparer_->warm_from_start(*next);
  dir_dirty_ = true;
  if (log_empty) {
    const LogPosition base{header.base_offset, header.base_seq};
    start_.store(base);
    durable_offset_.store(base.offset, std::memory_order_release);
    // The log starts over where its primary's does; nothing before is owed.
    if (must_start_.load(std::memory_order_relaxed) < base.offset) {
      must_start_.store(base.offset, std::memory_order_release);
    }
  }
  publish_end();
  note_active_base();
  return absl::OkStatus();
}

AppendResult SegmentedLog::append(ByteSpan records, bool auto_roll) {
  AppendResult r;
  while (!records.empty()) {
    Segment::Appended a = active_->append(records);
    r.bytes += a.bytes;
    r.events += a.events;
    records = records.subspan(a.bytes);
    if (!a.status.ok()) {
      r.status = std::move(a.status);
      break;
    }
    if (records.empty()) break;
    if (!auto_roll) {
      r.status = absl::FailedPreconditionError(absl::StrFormat(
          "%d bytes do not fit in the active segment %s", records.size(), active_->path()));
      break;
    }
    if (a.bytes == 0 && active_->size() == 0) {
      r.status = absl::InvalidArgumentError("a record is larger than a whole segment");
      break;
    }
    if (absl::Status st = roll(); !st.ok()) {
      r.status = st;
      break;
    }
  }
  publish_end();
  want_warm();
  return r;
}

absl::Status SegmentedLog::append_event(const EventHeader& header, ByteSpan payload) {
  WriteResult w = active_->append_event(header, payload);
  if (w.code() == RingErrorCode::kNotEnoughSpace) {
    RINGLOG_RETURN_IF_ERROR(roll());
    w = active_->append_event(header, payload);
  }
  publish_end();
  return w.status();
}

void SegmentedLog::publish_end() {
  end_.store(LogPosition{active_->end_offset(), active_->end_seq()});
}

absl::Status SegmentedLog::sync(bool flush) {
  const uint64_t end = active_->end_offset();
  if (flush) {
    for (const std::shared_ptr<Segment>& s : unsynced_) RINGLOG_RETURN_IF_ERROR(s->sync());
    RINGLOG_RETURN_IF_ERROR(active_->sync());
    if (dir_dirty_ && dir_fd_ >= 0) {
      if (fsync(dir_fd_) != 0) return internal::errno_status(errno, "cannot sync directory", dir_);
    }
    dir_dirty_ = false;
  }
  unsynced_.clear();
  // release: pairs with the acquire in durable_offset().
  durable_offset_.store(end, std::memory_order_release);
  // What a sync made durable is owed at every later open. A flush is rare
  // enough to record every time; publishing alone (fsync policy "none") is
  // recorded at most once per millisecond.
  std::lock_guard l(ckpt_mu_);
  if (must_reach_.load(std::memory_order_relaxed) < end) {
    must_reach_.store(end, std::memory_order_release);
  }
  return write_checkpoint_locked(/*force=*/flush, /*sync=*/false);
}

void SegmentedLog::note_active_base() {
  // Writer: a new active segment is recorded before records go into it.
  std::lock_guard l(ckpt_mu_);
  ckpt_last_base_ = active_->base_offset();
  (void)write_checkpoint_locked(/*force=*/true, /*sync=*/false);  // retried at the next sync
}

absl::Status SegmentedLog::truncate(uint64_t offset) {
  const LogPosition start = start_.load();
  const LogPosition end = end_.load();
  if (offset < start.offset || offset > end.offset) {
    return absl::OutOfRangeError(absl::StrFormat(
        "cannot truncate to offset %d: the log holds offsets %d to %d", offset, start.offset,
        end.offset));
  }
  std::shared_ptr<Segment> seg = segment_for(offset);
  // Check the offset before anything is deleted.
  if (!seg->seq_at(offset - seg->base_offset())) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot truncate to offset %d: not a record boundary", offset));
  }
  {
    // The checkpoint forgets the cut records first: a crash during the cut
    // must not make them look lost at the next open.
    std::lock_guard l(ckpt_mu_);
    if (must_reach_.load(std::memory_order_relaxed) > offset) {
      must_reach_.store(offset, std::memory_order_release);
    }
    if (committed_.load(std::memory_order_relaxed) > offset) {
      committed_.store(offset, std::memory_order_release);
    }
    if (durable_offset_.load(std::memory_order_relaxed) > offset) {
      durable_offset_.store(offset, std::memory_order_release);
    }
    ckpt_last_base_ = seg->base_offset();
    RINGLOG_RETURN_IF_ERROR(write_checkpoint_locked(/*force=*/true, /*sync=*/true));
  }
  std::vector<std::shared_ptr<Segment>> dropped;
  {
    std::unique_lock l(mu_);
    while (segments_.back() != seg) {
      dropped.push_back(segments_.back());
      segments_.pop_back();
    }
  }
  std::erase_if(unsynced_, [&](const std::shared_ptr<Segment>& s) {
    return s == seg || std::find(dropped.begin(), dropped.end(), s) != dropped.end();
  });
  for (const std::shared_ptr<Segment>& s : dropped) RINGLOG_RETURN_IF_ERROR(s->remove_file());
  if (!dropped.empty()) dir_dirty_ = true;
  RINGLOG_RETURN_IF_ERROR(seg->truncate(offset - seg->base_offset()));
  active_ = seg.get();
  publish_end();
  if (durable_offset_.load(std::memory_order_relaxed) > offset) {
    durable_offset_.store(offset, std::memory_order_release);
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> SegmentedLog::apply_retention(absl::Time now) {
  size_t removed = 0;
  const bool by_age = options_.retention_age != absl::InfiniteDuration();
  const uint64_t cutoff_ns =
      by_age ? static_cast<uint64_t>(std::max<int64_t>(0, absl::ToUnixNanos(now - options_.retention_age)))
             : 0;
  for (;;) {
    std::shared_ptr<Segment> front;
    {
      std::unique_lock l(mu_);
      if (segments_.size() <= 1) break;
      front = segments_.front();
      const uint64_t total = end_.load().offset - front->base_offset();
      const bool over_bytes = options_.retention_bytes != 0 && total > options_.retention_bytes;
      const bool too_old = by_age && front->max_timestamp() < cutoff_ns;
      if (!over_bytes && !too_old) break;
      segments_.erase(segments_.begin());
      start_.store(LogPosition{segments_.front()->base_offset(), segments_.front()->base_seq()});
    }
    {
      // The new start is in the checkpoint before the file goes, so that a
      // missing first segment is never taken for retention.
      std::lock_guard l(ckpt_mu_);
      must_start_.store(start_.load().offset, std::memory_order_release);
      RINGLOG_RETURN_IF_ERROR(write_checkpoint_locked(/*force=*/true, /*sync=*/true));
    }
    std::erase(unsynced_, front);
    RINGLOG_RETURN_IF_ERROR(front->remove_file());
    dir_dirty_ = true;
    ++removed;
  }
  return removed;
}

// ---- Readers ----

LogPosition SegmentedLog::start() const { return start_.load(); }
LogPosition SegmentedLog::end() const { return end_.load(); }

std::shared_ptr<Segment> SegmentedLog::segment_for(uint64_t offset) const {
  std::shared_lock l(mu_);
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](uint64_t o, const std::shared_ptr<Segment>& s) {
                               return o < s->base_offset();
                             });
  if (it == segments_.begin()) return nullptr;
  return *(it - 1);
}

std::shared_ptr<Segment> SegmentedLog::segment_for_seq(uint64_t seq) const {
  std::shared_lock l(mu_);
  auto it = std::upper_bound(
      segments_.begin(), segments_.end(), seq,
      [](uint64_t q, const std::shared_ptr<Segment>& s) { return q < s->base_seq(); });
  // The last segment starting at or before seq; only the active segment can
  // be empty, and callers ask only for seqs below the end.
  if (it == segments_.begin()) return nullptr;
  return *(it - 1);
}

absl::StatusOr<LogPosition> SegmentedLog::find_seq(uint64_t seq) const {
  const LogPosition start = start_.load();
  const LogPosition end = end_.load();
  if (seq < start.seq) {
    return absl::OutOfRangeError(absl::StrFormat(
        "seq %d is before the log start (seq %d): older events were removed by retention", seq,
        start.seq));
  }
  if (seq > end.seq) {
    return absl::OutOfRangeError(absl::StrFormat(
        "seq %d is past the end of the log (valid seqs %d to %d, next %d)", seq, start.seq,
        end.seq == 0 ? 0 : end.seq - 1, end.seq));
  }
  if (seq == end.seq) return end;
  std::shared_ptr<Segment> s = segment_for_seq(seq);
  if (s == nullptr || seq >= s->end_seq()) {
    return absl::OutOfRangeError(absl::StrFormat("seq %d is no longer in the log", seq));
  }
  return LogPosition{s->base_offset() + s->rel_of_seq(seq), seq};
}

absl::StatusOr<LogPosition> SegmentedLog::find_time(uint64_t ts) const {
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock l(mu_);
    // The last segment before which every event is older than ts.
    auto it = std::lower_bound(segments_.begin(), segments_.end(), ts,
                               [](const std::shared_ptr<Segment>& s, uint64_t t) {
                                 return s->max_ts_before() < t;
                               });
    if (it != segments_.begin()) --it;
    segs.assign(it, segments_.end());
  }
  for (const std::shared_ptr<Segment>& s : segs) {
    if (std::optional<LogPosition> p = s->find_time(ts)) {
      return LogPosition{s->base_offset() + p->offset, p->seq};
    }
  }
  return end_.load();
}

absl::StatusOr<LogPosition> SegmentedLog::find_offset(uint64_t offset) const {
  const LogPosition start = start_.load();
  const LogPosition end = end_.load();
  if (offset < start.offset || offset > end.offset) {
    return absl::OutOfRangeError(
        absl::StrFormat("offset %d is outside the log (offsets %d to %d%s)", offset, start.offset,
                        end.offset, offset < start.offset ? "; older events were removed by retention" : ""));
  }
  if (offset == end.offset) return end;
  std::shared_ptr<Segment> s = segment_for(offset);
  std::optional<uint64_t> seq = s ? s->seq_at(offset - s->base_offset()) : std::nullopt;
  if (!seq) {
    return absl::InvalidArgumentError(
        absl::StrFormat("offset %d is not the start of a record", offset));
  }
  return LogPosition{offset, *seq};
}

absl::StatusOr<LogSlice> SegmentedLog::read(LogPosition from, uint64_t limit_offset,
                                            size_t max_bytes) const {
  std::shared_ptr<Segment> s = segment_for(from.offset);
  if (s == nullptr || from.offset < start_.load().offset) {
    return absl::OutOfRangeError(absl::StrFormat(
        "offset %d is before the log start (offset %d): removed by retention", from.offset,
        start_.load().offset));
  }
  LogSlice slice;
  const uint64_t rel = from.offset - s->base_offset();
  slice.records = s->records_from(rel, limit_offset - std::min(limit_offset, s->base_offset()),
                                   max_bytes);
  slice.position = from;
  slice.segment_header = &s->initial_header();
  slice.starts_segment = rel == 0;
  slice.segment = std::move(s);
  return slice;
}

std::vector<SegmentInfo> SegmentedLog::segments() const {
  std::shared_lock l(mu_);
  std::vector<SegmentInfo> out;
  out.reserve(segments_.size());
  for (const std::shared_ptr<Segment>& s : segments_) {
    out.push_back(SegmentInfo{s->path(), s->base_offset(), s->base_seq(), s->size(), s->count(),
                              s->max_timestamp(), s->capacity() + kFileHeaderSize,
                              s->sealed()});
  }
  return out;
}

size_t SegmentedLog::segment_count() const {
  std::shared_lock l(mu_);
  return segments_.size();
}

// ---- Warming the active segment ----

void SegmentedLog::want_warm() {
  // Writer only. Asks again when half of the warm window has been used, so
  // this reaches the preparer once per warm_bytes / 2 of appends.
  if (options_.warm_bytes == 0 || !preparer_) return;
  const uint64_t size = active_->size();
  if (size + options_.warm_bytes / 2 <= warm_asked_) return;
  warm_asked_ = size + options_.warm_bytes;
  preparer_->want_warm(warm_asked_);
}

}  // namespace ringlog
