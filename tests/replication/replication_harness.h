// The replication tests' fixture: a primary and replicas as real ringlogd
// processes on loopback ports they pick themselves, each test in its own
// mkdtemp directory, spoken to over real gRPC.
//
//   class ReplicationFoo : public ringlog::testing::ReplicationTest {};
//   TEST_F(ReplicationFoo, Bar) {
//     tools::NodeProcess& p = start_primary("p");
//     tools::NodeProcess& r = start_replica("r", p);
//     ASSERT_OK(append_events(p, 0, 1000).status());
//     ASSERT_TRUE(wait_converged(p, {&r}));
//     stop_all();
//     EXPECT_TRUE(logs_identical("p", "r"));
//   }
//
// Nothing here sleeps to synchronize: wait_until() polls a condition (a
// GetStatus answer, a file's contents) until a deadline.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
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

// Small segments and ring so that even a short test rolls many segments.
inline constexpr uint64_t kSegmentBytes = uint64_t{4} << 20;
inline constexpr uint64_t kRingBytes = uint64_t{8} << 20;

// Every test event has a 64-byte payload: an 80-byte record.
inline constexpr size_t kPayloadBytes = 64;
inline constexpr uint64_t kRecordBytes = padded_size(kPayloadBytes);

// Polls `pred` until it holds or `timeout` passes; returns its last value.
bool wait_until(const std::function<bool()>& pred, absl::Duration timeout = absl::Seconds(60));

// Event i of a test: its payload (i, then bytes derived from i), timestamp and type.
std::string event_payload(uint64_t i);
uint64_t event_timestamp(uint64_t i);
uint8_t event_type(uint64_t i);

// A thread that appends events first, first + 1, ... through one Appender
// until stop() (or `max_events`), so that appends go on while a test kills
// and restarts replicas. At most `events_per_second` (0: as fast as it can),
// which keeps the log small however long the test waits.
class BackgroundAppender {
 public:
  BackgroundAppender(const std::string& address, uint64_t first, uint64_t max_events,
                     uint64_t events_per_second = 0,
                     absl::Duration failover_timeout = absl::Seconds(30));
  ~BackgroundAppender();  // stop()
  // Events appended (handed to the Appender) so far.
  uint64_t appended() const { return appended_.load(std::memory_order_acquire); }
  bool done() const { return done_.load(std::memory_order_acquire); }
  // Stops appending, drains, and returns the last ack (or the error).
  absl::StatusOr<Ack> stop();

 private:
  void run(std::string address, uint64_t first, uint64_t max_events, uint64_t rate,
           absl::Duration failover_timeout);
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::atomic<uint64_t> appended_{0};
  std::optional<absl::StatusOr<Ack>> result_;  // set by the thread before done_
  std::thread thread_;
};

// A command's exit code and output.
struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;
  bool timed_out = false;
};

// The fixture. Node `name` keeps its data in <dir>/<name> and its output in
// <dir>/<name>.log (NodeProcess's convention).
class ReplicationTest : public ::testing::Test {
 protected:
  ReplicationTest();
  ~ReplicationTest() override;
  void TearDown() override;

  const std::string& dir() const { return dir_; }
  std::string data_dir(const std::string& name) const { return dir_ + "/" + name; }

  // Starts (or restarts, on the same data directory) a node.
  tools::NodeProcess& start_primary(const std::string& name, std::vector<std::string> extra = {});
  tools::NodeProcess& start_replica(const std::string& name, const std::string& primary_address,
                                    std::vector<std::string> extra = {});
  tools::NodeProcess& node(const std::string& name) { return *nodes_.at(name); }
  // Stops a node with `sig`; returns its exit status.
  absl::StatusOr<int> stop(const std::string& name, int sig);
  // SIGTERM to every running node, replicas first; each must exit 0.
  void stop_all();

  // GetStatus over a cached channel.
  absl::StatusOr<v1::NodeStatus> status(const tools::NodeProcess& n);
  // The same, or an empty status (and a test failure) when it cannot be had.
  v1::NodeStatus status_now(const tools::NodeProcess& n);
  std::shared_ptr<grpc::Channel> channel(const std::string& address);
  absl::StatusOr<std::unique_ptr<Client>> connect(const tools::NodeProcess& n);

  // Appends events [first, first + count) through one Appender and drains.
  absl::StatusOr<Ack> append_events(const tools::NodeProcess& n, uint64_t first, uint64_t count);

  // Waits until the primary has everything durable and committed, and each
  // replica has applied all of it and says it is streaming.
  ::testing::AssertionResult wait_converged(const tools::NodeProcess& primary,
                                            const std::vector<const tools::NodeProcess*>& replicas,
                                            absl::Duration timeout = absl::Seconds(90));

  // The segment files of two stopped nodes: the same names, each file equal
  // byte for byte, and the CRC32C of each used range (header and valid
  // records) equal. If `end_offset` is set, the records add up to it.
  ::testing::AssertionResult logs_identical(const std::string& primary, const std::string& replica,
                                            std::optional<uint64_t> end_offset = std::nullopt);
  // Segment file names (*.evtl) in a node's data directory, sorted.
  std::vector<std::string> segment_files(const std::string& name) const;

  // The node's output so far (its .log file).
  std::string node_output(const std::string& name) const;

  // Runs ringlogctl with `args`, capturing stdout and stderr together.
  CommandResult run_ringlogctl(const std::vector<std::string>& args,
                               absl::Duration timeout = absl::Seconds(30));

 private:
  tools::NodeProcess& start(const std::string& name, std::vector<std::string> args);

  std::string dir_;
  std::map<std::string, std::unique_ptr<tools::NodeProcess>> nodes_;
  std::set<std::string> replicas_;
  std::mutex channels_mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  int commands_ = 0;
};

}  // namespace ringlog::testing
