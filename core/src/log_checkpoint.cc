#include "internal/log_checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "internal/sys.h"
#include "ringlog/crc32c.h"

namespace ringlog::internal {
namespace {

constexpr size_t kSlotBytes = 64;
constexpr char kMagic[4] = {'R', 'L', 'C', 'K'};
constexpr uint16_t kVersion = 1;

void put64(std::byte* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint64_t get64(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::array<std::byte, kSlotBytes> encode(const CheckpointState& s, uint64_t generation) {
  std::array<std::byte, kSlotBytes> b{};
  std::memcpy(b.data(), kMagic, 4);
  std::memcpy(b.data() + 4, &kVersion, 2);
  put64(b.data() + 8, generation);
  put64(b.data() + 16, s.start_offset);
  put64(b.data() + 24, s.last_base);
  put64(b.data() + 32, s.durable_offset);
  put64(b.data() + 40, s.committed_offset);
  const uint32_t crc = crc32c::value(b.data(), 60);
  std::memcpy(b.data() + 60, &crc, 4);
  return b;
}

// The slot's generation and state, or nullopt when it is not a valid slot.
std::optional<std::pair<uint64_t, CheckpointState>> decode(const std::byte* b) {
  uint32_t crc;
  uint16_t version;
  std::memcpy(&crc, b + 60, 4);
  std::memcpy(&version, b + 4, 2);
  if (std::memcmp(b, kMagic, 4) != 0 || version != kVersion || crc != crc32c::value(b, 60)) {
    return std::nullopt;
  }
  CheckpointState s;
  s.start_offset = get64(b + 16);
  s.last_base = get64(b + 24);
  s.durable_offset = get64(b + 32);
  s.committed_offset = get64(b + 40);
  return std::make_pair(get64(b + 8), s);
}

}  // namespace

absl::StatusOr<LogCheckpoint> LogCheckpoint::Open(const std::string& dir, bool writable) {
  LogCheckpoint c;
  c.path_ = dir + "/" + kCheckpointName;
  c.fd_ = open(c.path_.c_str(), (writable ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0644);
  if (c.fd_ < 0) {
    if (errno == ENOENT && !writable) return c;
    return errno_status(errno, "cannot open", c.path_);
  }
  std::array<std::byte, 2 * kSlotBytes> buf{};
  const ssize_t n = pread(c.fd_, buf.data(), buf.size(), 0);
  if (n < 0) return errno_status(errno, "cannot read", c.path_);
  if (n == 0) return c;  // made just now, or before anything was written
  for (size_t i = 0; i < 2; ++i) {
    if (static_cast<size_t>(n) < (i + 1) * kSlotBytes) break;
    if (auto slot = decode(buf.data() + i * kSlotBytes)) {
      if (!c.loaded_ || slot->first > c.generation_) {
        c.generation_ = slot->first;
        c.loaded_ = slot->second;
      }
    }
  }
  c.damaged_ = !c.loaded_;
  return c;
}

LogCheckpoint::LogCheckpoint(LogCheckpoint&& o) noexcept { *this = std::move(o); }

LogCheckpoint& LogCheckpoint::operator=(LogCheckpoint&& o) noexcept {
  if (this == &o) return *this;
  if (fd_ >= 0) close(fd_);
  path_ = std::move(o.path_);
  fd_ = std::exchange(o.fd_, -1);
  generation_ = o.generation_;
  loaded_ = o.loaded_;
  damaged_ = o.damaged_;
  return *this;
}

LogCheckpoint::~LogCheckpoint() {
  if (fd_ >= 0) close(fd_);
}

absl::Status LogCheckpoint::write(const CheckpointState& s, bool sync) {
  ++generation_;
  const std::array<std::byte, kSlotBytes> b = encode(s, generation_);
  const off_t at = static_cast<off_t>((generation_ % 2) * kSlotBytes);
  if (pwrite(fd_, b.data(), b.size(), at) != static_cast<ssize_t>(b.size())) {
    return errno_status(errno == 0 ? EIO : errno, "cannot write", path_);
  }
  if (sync && fdatasync(fd_) != 0) return errno_status(errno, "cannot sync", path_);
  return absl::OkStatus();
}

absl::Status copy_file(const std::string& from, const std::string& to) {
  const int in = open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return errno_status(errno, "cannot open", from);
  const int out = open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    const int err = errno;
    close(in);
    return errno_status(err, "cannot create", to);
  }
  absl::Status s;
  for (;;) {
    const ssize_t n = copy_file_range(in, nullptr, out, nullptr, size_t{1} << 30, 0);
    if (n == 0) break;
    if (n < 0) {
      s = errno_status(errno, "cannot copy to", to);
      break;
    }
  }
  if (s.ok() && fdatasync(out) != 0) s = errno_status(errno, "cannot sync", to);
  close(in);
  close(out);
  if (!s.ok()) unlink(to.c_str());
  return s;
}

}  // namespace ringlog::internal
