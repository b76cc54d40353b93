// SegmentPreparer: the next segment file made ahead, the active one warmed.
#include "internal/segment_preparer.h"

#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "internal/log_files.h"

namespace ringlog {

SegmentPreparer::SegmentPreparer(std::string dir, uint64_t segment_bytes,
                                 uint32_t index_interval, std::shared_ptr<Segment> active)
    : dir_(std::move(dir)),
      segment_bytes_(segment_bytes),
      index_interval_(index_interval),
      warm_segment_(std::move(active)),
      thread_([this] { loop(); }) {}

SegmentPreparer::~SegmentPreparer() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  thread_.join();
  std::lock_guard l(mu_);
  if (prepared_) (void)prepared_->remove_file();
}

std::unique_ptr<Segment> SegmentPreparer::take(uint64_t file_size) {
  std::lock_guard l(mu_);
  if (prepared_ && prepared_->capacity() + kFileHeaderSize >= file_size &&
      prepared_->capacity() + kFileHeaderSize - file_size < kRecordAlign) {
    return std::move(prepared_);
  }
  return nullptr;
}

void SegmentPreparer::want_prepared() {
  std::lock_guard l(mu_);
  wanted_ = true;
  cv_.notify_one();
}

void SegmentPreparer::warm_from_start(std::shared_ptr<Segment> active) {
  std::lock_guard l(mu_);
  warm_segment_ = std::move(active);
  warmed_ = 0;
  warm_wanted_ = 0;
}

void SegmentPreparer::want_warm(uint64_t to) {
  std::lock_guard l(mu_);
  warm_wanted_ = to;
  cv_.notify_one();
}

void SegmentPreparer::loop() {
  uint64_t n = 0;
  std::unique_lock l(mu_);
  for (;;) {
    cv_.wait(l, [&] {
      return stop_ || (wanted_ && !prepared_) || (warm_segment_ && warmed_ < warm_wanted_);
    });
    if (stop_) return;
    if (warm_segment_ && warmed_ < warm_wanted_) {
      // Warm first: the writer is about to need these pages.
      std::shared_ptr<Segment> seg = warm_segment_;
      const uint64_t from = warmed_;
      const uint64_t to = warm_wanted_;
      warmed_ = to;
      l.unlock();
      seg->warm(from, to);
      l.lock();
      continue;
    }
    wanted_ = false;
    const std::string tmp =
        absl::StrFormat("%s/%sbg-%d.tmp", dir_, internal::kPreparedPrefix, ++n);
    l.unlock();
    absl::StatusOr<std::unique_ptr<Segment>> s =
        Segment::Create(tmp, segment_bytes_, index_interval_);
    l.lock();
    // On failure (a full disk) the writer creates the segment itself when it
    // needs one, and reports the error then.
    if (s.ok()) prepared_ = std::move(*s);
  }
}

}  // namespace ringlog
