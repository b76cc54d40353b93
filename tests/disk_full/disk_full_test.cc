// A full disk, with real processes: a small tmpfs mounted as a node's data
// directory fills while a client appends. The client must get
// RESOURCE_EXHAUSTED within the bound (--disk_full_timeout, plus a retry and
// scheduling), never a wait without an end; health and status say so, the
// log says so once; replays go on; once space is freed, appends resume by
// themselves, and every acknowledged event is in the log exactly once.
//
// Mounting needs root (CAP_SYS_ADMIN); where it is refused, each test skips
// itself and says why. Each test unmounts what it mounted and removes its
// directory, whatever happens.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "disk_full_support.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ringlog::disk_full_test {
namespace {

using ::testing::HasSubstr;

// Scenario: a primary on a 6 MiB tmpfs, 1 MiB segments. A client sends
// idempotent batches, 16 in flight, until its stream ends: it ends with
// RESOURCE_EXHAUSTED saying the disk is full and where, within the bound of
// the last acknowledgement. While full: health for appends says
// NOT_SERVING (the node itself SERVING), status and metrics say disk full
// and count the refusals, the log has one ERROR line, a new batch is refused
// within the bound, and a replay returns exactly what was acknowledged. The
// tmpfs is then remounted larger: health goes back to SERVING by itself,
// the refused batches sent again with the same producer seqs are appended
// (not duplicates: nothing of them was stored), more batches go in, and the
// log holds every event exactly once, in order.
TEST_F(DiskFull, PrimaryRefusesWithinTheBoundAndResumesWhenSpaceIsFreed) {
  Tmpfs* disk = small_disk("p", 6);
  if (disk == nullptr) GTEST_SKIP() << skip_reason();
  tools::NodeProcess& p = start("p", {"--metrics_listen=127.0.0.1:0"});
  Producer producer("df-primary");

  SendRun run = send_until_refused(p.address(), producer);
  ASSERT_TRUE(run.end.has_value()) << "the stream did not end: appends block";
  EXPECT_EQ(run.end->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << run.end->error_message();
  EXPECT_THAT(run.end->error_message(), HasSubstr("disk is full"));
  EXPECT_THAT(run.end->error_message(), HasSubstr(data_dir("p")));
  EXPECT_LT(run.waited, kBound) << "refused " << run.waited << " after the last acknowledgement";
  std::printf("refused %s after the last acknowledgement\n", absl::FormatDuration(run.waited).c_str());
  ASSERT_GT(run.acked_events(), 0u);
  ASSERT_FALSE(run.refused().empty());

  EXPECT_EQ(health(p.address(), ""), "SERVING");
  EXPECT_EQ(health(p.address(), kAppendService), "NOT_SERVING");
  absl::StatusOr<v1::NodeStatus> st = channels_.status(p.address());
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_THAT(st->disk_full(), HasSubstr(data_dir("p")));
  EXPECT_THAT(st->append_refusal(), HasSubstr("disk is full"));
  EXPECT_GE(st->appends_refused(), 1u);
  EXPECT_LT(st->disk_free_bytes(), uint64_t{1} << 20) << "room for a segment";
  std::map<std::string, double> m = metrics(metrics_port("p"));
  EXPECT_EQ(m["ringlog_disk_full"], 1);
  EXPECT_EQ(m["ringlog_write_ready"], 0);
  EXPECT_GE(m["ringlog_appends_refused_total"], 1);

  // While full, a new batch is refused within the bound too, not stored.
  const Refusal again = send_one(p.address(), producer.id, run.refused().front());
  EXPECT_EQ(again.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_LT(again.took, kBound);
  std::printf("a new batch refused in %s\n", absl::FormatDuration(again.took).c_str());
  // Replays go on, and hold exactly what was acknowledged.
  EXPECT_EQ(replay_indices(p.address()), iota(run.acked_events()));
  EXPECT_EQ(count_lines(output("p"), " E ringlogd the disk is full in "), 1u) << output("p");

  ASSERT_TRUE(disk->resize(64)) << "remount: " << std::strerror(errno);
  ASSERT_TRUE(wait_until([&] { return health(p.address(), kAppendService) == "SERVING"; },
                         absl::Seconds(20)))
      << "appends did not resume after space was freed";
  st = channels_.status(p.address());
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->disk_full(), "");
  EXPECT_EQ(st->append_refusal(), "");

  const Resent resent = resend(p.address(), producer, run.refused());
  ASSERT_TRUE(resent.ok) << resent.error;
  EXPECT_EQ(resent.duplicates, 0u) << "a refused batch was stored after all";
  ASSERT_TRUE(append_more(p.address(), producer, 20)) << "appends after the refusal";
  EXPECT_EQ(replay_indices(p.address()), iota(producer.next_index));
  testkit::report_fault_indices("disk_full_primary", replay_indices(p.address()),
                                producer.next_index);
  EXPECT_EQ(count_lines(output("p"), " E ringlogd the disk is full in "), 1u);
  EXPECT_EQ(count_lines(output("p"), "the log stores again"), 1u);
}

// Scenario: a primary with --min_replica_acks=1 and its only replica on a
// 6 MiB tmpfs. The replica's disk fills: the client's stream ends with
// RESOURCE_EXHAUSTED naming the replica, within the bound, instead of
// waiting for an ack that cannot come. The replica logs it once at ERROR and
// says disk full in its status; the primary shows the replica's error and
// health for appends says NOT_SERVING. The tmpfs is remounted larger: the
// replica catches up, appends are taken again, the refused batches sent
// again with the same producer seqs are each stored once (some were already
// in the primary's log: those are answered as duplicates), and the log
// holds every event exactly once, in order, on both nodes.
TEST_F(DiskFull, OnlyReplicaFullRefusesAppendsNamingTheReplica) {
  Tmpfs* disk = small_disk("r", 6);
  if (disk == nullptr) GTEST_SKIP() << skip_reason();
  tools::NodeProcess& p = start("p", {"--min_replica_acks=1"});
  tools::NodeProcess& r =
      start("r", {"--min_replica_acks=1", "--role=replica", "--primary=" + p.address()});
  absl::StatusOr<v1::NodeStatus> rs = channels_.status(r.address());
  ASSERT_TRUE(rs.ok()) << rs.status();
  const std::string replica_id = rs->node_id();
  Producer producer("df-replica");

  SendRun run = send_until_refused(p.address(), producer);
  ASSERT_TRUE(run.end.has_value()) << "the stream did not end: appends block";
  EXPECT_EQ(run.end->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << run.end->error_message();
  EXPECT_THAT(run.end->error_message(), HasSubstr("replica " + replica_id));
  EXPECT_THAT(run.end->error_message(), HasSubstr("cannot store"));
  EXPECT_LT(run.waited, kBound) << "refused " << run.waited << " after the last acknowledgement";
  std::printf("refused %s after the last acknowledgement\n", absl::FormatDuration(run.waited).c_str());
  ASSERT_GT(run.acked_events(), 0u);

  absl::StatusOr<v1::NodeStatus> ps = channels_.status(p.address());
  ASSERT_TRUE(ps.ok() && ps->replicas_size() == 1);
  EXPECT_THAT(ps->replicas(0).storage_error(), HasSubstr(data_dir("r")));
  EXPECT_THAT(ps->append_refusal(), HasSubstr(replica_id));
  EXPECT_EQ(health(p.address(), kAppendService), "NOT_SERVING");
  rs = channels_.status(r.address());
  ASSERT_TRUE(rs.ok());
  EXPECT_THAT(rs->disk_full(), HasSubstr(data_dir("r")));
  const Refusal again = send_one(p.address(), producer.id, run.refused().front());
  EXPECT_EQ(again.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_LT(again.took, kBound);
  // Replays go on: every acknowledged event, in order, and perhaps the start
  // of a refused batch that the replica holds (the rest of it follows once
  // it has room; the log only grows).
  const std::vector<uint64_t> replayed = replay_indices(p.address());
  EXPECT_GE(replayed.size(), run.acked_events());
  EXPECT_EQ(replayed, iota(replayed.size()));
  EXPECT_EQ(count_lines(output("r"), " E ringlogd the disk is full in "), 1u) << output("r");

  ASSERT_TRUE(disk->resize(64)) << "remount: " << std::strerror(errno);
  ASSERT_TRUE(wait_until([&] { return health(p.address(), kAppendService) == "SERVING"; },
                         absl::Seconds(20)))
      << "appends did not resume after the replica's space was freed";
  const Resent resent = resend(p.address(), producer, run.refused());
  ASSERT_TRUE(resent.ok) << resent.error;
  EXPECT_GE(resent.duplicates, 1u) << "no refused batch was in the primary's log";
  ASSERT_TRUE(append_more(p.address(), producer, 20));
  ASSERT_TRUE(testkit::wait_converged(channels_, p.address(), {r.address()}, absl::Seconds(30), {}));
  EXPECT_EQ(replay_indices(p.address()), iota(producer.next_index));
  EXPECT_EQ(replay_indices(r.address()), iota(producer.next_index));
  testkit::report_fault_indices("disk_full_only_replica",
                                replay_indices(r.address()), producer.next_index);
}

// Scenario: a replica on a 6 MiB tmpfs, started without retention, falls
// behind its primary (--min_replica_acks=0, 8 MiB of log) when its disk
// fills: its status says disk full. Stopped and restarted with
// --retention_bytes=2MiB, it drops its oldest segments at start, which frees
// space on the tmpfs, and catches up with the primary's whole log, applying
// retention again whenever its disk fills.
TEST_F(DiskFull, ReplicaRestartedWithRetentionFreesSpaceAndCatchesUp) {
  Tmpfs* disk = small_disk("r", 6);
  if (disk == nullptr) GTEST_SKIP() << skip_reason();
  tools::NodeProcess& p = start("p", {});
  start("r", {"--role=replica", "--primary=" + p.address()});
  Producer producer("df-retention");
  ASSERT_TRUE(append_more(p.address(), producer, 8 << 20 >> 15));  // 8 MiB of 32 KiB batches
  absl::StatusOr<v1::NodeStatus> ps = channels_.status(p.address());
  ASSERT_TRUE(ps.ok());
  ASSERT_GT(ps->segment_bytes(), uint64_t{6} << 20) << "the primary's log fits on the replica's disk";
  // Full: no room for a segment, and behind the primary.
  ASSERT_TRUE(wait_until([&] {
    absl::StatusOr<v1::NodeStatus> s = channels_.status(nodes_.at("r").address());
    return s.ok() && s->log_end_offset() < ps->log_end_offset() &&
           free_bytes(data_dir("r")) < (uint64_t{1} << 20);
  })) << "the replica's disk did not fill";
  absl::StatusOr<v1::NodeStatus> full = channels_.status(nodes_.at("r").address());
  ASSERT_TRUE(full.ok());
  EXPECT_THAT(full->disk_full(), HasSubstr(data_dir("r")));

  absl::StatusOr<int> stopped = nodes_.stop("r", SIGTERM);
  ASSERT_TRUE(stopped.ok() && *stopped == 0) << "the full replica did not stop cleanly";
  tools::NodeProcess& r =
      start("r", {"--role=replica", "--primary=" + p.address(), "--retention_bytes=2097152"});
  // The whole log, bigger than the replica's disk, went through it.
  ASSERT_TRUE(testkit::wait_converged(channels_, p.address(), {r.address()}, absl::Seconds(30), {}));
  absl::StatusOr<v1::NodeStatus> rs = channels_.status(r.address());
  ASSERT_TRUE(rs.ok());
  EXPECT_EQ(rs->disk_full(), "");
  EXPECT_GT(rs->log_start_offset(), 0u) << "no segment was dropped";
  EXPECT_THAT(output("r"), HasSubstr("retention at start: removed"));
}

}  // namespace
}  // namespace ringlog::disk_full_test
