#include "replication_harness.h"

#include <csignal>

#include "absl/strings/str_cat.h"
#include "kit/log_files.h"

namespace ringlog::testing {

void ReplicationTest::TearDown() {
  if (HasFailure()) testkit::print_log_tails(dir(), 30);  // to diagnose the failure
}

tools::NodeProcess& ReplicationTest::start(const std::string& name, std::vector<std::string> args) {
  args.insert(args.begin(), {absl::StrCat("--segment_bytes=", kSegmentBytes),
                             absl::StrCat("--ring_bytes=", kRingBytes)});
  return nodes_.start(name, testkit::kRinglogd, args);
}

tools::NodeProcess& ReplicationTest::start_primary(const std::string& name,
                                                   std::vector<std::string> extra) {
  extra.insert(extra.begin(), "--role=primary");
  return start(name, std::move(extra));
}

tools::NodeProcess& ReplicationTest::start_replica(const std::string& name,
                                                   const std::string& primary_address,
                                                   std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"--role=replica", "--primary=" + primary_address});
  replicas_.insert(name);
  return start(name, std::move(extra));
}

void ReplicationTest::stop_all() {
  // Replicas first, so that none of them sees its primary go away.
  std::vector<std::string> order;
  for (const std::string& name : nodes_.running()) {
    if (replicas_.contains(name)) order.push_back(name);
  }
  for (const std::string& name : nodes_.running()) {
    if (!replicas_.contains(name)) order.push_back(name);
  }
  for (const std::string& name : order) {
    absl::StatusOr<int> rc = nodes_.stop(name, SIGTERM);
    EXPECT_TRUE(rc.ok() && *rc == 0) << name << " did not stop cleanly on SIGTERM: "
                                     << (rc.ok() ? absl::StrCat("exit ", *rc) : rc.status().ToString());
  }
}

v1::NodeStatus ReplicationTest::status_now(const tools::NodeProcess& n) {
  absl::StatusOr<v1::NodeStatus> s = status(n);
  if (!s.ok()) {
    ADD_FAILURE() << "GetStatus on " << n.address() << ": " << s.status();
    return v1::NodeStatus();
  }
  return *s;
}

absl::StatusOr<std::unique_ptr<Client>> ReplicationTest::connect(const tools::NodeProcess& n) {
  ClientOptions o;
  o.endpoints = {n.address()};
  return Client::Connect(o);
}

absl::StatusOr<Ack> ReplicationTest::append_events(const tools::NodeProcess& n, uint64_t first,
                                                   uint64_t count) {
  ClientOptions o;
  o.endpoints = {n.address()};
  return testkit::append_events(o, {.first = first, .count = count, .payload_bytes = kPayloadBytes});
}

::testing::AssertionResult ReplicationTest::wait_converged(
    const tools::NodeProcess& primary, const std::vector<const tools::NodeProcess*>& replicas,
    absl::Duration timeout) {
  std::vector<std::string> addresses;
  for (const tools::NodeProcess* r : replicas) addresses.push_back(r->address());
  return testkit::wait_converged(channels_, primary.address(), addresses, timeout,
                                 {.replica_end = true, .roles_and_commit = false});
}

std::vector<std::string> ReplicationTest::segment_files(const std::string& name) const {
  return testkit::segment_files(data_dir(name));
}

::testing::AssertionResult ReplicationTest::logs_identical(const std::string& primary,
                                                           const std::string& replica,
                                                           std::optional<uint64_t> end_offset) {
  return testkit::logs_identical(data_dir(primary), data_dir(replica), end_offset);
}

CommandResult ReplicationTest::run_ringlogctl(const std::vector<std::string>& args,
                                              absl::Duration timeout) {
  std::vector<std::string> argv = {testkit::kRinglogctl};
  argv.insert(argv.end(), args.begin(), args.end());
  return testkit::run_command(argv, {.timeout = timeout, .merge_output = true});
}

}  // namespace ringlog::testing
