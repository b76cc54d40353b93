#include "request_checks.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "ringlog/control.h"

namespace ringlog {

absl::StatusOr<size_t> validate_records(ByteSpan records, size_t max_bytes) {
  if (records.empty()) return absl::InvalidArgumentError("empty batch: no records");
  if (records.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "batch of %d bytes is over the limit of %d bytes (--max_batch_bytes)", records.size(),
        max_bytes));
  }
  absl::StatusOr<size_t> n = check_records(records);
  if (!n.ok()) return n;
  // Control records (flags bit 7) are written by the node alone: a producer
  // that could write one could forge another producer's batch marks.
  size_t index = 0;
  for (size_t pos = 0; pos < records.size(); ++index) {
    const EventHeader* h = header_at(records.data() + pos);
    if (is_control(*h)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "record %d at byte %d sets flags bit 7 (0x80): control records are written only by "
          "the node",
          index, pos));
    }
    pos += h->padded_size();
  }
  return n;
}

absl::StatusOr<ReplayPlan> plan_replay(const v1::ReplayRequest& request) {
  ReplayPlan plan;
  for (uint32_t t : request.event_types()) {
    if (t > 255) {
      return absl::InvalidArgumentError(absl::StrFormat("event type %d is out of range 0-255", t));
    }
    plan.types.set(t);
    plan.filtered = true;
  }
  if (request.limit() != 0) plan.limit = request.limit();
  plan.follow = request.follow();
  plan.include_control = request.include_control();
  if (request.max_batch_bytes() != 0) {
    plan.max_bytes =
        std::min<size_t>(request.max_batch_bytes(), kReplayMaxBatchBytes);
  }
  return plan;
}

absl::StatusOr<LogPosition> replay_start(const SegmentedLog& log, uint64_t commit_offset,
                                         const v1::ReplayRequest& request) {
  switch (request.start_case()) {
    case v1::ReplayRequest::kFromSeq:
      return log.find_seq(request.from_seq());
    case v1::ReplayRequest::kFromOffset:
      return log.find_offset(request.from_offset());
    case v1::ReplayRequest::kFromTimestamp:
      return log.find_time(request.from_timestamp());
    case v1::ReplayRequest::kFromEnd:
      return log.find_offset(commit_offset);
    case v1::ReplayRequest::kFromStart:
    case v1::ReplayRequest::START_NOT_SET:
      break;
  }
  return log.start();
}

}  // namespace ringlog
