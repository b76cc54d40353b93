// Shared pieces of the integration tests: real ringlogd processes on ports
// they pick themselves, each in its own temporary directory, spoken to over
// real gRPC.
//
//   class IntegrationFoo : public ringlog::testing::NodeTest {};
//   TEST_F(IntegrationFoo, Bar) {
//     tools::NodeProcess& node = start_node();
//     std::unique_ptr<Client> client = connect(node);
//     append_numbered(*client, /*stream=*/0, 0, 1000);
//     ReplayResult r = replay_all(*client, {});
//   }
//
// The processes, temporary directory, events, commands and raw streams come
// from the test kit (tests/kit); this fixture adds single-node helpers.
// Nothing here sleeps to synchronize: wait_until() polls a condition with a
// deadline.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/process.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "ringlog/client.h"
#include "ringlog/event.h"
#include "kit/append_stream.h"
#include "kit/binaries.h"
#include "kit/events.h"
#include "kit/nodes.h"
#include "kit/support.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog::testing {

using testkit::CommandResult;
using testkit::kRinglogctl;
using testkit::kRinglogd;
using testkit::make_record;
using testkit::RawAppendStream;
using testkit::run_command;
using testkit::wait_until;

// ---- Events the tests write: the payload says who wrote it and when ----

inline constexpr size_t kTestPayloadBytes = 16;  // so each record is 32 bytes
inline constexpr size_t kTestRecordBytes = padded_size(kTestPayloadBytes);

// Event `index` of `stream` in the kit's scheme (kit/events.h).
inline std::string test_payload(uint64_t stream, uint64_t index) {
  return testkit::event_payload(stream, index, kTestPayloadBytes);
}
// Decodes test_payload(); false if `payload` is not one.
inline bool parse_test_payload(ByteSpan payload, uint64_t* stream, uint64_t* index) {
  return testkit::parse_event_payload(payload, kTestPayloadBytes, stream, index);
}
inline uint64_t test_timestamp(uint64_t stream, uint64_t index) {
  return testkit::event_timestamp(stream, index);
}
inline uint8_t test_type(uint64_t stream, uint64_t index) {
  return testkit::event_type(stream, index);
}
// Appends records for events [first, first + count) of `stream` to `out`.
inline void add_test_records(std::string* out, uint64_t stream, uint64_t first, uint64_t count) {
  *out += testkit::encode_events(stream, first, count, kTestPayloadBytes);
}

// ---- Calls without a generated stub ----

struct GenericResult {
  grpc::Status status;
  std::vector<std::string> responses;  // serialized messages
};

// Calls `method` (e.g. "/grpc.health.v1.Health/Check") with `request`, a
// serialized message, half-closes, and reads every response. Works for
// unary and streaming methods alike: on the wire they are the same.
GenericResult generic_call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                           const std::string& request);

// A length-delimited protobuf field (values under 128 bytes).
std::string bytes_field(int number, const std::string& value);

// ---- Replay ----

struct ReplayedEvent {
  uint64_t seq = 0;
  uint64_t timestamp = 0;
  uint8_t type = 0;
  std::string payload;
};

struct ReplayResult {
  std::vector<ReplayedEvent> events;
  absl::Status status;  // the replayer's status once it stopped
  bool timed_out = false;
};

// Runs `fn` on each event of a replay until it ends, `fn` returns false, or
// `timeout` passes (then the replay is cancelled and timed_out set).
ReplayResult replay_each(Client& client, const ReplayOptions& options,
                         const std::function<bool(const ReplayEvent&)>& fn,
                         absl::Duration timeout = absl::Seconds(60));
// Collects every event (for small logs).
ReplayResult replay_all(Client& client, const ReplayOptions& options,
                        absl::Duration timeout = absl::Seconds(60));

// A replay (usually with follow) read by a thread of its own while the test
// appends; stop() cancels it.
class BackgroundReplay {
 public:
  BackgroundReplay(Client& client, const ReplayOptions& options);
  ~BackgroundReplay();  // stop()
  size_t count() const;
  std::vector<ReplayedEvent> events() const;
  // True once the replay stopped by itself (end, limit or error).
  bool ended() const;
  // Cancels the replay, waits for the thread, returns the replayer's status.
  absl::Status stop();

 private:
  std::unique_ptr<Replayer> replayer_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<ReplayedEvent> events_;
  bool ended_ = false;
};

// A Replay call on the generated stub: every response and the final status.
struct RawReplay {
  std::vector<v1::ReplayResponse> responses;
  grpc::Status status;
};
RawReplay raw_replay(const std::shared_ptr<grpc::Channel>& channel, const v1::ReplayRequest& req,
                     absl::Duration timeout = absl::Seconds(30));

// ---- Checking acknowledgements against the log ----

// A batch of test events and the seqs its acknowledgement gave it.
struct AckedBatch {
  uint64_t stream = 0;
  uint64_t first_index = 0;  // index of the batch's first event in its stream
  uint64_t count = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
};

// The batch of `count` events from event `first_index` of `stream`, as
// acknowledged by `ack` (which must be that batch's own ack).
inline AckedBatch acked_batch(uint64_t stream, uint64_t first_index, const Ack& ack) {
  return AckedBatch{stream, first_index, ack.last_seq + 1 - ack.first_seq, ack.first_seq,
                    ack.last_seq};
}

// Sorted by seq, the ack ranges have their batch's size, do not overlap, and
// tile the seqs from 0: each starts right after the previous one's last seq
// and the `control_per_batch` control records written after it (one producer
// marker after each idempotent batch, see ringlog/control.h; none for a batch
// without a producer id). Together they hold `total_events` events.
::testing::AssertionResult acks_tile_seqs(std::vector<AckedBatch> batches, uint64_t total_events,
                                          uint64_t control_per_batch);
// Replays the whole log and checks that every acknowledged event is at its
// acknowledged seq with its content, and that every event replayed is a
// test event that comes in order in its stream (index 0, 1, 2, ... with no
// gap or repeat) at a seq above the previous one (control records, left out
// of replays, leave gaps). Sets *replayed to the number of events replayed.
::testing::AssertionResult log_matches_acks(Client& client, std::vector<AckedBatch> batches,
                                            uint64_t* replayed);

// ---- Processes ----

// The flags every test node gets: small ring and segments, so a test fills
// several segments quickly.
std::vector<std::string> small_node_flags();

// Fixture: a temporary directory, ringlogd processes in it, and helpers.
class NodeTest : public ::testing::Test {
 protected:
  void TearDown() override;  // prints the nodes' logs when the test failed

  const std::string& dir() const { return tmp_.path(); }
  std::string data_dir(int i = 0) const { return nodes_.data_dir(name(i)); }

  // The helpers below throw std::runtime_error when something they need
  // fails (gtest reports the test as failed with the message); they are for
  // the test's main thread.

  // Starts ringlogd on data_dir(i) with small_node_flags() plus `extra`,
  // replacing (SIGKILL) a process still running on that directory. A
  // reference from an earlier start_node(i) is invalid afterwards.
  tools::NodeProcess& start_node(std::vector<std::string> extra = {}, int i = 0);
  // The node started on data_dir(i).
  tools::NodeProcess& node(int i = 0);
  // What the node on data_dir(i) printed so far (every start's output).
  std::string output(int i = 0) const { return nodes_.output(name(i)); }
  std::unique_ptr<Client> connect(const tools::NodeProcess& node,
                                  ClientOptions options = ClientOptions());
  v1::NodeStatus status(Client& client);

  // Appends events [first, first + count) of `stream` with an Appender (so
  // each batch is idempotent and followed by a producer marker) and waits
  // until every one is acknowledged; returns the last batch's ack.
  Ack append_numbered(Client& client, uint64_t stream, uint64_t first, uint64_t count);
  // Runs ringlogctl with `args`, stdout and stderr apart.
  CommandResult ctl(const std::vector<std::string>& args, const std::string& input = "");

 private:
  static std::string name(int i) { return "data" + std::to_string(i); }

  testkit::TempDir tmp_{"ringlog-it-"};  // declared first: removed after the nodes are gone
  testkit::NodeSet nodes_{tmp_.path()};
};

}  // namespace ringlog::testing
