// A replica applying a chunk: the input (after one byte of switches) is a
// ringlog.v1.Chunk, applied with apply_chunk to a small log that holds a
// few records. A chunk that is refused changes nothing; one that is taken
// reads back as its own records and survives closing and recovering the log.
//
//   bit 0  fix the records' checksums
//   bit 1  fix the segment header's checksum
//   bit 2  start the chunk where the log ends (without a segment header)
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "apply_chunk.h"
#include "fuzz_util.h"
#include "google/protobuf/stubs/logging.h"
#include "ringlog/log_reader.h"
#include "ringlog/segmented_log.h"

namespace {

// The smallest segment the log allows (room for one record of the largest
// size); inputs stay far smaller.
constexpr uint64_t kSegmentBytes = ringlog::kFileHeaderSize + ringlog::kMaxRecordSize;
constexpr size_t kMaxInput = 8192;

ringlog::LogOptions log_options() {
  ringlog::LogOptions o;
  o.segment_bytes = kSegmentBytes;
  o.prepare_ahead = false;
  o.warm_bytes = 0;
  return o;
}

// The records from `from` to the end, as bytes.
std::string records_from(const ringlog::SegmentedLog& log, ringlog::LogPosition from) {
  std::string out;
  ringlog::LogReader reader(log, from);
  while (std::optional<ringlog::EventView> ev = reader.next(log.end().offset)) {
    const ringlog::ByteSpan r = ev->record();
    out.append(reinterpret_cast<const char*>(r.data()), r.size());
  }
  return out;
}

}  // namespace

// Protobuf logs each string field that is not UTF-8; fuzzed input has many.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > kMaxInput) return -1;
  const uint8_t switches = data[0];
  ringlog::v1::Chunk chunk;
  if (!chunk.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  if (switches & 1) {
    std::string* r = chunk.mutable_records();
    r->resize((r->size() + 7) / 8 * 8);  // records are padded; keep them aligned in memory too
    ringlog::fuzz::fix_record_checksums(reinterpret_cast<std::byte*>(r->data()), r->size());
  }
  if (chunk.has_segment() && chunk.segment().header().size() == ringlog::kFileHeaderSize) {
    std::string* hb = chunk.mutable_segment()->mutable_header();
    ringlog::FileHeader h;
    std::memcpy(&h, hb->data(), sizeof h);
    // A primary's segment size is the replica's file size: keep the files
    // this target makes small (the log itself allows up to 4 GiB).
    if (h.file_size > 2 * kSegmentBytes) return -1;
    if (switches & 2) ringlog::fuzz::fix_header_checksum(reinterpret_cast<std::byte*>(hb->data()));
  }

  const std::string& dir = ringlog::fuzz::fresh_dir("chunk");
  auto log = ringlog::SegmentedLog::Open(dir, log_options());
  if (!log.ok()) std::abort();
  for (int i = 0; i < 3; ++i) {
    ringlog::EventHeader h;
    h.timestamp = 100 + i;
    h.event_type = static_cast<uint8_t>(i);
    const std::string_view payload = "a record already in the log";
    h.payload_len = static_cast<uint16_t>(payload.size());
    if (!(*log)->append_event(h, ringlog::as_bytes(payload)).ok()) std::abort();
  }
  const ringlog::LogPosition before = (*log)->end();
  const size_t segments_before = (*log)->segments().size();
  if (switches & 4) {
    chunk.set_start_offset(before.offset);
    chunk.set_start_seq(before.seq);
  }

  absl::StatusOr<ringlog::LogPosition> first = ringlog::apply_chunk(**log, chunk);
  const ringlog::LogPosition after = (*log)->end();
  if (!first.ok()) {
    // Refused whole: not a record written, not a segment started.
    if (after != before || (*log)->segments().size() != segments_before) std::abort();
    return 0;
  }
  const std::string applied = records_from(**log, *first);
  if (applied != chunk.records()) std::abort();
  if (!(*log)->sync().ok()) std::abort();
  log->reset();
  auto again = ringlog::SegmentedLog::Open(dir, log_options());
  if (!again.ok() || (*again)->end() != after) std::abort();
  if (records_from(**again, *first) != chunk.records()) std::abort();
  return 0;
}
