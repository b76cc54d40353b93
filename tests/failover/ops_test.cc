// Operations: the Prometheus metrics endpoint, scraped with a real HTTP
// client, and configuration from a file, the environment and the command line.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "failover_harness.h"
#include "gmock/gmock.h"

namespace ringlog::failover_test {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kData = 1;

using testkit::http_get;
using testkit::parse_metrics;

class OpsMetrics : public FailoverTest {
 protected:
  // The metrics port a node logged ("metrics on http://... (port N)").
  int metrics_port(const std::string& name) {
    return testkit::logged_metrics_port([&] { return output(name); }, absl::Seconds(60));
  }
};

// Scenario: a primary A with --metrics_listen=127.0.0.1:0 (civetweb picks a
// port; the node logs it) and --fsync=batch, and a replica B. A scrape of
// http://127.0.0.1:PORT/metrics with curl returns the Prometheus text with
// ringlog_events_appended_total, ringlog_commit_offset, the fsync latency
// histogram and ringlog_replica_lag_bytes{replica="B"}. After 200 appends the
// counters and offsets have moved; after B stops replicating and 100 more
// events are appended, B's lag in bytes is what B has not acknowledged.
TEST_F(OpsMetrics, PrometheusEndpointServesMetricsThatMove) {
  reserve("A");
  start("A", {"--metrics_listen=127.0.0.1:0", "--fsync=batch"});
  start("B", {"--role=replica", "--primary=" + address("A")});
  const int port = metrics_port("A");
  ASSERT_GT(port, 0) << "no metrics port in A's log:\n" << output("A");
  ASSERT_TRUE(wait_converged("A", {"B"}));

  const std::string first = http_get(port, "/metrics");
  ASSERT_FALSE(first.empty()) << "the scrape failed";
  EXPECT_THAT(first, HasSubstr("# TYPE ringlog_events_appended_total counter"));
  EXPECT_THAT(first, HasSubstr("# TYPE ringlog_fsync_seconds histogram"));
  std::map<std::string, double> m0 = parse_metrics(first);
  for (const char* name : {"ringlog_events_appended_total", "ringlog_commit_offset",
                           "ringlog_fsync_seconds_count", "ringlog_fsync_seconds_bucket{le=\"+Inf\"}",
                           "ringlog_replica_lag_bytes{replica=\"B\"}"}) {
    EXPECT_EQ(m0.count(name), 1u) << name << " missing from:\n" << first;
  }

  ASSERT_TRUE(append({"A"}, 0, 200, kData).ok());
  ASSERT_TRUE(wait_converged("A", {"B"}));
  std::map<std::string, double> m1 = parse_metrics(http_get(port, "/metrics"));
  EXPECT_GE(m1["ringlog_events_appended_total"], m0["ringlog_events_appended_total"] + 200);
  EXPECT_GE(m1["ringlog_commit_offset"], m0["ringlog_commit_offset"] + 200 * kRecordBytes);
  EXPECT_GT(m1["ringlog_fsync_seconds_count"], m0["ringlog_fsync_seconds_count"]);
  EXPECT_EQ(m1["ringlog_fsync_seconds_bucket{le=\"+Inf\"}"], m1["ringlog_fsync_seconds_count"]);
  EXPECT_EQ(m1["ringlog_replica_lag_bytes{replica=\"B\"}"], 0);

  ASSERT_TRUE(follow("B", absl::StrCat("127.0.0.1:", pick_free_port())).ok());
  ASSERT_TRUE(append({"A"}, 200, 100, kData).ok());
  absl::StatusOr<v1::NodeStatus> a = status("A");
  absl::StatusOr<v1::NodeStatus> b = status("B");
  ASSERT_TRUE(a.ok() && b.ok());
  const double expected_lag = static_cast<double>(a->log_end_offset() - b->log_end_offset());
  ASSERT_GE(expected_lag, 100.0 * kRecordBytes);
  std::map<std::string, double> m2;
  EXPECT_TRUE(wait_until([&] {
    m2 = parse_metrics(http_get(port, "/metrics"));
    return m2["ringlog_replica_connected{replica=\"B\"}"] == 0;
  }, absl::Seconds(60))) << "A still counts B as connected";
  EXPECT_EQ(m2["ringlog_replica_lag_bytes{replica=\"B\"}"], expected_lag);
}

class OpsConfig : public FailoverTest {
 protected:
  void TearDown() override {
    unsetenv("RINGLOG_MIN_REPLICA_ACKS");
    unsetenv("RINGLOG_CONFIG");
    FailoverTest::TearDown();
  }
  // The "starting with ..." line of a node's log.
  std::string starting_line(const std::string& name) {
    const std::string out = output(name);
    const size_t at = out.find("starting with ");
    if (at == std::string::npos) return "";
    return out.substr(at, out.find('\n', at) - at);
  }
};

// Scenario: a config file sets min_replica_acks = 2, segment_bytes = 4 MiB,
// ring_bytes = 8 MiB (with a comment and a "--name: value" line). A node
// started with --config=FILE reports min_replica_acks 2 and one 4 MiB segment
// in GetStatus, and logs them in its "starting with ..." line. With
// RINGLOG_MIN_REPLICA_ACKS=3 in the environment as well, a node reports 3
// (the segment size still from the file). With --min_replica_acks=4 on the
// command line too, it reports 4. RINGLOG_CONFIG=FILE in the environment
// stands for --config.
TEST_F(OpsConfig, FileThenEnvironmentThenCommandLine) {
  const std::string conf = dir() + "/ringlog.conf";
  std::ofstream(conf) << "# an example config\n"
                         "min_replica_acks = 2\n"
                         "segment_bytes = 4194304\n"
                         "--ring_bytes: 8388608\n";
  start("file", {"--config=" + conf}, /*test_sizes=*/false);
  setenv("RINGLOG_MIN_REPLICA_ACKS", "3", 1);
  start("env", {"--config=" + conf}, false);
  start("cli", {"--config=" + conf, "--min_replica_acks=4"}, false);
  unsetenv("RINGLOG_MIN_REPLICA_ACKS");
  setenv("RINGLOG_CONFIG", conf.c_str(), 1);
  start("envfile", {}, false);
  unsetenv("RINGLOG_CONFIG");

  const std::map<std::string, uint32_t> acks = {{"file", 2}, {"env", 3}, {"cli", 4}, {"envfile", 2}};
  for (const auto& [name, want] : acks) {
    absl::StatusOr<v1::NodeStatus> st = status(name);
    ASSERT_TRUE(st.ok()) << name << ": " << st.status();
    EXPECT_EQ(st->min_replica_acks(), want) << name;
    EXPECT_EQ(st->segment_count(), 1u) << name;
    EXPECT_EQ(st->segment_bytes(), uint64_t{4} << 20) << name << ": segment size from the file";
    const std::string line = starting_line(name);
    EXPECT_THAT(line, HasSubstr(absl::StrCat("min_replica_acks=", want))) << name;
    EXPECT_THAT(line, HasSubstr("segment_bytes=4194304")) << name;
    EXPECT_THAT(line, HasSubstr("ring_bytes=8388608")) << name;
  }
}

// Scenario: a config file naming a flag that does not exist stops the node
// at start with an error that names the file, the line and the flag.
TEST_F(OpsConfig, UnknownFlagInFileIsRefusedNamingTheLine) {
  const std::string conf = dir() + "/bad.conf";
  std::ofstream(conf) << "min_replica_acks = 1\nno_such_flag = 3\n";
  const CommandResult r = run_command(
      {kRinglogd, "--config=" + conf, "--data_dir=" + dir() + "/bad", "--listen=127.0.0.1:0"},
      {.timeout = absl::Seconds(20), .merge_output = true});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr(conf + ":2"));
  EXPECT_THAT(r.out, HasSubstr("no_such_flag"));
}

}  // namespace
}  // namespace ringlog::failover_test
