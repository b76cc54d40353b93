// The failover and operations tests' fixture: real ringlogd processes on
// loopback ports, each test in its own mkdtemp directory, spoken to over real
// gRPC (the client library, the generated stubs, and the ringlogctl binary).
//
//   class FailoverFoo : public ringlog::failover_test::FailoverTest {};
//   TEST_F(FailoverFoo, Bar) {
//     start_cluster();                        // A primary; B, C replicas
//     ASSERT_OK(append({"A"}, 0, 100, kTagAcked));
//     ASSERT_TRUE(wait_converged("A", {"B", "C"}));
//     ...
//   }
//
// Every node gets a loopback address reserved before it starts (a port that
// was free when the test bound port 0 and released it), so that nodes can
// name each other in --peers and --primary before they run, and a restarted
// node comes back at the same address. Nothing here sleeps to synchronize:
// wait_until() polls a condition (a GetStatus answer, a log line) until a
// deadline. A failed test prints the last lines of each node's log (set
// FO_SHOW_LOGS=1 to print them always).
#pragma once

#include <atomic>
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

namespace ringlog::failover_test {

inline constexpr char kRinglogd[] = RINGLOGD_PATH;
inline constexpr char kRinglogctl[] = RINGLOGCTL_PATH;

inline constexpr uint64_t kSegmentBytes = uint64_t{8} << 20;
inline constexpr uint64_t kRingBytes = uint64_t{8} << 20;

// Test events: a 32-byte payload holding a counter and a tag (which phase of
// a scenario wrote it), so that a replay tells which events survived.
inline constexpr size_t kPayloadBytes = 32;
inline constexpr uint64_t kRecordBytes = padded_size(kPayloadBytes);

// Polls `pred` until it holds or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(60));

// A loopback TCP port that was free a moment ago (bound to port 0, released).
int pick_free_port();

std::string event_payload(uint64_t counter, uint64_t tag);
// Whole records for events [first, first + count) with `tag`.
std::string encode_events(uint64_t first, uint64_t count, uint64_t tag);

struct Replayed {
  uint64_t seq = 0;
  uint64_t counter = 0;
  uint64_t tag = 0;
  friend bool operator==(const Replayed&, const Replayed&) = default;
};

// Checks that the events tagged `tag` in `events` are exactly counters
// [0, n), each once, in order.
::testing::AssertionResult exactly_once_in_order(const std::vector<Replayed>& events, uint64_t tag,
                                                 uint64_t n);
// How many events in `events` carry `tag`.
size_t count_tag(const std::vector<Replayed>& events, uint64_t tag);

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;     // stdout and stderr together
  bool timed_out = false;
};
// Runs argv[0] with argv, capturing its output; killed after `timeout`.
CommandResult run_command(const std::vector<std::string>& argv,
                          absl::Duration timeout = absl::Seconds(30));

// An Appender over several endpoints, fed by a thread at a steady rate with
// events counter 0, 1, 2, ... (tag `tag`), draining after each small burst so
// that acknowledgements are counted as they come. The Appender fails over by
// itself; the thread only stops on stop() or on an error.
class LoadThread {
 public:
  LoadThread(std::vector<std::string> endpoints, uint64_t events_per_second, uint64_t tag);
  ~LoadThread();  // stop()
  uint64_t acked() const { return acked_.load(std::memory_order_acquire); }
  uint64_t sent() const { return sent_.load(std::memory_order_acquire); }
  uint64_t last_epoch() const { return epoch_.load(std::memory_order_acquire); }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // Stops the load, closes the appender (everything sent is acknowledged or
  // an error is returned).
  absl::Status stop();
  uint64_t failovers() const { return failovers_; }    // valid after stop()
  uint64_t duplicates() const { return duplicates_; }  // valid after stop()

 private:
  void run(std::vector<std::string> endpoints, uint64_t rate, uint64_t tag);
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> epoch_{0};
  absl::Status result_ = absl::UnknownError("not stopped");
  uint64_t failovers_ = 0;
  uint64_t duplicates_ = 0;
  bool stopped_ = false;
  std::thread thread_;
};

// A raw Append stream on the generated stub: batches go out as written, acks
// are collected by a reader thread. No failover, no retry: what a test sends
// here reaches exactly one node.
class RawAppendStream {
 public:
  explicit RawAppendStream(const std::string& address,
                           absl::Duration deadline = absl::Seconds(60));
  ~RawAppendStream();  // cancels
  bool send(const std::string& records, uint64_t batch_id, const std::string& producer_id = "",
            uint64_t producer_seq = 0);
  // Waits for the n-th ack (from 1) until `timeout`; nullopt if the stream
  // ended or the time passed first.
  std::optional<v1::AppendResponse> wait_ack(size_t n, absl::Duration timeout);
  size_t acks() const;
  // Waits until the server ends the stream (or `timeout`); the final status,
  // or nullopt when it did not end in time.
  std::optional<grpc::Status> wait_end(absl::Duration timeout);

 private:
  std::unique_ptr<v1::EventLog::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>> rw_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::AppendResponse> acks_;
  std::optional<grpc::Status> end_;
  std::thread reader_;
};

class FailoverTest : public ::testing::Test {
 protected:
  FailoverTest();
  ~FailoverTest() override;
  void TearDown() override;

  const std::string& dir() const { return dir_; }
  std::string data_dir(const std::string& name) const { return dir_ + "/" + name; }

  // Reserves a loopback address for `name` (kept across restarts).
  const std::string& reserve(const std::string& name);
  // The node's address (reserved, or the one it picked when started).
  std::string address(const std::string& name) const;
  // "--peers=" and the addresses of `others`.
  std::string peers_flag(const std::vector<std::string>& others) const;

  // Gives `name` a fixed address (e.g. in a network namespace) and the
  // program that starts it (a wrapper that execs ringlogd with "$@").
  void place(const std::string& name, const std::string& address, const std::string& binary);

  // Starts node `name` with --node_id=name, the test's segment and ring sizes
  // (unless !test_sizes), its reserved address (if any) and `args`. Throws
  // (ending the test) if it cannot start.
  tools::NodeProcess& start(const std::string& name, std::vector<std::string> args,
                            bool test_sizes = true);
  // Starts it again on the same data directory with the same arguments.
  tools::NodeProcess& restart(const std::string& name);
  // Sends `sig` and waits for the exit; its exit status.
  absl::StatusOr<int> stop(const std::string& name, int sig);
  bool running(const std::string& name) const;
  // SIGKILL to every node still running.
  void kill_all() { nodes_.clear(); }
  tools::NodeProcess& process(const std::string& name) { return *nodes_.at(name); }

  // A primary "A" and replicas "B" and "C", all with --min_replica_acks=1
  // and --peers naming the other two, plus `extra`; waits until the replicas
  // stream.
  void start_cluster(std::vector<std::string> extra = {}, bool with_peers = true);

  absl::StatusOr<v1::NodeStatus> status(const std::string& name);
  absl::StatusOr<v1::NodeStatus> status_at(const std::string& address);
  // Admin.Promote on `name`; *ms gets the time around the call.
  grpc::Status promote(const std::string& name, bool force = false,
                       const std::vector<std::string>& peer_names = {},
                       v1::PromoteResponse* resp = nullptr, double* ms = nullptr);
  // Admin.Follow: `name` follows `primary` (an address).
  grpc::Status follow(const std::string& name, const std::string& primary, bool force = false);

  // Appends events [first, first + count) with `tag` through a Client over
  // the nodes `names` and drains; the last ack.
  absl::StatusOr<Ack> append(const std::vector<std::string>& names, uint64_t first, uint64_t count,
                             uint64_t tag);

  // Every event node `name` serves (up to its commit offset), in log order.
  absl::StatusOr<std::vector<Replayed>> replay_all(const std::string& name);

  // Waits until `primary` has everything durable and committed and each
  // replica follows it, streams, and has applied and committed all of it.
  ::testing::AssertionResult wait_converged(const std::string& primary,
                                            const std::vector<std::string>& replicas,
                                            absl::Duration timeout = absl::Seconds(60));
  // The segment files of two stopped nodes: the same names, equal byte for byte.
  ::testing::AssertionResult files_identical(const std::string& a, const std::string& b);
  std::vector<std::string> segment_files(const std::string& name) const;

  // The node's output so far (stdout and stderr of every start).
  std::string output(const std::string& name) const;
  // Runs ringlogctl with `args`.
  CommandResult ringlogctl(const std::vector<std::string>& args,
                           absl::Duration timeout = absl::Seconds(30));

 private:
  std::string dir_;
  std::map<std::string, std::string> addresses_;
  std::map<std::string, std::vector<std::string>> args_;
  std::map<std::string, bool> test_sizes_;
  std::map<std::string, std::string> binaries_;
  std::map<std::string, std::unique_ptr<tools::NodeProcess>> nodes_;
  mutable std::mutex channels_mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  std::shared_ptr<grpc::Channel> channel(const std::string& address);
};

}  // namespace ringlog::failover_test
