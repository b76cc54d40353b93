// The handling of each request message, as far as it runs without a server:
// byte 0 picks the message, the rest is parsed as it and put through the
// checks its service makes, against a small log of a few segments that
// every input shares (read only).
//
//   0 AppendRequest    validate_records and the producer id's limit
//   1 ReplayRequest    plan_replay, replay_start, then the replay's reads
//   2 FollowRequest    a hello's epochs, divergence_point, the start offset
//   3 PromoteRequest, 4 FollowCommand, 5 GetStatusRequest: parse, re-encode
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "divergence.h"
#include "fuzz_util.h"
#include "google/protobuf/stubs/logging.h"
#include "request_checks.h"
#include "ringlog/control.h"
#include "ringlog/epochs_wire.h"
#include "ringlog/log_reader.h"
#include "ringlog/segmented_log.h"
#include "ringlog/v1/ringlog.pb.h"

namespace {

using ringlog::LogPosition;
using ringlog::SegmentedLog;

// 60 events of types 0-4, timestamps 1000, 1010, ..., over two segments;
// epoch 2 starts at event 15 and epoch 3 at event 40.
struct Primary {
  std::unique_ptr<SegmentedLog> log;
  std::vector<ringlog::EpochEntry> epochs;
};

const Primary& primary() {
  static const Primary p = [] {
    Primary p;
    ringlog::LogOptions o;
    o.segment_bytes = ringlog::kFileHeaderSize + ringlog::kMaxRecordSize;
    o.prepare_ahead = false;
    o.warm_bytes = 0;
    auto log = SegmentedLog::Open(ringlog::fuzz::fresh_dir("requests"), o);
    if (!log.ok()) std::abort();
    p.log = *std::move(log);
    p.epochs.push_back({1, 0});
    for (int i = 0; i < 60; ++i) {
      if (i == 15 || i == 40) p.epochs.push_back({p.epochs.back().epoch + 1, p.log->end().offset});
      ringlog::EventHeader h;
      h.timestamp = 1000 + 10 * i;
      h.event_type = static_cast<uint8_t>(i % 5);
      const std::string payload(static_cast<size_t>(i * 997 % 6000), 'x');
      h.payload_len = static_cast<uint16_t>(payload.size());
      if (!p.log->append_event(h, ringlog::as_bytes(payload)).ok()) std::abort();
    }
    return p;
  }();
  return p;
}

void append_request(const ringlog::v1::AppendRequest& req) {
  const std::string& r = req.records();
  std::vector<uint64_t> aligned((r.size() + 7) / 8);
  if (!r.empty()) std::memcpy(aligned.data(), r.data(), r.size());
  const ringlog::ByteSpan span(reinterpret_cast<const std::byte*>(aligned.data()), r.size());
  absl::StatusOr<size_t> n = ringlog::validate_records(span, size_t{4} << 10);
  if (n.ok() && (*n == 0 || r.size() > (size_t{4} << 10))) std::abort();
  (void)(req.producer_id().size() > ringlog::kMaxProducerIdBytes);
}

void replay_request(const ringlog::v1::ReplayRequest& req) {
  absl::StatusOr<ringlog::ReplayPlan> plan = ringlog::plan_replay(req);
  if (!plan.ok()) return;
  // Any size from one byte (then one record per response) to the cap.
  if (plan->max_bytes == 0 || plan->max_bytes > ringlog::kReplayMaxBatchBytes) std::abort();
  const SegmentedLog& log = *primary().log;
  const uint64_t commit = log.end().offset;
  absl::StatusOr<LogPosition> from = ringlog::replay_start(log, commit, req);
  if (!from.ok()) return;
  if (from->offset < log.start().offset || from->offset > commit) std::abort();
  // The event by event read of a filtered or limited replay ...
  ringlog::LogReader reader(log, *from);
  uint64_t remaining = plan->limit;
  uint64_t seq = from->seq;
  while (remaining > 0) {
    std::optional<ringlog::EventView> ev = reader.next(commit);
    if (!ev) break;
    ++seq;
    if (!plan->include_control && ringlog::is_control(*ev->header)) continue;
    if (plan->filtered && !plan->types.test(ev->event_type())) continue;
    --remaining;
  }
  if (reader.position().seq != seq) std::abort();
  // ... and the slices of an unfiltered one.
  ringlog::LogReader slices(log, *from);
  while (std::optional<ringlog::LogSlice> s = slices.next_slice(commit, plan->max_bytes)) {
    // At most max_bytes, unless one record alone is larger.
    if (s->records.bytes.empty() || (s->records.bytes.size() > plan->max_bytes && s->records.count != 1)) {
      std::abort();
    }
  }
  if (slices.position() != log.end()) std::abort();
}

void follow_request(const ringlog::v1::FollowRequest& req) {
  if (!req.has_hello()) return;
  const ringlog::v1::FollowHello& hello = req.hello();
  const Primary& p = primary();
  const std::vector<ringlog::EpochEntry> replica = ringlog::epochs_from_wire(hello.epochs());
  const uint64_t end = p.log->end().offset;
  absl::StatusOr<uint64_t> cut = ringlog::divergence_point(p.epochs, end, replica,
                                                           hello.log_end_offset());
  if (!cut.ok()) return;
  if (*cut > hello.log_end_offset() || *cut > end) std::abort();
  (void)p.log->find_offset(*cut);
}

template <typename Message>
void round_trip(const uint8_t* data, size_t size) {
  Message m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return;
  Message again;
  if (!again.ParseFromString(m.SerializeAsString())) std::abort();
  if (again.SerializeAsString() != m.SerializeAsString()) std::abort();
}

}  // namespace

// Protobuf logs each string field that is not UTF-8; fuzzed input has many.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 16384) return -1;
  const uint8_t* body = data + 1;
  const int n = static_cast<int>(size - 1);
  switch (data[0] % 6) {
    case 0: {
      ringlog::v1::AppendRequest req;
      if (req.ParseFromArray(body, n)) append_request(req);
      break;
    }
    case 1: {
      ringlog::v1::ReplayRequest req;
      if (req.ParseFromArray(body, n)) replay_request(req);
      break;
    }
    case 2: {
      ringlog::v1::FollowRequest req;
      if (req.ParseFromArray(body, n)) follow_request(req);
      break;
    }
    case 3:
      round_trip<ringlog::v1::PromoteRequest>(body, size - 1);
      break;
    case 4:
      round_trip<ringlog::v1::FollowCommand>(body, size - 1);
      break;
    case 5:
      round_trip<ringlog::v1::GetStatusRequest>(body, size - 1);
      break;
  }
  return 0;
}
