#include "internal/segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "internal/sys.h"
#include "ringlog/crc32c.h"

#include <sys/uio.h>


namespace ringlog {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMaxSegmentFile = uint64_t{4} << 30;  // index offsets are u32


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

Segment::Segment(std::string path, int fd, std::byte* base, uint64_t file_size, bool writable,
                 uint32_t index_interval)
    : path_(std::move(path)),
      fd_(fd),
      base_(base),
      file_size_(file_size),
      capacity_((file_size - kFileHeaderSize) & ~uint64_t{kRecordAlign - 1}),
      writable_(writable),
      index_interval_(std::max<uint32_t>(index_interval, kRecordAlign)) {
  index_capacity_ = capacity_ / index_interval_ + 2;
  index_ = std::make_unique<IndexEntry[]>(index_capacity_);
}

Segment::~Segment() {
  if (base_ != nullptr) munmap(base_, file_size_);
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Create(const std::string& path,
                                                         uint64_t file_size,
                                                         uint32_t index_interval) {
  if (file_size < kFileHeaderSize + kHeaderSize || file_size > kMaxSegmentFile) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "segment size %d is invalid: must be between %d bytes and 4 GiB", file_size,
        kFileHeaderSize + kHeaderSize));
  }
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return internal::errno_status(errno, "cannot create", path);
  // Allocated whole, up front (segments are made ahead of need, off the
  // writer's thread): a full disk is refused here, before a record goes in,
  // and each write finds its blocks already reserved instead of having the
  // filesystem allocate them as it goes (about a third faster here). Where
  // the filesystem cannot preallocate, the file is only sized, and a full
  // disk shows up as ENOSPC from pwrite (never as SIGBUS: nothing is stored
  // through the map).
  if (fallocate(fd, 0, 0, static_cast<off_t>(file_size)) != 0) {
    int err = errno;
    if (err == EOPNOTSUPP || err == ENOSYS) {
      err = ftruncate(fd, static_cast<off_t>(file_size)) == 0 ? 0 : errno;
    }
    if (err != 0) {
      close(fd);
      unlink(path.c_str());
      return internal::errno_status(err, absl::StrFormat("cannot allocate %d bytes for segment",
                                                         file_size),
                                    path);
    }
  }
  void* p = mmap(nullptr, file_size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd);
    unlink(path.c_str());
    return internal::errno_status(err, "cannot map", path);
  }
  return std::unique_ptr<Segment>(
      new Segment(path, fd, static_cast<std::byte*>(p), file_size, true, index_interval));
}

absl::StatusOr<std::unique_ptr<Segment>> Segment::Open(const std::string& path, bool writable,
                                                       uint32_t index_interval) {
  int fd = open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return internal::errno_status(errno, "cannot open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return internal::errno_status(err, "cannot stat", path);
  }
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < kFileHeaderSize) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is not a ringlog segment file: %d bytes, shorter than the %d-byte header", path,
        file_size, kFileHeaderSize));
  }
  if (file_size > kMaxSegmentFile) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrFormat("%s is not a ringlog segment file: %d bytes, over 4 GiB", path, file_size));
  }
  FileHeader h;
  if (pread(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
    int err = errno;
    close(fd);
    return internal::errno_status(err, "cannot read header of", path);
  }
  if (absl::Status s = h.validate(path); !s.ok()) {
    close(fd);
    return s;
  }
  void* p = mmap(nullptr, file_size, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd);
    return internal::errno_status(err, "cannot map", path);
  }
  std::unique_ptr<Segment> s(
      new Segment(path, fd, static_cast<std::byte*>(p), file_size, writable, index_interval));
  s->sealed_.store(h.sealed(), std::memory_order_relaxed);
  h.event_count = 0;
  h.write_offset = 0;
  h.flags &= ~kSegmentSealed;
  h.fill_checksum();
  s->initial_header_ = h;
  return s;
}

absl::Status Segment::start(FileHeader header, const std::string& final_path, bool exact) {
  if (!exact) {
    header.file_size = file_size_;
    header.fill_checksum();
  }
  RINGLOG_RETURN_IF_ERROR(write_at(0, &header, sizeof header));
  initial_header_ = header;
  if (!final_path.empty() && final_path != path_) {
    if (rename(path_.c_str(), final_path.c_str()) != 0) {
      return internal::errno_status(errno, "cannot rename segment to", final_path);
    }
    path_ = final_path;
  }
  return absl::OkStatus();
}

absl::Status Segment::recover(uint64_t max_ts_before, std::string* problem,
                              uint64_t* cleared_bytes) {
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

void Segment::init_empty(uint64_t max_ts_before) noexcept {
  max_ts_before_ = max_ts_before;
  max_ts_local_ = max_ts_before;
  publish();
}

void Segment::publish() noexcept {
  // release (all four): the index entries, counters and record bytes written
  // before are visible to a reader that acquires the new value. size_ goes
  // last, so a reader that sees a size also sees the index and records below it.
  index_count_.store(index_count_local_, std::memory_order_release);
  max_ts_.store(max_ts_local_, std::memory_order_release);
  count_.store(count_local_, std::memory_order_release);
  size_.store(size_local_, std::memory_order_release);
}

absl::Status Segment::write_at(uint64_t file_offset, const void* data, size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = pwrite(fd_, p, n, static_cast<off_t>(file_offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return internal::errno_status(errno, "cannot write to", path_);
    }
    p += w;
    n -= static_cast<size_t>(w);
    file_offset += static_cast<uint64_t>(w);
  }
  return absl::OkStatus();
}

absl::Status Segment::zero_range(uint64_t from, uint64_t to) {
  if (to <= from) return absl::OkStatus();
  if (fallocate(fd_, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                static_cast<off_t>(to - from)) == 0) {
    return absl::OkStatus();
  }
  // No ZERO_RANGE here: write zeros.
  static const std::byte kZeros[64 << 10] = {};
  for (uint64_t p = from; p < to; p += sizeof kZeros) {
    RINGLOG_RETURN_IF_ERROR(write_at(p, kZeros, std::min<uint64_t>(sizeof kZeros, to - p)));
  }
  return absl::OkStatus();
}

Segment::Appended Segment::append(ByteSpan records) {
  const std::byte* src = records.data();
  const uint64_t room = capacity_ - size_local_;
  const Bookkeeping saved = bookkeeping();
  size_t off = 0;
  while (off < records.size()) {
    const EventHeader* h = header_at(src + off);
    const size_t rs = h->padded_size();
    if (off + rs > room) break;
    note_record(size_local_ + off, h->timestamp);
    off += rs;
  }
  if (off == 0) return {};
  // One copy, into the page cache. A store through a writable shared map
  // would first make the kernel read or zero-fill every page it touches.
  if (absl::Status s = write_at(kFileHeaderSize + size_local_, src, off); !s.ok()) {
    restore(saved);
    return Appended{0, 0, std::move(s)};
  }
  size_local_ += off;
  publish();
  return Appended{off, count_local_ - saved.count, absl::OkStatus()};
}

WriteResult Segment::append_event(const EventHeader& header, ByteSpan payload) noexcept {
  if (payload.size() > kMaxPayload) {
    return WriteResult::error(RingErrorCode::kPayloadTooLarge, payload.size(), kMaxPayload);
  }
  if (header.payload_len != payload.size()) {
    return WriteResult::error(RingErrorCode::kLengthMismatch, payload.size(), header.payload_len);
  }
  const size_t size = padded_size(payload.size());
  if (size > capacity_ - size_local_) {
    return WriteResult::not_enough_space(size, capacity_ - size_local_);
  }
  EventHeader h = header;
  h.fill_checksum(payload);
  static constexpr std::byte kPad[kRecordAlign] = {};
  iovec iov[3] = {{&h, kHeaderSize},
                  {const_cast<std::byte*>(payload.data()), payload.size()},
                  {const_cast<std::byte*>(kPad), size - h.total_size()}};
  const auto want = static_cast<ssize_t>(size);
  ssize_t w;
  do {
    w = pwritev(fd_, iov, 3, static_cast<off_t>(kFileHeaderSize + size_local_));
  } while (w < 0 && errno == EINTR);
  if (w != want) {
    // Nothing is published; a partial record past the end is overwritten by
    // the next write, or cleared by recovery.
    return WriteResult::error(RingErrorCode::kIoError, size, capacity_ - size_local_);
  }
  note_record(size_local_, header.timestamp);
  size_local_ += size;
  publish();
  return {};
}

absl::Status Segment::seal() {
  FileHeader h = header();
  h.event_count = count_local_;
  h.write_offset = size_local_;
  h.flags |= kSegmentSealed;
  h.fill_checksum();
  RINGLOG_RETURN_IF_ERROR(write_at(0, &h, sizeof h));
  // release: the header above is written before readers see sealed().
  sealed_.store(true, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status Segment::sync() {
  if (fdatasync(fd_) != 0) return internal::errno_status(errno, "cannot sync", path_);
  return absl::OkStatus();
}

const Segment::IndexEntry* Segment::entry_before_rel(uint64_t rel) const noexcept {
  const size_t n = published_entries();
  const IndexEntry* first = index_.get();
  const IndexEntry* end = first + n;
  const IndexEntry* it = std::upper_bound(first, end, rel,
                                          [](uint64_t r, const IndexEntry& e) { return r < e.rel; });
  return it == index_.get() ? nullptr : it - 1;
}

std::optional<uint64_t> Segment::seq_at(uint64_t rel) const noexcept {
  const uint64_t size = this->size();
  if (rel > size) return std::nullopt;
  const IndexEntry* e = entry_before_rel(rel);
  if (e == nullptr) return rel == 0 ? std::optional<uint64_t>(base_seq()) : std::nullopt;
  uint64_t p = e->rel;
  uint64_t seq = base_seq() + e->seq_delta;
  while (p < rel) {
    p += header_at(records() + p)->padded_size();
    ++seq;
  }
  if (p != rel) return std::nullopt;
  return seq;
}

uint64_t Segment::rel_of_seq(uint64_t seq) const noexcept {
  const uint64_t d = seq - base_seq();
  const size_t n = published_entries();
  const IndexEntry* first = index_.get();
  const IndexEntry* end = first + n;
  const IndexEntry* it = std::upper_bound(
      first, end, d, [](uint64_t v, const IndexEntry& e) { return v < e.seq_delta; });
  uint64_t p = 0;
  uint64_t s = 0;
  if (it != index_.get()) {
    p = (it - 1)->rel;
    s = (it - 1)->seq_delta;
  }
  for (; s < d; ++s) p += header_at(records() + p)->padded_size();
  return p;
}

std::optional<LogPosition> Segment::find_time(uint64_t ts) const noexcept {
  const size_t n = published_entries();
  if (n == 0) return std::nullopt;
  const uint64_t size = this->size();
  // The last entry before which every event is older than ts.
  const IndexEntry* first = index_.get();
  const IndexEntry* end = first + n;
  const IndexEntry* it = std::lower_bound(
      first, end, ts, [](const IndexEntry& e, uint64_t t) { return e.max_ts_before < t; });
  const IndexEntry* e = it == index_.get() ? index_.get() : it - 1;
  uint64_t p = e->rel;
  uint64_t seq = base_seq() + e->seq_delta;
  while (p < size) {
    const EventHeader* h = header_at(records() + p);
    if (h->timestamp >= ts) return LogPosition{p, seq};
    p += h->padded_size();
    ++seq;
  }
  return std::nullopt;
}

RecordBatch Segment::records_from(uint64_t rel, uint64_t limit_rel,
                                  size_t max_bytes) const noexcept {
  const uint64_t limit = std::min(limit_rel, size());
  if (rel >= limit) return {};
  uint64_t p = rel;
  size_t count = 0;
  // The sparse index names a record boundary, with its seq, at most one
  // index interval before any point: jump to the last one before where the
  // batch must end, so that only the records near the batch's two ends are
  // walked and not every header of a megabyte batch.
  const uint64_t target = rel + std::min<uint64_t>(max_bytes, limit - rel);
  const IndexEntry* e = entry_before_rel(target);
  // The boundary at or before rel gives rel's seq (only needed for a jump).
  const IndexEntry* b = e != nullptr && e->rel > rel ? entry_before_rel(rel) : nullptr;
  if (b != nullptr) {
    uint64_t bp = b->rel;
    uint64_t seq_delta = b->seq_delta;
    for (; bp < rel; bp += header_at(records() + bp)->padded_size()) ++seq_delta;
    p = e->rel;
    count = e->seq_delta - seq_delta;
  }
  while (p < limit) {
    const size_t rs = header_at(records() + p)->padded_size();
    if (p + rs > limit) break;                      // not published yet
    if (p + rs - rel > max_bytes && p > rel) break;  // full (but never empty)
    p += rs;
    ++count;
  }
  return RecordBatch{ByteSpan{records() + rel, p - rel}, count};
}

absl::Status Segment::truncate(uint64_t rel) {
  if (rel > size_local_) {
    return absl::OutOfRangeError(absl::StrFormat("cannot truncate %s to record offset %d: only %d bytes",
                                                 path_, rel, size_local_));
  }
  std::optional<uint64_t> seq = seq_at(rel);
  if (!seq) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot truncate to log offset %d: not a record boundary", base_offset() + rel));
  }
  // Keep the index entries of records before rel and rebuild the running max.
  size_t keep = 0;
  while (keep < index_count_local_ && index_[keep].rel < rel) ++keep;
  uint64_t p = 0;
  max_ts_local_ = max_ts_before_;
  if (keep > 0) {
    p = index_[keep - 1].rel;
    max_ts_local_ = index_[keep - 1].max_ts_before;
    next_index_ = (p / index_interval_ + 1) * index_interval_;
  } else {
    next_index_ = 0;
  }
  for (; p < rel; p += header_at(records() + p)->padded_size()) {
    max_ts_local_ = std::max(max_ts_local_, header_at(records() + p)->timestamp);
  }
  index_count_local_ = keep;
  count_local_ = *seq - base_seq();
  const uint64_t old_size = size_local_;
  size_local_ = rel;
  publish();
  RINGLOG_RETURN_IF_ERROR(zero_range(kFileHeaderSize + rel, kFileHeaderSize + old_size));
  if (sealed()) {
    RINGLOG_RETURN_IF_ERROR(write_at(0, &initial_header_, sizeof initial_header_));
    sealed_.store(false, std::memory_order_release);
  }
  // Persist the cut now: records left behind could come back after a crash.
  return sync();
}

void Segment::warm(uint64_t from, uint64_t to) const noexcept {
  to = std::min(to, capacity_);
  if (to > from) {
    (void)posix_fadvise(fd_, static_cast<off_t>(kFileHeaderSize + from),
                        static_cast<off_t>(to - from), POSIX_FADV_WILLNEED);
  }
}

absl::Status Segment::remove_file() {
  if (unlink(path_.c_str()) != 0 && errno != ENOENT) {
    return internal::errno_status(errno, "cannot delete", path_);
  }
  return absl::OkStatus();
}

}  // namespace ringlog
