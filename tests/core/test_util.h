// Helpers shared by the core tests: a fixture that owns a unique temp
// directory, byte-level file surgery (corrupt a byte, shorten a file, fix a
// checksum), and payloads whose content is derived from their seq so that a
// reader can check every byte it gets.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "ringlog/crc32c.h"
#include "ringlog/event.h"
#include "ringlog/storage.h"

namespace ringlog {
// Readable failure messages for positions.
inline void PrintTo(const LogPosition& p, std::ostream* os) {
  *os << "{offset " << p.offset << ", seq " << p.seq << "}";
}
}  // namespace ringlog

namespace ringlog_test {

// ---- Payloads ----

// The byte at `i` of the payload of event `seq`.
inline char pattern_byte(uint64_t seq, size_t i) {
  return static_cast<char>((seq * 131 + i * 31 + 7) & 0xff);
}

// A payload of `len` bytes for event `seq`: the seq itself in the first 8
// bytes when there is room, then a pattern that depends on seq and position.
inline std::string payload_for(uint64_t seq, size_t len) {
  std::string p(len, '\0');
  for (size_t i = 0; i < len; ++i) p[i] = pattern_byte(seq, i);
  if (len >= 8) std::memcpy(p.data(), &seq, 8);
  return p;
}

// True when `payload` is exactly payload_for(seq, payload.size()).
inline bool payload_matches(uint64_t seq, ringlog::ByteSpan payload) {
  const std::string want = payload_for(seq, payload.size());
  return std::memcmp(want.data(), payload.data(), payload.size()) == 0;
}

inline std::string to_string(ringlog::ByteSpan b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

inline ringlog::EventHeader header_for(uint64_t ts, uint8_t type, const std::string& payload) {
  return ringlog::EventHeader(ts, type, static_cast<uint16_t>(payload.size()));
}

// One encoded record (header, payload, padding), as the ring and log hold it.
inline std::vector<std::byte> encode(const ringlog::EventHeader& h, const std::string& payload) {
  std::vector<std::byte> out(ringlog::padded_size(payload.size()));
  ringlog::encode_record(out.data(), h, ringlog::as_bytes(payload));
  return out;
}

// Records encoded one after another into one buffer, as a batch from a ring
// or a chunk from a peer holds them.
class BatchBuilder {
 public:
  // Appends one record; returns its offset in the batch.
  uint64_t add(const ringlog::EventHeader& h, const std::string& payload) {
    const uint64_t at = bytes_.size();
    const std::vector<std::byte> rec = encode(h, payload);
    bytes_.insert(bytes_.end(), rec.begin(), rec.end());
    return at;
  }
  const std::vector<std::byte>& bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

inline std::string status_message(const absl::Status& s) { return std::string(s.message()); }

// ---- Files ----

inline uint64_t file_size(const std::string& path) {
  return static_cast<uint64_t>(std::filesystem::file_size(path));
}

inline std::string read_file(const std::string& path) {
  std::string out(file_size(path), '\0');
  const int fd = open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << path;
  EXPECT_EQ(pread(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  close(fd);
  return out;
}

inline std::string read_at(const std::string& path, uint64_t offset, size_t n) {
  std::string out(n, '\0');
  const int fd = open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << path;
  EXPECT_EQ(pread(fd, out.data(), n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  close(fd);
  return out;
}

inline void write_at(const std::string& path, uint64_t offset, const void* data, size_t n) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(pwrite(fd, data, n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
  close(fd);
}

inline void write_at(const std::string& path, uint64_t offset, const std::string& bytes) {
  write_at(path, offset, bytes.data(), bytes.size());
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::filesystem::remove(path);
  write_at(path, 0, bytes);
}

// Flips every bit of the byte at `offset`.
inline void corrupt_byte(const std::string& path, uint64_t offset) {
  std::string b = read_at(path, offset, 1);
  b[0] = static_cast<char>(~b[0]);
  write_at(path, offset, b);
}

inline void truncate_file(const std::string& path, uint64_t size) {
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(size)), 0) << path;
}

inline ringlog::FileHeader read_file_header(const std::string& path) {
  ringlog::FileHeader h;
  const std::string b = read_at(path, 0, sizeof h);
  std::memcpy(&h, b.data(), sizeof h);
  return h;
}

inline void write_file_header(const std::string& path, const ringlog::FileHeader& h) {
  write_at(path, 0, &h, sizeof h);
}

// Recomputes the checksum of the file header after a test changed a field.
inline void fix_file_header_checksum(const std::string& path) {
  ringlog::FileHeader h = read_file_header(path);
  h.fill_checksum();
  write_file_header(path, h);
}

// Recomputes the checksum of the record at file offset `offset`.
inline void fix_record_checksum(const std::string& path, uint64_t offset) {
  ringlog::EventHeader h;
  const std::string hb = read_at(path, offset, ringlog::kHeaderSize);
  std::memcpy(&h, hb.data(), sizeof h);
  const std::string payload = read_at(path, offset + ringlog::kHeaderSize, h.payload_len);
  h.fill_checksum(ringlog::as_bytes(payload));
  write_at(path, offset, &h, sizeof h);
}

// True when every byte of [from, to) in the file is zero.
inline bool all_zero(const std::string& path, uint64_t from, uint64_t to) {
  const std::string b = read_at(path, from, to - from);
  return b.find_first_not_of('\0') == std::string::npos;
}

// ---- Fixture ----

// Owns a unique directory under $TMPDIR (or /tmp), removed after the test.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/ringlog_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl << ": " << strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// A one-shot event between threads, on std primitives (which ThreadSanitizer
// understands, unlike an uninstrumented absl::Notification).
class Notification {
 public:
  void Notify() {
    {
      std::lock_guard l(mu_);
      notified_ = true;
    }
    cv_.notify_all();
  }
  bool HasBeenNotified() const {
    std::lock_guard l(mu_);
    return notified_;
  }
  void WaitForNotification() {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return notified_; });
  }
  bool WaitForNotificationWithTimeout(absl::Duration d) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, absl::ToChronoNanoseconds(d), [&] { return notified_; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

}  // namespace ringlog_test
