// Admin.Promote's refusals, and idempotent appends (producer id and seq).
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "failover_harness.h"
#include "gmock/gmock.h"

namespace ringlog::failover_test {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kData = 1;

class FailoverPromote : public FailoverTest {};

// Scenario: A primary, B and C replicas. Promoting A, already the primary,
// is refused with FAILED_PRECONDITION saying it is already the primary; A
// stays primary in epoch 0. With force it starts epoch 1 and stays primary,
// and the replicas follow it into the new epoch (appends are acknowledged
// and every node converges). The time of each Promote call is printed.
TEST_F(FailoverPromote, AlreadyPrimaryIsRefusedUnlessForced) {
  start_cluster();
  ASSERT_TRUE(append({"A"}, 0, 100, kData).ok());

  double ms = 0;
  grpc::Status s = promote("A", false, {}, nullptr, &ms);
  std::printf("refused promotion of the primary: %.1f ms\n", ms);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("already the primary"));
  absl::StatusOr<v1::NodeStatus> a = status("A");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->role(), v1::ROLE_PRIMARY);
  EXPECT_EQ(a->epoch(), 0u);

  v1::PromoteResponse resp;
  s = promote("A", true, {}, &resp, &ms);
  std::printf("forced promotion of the primary: %.1f ms\n", ms);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.epoch(), 1u);
  EXPECT_EQ(resp.start_offset(), a->log_end_offset());
  ASSERT_TRUE(append({"A"}, 100, 100, kData).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  for (const char* n : {"A", "B", "C"}) {
    absl::StatusOr<v1::NodeStatus> st = status(n);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->epoch(), 1u) << n;
    absl::StatusOr<std::vector<Replayed>> ev = replay_all(n);
    ASSERT_TRUE(ev.ok()) << ev.status();
    EXPECT_TRUE(exactly_once_in_order(*ev, kData, 200)) << n;
  }
}

// Scenario: A primary, B and C replicas. A is promoted again with force
// (epoch 1) and takes appends in epoch 1, which B and C replicate. A is then
// killed and B promoted: B's new epoch is above every epoch it has seen, so
// 2, not a second epoch 1 (two primaries with one epoch number would defeat
// fencing, which compares epochs).
TEST_F(FailoverPromote, EpochAfterForcedPromotionIsNeverReused) {
  start_cluster();
  ASSERT_TRUE(append({"A"}, 0, 100, kData).ok());
  ASSERT_TRUE(promote("A", true).ok());
  ASSERT_TRUE(append({"A"}, 100, 100, kData).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_EQ(*stop("A", SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(follow("C", address("B")).ok());
  v1::PromoteResponse resp;
  const grpc::Status s = promote("B", false, {"A", "C"}, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.epoch(), 2u) << "B's records of epoch 1 came from A; its epoch must be above";
}

// Scenario: A primary, B and C replicas (no --peers). B stops replicating
// (pointed where nothing listens) while C goes on, so B's log is behind C's.
// Promoting B with PromoteRequest.peers = [C] is refused with
// FAILED_PRECONDITION naming C's address and its longer log; B stays a
// replica. With force, B is promoted (epoch 1). The time of each Promote call
// is printed.
TEST_F(FailoverPromote, ReplicaBehindAnotherIsRefusedNamingTheLongerOne) {
  start_cluster({}, /*with_peers=*/false);
  ASSERT_TRUE(append({"A"}, 0, 100, kData).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_TRUE(follow("B", absl::StrCat("127.0.0.1:", pick_free_port())).ok());
  ASSERT_TRUE(append({"A"}, 100, 100, kData).ok());  // acknowledged by C
  absl::StatusOr<v1::NodeStatus> b = status("B");
  absl::StatusOr<v1::NodeStatus> c = status("C");
  ASSERT_TRUE(b.ok() && c.ok());
  ASSERT_LT(b->log_end_offset(), c->log_end_offset());

  double ms = 0;
  grpc::Status s = promote("B", false, {"C"}, nullptr, &ms);
  std::printf("refused promotion of a replica behind another: %.1f ms\n", ms);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr(address("C")));
  EXPECT_THAT(s.error_message(), HasSubstr("longer log"));
  b = status("B");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->role(), v1::ROLE_REPLICA);
  EXPECT_EQ(b->epoch(), 0u);

  v1::PromoteResponse resp;
  s = promote("B", true, {"C"}, &resp, &ms);
  std::printf("forced promotion of a replica behind another: %.1f ms\n", ms);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.epoch(), 1u);
  b = status("B");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->role(), v1::ROLE_PRIMARY);
  EXPECT_EQ(b->epoch(), 1u);
}

// Scenario: A primary, B and C replicas (no --peers); B's log is behind C's
// (B was pointed where nothing listens). `ringlogctl promote --node B --nodes
// A,B,C` is refused (exit 1, "longer log"), and a refused promotion changes
// nothing: C still replicates from A, and A still commits appends.
TEST_F(FailoverPromote, RefusedCtlPromoteLeavesTheClusterAsItWas) {
  start_cluster({}, /*with_peers=*/false);
  ASSERT_TRUE(append({"A"}, 0, 100, kData).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_TRUE(follow("B", absl::StrCat("127.0.0.1:", pick_free_port())).ok());
  ASSERT_TRUE(append({"A"}, 100, 100, kData).ok());  // acknowledged by C

  const CommandResult r = ringlogctl(
      {"promote", "--node=" + address("B"),
       "--nodes=" + address("A") + "," + address("B") + "," + address("C")});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("longer log"));
  absl::StatusOr<v1::NodeStatus> c = status("C");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->primary(), address("A")) << "the refused `ringlogctl promote` re-pointed C:\n"
                                        << r.out;
  RawAppendStream s(address("A"));
  ASSERT_TRUE(s.send(1, encode_events(200, 10, kData)));
  EXPECT_TRUE(s.wait_ack(1, absl::Seconds(10)).has_value())
      << "A cannot commit after the refused promotion: C no longer replicates from it";
}

// Scenario: A is killed and B, a replica with the same log as C, is promoted
// with the Admin RPC; the time around the call is printed (the target is
// 100 ms on this machine; not asserted, the machine is shared).
TEST_F(FailoverPromote, PromotionAfterCrashTakesEffectAtOnce) {
  start_cluster();
  ASSERT_TRUE(append({"A"}, 0, 1000, kData).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_EQ(*stop("A", SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(follow("C", address("B")).ok());
  double ms = 0;
  v1::PromoteResponse resp;
  const grpc::Status s = promote("B", false, {"A", "C"}, &resp, &ms);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::printf("promotion of B after A's crash: %.1f ms (epoch %llu from offset %llu)\n", ms,
              static_cast<unsigned long long>(resp.epoch()),
              static_cast<unsigned long long>(resp.start_offset()));
  absl::StatusOr<v1::NodeStatus> b = status("B");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->role(), v1::ROLE_PRIMARY);
  EXPECT_EQ(b->epoch(), 1u);
  EXPECT_EQ(resp.start_offset(), b->log_end_offset());
}

class FailoverIdempotence : public FailoverTest {};

// Scenario: one primary. On one raw Append stream (the generated stub), the
// same AppendRequest (producer id "prod-1", producer_seq 1, 10 events) is sent
// twice. The first ack is not a duplicate; the second is, with the same seqs
// and offsets. The log holds the batch once: 10 events served, one control
// record after them (its seq listed in skipped_seqs), next_seq 11. The next
// producer_seq is appended normally after it.
TEST_F(FailoverIdempotence, SameProducerSeqTwiceIsAppendedOnce) {
  start("P", {});
  const std::string batch = encode_events(0, 10, kData);
  RawAppendStream s(address("P"));
  ASSERT_TRUE(s.send(1, batch, "prod-1", 1));
  std::optional<v1::AppendResponse> first = s.wait_ack(1, absl::Seconds(30));
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(s.send(2, batch, "prod-1", 1));
  std::optional<v1::AppendResponse> second = s.wait_ack(2, absl::Seconds(30));
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(first->duplicate());
  EXPECT_TRUE(second->duplicate());
  EXPECT_EQ(second->batch_id(), 2u);
  EXPECT_EQ(first->first_seq(), 0u);
  EXPECT_EQ(first->last_seq(), 9u);
  EXPECT_EQ(second->first_seq(), first->first_seq());
  EXPECT_EQ(second->last_seq(), first->last_seq());
  EXPECT_EQ(second->end_offset(), first->end_offset());

  absl::StatusOr<v1::NodeStatus> st = status("P");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->next_seq(), 11u) << "10 events and one control record";
  absl::StatusOr<std::vector<Replayed>> ev = replay_all("P");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_TRUE(exactly_once_in_order(*ev, kData, 10));
  EXPECT_EQ(ev->size(), 10u);

  // The raw Replay lists the control record's seq as skipped.
  auto stub = v1::EventLog::NewStub(make_channel(address("P")));
  grpc::ClientContext ctx;
  v1::ReplayRequest req;
  req.set_from_start(true);
  auto reader = stub->Replay(&ctx, req);
  v1::ReplayResponse resp;
  std::vector<uint64_t> skipped;
  while (reader->Read(&resp)) {
    for (uint64_t k : resp.skipped_seqs()) skipped.push_back(k);
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(skipped, std::vector<uint64_t>{10});

  ASSERT_TRUE(s.send(3, encode_events(10, 5, kData), "prod-1", 2));
  std::optional<v1::AppendResponse> third = s.wait_ack(3, absl::Seconds(30));
  ASSERT_TRUE(third.has_value());
  EXPECT_FALSE(third->duplicate());
  EXPECT_EQ(third->first_seq(), 11u);
  ev = replay_all("P");
  ASSERT_TRUE(ev.ok());
  EXPECT_TRUE(exactly_once_in_order(*ev, kData, 15));
}

// Scenario: A primary, B and C replicas. A batch (producer "prod-2", seq 1)
// is acknowledged by A and replicated; A is killed; B is promoted. The same
// batch sent to B (what a client does when it did not see the ack) is
// acknowledged as a duplicate and not appended again: B learned the
// producer's batches from the control records it replicated.
TEST_F(FailoverIdempotence, NewPrimaryRecognizesBatchReplicatedBeforePromotion) {
  start_cluster();
  const std::string batch = encode_events(0, 10, kData);
  {
    RawAppendStream s(address("A"));
    ASSERT_TRUE(s.send(1, batch, "prod-2", 1));
    ASSERT_TRUE(s.wait_ack(1, absl::Seconds(30)).has_value());
  }
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_EQ(*stop("A", SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(follow("C", address("B")).ok());
  ASSERT_TRUE(promote("B", false, {"C"}).ok());

  RawAppendStream s(address("B"));
  ASSERT_TRUE(s.send(1, batch, "prod-2", 1));
  std::optional<v1::AppendResponse> ack = s.wait_ack(1, absl::Seconds(30));
  ASSERT_TRUE(ack.has_value()) << (s.wait_end(absl::Seconds(1)).has_value()
                                       ? s.wait_end(absl::Seconds(1))->error_message()
                                       : "no answer");
  EXPECT_TRUE(ack->duplicate());
  EXPECT_EQ(ack->first_seq(), 0u);
  EXPECT_EQ(ack->last_seq(), 9u);
  absl::StatusOr<std::vector<Replayed>> ev = replay_all("B");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_TRUE(exactly_once_in_order(*ev, kData, 10));
  report_fault("batch_resent_to_new_primary", *ev, kData, 10);
}

// Scenario: one primary takes a batch (producer "prod-3", seq 1) and is
// restarted (SIGKILL, then the same flags). The same batch sent again is a
// duplicate: the node rebuilt its producers' state from the log.
TEST_F(FailoverIdempotence, DuplicateRecognizedAfterRestart) {
  start("P", {});
  const std::string batch = encode_events(0, 10, kData);
  {
    RawAppendStream s(address("P"));
    ASSERT_TRUE(s.send(1, batch, "prod-3", 1));
    ASSERT_TRUE(s.wait_ack(1, absl::Seconds(30)).has_value());
  }
  ASSERT_EQ(*stop("P", SIGKILL), 128 + SIGKILL);
  restart("P");
  RawAppendStream s(address("P"));
  ASSERT_TRUE(s.send(1, batch, "prod-3", 1));
  std::optional<v1::AppendResponse> ack = s.wait_ack(1, absl::Seconds(30));
  ASSERT_TRUE(ack.has_value());
  EXPECT_TRUE(ack->duplicate());
  absl::StatusOr<std::vector<Replayed>> ev = replay_all("P");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_TRUE(exactly_once_in_order(*ev, kData, 10));
}

// Scenario: A primary, B and C replicas, min_replica_acks=2. C is down, so
// a batch (producer "prod-4", seq 1) reaches B's log but is never committed
// nor acknowledged; A is killed and B promoted. The client sends the batch
// again to B, which knows it from its log but cannot commit it yet. The
// resend is acknowledged as a duplicate (not appended again) as soon as A
// and C, brought back to follow B, let B's commit offset cover it. It must
// not wait for a completion of its own that never comes: that hung clients
// after a failover.
TEST_F(FailoverIdempotence, ResentBatchKnownFromTheLogIsAnsweredOnceCommitted) {
  start_cluster({"--min_replica_acks=2"});
  ASSERT_EQ(*stop("C", SIGKILL), 128 + SIGKILL);
  const std::string batch = encode_events(0, 10, kData);
  {
    RawAppendStream s(address("A"), absl::Seconds(30));
    ASSERT_TRUE(s.send(1, batch, "prod-4", 1));
    ASSERT_TRUE(wait_until([&] {
      absl::StatusOr<v1::NodeStatus> a = status("A");
      absl::StatusOr<v1::NodeStatus> b = status("B");
      return a.ok() && b.ok() && a->log_end_offset() > 0 &&
             b->durable_offset() == a->log_end_offset();
    }, absl::Seconds(30)));
    EXPECT_TRUE(s.acks().empty()) << "A cannot commit with one replica of two";
  }
  ASSERT_EQ(*stop("A", SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(promote("B").ok());
  absl::StatusOr<v1::NodeStatus> b = status("B");
  ASSERT_TRUE(b.ok());
  ASSERT_LT(b->commit_offset(), b->log_end_offset()) << "B's commit must wait for its replicas";

  RawAppendStream s(address("B"), absl::Seconds(90));
  ASSERT_TRUE(s.send(1, batch, "prod-4", 1));
  restart("C");
  ASSERT_TRUE(follow("C", address("B")).ok());
  restart("A");
  ASSERT_TRUE(follow("A", address("B")).ok());
  std::optional<v1::AppendResponse> ack = s.wait_ack(1, absl::Seconds(60));
  ASSERT_TRUE(ack.has_value()) << "the resent batch was never answered";
  EXPECT_TRUE(ack->duplicate());
  EXPECT_EQ(ack->first_seq(), 0u);
  EXPECT_EQ(ack->last_seq(), 9u);
  absl::StatusOr<std::vector<Replayed>> ev = replay_all("B");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_TRUE(exactly_once_in_order(*ev, kData, 10));
  report_fault("lagging_replica_failover_resent_batch", *ev, kData, 10);
}

// Scenario: A primary, B and C replicas. Producer "prod-5" stores seqs 1..3
// on A (10 events each); they replicate; A is killed and B promoted. Seqs 2
// and 3 sent again to B (what a client that missed their acks does) are
// duplicates with their originals' seqs AND offsets, which B learned from
// the control records it replicated (first_offset was 0, and seq 2, not the
// latest, got an empty range); seq 4 is appended right after them.
TEST_F(FailoverIdempotence, APromotedReplicaAnswersResendsWithTheOriginalRanges) {
  start_cluster();
  std::vector<v1::AppendResponse> original;
  {
    RawAppendStream s(address("A"));
    for (uint64_t k = 1; k <= 3; ++k) {
      ASSERT_TRUE(s.send(k, encode_events((k - 1) * 10, 10, kData), "prod-5", k));
    }
    ASSERT_TRUE(s.wait_acks(3));
    original = s.acks();
  }
  ASSERT_GT(original[1].first_offset(), 0u);
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_EQ(*stop("A", SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(follow("C", address("B")).ok());
  ASSERT_TRUE(promote("B", false, {"C"}).ok());

  RawAppendStream s(address("B"));
  for (uint64_t k = 2; k <= 4; ++k) {
    ASSERT_TRUE(s.send(k, encode_events((k - 1) * 10, 10, kData), "prod-5", k));
  }
  ASSERT_TRUE(s.wait_acks(3)) << (s.wait_end(absl::Seconds(1)).has_value()
                                      ? s.wait_end(absl::Seconds(1))->error_message()
                                      : "no answer");
  const std::vector<v1::AppendResponse> again = s.acks();
  for (size_t i = 0; i < 2; ++i) {
    const v1::AppendResponse& dup = again[i];
    const v1::AppendResponse& first = original[i + 1];
    EXPECT_TRUE(dup.duplicate()) << i;
    EXPECT_EQ(dup.first_seq(), first.first_seq()) << i;
    EXPECT_EQ(dup.last_seq(), first.last_seq()) << i;
    EXPECT_EQ(dup.first_offset(), first.first_offset()) << i;
    EXPECT_EQ(dup.end_offset(), first.end_offset()) << i;
    EXPECT_EQ(dup.epoch(), 1u) << i;
  }
  EXPECT_FALSE(again[2].duplicate());
  EXPECT_EQ(again[2].first_offset(), original[2].end_offset());
  absl::StatusOr<std::vector<Replayed>> ev = replay_all("B");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_TRUE(exactly_once_in_order(*ev, kData, 40));
  report_fault("resends_to_promoted_replica", *ev, kData, 40);
}

}  // namespace
}  // namespace ringlog::failover_test
