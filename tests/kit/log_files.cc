#include "kit/log_files.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kit/support.h"
#include "ringlog/crc32c.h"
#include "ringlog/storage.h"

namespace ringlog::testkit {

namespace {

// The used part of a segment file: the header and the valid records.
struct UsedRange {
  size_t bytes = 0;  // header included
  bool sealed = false;
  std::string problem;
};

UsedRange used_range(const std::string& file) {
  UsedRange u;
  if (file.size() < sizeof(FileHeader)) {
    u.problem = "shorter than a header";
    return u;
  }
  FileHeader h;
  std::memcpy(&h, file.data(), sizeof h);
  if (absl::Status s = h.validate("segment"); !s.ok()) {
    u.problem = s.ToString();
    return u;
  }
  size_t pos = sizeof(FileHeader);
  const auto* data = reinterpret_cast<const std::byte*>(file.data());
  while (pos + kHeaderSize <= file.size()) {
    EventView v;
    if (check_record(data + pos, file.size() - pos, &v) != RecordStatus::kOk) break;
    pos += v.header->padded_size();
  }
  u.bytes = pos;
  u.sealed = h.sealed();
  if (h.sealed() && h.write_offset != pos - sizeof(FileHeader)) {
    u.problem = absl::StrFormat("sealed with write_offset %d but %d bytes of valid records",
                                h.write_offset, pos - sizeof(FileHeader));
  }
  return u;
}

// The used ranges of file `f` in both directories agree; adds its record
// bytes to *record_bytes.
::testing::AssertionResult used_ranges_equal(const std::string& dir_a, const std::string& dir_b,
                                             const std::string& f, uint64_t* record_bytes) {
  const std::string a = read_file(dir_a + "/" + f);
  const std::string b = read_file(dir_b + "/" + f);
  const UsedRange ua = used_range(a);
  const UsedRange ub = used_range(b);
  if (!ua.problem.empty() || !ub.problem.empty()) {
    return ::testing::AssertionFailure() << f << ": " << dir_a << ": " << ua.problem << "; "
                                         << dir_b << ": " << ub.problem;
  }
  if (ua.bytes != ub.bytes || ua.sealed != ub.sealed) {
    return ::testing::AssertionFailure()
           << f << ": used range " << ua.bytes << " bytes (sealed " << ua.sealed << ") in "
           << dir_a << " but " << ub.bytes << " (sealed " << ub.sealed << ") in " << dir_b;
  }
  const uint32_t ca = crc32c::value(a.data(), ua.bytes);
  const uint32_t cb = crc32c::value(b.data(), ub.bytes);
  if (ca != cb) {
    return ::testing::AssertionFailure() << f << ": CRC32C of the used range (" << ua.bytes
                                         << " bytes) is " << ca << " in " << dir_a << " but "
                                         << cb << " in " << dir_b;
  }
  *record_bytes += ua.bytes - sizeof(FileHeader);
  return ::testing::AssertionSuccess();
}

}  // namespace

std::vector<std::string> segment_files(const std::string& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir, ec)) {
    const std::string f = e.path().filename().string();
    if (e.is_regular_file() && f.size() == 20 + 5 && f.ends_with(".evtl")) out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

::testing::AssertionResult files_identical(const std::string& dir_a, const std::string& dir_b) {
  const std::vector<std::string> fa = segment_files(dir_a);
  const std::vector<std::string> fb = segment_files(dir_b);
  if (fa.empty()) return ::testing::AssertionFailure() << "no segment files in " << dir_a;
  if (fa != fb) {
    return ::testing::AssertionFailure()
           << "segment files differ: " << dir_a << " has [" << absl::StrJoin(fa, ", ") << "], "
           << dir_b << " has [" << absl::StrJoin(fb, ", ") << "]";
  }
  for (const std::string& f : fa) {
    const std::string x = read_file(dir_a + "/" + f);
    const std::string y = read_file(dir_b + "/" + f);
    if (x == y) continue;
    size_t i = 0;
    while (i < x.size() && i < y.size() && x[i] == y[i]) ++i;
    return ::testing::AssertionFailure()
           << f << " differs between " << dir_a << " (" << x.size() << " bytes) and " << dir_b
           << " (" << y.size() << " bytes), first at byte " << i;
  }
  return ::testing::AssertionSuccess() << fa.size() << " segment files identical";
}

::testing::AssertionResult logs_identical(const std::string& dir_a, const std::string& dir_b,
                                          std::optional<uint64_t> end_offset) {
  const std::vector<std::string> files = segment_files(dir_a);
  if (files != segment_files(dir_b)) return files_identical(dir_a, dir_b);
  uint64_t record_bytes = 0;
  for (const std::string& f : files) {
    ::testing::AssertionResult r = used_ranges_equal(dir_a, dir_b, f, &record_bytes);
    if (!r) return r;
  }
  ::testing::AssertionResult same = files_identical(dir_a, dir_b);
  if (!same) return same;
  if (end_offset && record_bytes != *end_offset) {
    return ::testing::AssertionFailure() << "the segments in " << dir_a << " hold "
                                         << record_bytes << " record bytes, not " << *end_offset;
  }
  return same;
}

}  // namespace ringlog::testkit
