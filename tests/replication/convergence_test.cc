// Replicas converge to byte-identical logs: from the start, when started
// late, and after a kill -9 in the middle of the stream.
#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replication_harness.h"

namespace ringlog::testing {
namespace {

class ReplicationConvergence : public ReplicationTest {
 protected:
  // The offsets in the node's "following <primary> ... from offset N" lines
  // written after byte `from` of its output.
  std::vector<uint64_t> follow_offsets(const std::string& name, size_t from = 0) {
    const std::string out = node_output(name).substr(from);
    static const std::regex kFollowing(R"(following \S+ \(epoch \d+\) from offset (\d+))");
    std::vector<uint64_t> offsets;
    for (std::sregex_iterator it(out.begin(), out.end(), kFollowing), end; it != end; ++it) {
      offsets.push_back(std::stoull((*it)[1].str()));
    }
    return offsets;
  }

  uint64_t applied(const tools::NodeProcess& r) {
    absl::StatusOr<v1::NodeStatus> s = status(r);
    return s.ok() ? s->applied_offset() : 0;
  }
  uint64_t log_end(const tools::NodeProcess& n) {
    absl::StatusOr<v1::NodeStatus> s = status(n);
    return s.ok() ? s->log_end_offset() : 0;
  }
};

TEST_F(ReplicationConvergence, TwoReplicasHoldByteIdenticalSegmentsAfterMillionEvents) {
  constexpr uint64_t kEvents = 1'000'000;
  tools::NodeProcess& p = start_primary("p");
  tools::NodeProcess& r1 = start_replica("r1", p.address());
  tools::NodeProcess& r2 = start_replica("r2", p.address());

  absl::StatusOr<Ack> ack = append_events(p, 0, kEvents);
  ASSERT_TRUE(ack.ok()) << ack.status();
  ASSERT_TRUE(wait_converged(p, {&r1, &r2}));
  const v1::NodeStatus ps = status_now(p);
  // The log holds the events (and the appender's batch marks).
  EXPECT_EQ(ack->end_offset, ps.log_end_offset());
  EXPECT_GE(ps.log_end_offset(), kEvents * kRecordBytes);
  EXPECT_GE(ps.next_seq(), kEvents);
  stop_all();

  EXPECT_GE(segment_files("p").size(), kEvents * kRecordBytes / kSegmentBytes);
  EXPECT_TRUE(logs_identical("p", "r1", ps.log_end_offset()));
  EXPECT_TRUE(logs_identical("p", "r2", ps.log_end_offset()));
}

TEST_F(ReplicationConvergence, LateReplicaCatchesUpFromZero) {
  constexpr uint64_t kBefore = 500'000;
  tools::NodeProcess& p = start_primary("p");
  ASSERT_TRUE(append_events(p, 0, kBefore).ok());

  // Appends go on while the new replica copies the log from offset 0.
  constexpr uint64_t kDuring = 100'000;
  BackgroundAppender more(p.address(), kBefore, kDuring, /*events_per_second=*/200'000);
  tools::NodeProcess& r = start_replica("r", p.address());
  ASSERT_TRUE(wait_until([&] { return more.done(); }, absl::Seconds(60)));
  absl::StatusOr<Ack> ack = more.stop();
  ASSERT_TRUE(ack.ok()) << ack.status();
  ASSERT_EQ(more.appended(), kDuring);
  ASSERT_TRUE(wait_converged(p, {&r}));
  const uint64_t end = status_now(p).log_end_offset();
  EXPECT_EQ(ack->end_offset, end);
  EXPECT_GE(end, (kBefore + kDuring) * kRecordBytes);
  stop_all();

  const std::vector<uint64_t> follows = follow_offsets("r");
  ASSERT_FALSE(follows.empty()) << node_output("r");
  EXPECT_EQ(follows.front(), 0u) << "the late replica's first stream did not start at offset 0";
  EXPECT_TRUE(logs_identical("p", "r", end));
}

TEST_F(ReplicationConvergence, ReplicaKilledMidStreamResumesFromItsOwnEnd) {
  tools::NodeProcess& p = start_primary("p");
  start_replica("r", p.address());
  BackgroundAppender appends(p.address(), 0, /*max_events=*/5'000'000,
                             /*events_per_second=*/300'000);

  // Kill -9 once the replica holds a few segments, while appends go on.
  uint64_t applied_before = 0;
  ASSERT_TRUE(wait_until([&] {
    applied_before = applied(node("r"));
    return applied_before >= 2 * kSegmentBytes;
  }, absl::Seconds(60)));
  ASSERT_FALSE(appends.done());
  const size_t output_before = node_output("r").size();
  absl::StatusOr<int> killed = stop("r", SIGKILL);
  ASSERT_TRUE(killed.ok());
  EXPECT_EQ(*killed, 128 + SIGKILL);

  // The primary goes on without it.
  ASSERT_TRUE(wait_until([&] { return log_end(p) >= applied_before + kSegmentBytes; }, absl::Seconds(60)));
  ASSERT_FALSE(appends.done());

  tools::NodeProcess& r = start_replica("r", p.address());
  const uint64_t end_at_restart = log_end(p);
  ASSERT_TRUE(wait_until([&] { return applied(r) >= end_at_restart; }, absl::Seconds(60)));
  ASSERT_FALSE(appends.done()) << "appends ended before the replica caught up; raise max_events";

  absl::StatusOr<Ack> ack = appends.stop();
  ASSERT_TRUE(ack.ok()) << ack.status();
  ASSERT_TRUE(wait_converged(p, {&r}));
  const uint64_t end = status_now(p).log_end_offset();
  EXPECT_EQ(ack->end_offset, end);
  EXPECT_GE(end, appends.appended() * kRecordBytes);
  stop_all();

  // After the restart it followed from its own end (everything it had
  // applied before the kill survived in its files), not from zero.
  const std::vector<uint64_t> follows = follow_offsets("r", output_before);
  ASSERT_FALSE(follows.empty()) << node_output("r").substr(output_before);
  EXPECT_GE(follows.front(), applied_before);
  EXPECT_TRUE(logs_identical("p", "r", end));
}

}  // namespace
}  // namespace ringlog::testing
