// The replication tests' fixture: a primary and replicas as real ringlogd
// processes on loopback ports they pick themselves, each test in its own
// temporary directory, spoken to over real gRPC. Processes, directories,
// events, load, convergence and file checks come from the test kit
// (tests/kit); this fixture names the nodes and picks the sizes.
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

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/process.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kit/binaries.h"
#include "kit/events.h"
#include "kit/load.h"
#include "kit/nodes.h"
#include "kit/support.h"
#include "ringlog/client.h"
#include "ringlog/event.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog::testing {

using testkit::CommandResult;
using testkit::wait_until;

// Small segments and ring so that even a short test rolls many segments.
inline constexpr uint64_t kSegmentBytes = uint64_t{4} << 20;
inline constexpr uint64_t kRingBytes = uint64_t{8} << 20;

// Every test event has a 64-byte payload: an 80-byte record.
inline constexpr size_t kPayloadBytes = 64;
inline constexpr uint64_t kRecordBytes = padded_size(kPayloadBytes);

// Event i of a test (stream 0 in the kit's scheme, kit/events.h).
inline std::string event_payload(uint64_t i) { return testkit::event_payload(0, i, kPayloadBytes); }
inline uint64_t event_timestamp(uint64_t i) { return testkit::event_timestamp(0, i); }
inline uint8_t event_type(uint64_t i) { return testkit::event_type(0, i); }

// A thread that appends events first, first + 1, ... to the node at
// `address` until stop() (or `max_events`), so that appends go on while a
// test kills and restarts replicas; see testkit::BackgroundLoad.
class BackgroundAppender : public testkit::BackgroundLoad {
 public:
  BackgroundAppender(const std::string& address, uint64_t first, uint64_t max_events,
                     uint64_t events_per_second = 0,
                     absl::Duration failover_timeout = absl::Seconds(30))
      : BackgroundLoad({.endpoints = {address},
                        .payload_bytes = kPayloadBytes,
                        .first = first,
                        .max_events = max_events,
                        .events_per_second = events_per_second,
                        .failover_timeout = failover_timeout}) {}
};

// The fixture. Node `name` keeps its data in <dir>/<name> and its output in
// <dir>/<name>.log.
class ReplicationTest : public ::testing::Test {
 protected:
  void TearDown() override;  // prints the nodes' last log lines when the test failed

  const std::string& dir() const { return tmp_.path(); }
  std::string data_dir(const std::string& name) const { return nodes_.data_dir(name); }

  // Starts (or restarts, on the same data directory) a node.
  tools::NodeProcess& start_primary(const std::string& name, std::vector<std::string> extra = {});
  tools::NodeProcess& start_replica(const std::string& name, const std::string& primary_address,
                                    std::vector<std::string> extra = {});
  tools::NodeProcess& node(const std::string& name) { return nodes_.at(name); }
  // Stops a node with `sig`; returns its exit status.
  absl::StatusOr<int> stop(const std::string& name, int sig) { return nodes_.stop(name, sig); }
  // SIGTERM to every running node, replicas first; each must exit 0.
  void stop_all();

  // GetStatus over a cached channel.
  absl::StatusOr<v1::NodeStatus> status(const tools::NodeProcess& n) {
    return channels_.status(n.address());
  }
  // The same, or an empty status (and a test failure) when it cannot be had.
  v1::NodeStatus status_now(const tools::NodeProcess& n);
  std::shared_ptr<grpc::Channel> channel(const std::string& address) {
    return channels_.get(address);
  }
  absl::StatusOr<std::unique_ptr<Client>> connect(const tools::NodeProcess& n);

  // Appends events [first, first + count) through one Appender and drains.
  absl::StatusOr<Ack> append_events(const tools::NodeProcess& n, uint64_t first, uint64_t count);

  // Waits until the primary has everything durable and committed, and each
  // replica has applied all of it, ends its log there and says it is streaming.
  ::testing::AssertionResult wait_converged(const tools::NodeProcess& primary,
                                            const std::vector<const tools::NodeProcess*>& replicas,
                                            absl::Duration timeout = absl::Seconds(90));

  // testkit::logs_identical() on two stopped nodes' data directories.
  ::testing::AssertionResult logs_identical(const std::string& primary, const std::string& replica,
                                            std::optional<uint64_t> end_offset = std::nullopt);
  // Segment file names (*.evtl) in a node's data directory, sorted.
  std::vector<std::string> segment_files(const std::string& name) const;

  // The node's output so far (its .log file).
  std::string node_output(const std::string& name) const { return nodes_.output(name); }

  // Runs ringlogctl with `args`, capturing stdout and stderr together.
  CommandResult run_ringlogctl(const std::vector<std::string>& args,
                               absl::Duration timeout = absl::Seconds(30));

 private:
  tools::NodeProcess& start(const std::string& name, std::vector<std::string> args);

  testkit::TempDir tmp_{"ringlog-replication-"};  // first: removed after the nodes are gone
  testkit::NodeSet nodes_{tmp_.path()};
  std::set<std::string> replicas_;
  testkit::Channels channels_;
};

}  // namespace ringlog::testing
