// Segment: the file itself. Creating, opening and mapping it, writing its
// header, sealing, syncing, warming and deleting it, and the raw writes the
// rest of Segment goes through.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "internal/segment.h"
#include "internal/sys.h"
#include "ringlog/status_macros.h"

namespace ringlog {
namespace {

constexpr uint64_t kMaxSegmentFile = uint64_t{4} << 30;  // index offsets are u32

}  // namespace

Segment::Segment(std::string path, int fd, std::byte* base, uint64_t file_size, bool writable,
                 uint32_t index_interval)
    : path_(std::move(path)),
      fd_(fd),
      base_(base),
      file_size_(file_size),
      capacity_((file_size - kFileHeaderSize) & ~uint64_t{kRecordAlign - 1}),
      writable_(writable),
      index_(capacity_, index_interval) {}

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
