// MmapWriter and MmapReader: one segment file with the seed's interface.
#include "absl/time/clock.h"
#include "internal/segment.h"
#include "ringlog/mmap_file.h"

namespace ringlog {
namespace {
constexpr uint32_t kSingleFileIndexInterval = 4096;
}  // namespace

MmapWriter::MmapWriter(std::unique_ptr<Segment> s) : segment_(std::move(s)) {}
MmapWriter::MmapWriter(MmapWriter&&) noexcept = default;
MmapWriter& MmapWriter::operator=(MmapWriter&&) noexcept = default;
MmapWriter::~MmapWriter() = default;

absl::StatusOr<MmapWriter> MmapWriter::Create(const std::string& path, uint64_t capacity) {
  absl::StatusOr<std::unique_ptr<Segment>> s =
      Segment::Create(path, capacity, kSingleFileIndexInterval);
  if (!s.ok()) return s.status();
  FileHeader h;
  h.created_ns = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
  if (absl::Status st = (*s)->start(h, "", /*exact=*/false); !st.ok()) return st;
  return MmapWriter(std::move(*s));
}

absl::StatusOr<MmapWriter> MmapWriter::Open(const std::string& path, RecoveryReport* report) {
  absl::StatusOr<std::unique_ptr<Segment>> s =
      Segment::Open(path, /*writable=*/true, kSingleFileIndexInterval);
  if (!s.ok()) return s.status();
  std::string problem;
  uint64_t cleared = 0;
  if (absl::Status st = (*s)->recover(0, &problem, &cleared); !st.ok()) return st;
  if (report != nullptr) {
    report->segments = 1;
    report->events = (*s)->count();
    report->bytes = (*s)->size();
    report->cleared_bytes = cleared;
    report->problem = problem;
  }
  return MmapWriter(std::move(*s));
}

WriteResult MmapWriter::write_event(const EventHeader& header, ByteSpan payload) noexcept {
  return segment_->append_event(header, payload);
}

absl::Status MmapWriter::sync() { return segment_->sync(); }
uint64_t MmapWriter::event_count() const noexcept { return segment_->count(); }
uint64_t MmapWriter::write_offset() const noexcept { return segment_->size(); }
uint64_t MmapWriter::capacity() const noexcept { return segment_->capacity(); }

MmapReader::MmapReader(std::unique_ptr<Segment> s, std::string problem)
    : segment_(std::move(s)), problem_(std::move(problem)) {}
MmapReader::MmapReader(MmapReader&&) noexcept = default;
MmapReader& MmapReader::operator=(MmapReader&&) noexcept = default;
MmapReader::~MmapReader() = default;

absl::StatusOr<MmapReader> MmapReader::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Segment>> s =
      Segment::Open(path, /*writable=*/false, kSingleFileIndexInterval);
  if (!s.ok()) return s.status();
  std::string problem;
  uint64_t cleared = 0;
  if (absl::Status st = (*s)->recover(0, &problem, &cleared); !st.ok()) return st;
  return MmapReader(std::move(*s), std::move(problem));
}

size_t MmapReader::replay(const std::function<void(const EventView&)>& fn) const {
  size_t n = 0;
  for (const EventView& ev : *this) {
    fn(ev);
    ++n;
  }
  return n;
}

MmapReader::Iterator MmapReader::begin() const noexcept {
  const std::byte* p = segment_->records();
  return Iterator(p, p + segment_->size());
}

MmapReader::Iterator MmapReader::end() const noexcept {
  const std::byte* e = segment_->records() + segment_->size();
  return Iterator(e, e);
}

uint64_t MmapReader::event_count() const noexcept { return segment_->count(); }
uint64_t MmapReader::valid_bytes() const noexcept { return segment_->size(); }
const FileHeader& MmapReader::header() const noexcept { return segment_->header(); }
const std::string& MmapReader::problem() const noexcept { return problem_; }

}  // namespace ringlog
