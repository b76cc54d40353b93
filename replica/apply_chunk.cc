#include "apply_chunk.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "ringlog/status_macros.h"

namespace ringlog {

absl::StatusOr<LogPosition> apply_chunk(SegmentedLog& log, const v1::Chunk& chunk) {
  const LogPosition end = log.end();
  // Check the records first: a bad chunk changes nothing, not even a segment.
  const std::string& r = chunk.records();
  const ByteSpan records(reinterpret_cast<const std::byte*>(r.data()), r.size());
  if (!records.empty()) {
    if (absl::StatusOr<size_t> n = check_records(records); !n.ok()) {
      return absl::DataLossError(absl::StrFormat("corrupt chunk at offset %d: %s",
                                                 chunk.start_offset(), n.status().message()));
    }
  }
  if (chunk.has_segment()) {
    const std::string& hb = chunk.segment().header();
    if (hb.size() != sizeof(FileHeader)) {
      return absl::DataLossError(absl::StrFormat("segment header of %d bytes, not 64", hb.size()));
    }
    FileHeader h;
    std::memcpy(&h, hb.data(), sizeof h);
    if (h.base_offset != chunk.start_offset() || h.base_seq != chunk.start_seq()) {
      return absl::DataLossError("segment header does not match the chunk's position");
    }
    // A chunk never spans two segments: records that do not fit in the
    // segment they start would start it and then be cut short.
    const uint64_t room = h.file_size < kFileHeaderSize
                              ? 0
                              : (h.file_size - kFileHeaderSize) & ~uint64_t{kRecordAlign - 1};
    if (records.size() > room) {
      return absl::DataLossError(absl::StrFormat(
          "chunk of %d bytes does not fit in the segment it starts (%d bytes of room)",
          records.size(), room));
    }
    RINGLOG_RETURN_IF_ERROR(log.start_segment(h));
  } else if (chunk.start_offset() != end.offset || chunk.start_seq() != end.seq) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "chunk starts at offset %d seq %d but the log ends at offset %d seq %d",
        chunk.start_offset(), chunk.start_seq(), end.offset, end.seq));
  } else if (records.size() > log.active_room()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("chunk of %d bytes does not fit in the active segment (%d bytes of room)",
                        records.size(), log.active_room()));
  }
  const LogPosition first = log.end();
  if (records.empty()) return first;
  AppendResult a = log.append(records, /*auto_roll=*/false);
  if (!a.status.ok()) return a.status;
  return first;
}

}  // namespace ringlog
