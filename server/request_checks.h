// What the server checks in a request before it touches the node: pure
// functions over the message and a log, used by the reactors and reached by
// the fuzz targets (fuzz/) without a server.
//
//   absl::StatusOr<ReplayPlan> plan = plan_replay(request);   // INVALID_ARGUMENT
//   absl::StatusOr<LogPosition> from = replay_start(log, commit, request);
//
// Any thread: nothing here holds state.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "ringlog/event.h"
#include "ringlog/log_position.h"
#include "ringlog/segmented_log.h"
#include "ringlog/v1/ringlog.pb.h"

namespace ringlog {

// Checks that `records` is a run of whole valid records of at most
// max_bytes, none of them a control record (flags bit 7: the node's own);
// returns how many, or INVALID_ARGUMENT naming the record.
absl::StatusOr<size_t> validate_records(ByteSpan records, size_t max_bytes);

// Replay responses carry about this many record bytes, unless the request
// asks for another size, which is kept between kMaxRecordSize and the most.
inline constexpr size_t kReplayDefaultBatchBytes = size_t{1} << 20;
inline constexpr size_t kReplayMaxBatchBytes = size_t{16} << 20;

// What a ReplayRequest asks for, once checked.
struct ReplayPlan {
  std::bitset<256> types;         // the event types wanted, when filtered
  bool filtered = false;
  uint64_t limit = UINT64_MAX;    // events to send; UINT64_MAX without a limit
  bool follow = false;
  bool include_control = false;
  size_t max_bytes = kReplayDefaultBatchBytes;
};

// INVALID_ARGUMENT for an event type over 255.
absl::StatusOr<ReplayPlan> plan_replay(const v1::ReplayRequest& request);

// Where the replay starts in `log` (from_end: at `commit_offset`); the log's
// lookup errors (OUT_OF_RANGE, ...) otherwise.
absl::StatusOr<LogPosition> replay_start(const SegmentedLog& log, uint64_t commit_offset,
                                         const v1::ReplayRequest& request);

}  // namespace ringlog
