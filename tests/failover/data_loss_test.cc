// Records lost on a stopped node (a flipped byte, a deleted segment file):
// recovery tells them from a torn tail by the log's checkpoint, the node
// says DATA_LOSS instead of serving on, and no other node cuts what it lost.
// Real ringlogd processes; the files are damaged while the nodes are down.
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "failover_harness.h"
#include "gmock/gmock.h"

namespace ringlog::failover_test {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

namespace fs = std::filesystem;

constexpr uint64_t kAcked = 7;
constexpr uint64_t kEvents = 20000;  // about four 256 KiB segments
const std::string kSmallSegments = "--segment_bytes=262144";

void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << path;
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(~c));
  ASSERT_TRUE(f) << path;
}

class FailoverDataLoss : public FailoverTest {
 protected:
  // An Append of one small batch straight to `name`, then a half-close; how
  // the call ended (DEADLINE_EXCEEDED after 30 s without an answer).
  grpc::Status append_once(const std::string& name) {
    RawAppendStream s(address(name), absl::Seconds(30));
    EXPECT_TRUE(s.send(1, encode_events(0, 1, 99)));
    return s.finish();
  }

  uint64_t log_end(const std::string& name) {
    absl::StatusOr<v1::NodeStatus> st = status(name);
    EXPECT_TRUE(st.ok()) << name << ": " << st.status();
    return st.ok() ? st->log_end_offset() : 0;
  }
};

// Finding: one flipped byte in a sealed middle segment of the primary made
// it cut its log there and come back as primary, and both replicas then cut
// their intact copies to match.
TEST_F(FailoverDataLoss, FlippedByteOnThePrimaryLosesNothingAcknowledged) {
  start_cluster({kSmallSegments});
  ASSERT_TRUE(append({"A"}, 0, kEvents, kAcked).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  const uint64_t end = log_end("A");
  for (const char* n : {"A", "B", "C"}) ASSERT_EQ(*stop(n, SIGTERM), 0) << n;
  const std::vector<std::string> files = segment_files("A");
  ASSERT_GE(files.size(), 3u);
  ASSERT_NO_FATAL_FAILURE(flip_byte(data_dir("A") + "/" + files[1], 64 + 1000));

  for (const char* n : {"A", "B", "C"}) restart(n);
  // A says what it lost and whom to promote once a replica has asked it for
  // the log; the replicas are refused and keep every record.
  ASSERT_TRUE(wait_until([&] {
    absl::StatusOr<v1::NodeStatus> st = status("A");
    return st.ok() && (absl::StrContains(st->data_loss(), "promote " + address("B")) ||
                       absl::StrContains(st->data_loss(), "promote " + address("C")));
  }, absl::Seconds(30))) << "A does not name a replica to promote";
  absl::StatusOr<v1::NodeStatus> a = status("A");
  ASSERT_TRUE(a.ok());
  EXPECT_LT(a->lost_from_offset(), a->lost_to_offset());
  EXPECT_EQ(a->log_end_offset(), a->lost_from_offset());
  EXPECT_GE(a->lost_to_offset(), end);
  EXPECT_THAT(output("A"), HasSubstr("DATA LOSS"));
  EXPECT_TRUE(fs::exists(data_dir("A") + "/quarantine"));
  const grpc::Status refused = append_once("A");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::DATA_LOSS) << refused.error_message();
  for (const char* r : {"B", "C"}) {
    ASSERT_TRUE(wait_until([&] {
      absl::StatusOr<v1::NodeStatus> st = status(r);
      return st.ok() && absl::StrContains(st->replication_error(), "lacks log offsets");
    }, absl::Seconds(30))) << r << " was not refused by A";
    EXPECT_EQ(log_end(r), end) << r << " cut its log";
  }

  // The operator promotes the replica A named; A follows it by itself (it
  // has --peers) and fetches what it lost.
  const CommandResult p = ringlogctl({"promote", "--node=" + address("B"), "--nodes=" +
                                      address("A") + "," + address("B") + "," + address("C")});
  ASSERT_EQ(p.exit_code, 0) << p.out;
  ASSERT_TRUE(append({"B"}, kEvents, 100, kAcked).ok());
  ASSERT_TRUE(wait_converged("B", {"A", "C"}, absl::Seconds(90)));
  a = status("A");
  ASSERT_TRUE(a.ok());
  EXPECT_THAT(a->data_loss(), IsEmpty());
  for (const char* n : {"A", "B", "C"}) {
    absl::StatusOr<std::vector<Replayed>> ev = replay_all(n);
    ASSERT_TRUE(ev.ok()) << n << ": " << ev.status();
    EXPECT_TRUE(exactly_once_in_order(*ev, kAcked, kEvents + 100)) << n;
    report_fault("flipped_byte_on_primary", *ev, kAcked, kEvents + 100);
  }
}

// A flipped byte in a replica's sealed segment: the replica keeps the damaged
// file aside and fetches the records from the damage on from its primary.
TEST_F(FailoverDataLoss, FlippedByteOnAReplicaIsFetchedAgain) {
  start_cluster({kSmallSegments});
  ASSERT_TRUE(append({"A"}, 0, kEvents, kAcked).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_EQ(*stop("B", SIGTERM), 0);
  const std::vector<std::string> files = segment_files("B");
  ASSERT_GE(files.size(), 3u);
  ASSERT_NO_FATAL_FAILURE(flip_byte(data_dir("B") + "/" + files[1], 64 + 5000));
  restart("B");
  ASSERT_TRUE(append({"A"}, kEvents, 100, kAcked).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  EXPECT_THAT(output("B"), HasSubstr("DATA LOSS"));
  absl::StatusOr<v1::NodeStatus> b = status("B");
  ASSERT_TRUE(b.ok());
  EXPECT_THAT(b->data_loss(), IsEmpty());
  bool kept_aside = false;
  for (const fs::directory_entry& e : fs::directory_iterator(data_dir("B") + "/quarantine")) {
    kept_aside |= absl::StrContains(e.path().filename().string(), files[1] + ".damaged.");
  }
  EXPECT_TRUE(kept_aside) << "no copy of the damaged file in quarantine/";
  absl::StatusOr<std::vector<Replayed>> ev = replay_all("B");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_TRUE(exactly_once_in_order(*ev, kAcked, kEvents + 100));
  report_fault("flipped_byte_on_replica", *ev, kAcked, kEvents + 100);
  for (const char* n : {"A", "B", "C"}) ASSERT_EQ(*stop(n, SIGTERM), 0) << n;
  EXPECT_TRUE(files_identical("A", "B"));
}

// Finding: a deleted first or last segment went unnoticed (the node started
// without a word, `verify` said OK).
TEST_F(FailoverDataLoss, DeletedSegmentsAreFoundByVerifyAndRefuseAppends) {
  for (const bool first : {true, false}) {
    SCOPED_TRACE(first ? "first segment deleted" : "last segment deleted");
    const std::string n = first ? "F" : "L";
    start(n, {kSmallSegments});
    ASSERT_TRUE(append({n}, 0, kEvents, kAcked).ok());
    ASSERT_EQ(*stop(n, SIGTERM), 0);
    const std::vector<std::string> files = segment_files(n);
    ASSERT_GE(files.size(), 3u);
    fs::remove(data_dir(n) + "/" + (first ? files.front() : files.back()));

    const CommandResult v = ringlogctl({"verify", "--data-dir=" + data_dir(n)});
    EXPECT_NE(v.exit_code, 0) << v.out;
    EXPECT_THAT(v.out, HasSubstr("PROBLEM"));
    EXPECT_THAT(v.out, HasSubstr("missing"));

    restart(n);
    const grpc::Status refused = append_once(n);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::DATA_LOSS) << refused.error_message();
    EXPECT_THAT(refused.error_message(), HasSubstr("--accept_data_loss"));
    absl::StatusOr<v1::NodeStatus> st = status(n);
    ASSERT_TRUE(st.ok());
    EXPECT_THAT(st->data_loss(), Not(IsEmpty()));
    ASSERT_EQ(*stop(n, SIGTERM), 0);

    // The operator accepts the loss: the node goes on from what is left.
    start(n, {kSmallSegments, "--accept_data_loss"});
    EXPECT_TRUE(append_once(n).ok());
    st = status(n);
    ASSERT_TRUE(st.ok());
    EXPECT_THAT(st->data_loss(), IsEmpty());
    ASSERT_EQ(*stop(n, SIGTERM), 0);
  }
}

// Finding: a ROLE file saying replica with no address made a node whose
// Replay returned 0 events although its log held them all.
TEST_F(FailoverDataLoss, ReplicaWithoutAPrimaryServesWhatWasCommitted) {
  start_cluster({}, /*with_peers=*/false);
  ASSERT_TRUE(append({"A"}, 0, 3000, kAcked).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  for (const char* n : {"A", "B", "C"}) ASSERT_EQ(*stop(n, SIGTERM), 0) << n;
  {
    std::ofstream role(data_dir("B") + "/ROLE", std::ios::trunc);
    role << "replica\n";
  }
  restart("B");  // A stays down
  absl::StatusOr<std::vector<Replayed>> ev = replay_all("B");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_TRUE(exactly_once_in_order(*ev, kAcked, 3000));
}

// A replica restarted after it learned a commit offset refuses a directive
// to cut below it, from a primary promoted by force with a shorter log.
TEST_F(FailoverDataLoss, RestartedReplicaNeverCutsBelowItsCommitOffset) {
  start_cluster({}, /*with_peers=*/false);
  ASSERT_TRUE(append({"A"}, 0, 500, kAcked).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));
  ASSERT_EQ(*stop("C", SIGTERM), 0);  // C falls behind
  ASSERT_TRUE(append({"A"}, 500, 500, kAcked).ok());
  ASSERT_TRUE(wait_converged("A", {"B"}));
  const uint64_t b_end = log_end("B");
  ASSERT_EQ(*stop("A", SIGKILL), 128 + SIGKILL);
  ASSERT_EQ(*stop("B", SIGTERM), 0);
  restart("C");
  ASSERT_TRUE(follow("C", address("A")).ok());
  ASSERT_TRUE(promote("C", /*force=*/true).ok());  // the shorter log, forced
  restart("B");  // still follows A: point it at C
  ASSERT_TRUE(follow("B", address("C")).ok());
  ASSERT_TRUE(wait_until([&] {
    absl::StatusOr<v1::NodeStatus> st = status("B");
    return st.ok() && absl::StrContains(st->replication_error(), "commit");
  }, absl::Seconds(30))) << "B did not refuse to cut";
  EXPECT_EQ(log_end("B"), b_end);
  absl::StatusOr<std::vector<Replayed>> ev = replay_all("B");
  ASSERT_TRUE(ev.ok()) << ev.status();
  EXPECT_TRUE(exactly_once_in_order(*ev, kAcked, 1000));
  report_fault("replica_restart_then_forced_shorter_primary", *ev, kAcked, 1000);
}

// Garbled role and id files stop the node at start, naming the file and
// what to do, instead of a node that starts in a role nobody chose (a
// garbled ROLE was read as no role: a fenced node could start as primary).
TEST_F(FailoverDataLoss, GarbledRoleOrNodeIdFileIsARefusalThatSaysWhatToDo) {
  start("N", {});
  ASSERT_EQ(*stop("N", SIGTERM), 0);
  const std::string role = data_dir("N") + "/ROLE";
  const std::string id = data_dir("N") + "/NODE_ID";
  auto start_fails = [&](const std::string& file, const std::string& advice) {
    const CommandResult r = run_command(
        {kRinglogd, "--data_dir=" + data_dir("N"), "--listen=127.0.0.1:0", kSmallSegments},
        {.timeout = absl::Seconds(20), .merge_output = true});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_THAT(r.out, HasSubstr(file));
    EXPECT_THAT(r.out, HasSubstr(advice));
  };
  std::ofstream(role, std::ios::trunc) << "primray\n";
  start_fails(role, "delete the file");
  std::ofstream(role, std::ios::trunc) << "primary\n";
  std::ofstream(id, std::ios::trunc) << std::string("\x01\xff bad id\n");
  start_fails(id, "delete the file to make a new one");
  std::ofstream(id, std::ios::trunc) << "N\n";
  start("N", {});  // and it starts again once the files are right
  EXPECT_TRUE(append_once("N").ok());
}

}  // namespace
}  // namespace ringlog::failover_test
