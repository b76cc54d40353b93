// FileHeader: the checksum and the checks made when a segment file is opened.
#include "ringlog/file_header.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "ringlog/crc32c.h"

namespace ringlog {

uint32_t FileHeader::compute_checksum() const noexcept {
  return crc32c::value(this, offsetof(FileHeader, checksum));
}

absl::Status FileHeader::validate(const std::string& path) const {
  if (std::memcmp(magic, kFileMagic, sizeof magic) != 0) {
    bool all_zero = true;
    const auto* b = reinterpret_cast<const unsigned char*>(this);
    for (size_t i = 0; i < sizeof *this; ++i) all_zero &= b[i] == 0;
    if (all_zero) {
      return absl::DataLossError(
          absl::StrFormat("%s: segment header is all zeros (the segment was never started)", path));
    }
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is not a ringlog segment file (magic %02x %02x %02x %02x, expected \"EVTL\")", path,
        b[0], b[1], b[2], b[3]));
  }
  if (version != kFileVersion || header_size != kFileHeaderSize) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: unsupported segment format version %d (header size %d); this build reads version %d",
        path, version, header_size, kFileVersion));
  }
  if (checksum != compute_checksum()) {
    return absl::DataLossError(absl::StrFormat("%s: segment header checksum mismatch", path));
  }
  if (base_offset > kMaxBasePosition || base_seq > kMaxBasePosition) {
    return absl::DataLossError(absl::StrFormat(
        "%s: segment header's base offset %d or seq %d is out of range (at most %d)", path,
        base_offset, base_seq, kMaxBasePosition));
  }
  return absl::OkStatus();
}

}  // namespace ringlog
