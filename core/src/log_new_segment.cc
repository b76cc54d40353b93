// SegmentedLog: the files of new segments. A roll takes the file reserved
// for it, else the one prepared ahead, else makes one; reserving first lets
// a writer learn that the disk is full before it writes any of a batch.
#include "absl/strings/str_format.h"
#include "internal/log_files.h"
#include "internal/segment.h"
#include "internal/segment_preparer.h"
#include "ringlog/segmented_log.h"

namespace ringlog {

using internal::kPreparedPrefix;

namespace {
// A file made for `file_size` bytes (its capacity agrees to within a
// record's alignment), as SegmentPreparer::take() checks too.
bool fits_file_size(const Segment& s, uint64_t file_size) {
  const uint64_t have = s.capacity() + kFileHeaderSize;
  return have >= file_size && have - file_size < kRecordAlign;
}
}  // namespace

absl::StatusOr<std::shared_ptr<Segment>> SegmentedLog::new_segment(const FileHeader& header,
                                                                    bool exact) {
  const uint64_t file_size = exact ? header.file_size : options_.segment_bytes;
  std::unique_ptr<Segment> seg;
  if (reserved_ && fits_file_size(*reserved_, file_size)) {
    seg = std::move(reserved_);
  } else if (preparer_) {
    seg = preparer_->take(file_size);
  }
  if (!seg) {
    absl::StatusOr<std::unique_ptr<Segment>> s = create_segment_file(file_size);
    if (!s.ok()) return s.status();
    seg = std::move(*s);
  }
  if (absl::Status st = seg->start(header, segment_path(header.base_offset), exact); !st.ok()) {
    (void)seg->remove_file();
    return st;
  }
  dir_dirty_ = true;
  return std::shared_ptr<Segment>(std::move(seg));
}

absl::StatusOr<std::unique_ptr<Segment>> SegmentedLog::create_segment_file(uint64_t file_size) {
  const std::string tmp = absl::StrFormat("%s/%s%d.tmp", dir_, kPreparedPrefix, ++prep_counter_);
  return Segment::Create(tmp, file_size, options_.index_interval_bytes);
}

absl::Status SegmentedLog::reserve_next_segment() {
  if (reserved_) return absl::OkStatus();
  if (preparer_) reserved_ = preparer_->take(options_.segment_bytes);
  if (reserved_) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<Segment>> s = create_segment_file(options_.segment_bytes);
  if (!s.ok()) return s.status();
  reserved_ = std::move(*s);
  return absl::OkStatus();
}

}  // namespace ringlog
