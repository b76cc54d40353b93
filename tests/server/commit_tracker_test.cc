// The commit rule and the replicas' acks (commit_tracker.h).
#include "commit_tracker.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace ringlog {
namespace {

LogPosition at(uint64_t offset) { return LogPosition{offset, offset / 10}; }

TEST(CommitPosition, WithoutReplicaAcksDurableIsCommitted) {
  EXPECT_EQ(commit_position(at(500), {}, 0), at(500));
  EXPECT_EQ(commit_position(at(500), {at(100)}, 0), at(500));
}

TEST(CommitPosition, WaitsForEnoughReplicas) {
  EXPECT_EQ(commit_position(at(500), {}, 1), std::nullopt);
  EXPECT_EQ(commit_position(at(500), {at(400)}, 2), std::nullopt);
}

TEST(CommitPosition, IsTheNthHighestAckCappedByDurable) {
  EXPECT_EQ(commit_position(at(500), {at(100), at(300), at(200)}, 1), at(300));
  EXPECT_EQ(commit_position(at(500), {at(100), at(300), at(200)}, 2), at(200));
  EXPECT_EQ(commit_position(at(500), {at(100), at(300), at(200)}, 3), at(100));
  // A replica that has more than is durable here counts for durable only.
  EXPECT_EQ(commit_position(at(500), {at(900)}, 1), at(500));
}

TEST(CommitTracker, MovesOnDurableAndAcksAndNeverBack) {
  CommitTracker t(/*min_replica_acks=*/1);
  t.start_term(at(0));
  t.on_durable(at(1000));
  EXPECT_EQ(t.commit().offset, 0u);  // no replica yet
  t.replica_connected("r1", "peer", "", at(0));
  t.replica_ack("r1", at(600));
  EXPECT_EQ(t.commit(), at(600));
  t.replica_ack("r1", at(1500));
  EXPECT_EQ(t.commit(), at(1000));  // capped by durable here
  t.on_durable(at(1200));
  EXPECT_EQ(t.commit(), at(1200));
  // An older ack (reordered) moves neither the replica's ack nor the commit.
  t.replica_ack("r1", at(100));
  EXPECT_EQ(t.commit(), at(1200));
  ASSERT_EQ(t.replicas().size(), 1u);
  EXPECT_EQ(t.replicas()[0].acked, at(1500));
}

TEST(CommitTracker, ReconnectAfterTruncationLowersTheAck) {
  CommitTracker t(/*min_replica_acks=*/2);
  t.start_term(at(0));
  t.on_durable(at(1000));
  t.replica_connected("a", "pa", "", at(800));
  t.replica_ack("a", at(800));
  t.replica_connected("b", "pb", "", at(0));
  t.replica_ack("b", at(700));
  EXPECT_EQ(t.commit(), at(700));
  t.replica_disconnected("a");
  t.replica_connected("a", "pa", "", at(300));  // it cut its log
  std::vector<ReplicaView> v = t.replicas();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].node_id, "a");
  EXPECT_EQ(v[0].acked, at(300));
  EXPECT_TRUE(v[0].connected);
  EXPECT_EQ(t.commit(), at(700));  // the commit offset never moves back
}

TEST(CommitTracker, WithoutAcksTheTermStartCommitsTheRecoveredLog) {
  CommitTracker t(/*min_replica_acks=*/0);
  t.start_term(at(400));
  EXPECT_EQ(t.commit(), at(400));
  EXPECT_EQ(t.durable(), at(400));
}

}  // namespace
}  // namespace ringlog
