// Names in a log directory, shared by the log's recovery and its writer.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "internal/sys.h"

namespace ringlog::internal {

inline constexpr std::string_view kSegmentSuffix = ".evtl";
inline constexpr std::string_view kPreparedPrefix = ".prepared-";
inline constexpr size_t kNameDigits = 20;

// Base offset of a segment file named "<20 digits>.evtl", or nullopt.
inline std::optional<uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != kNameDigits + kSegmentSuffix.size() || !name.ends_with(kSegmentSuffix)) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : name.substr(0, kNameDigits)) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (!absl::SimpleAtoi(absl::string_view(name.data(), kNameDigits), &v)) return std::nullopt;
  return v;
}

inline absl::Status make_dirs(const std::string& dir) {
  std::string path;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || (dir[i] == '/' && i > 0)) {
      path = dir.substr(0, i);
      if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        return internal::errno_status(errno, "cannot create directory", path);
      }
    }
  }
  return absl::OkStatus();
}


}  // namespace ringlog::internal
