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
// FO_SHOW_LOGS=1 to print them always). Processes, directories, events,
// load, raw streams, convergence and file checks come from the test kit
// (tests/kit); this fixture adds addresses, restarts and the admin calls.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
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
#include "kit/load.h"
#include "kit/nodes.h"
#include "kit/support.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog::failover_test {

inline constexpr uint64_t kSegmentBytes = uint64_t{8} << 20;
inline constexpr uint64_t kRingBytes = uint64_t{8} << 20;

// Test events: a 32-byte payload holding a counter and a tag (which phase of
// a scenario wrote it), so that a replay tells which events survived. In the
// kit's scheme (kit/events.h) the tag is the stream and the counter the index.
inline constexpr size_t kPayloadBytes = 32;
inline constexpr uint64_t kRecordBytes = padded_size(kPayloadBytes);

using testkit::CommandResult;
using testkit::kRinglogctl;
using testkit::kRinglogd;
using testkit::RawAppendStream;
using testkit::run_command;
using testkit::wait_until;

// A loopback TCP port that was free a moment ago (bound to port 0, released).
int pick_free_port();

inline std::string event_payload(uint64_t counter, uint64_t tag) {
  return testkit::event_payload(tag, counter, kPayloadBytes);
}
// Whole records for events [first, first + count) with `tag`.
inline std::string encode_events(uint64_t first, uint64_t count, uint64_t tag) {
  return testkit::encode_events(tag, first, count, kPayloadBytes);
}

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
// Prints the machine-readable line of a fault scenario (tools/fault_report.sh
// adds them up): of the events tagged `tag` with counters [0, acknowledged),
// how many are missing from `events`, and how many appear more than once.
//   FAULT_RESULT scenario=NAME acknowledged=N lost=N duplicated=N
void report_fault(const std::string& scenario, const std::vector<Replayed>& events, uint64_t tag,
                  uint64_t acknowledged);
// How many events in `events` carry `tag`.
size_t count_tag(const std::vector<Replayed>& events, uint64_t tag);

// The kit's background load over several endpoints at a steady rate, with
// events counter 0, 1, 2, ... (tag `tag`), draining after each small burst so
// that acknowledgements are counted as they come. The Appender fails over by
// itself; the thread only stops on stop() or on an error.
class LoadThread : public testkit::BackgroundLoad {
 public:
  LoadThread(std::vector<std::string> endpoints, uint64_t events_per_second, uint64_t tag)
      : BackgroundLoad({.endpoints = std::move(endpoints),
                        .payload_bytes = kPayloadBytes,
                        .stream = tag,
                        .events_per_second = events_per_second,
                        .failover_timeout = absl::Seconds(60),
                        .drain_each_burst = true}) {}
  // Stops the load, closes the appender (everything sent is acknowledged or
  // an error is returned).
  absl::Status stop() { return BackgroundLoad::stop().status(); }
};

class FailoverTest : public ::testing::Test {
 protected:
  void TearDown() override;

  const std::string& dir() const { return tmp_.path(); }
  std::string data_dir(const std::string& name) const { return nodes_.data_dir(name); }

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
  bool running(const std::string& name) const { return nodes_.contains(name); }
  // SIGKILL to every node still running.
  void kill_all() { nodes_.clear(); }
  tools::NodeProcess& process(const std::string& name) { return nodes_.at(name); }

  // A primary "A" and replicas "B" and "C", all with --min_replica_acks=1
  // and --peers naming the other two, plus `extra`; waits until the replicas
  // stream.
  void start_cluster(std::vector<std::string> extra = {}, bool with_peers = true);

  absl::StatusOr<v1::NodeStatus> status(const std::string& name) {
    return status_at(address(name));
  }
  absl::StatusOr<v1::NodeStatus> status_at(const std::string& address) {
    return channels_.status(address, absl::Seconds(3));
  }
  // Admin.Promote on `name`; *ms gets the time around the call.
  grpc::Status promote(const std::string& name, bool force = false,
                       const std::vector<std::string>& peer_names = {},
                       v1::PromoteResponse* resp = nullptr, double* ms = nullptr);
  // Admin.Follow: `name` follows `primary` (an address). The tests do a
  // failover's steps by hand, pointing replicas at a node before promoting
  // it: each Follow says so (to_be_promoted), so `primary` may be a replica.
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
  std::string output(const std::string& name) const { return nodes_.output(name); }
  // Runs ringlogctl with `args`.
  CommandResult ringlogctl(const std::vector<std::string>& args,
                           absl::Duration timeout = absl::Seconds(30));

 private:
  testkit::TempDir tmp_{"ringlog-failover-"};  // first: removed after the nodes are gone
  std::map<std::string, std::string> addresses_;
  std::map<std::string, std::vector<std::string>> args_;
  std::map<std::string, bool> test_sizes_;
  std::map<std::string, std::string> binaries_;
  testkit::NodeSet nodes_{tmp_.path()};
  testkit::Channels channels_;
};

}  // namespace ringlog::failover_test
