// Status across a cluster: the primary's view of its replicas, each
// replica's view of its primary, and `ringlogctl status --nodes`.
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replication_harness.h"

namespace ringlog::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ReplicationStatus : public ReplicationTest {};

TEST_F(ReplicationStatus, PrimaryListsEachReplicaAndReplicasShowTheirPrimary) {
  constexpr uint64_t kEvents = 100'000;
  tools::NodeProcess& p = start_primary("p");
  tools::NodeProcess& r1 = start_replica("r1", p.address());
  tools::NodeProcess& r2 = start_replica("r2", p.address());
  ASSERT_TRUE(append_events(p, 0, kEvents).ok());
  ASSERT_TRUE(wait_converged(p, {&r1, &r2}));
  const v1::NodeStatus primary_before = status_now(p);
  const uint64_t end = primary_before.log_end_offset();

  // Each replica: its role, its primary, how far it is, streaming.
  std::map<std::string, std::string> ids;  // node id -> name
  for (const auto* r : {&r1, &r2}) {
    const v1::NodeStatus s = status_now(*r);
    EXPECT_EQ(s.role(), v1::ROLE_REPLICA);
    EXPECT_EQ(s.primary(), p.address());
    EXPECT_EQ(s.applied_offset(), end);
    EXPECT_EQ(s.replica_state(), v1::REPLICA_STATE_STREAMING);
    EXPECT_EQ(s.next_seq(), primary_before.next_seq());
    ids[s.node_id()] = r->address();
  }
  ASSERT_EQ(ids.size(), 2u) << "the replicas' node ids are not distinct";

  // The primary: both replicas, fully acknowledged and connected (acks are
  // sent after each chunk, so wait for the last ones).
  ASSERT_TRUE(wait_until([&] {
    const v1::NodeStatus s = status_now(p);
    if (s.replicas_size() != 2) return false;
    for (const v1::ReplicaInfo& ri : s.replicas()) {
      if (ri.acked_offset() != end) return false;
    }
    return true;
  }, absl::Seconds(60)));
  v1::NodeStatus ps = status_now(p);
  EXPECT_EQ(ps.role(), v1::ROLE_PRIMARY);
  for (const v1::ReplicaInfo& ri : ps.replicas()) {
    EXPECT_TRUE(ids.contains(ri.node_id())) << ri.node_id() << " is not one of the replicas";
    EXPECT_EQ(ri.acked_offset(), end);
    EXPECT_EQ(ri.lag_bytes(), 0u);
    EXPECT_EQ(ri.lag_events(), 0u);
    EXPECT_GE(ri.seconds_since_ack(), 0.0);
    EXPECT_LT(ri.seconds_since_ack(), 30.0);
    EXPECT_TRUE(ri.connected());
  }

  // A replica that stops is reported gone and lagging by what it missed.
  constexpr uint64_t kMissed = 5'000;
  const std::string r2_id = status_now(r2).node_id();
  ASSERT_EQ(stop("r2", SIGTERM).value_or(-1), 0);
  ASSERT_TRUE(append_events(p, kEvents, kMissed).ok());
  ASSERT_TRUE(wait_until([&] {
    const v1::NodeStatus s = status_now(p);
    for (const v1::ReplicaInfo& ri : s.replicas()) {
      if (ri.node_id() == r2_id) return !ri.connected();
    }
    return false;
  }, absl::Seconds(60)));
  ps = status_now(p);
  ASSERT_EQ(ps.replicas_size(), 2);
  EXPECT_GE(ps.log_end_offset(), end + kMissed * kRecordBytes);
  for (const v1::ReplicaInfo& ri : ps.replicas()) {
    if (ri.node_id() != r2_id) continue;
    EXPECT_EQ(ri.acked_offset(), end);
    EXPECT_EQ(ri.lag_bytes(), ps.log_end_offset() - end);
    EXPECT_EQ(ri.lag_events(), ps.next_seq() - primary_before.next_seq());
    EXPECT_FALSE(ri.connected());
  }
}

TEST_F(ReplicationStatus, RinglogctlStatusPrintsOneRowPerNode) {
  tools::NodeProcess& p = start_primary("p");
  tools::NodeProcess& r1 = start_replica("r1", p.address());
  tools::NodeProcess& r2 = start_replica("r2", p.address());
  ASSERT_TRUE(append_events(p, 0, 1'000).ok());
  ASSERT_TRUE(wait_converged(p, {&r1, &r2}));

  const std::vector<std::string> nodes = {p.address(), r1.address(), r2.address()};
  const CommandResult c = run_ringlogctl({"status", "--nodes=" + absl::StrJoin(nodes, ",")});
  ASSERT_FALSE(c.timed_out);
  EXPECT_EQ(c.exit_code, 0) << c.out;
  std::vector<std::string> rows = absl::StrSplit(c.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(rows.size(), 1 + nodes.size()) << c.out;  // a header, then one row per node
  for (size_t i = 0; i < nodes.size(); ++i) {
    EXPECT_THAT(rows[1 + i], StartsWith(nodes[i] + " ")) << c.out;
    EXPECT_THAT(rows[1 + i], HasSubstr(i == 0 ? "primary" : "replica")) << c.out;
  }
}

}  // namespace
}  // namespace ringlog::testing
