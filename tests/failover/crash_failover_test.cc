// Failover after a crash (SIGKILL) of the primary: promotion of the longest
// replica, clients that fail over by themselves, the old primary's return as
// a replica, and two failovers back to back.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "failover_harness.h"
#include "gmock/gmock.h"

namespace ringlog::failover_test {
namespace {

using ::testing::HasSubstr;

// Tags of the events each phase writes.
constexpr uint64_t kLoad = 1;      // the steady load (acknowledged)
constexpr uint64_t kBefore = 2;    // acknowledged before the crash
constexpr uint64_t kTail = 3;      // on the old primary only, never acknowledged
constexpr uint64_t kAfter = 4;     // acknowledged by the new primary
constexpr uint64_t kTail2 = 5;     // on the second primary only, never acknowledged
constexpr uint64_t kAfter2 = 6;    // acknowledged by the third primary

// An address nothing listens on: following it stops a replica's replication
// (a partition of that replica from the primary, as far as the log goes).
std::string nowhere() { return absl::StrCat("127.0.0.1:", pick_free_port()); }

class FailoverCrash : public FailoverTest {
 protected:
  // The replica (of `candidates`) with the longest log.
  std::string longest(const std::vector<std::string>& candidates) {
    std::string best;
    uint64_t best_end = 0;
    for (const std::string& c : candidates) {
      absl::StatusOr<v1::NodeStatus> st = status(c);
      EXPECT_TRUE(st.ok()) << c << ": " << st.status();
      if (st.ok() && (best.empty() || st->log_end_offset() > best_end)) {
        best = c;
        best_end = st->log_end_offset();
      }
    }
    return best;
  }

  // The failover done as an operator does it: `ringlogctl promote --node X
  // --nodes A,B,C` (points the other replicas at X, promotes X, tells a live
  // old primary to follow).
  void ctl_promote(const std::string& node) {
    const CommandResult r = ringlogctl({"promote", "--node=" + address(node),
                                        "--nodes=" + address("A") + "," + address("B") + "," +
                                            address("C")});
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_THAT(r.out, HasSubstr("promoted " + address(node)));
    std::printf("ringlogctl promote %s:\n%s", node.c_str(), r.out.c_str());
  }

  // Appends `count` events tagged `tag` to `node` alone on a raw stream and
  // waits until they are durable in its log; they are never acknowledged
  // (no replica follows it). Returns the log end before them.
  uint64_t write_unacknowledged_tail(const std::string& node, uint64_t count, uint64_t tag,
                                     std::unique_ptr<RawAppendStream>* stream) {
    absl::StatusOr<v1::NodeStatus> before = status(node);
    EXPECT_TRUE(before.ok()) << before.status();
    if (!before.ok()) return 0;
    *stream = std::make_unique<RawAppendStream>(address(node));
    EXPECT_TRUE((*stream)->send(1, encode_events(0, count, tag)));
    const uint64_t want = before->log_end_offset() + count * kRecordBytes;
    EXPECT_TRUE(wait_until([&] {
      absl::StatusOr<v1::NodeStatus> st = status(node);
      return st.ok() && st->log_end_offset() == want && st->durable_offset() == want;
    }, absl::Seconds(60))) << node << " did not write the tail";
    absl::StatusOr<v1::NodeStatus> after = status(node);
    EXPECT_TRUE(after.ok());
    if (after.ok()) {
      EXPECT_EQ(after->commit_offset(), before->log_end_offset()) << "the tail got committed";
    }
    EXPECT_EQ((*stream)->acks().size(), 0u) << "the tail was acknowledged";
    return before->log_end_offset();
  }
};

// Scenario: A is the primary, B and C replicas, all with --min_replica_acks=1.
// A client appends a steady stream (payload = a counter) through an Appender
// given the endpoints {A, B, C}. A is killed with SIGKILL. The replica with
// the longest log is promoted with `ringlogctl promote --node X --nodes
// A,B,C`; the client finds the new primary by itself and re-sends what was
// not acknowledged. Afterwards every acknowledged event is on the new primary
// and on the surviving replica exactly once and in order, and once both are
// stopped with SIGTERM their segment files are byte-identical.
TEST_F(FailoverCrash, KillPrimaryUnderLoadLosesNothingAcknowledged) {
  start_cluster();
  LoadThread load({address("A"), address("B"), address("C")}, 20000, kLoad);
  ASSERT_TRUE(wait_until([&] { return load.acked() >= 3000 || load.failed(); }, absl::Seconds(60)))
      << "the load did not start";
  ASSERT_FALSE(load.failed());

  ASSERT_EQ(*stop("A", SIGKILL), 128 + SIGKILL);
  const uint64_t acked_at_kill = load.acked();
  const std::string fresh = longest({"B", "C"});
  const std::string other = fresh == "B" ? "C" : "B";
  ASSERT_NO_FATAL_FAILURE(ctl_promote(fresh));

  // The client goes on by itself, on the new primary.
  ASSERT_TRUE(wait_until([&] {
    return (load.last_epoch() >= 1 && load.acked() >= acked_at_kill + 3000) || load.failed();
  }, absl::Seconds(60))) << "acked " << load.acked() << " epoch " << load.last_epoch();
  ASSERT_TRUE(load.stop().ok()) << load.stop();
  EXPECT_EQ(load.acked(), load.sent()) << "every event sent is acknowledged after close()";
  EXPECT_GE(load.failovers(), 1u);
  std::printf("acked %llu events (%llu at the kill), %llu batches re-sent as duplicates\n",
              static_cast<unsigned long long>(load.acked()),
              static_cast<unsigned long long>(acked_at_kill),
              static_cast<unsigned long long>(load.duplicates()));

  ASSERT_TRUE(wait_converged(fresh, {other}));
  absl::StatusOr<v1::NodeStatus> st = status(fresh);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->epoch(), 1u);
  absl::StatusOr<std::vector<Replayed>> on_primary = replay_all(fresh);
  absl::StatusOr<std::vector<Replayed>> on_replica = replay_all(other);
  ASSERT_TRUE(on_primary.ok()) << on_primary.status();
  ASSERT_TRUE(on_replica.ok()) << on_replica.status();
  EXPECT_TRUE(exactly_once_in_order(*on_primary, kLoad, load.acked()));
  EXPECT_TRUE(exactly_once_in_order(*on_replica, kLoad, load.acked()));
  EXPECT_EQ(*on_primary, *on_replica);
  report_fault("kill9_primary_under_load", *on_primary, kLoad, load.acked());

  ASSERT_EQ(*stop(other, SIGTERM), 0);
  ASSERT_EQ(*stop(fresh, SIGTERM), 0);
  EXPECT_TRUE(files_identical(fresh, other));
}

// Scenario: the crash above eight times in a row under one steady load with
// idempotent batches: each time the primary is killed, the longest replica
// promoted, and the killed node restarted (it has --peers: it finds the new
// primary, cuts what it alone had, and follows). Replicas lag by chance, so
// the new primary often already holds batches the client sends again; each
// must be answered once, and the client must never stall.
TEST_F(FailoverCrash, RepeatedKillsUnderLoadLoseAndDuplicateNothing) {
  start_cluster();
  LoadThread load({address("A"), address("B"), address("C")}, 20000, kLoad);
  std::string primary = "A";
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round, ", primary ", primary));
    const uint64_t before = load.acked();
    ASSERT_TRUE(wait_until([&] { return load.acked() >= before + 2000 || load.failed(); },
                           absl::Seconds(60))) << "the load stalled";
    ASSERT_FALSE(load.failed());
    ASSERT_EQ(*stop(primary, SIGKILL), 128 + SIGKILL);
    std::vector<std::string> others;
    for (const char* n : {"A", "B", "C"}) {
      if (n != primary) others.push_back(n);
    }
    const std::string fresh = longest(others);
    ASSERT_NO_FATAL_FAILURE(ctl_promote(fresh));
    restart(primary);
    primary = fresh;
  }
  const uint64_t before = load.acked();
  ASSERT_TRUE(wait_until([&] { return load.acked() >= before + 2000 || load.failed(); },
                         absl::Seconds(60))) << "the load stalled after the last failover";
  ASSERT_TRUE(load.stop().ok()) << load.stop();
  EXPECT_EQ(load.acked(), load.sent());
  std::vector<std::string> replicas;
  for (const char* n : {"A", "B", "C"}) {
    if (n != primary) replicas.push_back(n);
  }
  ASSERT_TRUE(wait_converged(primary, replicas, absl::Seconds(90)));
  for (const char* n : {"A", "B", "C"}) {
    absl::StatusOr<std::vector<Replayed>> ev = replay_all(n);
    ASSERT_TRUE(ev.ok()) << n << ": " << ev.status();
    EXPECT_TRUE(exactly_once_in_order(*ev, kLoad, load.acked())) << n;
    if (n == primary) report_fault("kill9_primary_8x_under_load", *ev, kLoad, load.acked());
  }
}

// Scenario: as above, but A freezes (SIGSTOP) instead of dying: its
// connections stay open and nothing answers on them. The replica with the
// longest log is promoted; the client, whose stream to A neither fails nor
// ends by itself, finds that A stopped answering (keepalive pings) and goes
// on on the new primary. Every acknowledged event is there exactly once.
TEST_F(FailoverCrash, FrozenPrimaryIsLeftBehindByTheClient) {
  start_cluster();
  LoadThread load({address("A"), address("B"), address("C")}, 20000, kLoad);
  ASSERT_TRUE(wait_until([&] { return load.acked() >= 3000 || load.failed(); }, absl::Seconds(60)))
      << "the load did not start";
  ASSERT_FALSE(load.failed());

  ASSERT_EQ(kill(process("A").pid(), SIGSTOP), 0);
  const uint64_t acked_at_freeze = load.acked();
  const std::string fresh = longest({"B", "C"});
  const std::string other = fresh == "B" ? "C" : "B";
  ASSERT_NO_FATAL_FAILURE(ctl_promote(fresh));

  const absl::Time promoted = absl::Now();
  ASSERT_TRUE(wait_until([&] {
    return (load.last_epoch() >= 1 && load.acked() >= acked_at_freeze + 3000) || load.failed();
  }, absl::Seconds(60))) << "the client stayed on the frozen primary: acked " << load.acked();
  std::printf("the client went on on %s %.1f s after the promotion\n", fresh.c_str(),
              absl::ToDoubleSeconds(absl::Now() - promoted));
  ASSERT_TRUE(load.stop().ok()) << load.stop();
  EXPECT_EQ(load.acked(), load.sent()) << "every event sent is acknowledged after close()";

  ASSERT_TRUE(wait_converged(fresh, {other}));
  absl::StatusOr<std::vector<Replayed>> on_primary = replay_all(fresh);
  ASSERT_TRUE(on_primary.ok()) << on_primary.status();
  EXPECT_TRUE(exactly_once_in_order(*on_primary, kLoad, load.acked()));
  report_fault("sigstop_primary_under_load", *on_primary, kLoad, load.acked());
  ASSERT_EQ(kill(process("A").pid(), SIGKILL), 0);
}

// Scenario: A primary, B and C replicas (--min_replica_acks=1, --peers).
// Events are acknowledged on all three; then B and C stop replicating from A
// (pointed at an address where nothing listens) and A writes a tail that no
// replica has and that is never acknowledged; A is killed with SIGKILL. B is
// promoted (ringlogctl promote --nodes) and takes more acknowledged appends.
// A is restarted with its original flags: it finds B primary in a later
// epoch among its --peers, joins as B's replica, cuts its unacknowledged tail
// (and says so), and converges; its status says role replica and primary B.
// Afterwards A's, B's and C's segment files are byte-identical and no node
// serves an event of the tail.
TEST_F(FailoverCrash, OldPrimaryRejoinsAsReplicaAndCutsItsTail) {
  start_cluster();
  ASSERT_TRUE(append({"A"}, 0, 500, kBefore).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));

  ASSERT_TRUE(follow("B", nowhere()).ok());
  ASSERT_TRUE(follow("C", nowhere()).ok());
  std::unique_ptr<RawAppendStream> tail;
  const uint64_t cut_at = write_unacknowledged_tail("A", 100, kTail, &tail);
  ASSERT_EQ(*stop("A", SIGKILL), 128 + SIGKILL);
  tail.reset();

  ASSERT_NO_FATAL_FAILURE(ctl_promote("B"));
  ASSERT_TRUE(append({"B", "C"}, 0, 300, kAfter).ok());

  restart("A");
  ASSERT_TRUE(wait_converged("B", {"A", "C"}));
  absl::StatusOr<v1::NodeStatus> a = status("A");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->role(), v1::ROLE_REPLICA);
  EXPECT_EQ(a->primary(), address("B"));
  EXPECT_EQ(a->epoch(), 1u);
  EXPECT_THAT(output("A"), HasSubstr("is primary in epoch 1, later than ours (0)"));
  EXPECT_THAT(output("A"),
              HasSubstr(absl::StrCat("truncating the log from offset ", cut_at + 100 * kRecordBytes,
                                     " to ", cut_at)));

  for (const char* n : {"A", "B", "C"}) {
    absl::StatusOr<std::vector<Replayed>> ev = replay_all(n);
    ASSERT_TRUE(ev.ok()) << n << ": " << ev.status();
    EXPECT_TRUE(exactly_once_in_order(*ev, kBefore, 500)) << n;
    EXPECT_TRUE(exactly_once_in_order(*ev, kAfter, 300)) << n;
    EXPECT_EQ(count_tag(*ev, kTail), 0u) << n << " serves the old primary's unacknowledged tail";
  }
  ASSERT_EQ(*stop("A", SIGTERM), 0);
  ASSERT_EQ(*stop("C", SIGTERM), 0);
  ASSERT_EQ(*stop("B", SIGTERM), 0);
  EXPECT_TRUE(files_identical("B", "A"));
  EXPECT_TRUE(files_identical("B", "C"));
}

// Scenario (KIP-279's case: two leader changes in a row leave logs that
// diverge in more than one epoch): A primary, B and C replicas, all with
// --min_replica_acks=1 and --peers.
//   1. Events X are acknowledged on all three.
//   2. B and C stop replicating; A writes a tail T1 (epoch 0) that only it
//      has; A is killed. B (longest, tied with C) is promoted: epoch 1.
//   3. Events Y are acknowledged by B (C follows it).
//   4. C stops replicating; B writes a tail T2 (epoch 1) that only it has;
//      B is killed. C, the only one left, is promoted: epoch 2.
//   5. Events Z are sent to C; they can only be acknowledged once a replica
//      is back. A and B are restarted with their original flags.
// A and B each find C primary in a later epoch, cut their own divergent tail
// (A at the end of epoch 0 as C knows it, B at the end of epoch 1), and
// follow; Z is acknowledged. All three serve the same events: X, Y and Z
// exactly once each, nothing of T1 or T2; the segment files are
// byte-identical.
TEST_F(FailoverCrash, TwoFailoversBackToBackLeaveNoDivergence) {
  start_cluster();
  ASSERT_TRUE(append({"A"}, 0, 400, kBefore).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));

  // First failover.
  ASSERT_TRUE(follow("B", nowhere()).ok());
  ASSERT_TRUE(follow("C", nowhere()).ok());
  std::unique_ptr<RawAppendStream> t1;
  const uint64_t a_cut = write_unacknowledged_tail("A", 50, kTail, &t1);
  ASSERT_EQ(*stop("A", SIGKILL), 128 + SIGKILL);
  t1.reset();
  ASSERT_EQ(longest({"B", "C"}), "B");  // tied: both have X
  ASSERT_NO_FATAL_FAILURE(ctl_promote("B"));
  ASSERT_TRUE(append({"B", "C"}, 0, 300, kAfter).ok());
  ASSERT_TRUE(wait_converged("B", {"C"}));

  // Second failover.
  ASSERT_TRUE(follow("C", nowhere()).ok());
  std::unique_ptr<RawAppendStream> t2;
  const uint64_t b_cut = write_unacknowledged_tail("B", 70, kTail2, &t2);
  ASSERT_EQ(*stop("B", SIGKILL), 128 + SIGKILL);
  t2.reset();
  ASSERT_NO_FATAL_FAILURE(ctl_promote("C"));
  absl::StatusOr<v1::NodeStatus> c = status("C");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->role(), v1::ROLE_PRIMARY);
  EXPECT_EQ(c->epoch(), 2u);

  // Z goes to C; nothing acknowledges it until a replica is back.
  std::atomic<bool> z_done{false};
  absl::StatusOr<Ack> z = absl::UnknownError("not run");
  std::thread z_thread([&] {
    z = append({"C", "A", "B"}, 0, 200, kAfter2);
    z_done.store(true);
  });
  restart("A");
  restart("B");
  ASSERT_TRUE(wait_until([&] { return z_done.load(); }, absl::Seconds(60))) << "Z was never acknowledged";
  z_thread.join();
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->epoch, 2u);
  ASSERT_TRUE(wait_converged("C", {"A", "B"}));

  EXPECT_THAT(output("A"), HasSubstr(absl::StrCat("truncating the log from offset ",
                                                  a_cut + 50 * kRecordBytes, " to ", a_cut)));
  EXPECT_THAT(output("B"), HasSubstr(absl::StrCat("truncating the log from offset ",
                                                  b_cut + 70 * kRecordBytes, " to ", b_cut)));
  absl::StatusOr<std::vector<Replayed>> reference = replay_all("C");
  ASSERT_TRUE(reference.ok()) << reference.status();
  EXPECT_TRUE(exactly_once_in_order(*reference, kBefore, 400));
  EXPECT_TRUE(exactly_once_in_order(*reference, kAfter, 300));
  EXPECT_TRUE(exactly_once_in_order(*reference, kAfter2, 200));
  EXPECT_EQ(count_tag(*reference, kTail), 0u);
  EXPECT_EQ(count_tag(*reference, kTail2), 0u);
  for (const char* n : {"A", "B"}) {
    absl::StatusOr<std::vector<Replayed>> ev = replay_all(n);
    ASSERT_TRUE(ev.ok()) << n << ": " << ev.status();
    EXPECT_EQ(*ev, *reference) << n << " serves other events than C";
    absl::StatusOr<v1::NodeStatus> st = status(n);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->epoch(), 2u) << n;
  }
  ASSERT_EQ(*stop("A", SIGTERM), 0);
  ASSERT_EQ(*stop("B", SIGTERM), 0);
  ASSERT_EQ(*stop("C", SIGTERM), 0);
  EXPECT_TRUE(files_identical("C", "A"));
  EXPECT_TRUE(files_identical("C", "B"));
}

}  // namespace
}  // namespace ringlog::failover_test
