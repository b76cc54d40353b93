// Promotion while the old primary is still alive: the old primary must not
// acknowledge a single append once the replicas follow the new one, and it
// steps down when it learns of the later epoch.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "failover_harness.h"
#include "gmock/gmock.h"

namespace ringlog::failover_test {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kBefore = 1;  // acknowledged before the promotion
constexpr uint64_t kStale = 2;   // sent to the old primary after the promotion

class FailoverFencing : public FailoverTest {
 protected:
  // The partition as an operator makes it: C is pointed at B, then B is
  // promoted; A is told nothing.
  void partition_and_promote_b() {
    ASSERT_TRUE(follow("C", address("B")).ok());
    v1::PromoteResponse resp;
    const grpc::Status s = promote("B", false, {"C"}, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.epoch(), 1u);
    ASSERT_TRUE(wait_until([&] {
      absl::StatusOr<v1::NodeStatus> c = status("C");
      return c.ok() && c->primary() == address("B") &&
             c->replica_state() == v1::REPLICA_STATE_STREAMING;
    }, absl::Seconds(60))) << "C does not stream from B: " << status("C")->ShortDebugString();
  }
};

// Scenario: A primary (--min_replica_acks=1, no --peers: it cannot learn of
// a promotion by itself), B and C replicas. Events are acknowledged on all
// three. The partition: C is pointed at B and B is promoted (epoch 1); A keeps
// running as primary. An append sent to A goes into A's log (its log end
// moves, durable) but its commit offset does not move and no ack comes for a
// whole second. Then A is told to follow B (Admin.Follow): it steps down and
// says so in its log and status (role replica, primary B); the pending append
// fails with FAILED_PRECONDITION; A cuts it from its log. No node serves it,
// and all three logs are byte-identical.
TEST_F(FailoverFencing, IsolatedOldPrimaryCannotAcknowledgeAfterPromotion) {
  start_cluster({}, /*with_peers=*/false);
  ASSERT_TRUE(append({"A"}, 0, 300, kBefore).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_NO_FATAL_FAILURE(partition_and_promote_b());

  absl::StatusOr<v1::NodeStatus> before = status("A");
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->role(), v1::ROLE_PRIMARY);
  RawAppendStream stale(address("A"));
  ASSERT_TRUE(stale.send(1, encode_events(0, 20, kStale)));
  const uint64_t want = before->log_end_offset() + 20 * kRecordBytes;
  ASSERT_TRUE(wait_until([&] {
    absl::StatusOr<v1::NodeStatus> st = status("A");
    return st.ok() && st->log_end_offset() == want && st->durable_offset() == want;
  }, absl::Seconds(60))) << "A did not write the batch";
  // A window in which A must not commit it (an assertion over time, not a
  // synchronization): its commit offset stays where the partition left it.
  const absl::Time until = absl::Now() + absl::Seconds(1);
  while (absl::Now() < until) {
    absl::StatusOr<v1::NodeStatus> st = status("A");
    ASSERT_TRUE(st.ok());
    ASSERT_EQ(st->role(), v1::ROLE_PRIMARY);
    ASSERT_EQ(st->commit_offset(), before->log_end_offset()) << "A committed after the promotion";
    ASSERT_EQ(stale.acks().size(), 0u) << "A acknowledged an append after the promotion";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling interval
  }

  ASSERT_TRUE(follow("A", address("B")).ok());
  std::optional<grpc::Status> end = stale.wait_end(absl::Seconds(30));
  ASSERT_TRUE(end.has_value()) << "the append stream to A did not end";
  EXPECT_EQ(end->error_code(), grpc::StatusCode::FAILED_PRECONDITION) << end->error_message();
  EXPECT_EQ(stale.acks().size(), 0u);
  ASSERT_TRUE(wait_converged("B", {"A", "C"}));
  absl::StatusOr<v1::NodeStatus> a = status("A");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->role(), v1::ROLE_REPLICA);
  EXPECT_EQ(a->primary(), address("B"));
  EXPECT_THAT(output("A"), HasSubstr("stepping down"));
  EXPECT_THAT(output("A"), HasSubstr(absl::StrCat("truncating the log from offset ", want, " to ",
                                                  before->log_end_offset())));
  for (const char* n : {"A", "B", "C"}) {
    absl::StatusOr<std::vector<Replayed>> ev = replay_all(n);
    ASSERT_TRUE(ev.ok()) << n << ": " << ev.status();
    EXPECT_TRUE(exactly_once_in_order(*ev, kBefore, 300)) << n;
    EXPECT_EQ(count_tag(*ev, kStale), 0u) << n << " serves what A took after the promotion";
  }
  ASSERT_EQ(*stop("A", SIGTERM), 0);
  ASSERT_EQ(*stop("C", SIGTERM), 0);
  ASSERT_EQ(*stop("B", SIGTERM), 0);
  EXPECT_TRUE(files_identical("B", "A"));
  EXPECT_TRUE(files_identical("B", "C"));
}

// Scenario: A primary, B and C replicas, all with --min_replica_acks=1 and
// --peers naming the others. C is pointed at B and B promoted; nobody tells A.
// Appends sent to A from then on are never acknowledged: A finds B primary in
// a later epoch among its peers, steps down by itself, says so in its log
// (and its status: role replica, primary B), fails what it held with
// FAILED_PRECONDITION, cuts it, and follows B. Nothing A took after the
// promotion is served by any node.
TEST_F(FailoverFencing, OldPrimaryWithPeersStepsDownByItself) {
  start_cluster();
  ASSERT_TRUE(append({"A"}, 0, 300, kBefore).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_NO_FATAL_FAILURE(partition_and_promote_b());

  RawAppendStream stale(address("A"));
  ASSERT_TRUE(stale.send(1, encode_events(0, 20, kStale)));
  std::optional<grpc::Status> end = stale.wait_end(absl::Seconds(30));
  ASSERT_TRUE(end.has_value()) << "the append to A neither failed nor ended";
  EXPECT_EQ(stale.acks().size(), 0u) << "A acknowledged an append after the promotion";
  EXPECT_EQ(end->error_code(), grpc::StatusCode::FAILED_PRECONDITION) << end->error_message();

  ASSERT_TRUE(wait_converged("B", {"A", "C"}));
  absl::StatusOr<v1::NodeStatus> a = status("A");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->role(), v1::ROLE_REPLICA);
  EXPECT_EQ(a->primary(), address("B"));
  EXPECT_EQ(a->epoch(), 1u);
  EXPECT_THAT(output("A"), HasSubstr("is primary in epoch 1, later than ours (0): following it"));
  EXPECT_THAT(output("A"), HasSubstr("stepping down"));
  for (const char* n : {"A", "B", "C"}) {
    absl::StatusOr<std::vector<Replayed>> ev = replay_all(n);
    ASSERT_TRUE(ev.ok()) << n << ": " << ev.status();
    EXPECT_TRUE(exactly_once_in_order(*ev, kBefore, 300)) << n;
    EXPECT_EQ(count_tag(*ev, kStale), 0u) << n << " serves what A took after the promotion";
  }
  ASSERT_EQ(*stop("A", SIGTERM), 0);
  ASSERT_EQ(*stop("C", SIGTERM), 0);
  ASSERT_EQ(*stop("B", SIGTERM), 0);
  EXPECT_TRUE(files_identical("B", "A"));
  EXPECT_TRUE(files_identical("B", "C"));
}

// `ringlogctl follow` pointed at a replica (a slip of an operator) is
// refused, naming the primary the replica follows; the node keeps its
// primary and its replication.
TEST_F(FailoverFencing, FollowRefusesAReplica) {
  start_cluster({}, /*with_peers=*/false);
  ASSERT_TRUE(append({"A"}, 0, 100, kBefore).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  const CommandResult f =
      ringlogctl({"follow", "--node=" + address("C"), "--primary=" + address("B")});
  EXPECT_EQ(f.exit_code, 1) << f.out << f.err;
  const std::string said = f.out + f.err;
  EXPECT_NE(said.find(address("B") + " is a replica"), std::string::npos) << said;
  EXPECT_NE(said.find("it follows " + address("A")), std::string::npos) << said;
  absl::StatusOr<v1::NodeStatus> c = status("C");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->primary(), address("A"));
  ASSERT_TRUE(append({"A"}, 100, 100, kBefore).ok());
  EXPECT_TRUE(wait_converged("A", {"B", "C"}));
}

// Scenario: the partition made with two operator commands a moment apart, as
// the failover drill reads: `ringlogctl follow --node C --primary B`, then
// `ringlogctl promote --node B`. In between, C reaches B while B is still a
// replica. C was told to follow B and must keep to it (retrying until B is
// primary), not go back to A: if it did, A (still primary, no --peers) would
// get C's acks and acknowledge appends that B never has, which are cut once
// A follows B: acknowledged events lost. Checks that C still targets B after
// B refused it, that an append to A after the promotion is not acknowledged,
// and that nothing acknowledged is missing from B.
TEST_F(FailoverFencing, ReplicaPointedAtNewPrimaryIsNotSentBackToOldOne) {
  start_cluster({}, /*with_peers=*/false);
  ASSERT_TRUE(append({"A"}, 0, 300, kBefore).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));

  const CommandResult f = ringlogctl(
      {"follow", "--node=" + address("C"), "--primary=" + address("B"), "--to_be_promoted"});
  ASSERT_EQ(f.exit_code, 0) << f.out << f.err;
  // Until C has asked B and been told B is a replica (or has left B).
  ASSERT_TRUE(wait_until([&] {
    absl::StatusOr<v1::NodeStatus> c = status("C");
    return c.ok() && (c->primary() != address("B") ||
                      c->replication_error().find("replica") != std::string::npos);
  }, absl::Seconds(60))) << status("C")->ShortDebugString();
  absl::StatusOr<v1::NodeStatus> c = status("C");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->primary(), address("B"))
      << "C was told to follow B but went back to the old primary A";

  const CommandResult p = ringlogctl({"promote", "--node=" + address("B")});
  ASSERT_EQ(p.exit_code, 0) << p.out;
  RawAppendStream stale(address("A"));
  ASSERT_TRUE(stale.send(1, encode_events(0, 20, kStale)));
  const std::optional<v1::AppendResponse> ack = stale.wait_ack(1, absl::Seconds(2));
  EXPECT_FALSE(ack.has_value()) << "A acknowledged an append after B's promotion: "
                                << ack->ShortDebugString();

  // Whatever was acknowledged must be on the new primary.
  absl::StatusOr<std::vector<Replayed>> on_b = replay_all("B");
  ASSERT_TRUE(on_b.ok()) << on_b.status();
  EXPECT_TRUE(exactly_once_in_order(*on_b, kBefore, 300));
  EXPECT_EQ(count_tag(*on_b, kStale), ack.has_value() ? 20u : 0u)
      << "events acknowledged by A are not on the new primary B";
  // The old primary is told to follow, as `ringlogctl promote --nodes` does;
  // everyone converges on B.
  ASSERT_TRUE(follow("A", address("B")).ok());
  EXPECT_TRUE(wait_converged("B", {"A", "C"}, absl::Seconds(20)));
}

// Finding: a node restarted with --role=replica --primary=B whose data
// directory said primary started as a primary (it had no --peers to ask),
// in the old epoch, beside B. The node --primary names is asked first.
TEST_F(FailoverFencing, PrimaryRestartedAsReplicaOfTheNewPrimaryFollowsIt) {
  reserve("A");
  reserve("B");
  start("A", {});
  start("B", {"--role=replica", "--primary=" + address("A")});
  ASSERT_TRUE(append({"A"}, 0, 100, kBefore).ok());
  ASSERT_TRUE(wait_converged("A", {"B"}));
  ASSERT_EQ(*stop("A", SIGTERM), 0);
  ASSERT_TRUE(promote("B").ok());
  start("A", {"--role=replica", "--primary=" + address("B")});
  ASSERT_TRUE(wait_until([&] {
    absl::StatusOr<v1::NodeStatus> a = status("A");
    return a.ok() && a->role() == v1::ROLE_REPLICA && a->primary() == address("B") &&
           a->replica_state() == v1::REPLICA_STATE_STREAMING;
  }, absl::Seconds(30))) << "A did not follow B";
  ASSERT_TRUE(append({"B"}, 100, 100, kBefore).ok());
  ASSERT_TRUE(wait_converged("B", {"A"}));
  absl::StatusOr<std::vector<Replayed>> ev = replay_all("A");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_TRUE(exactly_once_in_order(*ev, kBefore, 200));
}

}  // namespace
}  // namespace ringlog::failover_test
