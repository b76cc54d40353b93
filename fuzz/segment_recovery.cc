// A segment's open and recovery: the input becomes one or two segment files,
// which SegmentedLog::Open recovers read-only and then writable; everything
// it then holds is read with LogReader and one event appended. Any input
// must give an error or a log that reads back whole; none may crash.
//
// Input: byte 0 holds switches, the rest is file bytes.
//   bit 0  fix the segment header's checksum
//   bit 1  fix the records' checksums
//   bit 2  two files: byte 1 says where the second starts (in 8-byte units)
//   bit 3  name each file by its header's base offset (else 0, 1)
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "ringlog/log_reader.h"
#include "ringlog/segmented_log.h"

namespace {

using ringlog::fuzz::fix_header_checksum;
using ringlog::fuzz::fix_record_checksums;

// The smallest segment the log allows (room for one record of the largest
// size); inputs stay far smaller.
constexpr uint64_t kSegmentBytes = ringlog::kFileHeaderSize + ringlog::kMaxRecordSize;
constexpr size_t kMaxInput = 8192;

void write_segment(const std::string& dir, std::vector<std::byte> bytes, uint8_t switches,
                   uint64_t name) {
  if (bytes.size() >= ringlog::kFileHeaderSize) {
    if (switches & 2) {
      fix_record_checksums(bytes.data() + ringlog::kFileHeaderSize,
                           bytes.size() - ringlog::kFileHeaderSize);
    }
    if (switches & 1) fix_header_checksum(bytes.data());
    if (switches & 8) {
      ringlog::FileHeader h;
      std::memcpy(&h, bytes.data(), sizeof h);
      name = h.base_offset;
    }
  }
  char path[4096];
  std::snprintf(path, sizeof path, "%s/%020llu.evtl", dir.c_str(),
                static_cast<unsigned long long>(name));
  const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) std::abort();
  if (!bytes.empty() && write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    std::abort();
  }
  close(fd);
}

// Reads the whole log; every record must be whole and pass its checksum.
void read_all(const ringlog::SegmentedLog& log) {
  const ringlog::LogPosition end = log.end();
  ringlog::LogReader reader(log, log.start());
  uint64_t events = 0;
  while (std::optional<ringlog::EventView> ev = reader.next(end.offset)) {
    if (!ev->header->verify_checksum(ev->payload)) std::abort();
    ++events;
  }
  if (reader.position().offset != end.offset) std::abort();
  if (events != end.seq - log.start().seq) std::abort();
  (void)log.find_seq(log.start().seq + events / 2);
  (void)log.find_time(0);
  (void)log.find_offset(end.offset);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > kMaxInput) return -1;
  const uint8_t switches = data[0];
  const auto* body = reinterpret_cast<const std::byte*>(data + 1);
  const size_t n = size - 1;
  const std::string& dir = ringlog::fuzz::fresh_dir("segment");
  if ((switches & 4) && n >= 1) {
    const size_t split = std::min<size_t>(size_t{data[1]} * 8 + 1, n);
    write_segment(dir, std::vector<std::byte>(body + 1, body + split), switches, 0);
    write_segment(dir, std::vector<std::byte>(body + split, body + n), switches, 1);
  } else {
    write_segment(dir, std::vector<std::byte>(body, body + n), switches, 0);
  }

  ringlog::LogOptions options;
  options.segment_bytes = kSegmentBytes;
  options.prepare_ahead = false;
  options.warm_bytes = 0;
  options.read_only = true;
  {
    ringlog::RecoveryReport report;
    auto log = ringlog::SegmentedLog::Open(dir, options, &report);
    if (log.ok()) read_all(**log);
  }
  options.read_only = false;
  ringlog::RecoveryReport report;
  auto log = ringlog::SegmentedLog::Open(dir, options, &report);
  if (!log.ok()) return 0;
  read_all(**log);
  const ringlog::LogPosition end = (*log)->end();
  ringlog::EventHeader h;
  h.timestamp = 1;
  h.event_type = 7;
  const std::string_view payload = "after recovery";
  h.payload_len = static_cast<uint16_t>(payload.size());
  if ((*log)->append_event(h, ringlog::as_bytes(payload)).ok()) {
    if ((*log)->end().seq != end.seq + 1) std::abort();
    read_all(**log);
  }
  return 0;
}
