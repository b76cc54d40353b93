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
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog::testing {

inline constexpr char kRinglogd[] = RINGLOGD_PATH;
inline constexpr char kRinglogctl[] = RINGLOGCTL_PATH;

// Polls `pred` until it holds or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(30));

// A directory made with mkdtemp, removed with everything in it at the end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- Events the tests write: the payload says who wrote it and when ----

inline constexpr size_t kTestPayloadBytes = 16;  // so each record is 32 bytes
inline constexpr size_t kTestRecordBytes = padded_size(kTestPayloadBytes);

// 16 bytes: the stream id and the event's index in that stream (u64 LE each).
std::string test_payload(uint64_t stream, uint64_t index);
// Decodes test_payload(); false if `payload` is not one.
bool parse_test_payload(ByteSpan payload, uint64_t* stream, uint64_t* index);
// Timestamp and type derived from (stream, index), so content checks cover the header too.
uint64_t test_timestamp(uint64_t stream, uint64_t index);
uint8_t test_type(uint64_t stream, uint64_t index);

// Appends records for events [first, first + count) of `stream` to `out`.
void add_test_records(std::string* out, uint64_t stream, uint64_t first, uint64_t count);
// One record with any header fields and payload, checksum computed.
std::string make_record(uint64_t timestamp, uint8_t type, std::string_view payload);

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

// ---- Append on the generated stub ----

// A pipelined Append stream that records every acknowledgement, for tests
// that send malformed batches or need each batch's ack. One sending thread.
class RawAppendStream {
 public:
  // The call ends with DEADLINE_EXCEEDED after `deadline`, so a server that
  // never ends it fails the test instead of hanging it.
  explicit RawAppendStream(const std::shared_ptr<grpc::Channel>& channel,
                           absl::Duration deadline = absl::Seconds(120));
  ~RawAppendStream();  // cancels the call if it was not finished

  // Writes a batch; false once the stream is broken.
  bool send(uint64_t batch_id, const std::string& records);
  bool send(const v1::AppendRequest& req);
  // Blocks while `max` or more batches are unacknowledged; false if the
  // stream ended.
  bool wait_in_flight_below(size_t max);
  // Waits for `n` acks; false on timeout or if the stream ended first.
  bool wait_acks(size_t n, absl::Duration timeout = absl::Seconds(30));
  // Half-closes (if not yet), waits for the server to end the call, and
  // returns its status.
  grpc::Status finish();

  std::vector<v1::AppendResponse> acks() const;
  size_t sent() const;

 private:
  void read_loop();

  std::unique_ptr<v1::EventLog::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>> stream_;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::AppendResponse> acks_;
  size_t sent_ = 0;
  bool read_done_ = false;
  bool writes_done_ = false;
  std::optional<grpc::Status> status_;
};

// ---- Processes ----

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;
  std::string err;
  bool timed_out = false;
};
// Runs `argv` (argv[0] is the binary path) with `input` on stdin, capturing
// stdout and stderr in files under `work_dir`.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& input,
                          const std::string& work_dir, absl::Duration timeout = absl::Seconds(30));

// The flags every test node gets: small ring and segments, so a test fills
// several segments quickly.
std::vector<std::string> small_node_flags();

// Fixture: a temporary directory, ringlogd processes in it, and helpers.
class NodeTest : public ::testing::Test {
 protected:
  void TearDown() override;  // prints the nodes' logs when the test failed

  const std::string& dir() const { return tmp_.path(); }
  std::string data_dir(int i = 0) const { return dir() + "/data" + std::to_string(i); }

  // The helpers below throw std::runtime_error when something they need
  // fails (gtest reports the test as failed with the message); they are for
  // the test's main thread.

  // Starts ringlogd on data_dir(i) with small_node_flags() plus `extra`,
  // replacing (SIGKILL) a process still running on that directory. A
  // reference from an earlier start_node(i) is invalid afterwards.
  tools::NodeProcess& start_node(std::vector<std::string> extra = {}, int i = 0);
  // The node started on data_dir(i).
  tools::NodeProcess& node(int i = 0);
  std::unique_ptr<Client> connect(const tools::NodeProcess& node,
                                  ClientOptions options = ClientOptions());
  v1::NodeStatus status(Client& client);

  // Appends events [first, first + count) of `stream` with an Appender (so
  // each batch is idempotent and followed by a producer marker) and waits
  // until every one is acknowledged; returns the last batch's ack.
  Ack append_numbered(Client& client, uint64_t stream, uint64_t first, uint64_t count);
  // Runs ringlogctl with `args`.
  CommandResult ctl(const std::vector<std::string>& args, const std::string& input = "");

 private:
  TempDir tmp_;  // declared first: removed after the nodes are gone
  std::map<int, std::unique_ptr<tools::NodeProcess>> nodes_;
};

}  // namespace ringlog::testing
