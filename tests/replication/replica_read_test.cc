// What a replica serves: replays equal to the primary's, live follow, and a
// refusal of appends that names the primary.
#include <atomic>
#include <cstring>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replication_harness.h"
#include "ringlog/grpc_status.h"

namespace ringlog::testing {
namespace {


class ReplicationReplica : public ReplicationTest {
 protected:
  // Waits until the replica serves everything the primary has (its learned
  // commit offset reached the primary's end).
  ::testing::AssertionResult wait_replica_commit(const tools::NodeProcess& p,
                                                 const tools::NodeProcess& r) {
    const uint64_t end = status_now(p).log_end_offset();
    if (wait_until([&] {
          absl::StatusOr<v1::NodeStatus> s = status(r);
          return s.ok() && s->commit_offset() == end;
        }, absl::Seconds(60))) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "the replica's commit offset is "
                                         << status_now(r).commit_offset() << ", not " << end;
  }

  // Replays both nodes from `options` in lockstep; every event must be the
  // same record at the same seq on both, and the test events must come in
  // order (control records, which Replay leaves out, take seqs between them).
  // Returns how many events both gave, or -1 after a mismatch.
  int64_t replay_both(const tools::NodeProcess& p, const tools::NodeProcess& r,
                      const ReplayOptions& options) {
    absl::StatusOr<std::unique_ptr<Client>> cp = connect(p);
    absl::StatusOr<std::unique_ptr<Client>> cr = connect(r);
    if (!cp.ok() || !cr.ok()) {
      ADD_FAILURE() << "connect: " << cp.status() << " " << cr.status();
      return -1;
    }
    std::unique_ptr<Replayer> rp = (*cp)->replay(options);
    std::unique_ptr<Replayer> rr = (*cr)->replay(options);
    int64_t n = 0;
    std::optional<uint64_t> index;  // the test event expected next
    for (;;) {
      std::optional<ReplayEvent> a = rp->next();
      std::optional<ReplayEvent> b = rr->next();
      if (!a || !b) {
        EXPECT_EQ(a.has_value(), b.has_value()) << "one replay ended first, after " << n << " events";
        EXPECT_TRUE(rp->status().ok()) << rp->status();
        EXPECT_TRUE(rr->status().ok()) << rr->status();
        return a.has_value() != b.has_value() ? -1 : n;
      }
      if (a->seq != b->seq || record_bytes(a->view) != record_bytes(b->view)) {
        ADD_FAILURE() << "event " << n << ": primary seq " << a->seq << ", replica seq " << b->seq
                      << (record_bytes(a->view) != record_bytes(b->view) ? ", records differ" : "");
        return -1;
      }
      const uint64_t i = index.value_or(event_index(a->view));
      if (!is_test_event(a->view, i)) {
        ADD_FAILURE() << "the event at seq " << a->seq << " is not test event " << i;
        return -1;
      }
      index = i + 1;
      ++n;
    }
  }

  static std::string record_bytes(const EventView& v) {
    const ByteSpan rec = v.record();
    return std::string(reinterpret_cast<const char*>(rec.data()), rec.size());
  }
  static uint64_t event_index(const EventView& v) {
    uint64_t i = 0;
    if (v.payload.size() >= sizeof i) std::memcpy(&i, v.payload.data(), sizeof i);
    return i;
  }
  static bool is_test_event(const EventView& v, uint64_t i) {
    return v.timestamp() == event_timestamp(i) && v.event_type() == event_type(i) &&
           std::string(reinterpret_cast<const char*>(v.payload.data()), v.payload.size()) ==
               event_payload(i);
  }

  // Every record (control records included) a raw Replay from the start
  // sends, concatenated.
  std::string raw_replay_all(const tools::NodeProcess& n) {
    std::unique_ptr<v1::EventLog::Stub> stub = v1::EventLog::NewStub(channel(n.address()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ReplayRequest req;
    req.set_from_start(true);
    req.set_include_control(true);
    std::unique_ptr<grpc::ClientReader<v1::ReplayResponse>> reader = stub->Replay(&ctx, req);
    std::string all;
    v1::ReplayResponse resp;
    while (reader->Read(&resp)) all += resp.records();
    const grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << n.address() << ": " << s.error_message();
    return all;
  }
};

TEST_F(ReplicationReplica, ReplayFromReplicaEqualsReplayFromPrimary) {
  constexpr uint64_t kEvents = 200'000;
  tools::NodeProcess& p = start_primary("p");
  tools::NodeProcess& r = start_replica("r", p.address());
  ASSERT_TRUE(append_events(p, 0, kEvents).ok());
  ASSERT_TRUE(wait_converged(p, {&r}));
  ASSERT_TRUE(wait_replica_commit(p, r));

  EXPECT_EQ(replay_both(p, r, {}), static_cast<int64_t>(kEvents));
  ReplayOptions middle;
  middle.from_seq = 123'457;
  const int64_t from_middle = replay_both(p, r, middle);
  EXPECT_GT(from_middle, 0);
  EXPECT_LT(from_middle, static_cast<int64_t>(kEvents - 100'000));

  // Raw, with the control records: the same bytes as the primary's log.
  const std::string from_primary = raw_replay_all(p);
  EXPECT_EQ(from_primary.size(), status_now(p).log_end_offset());
  EXPECT_TRUE(from_primary == raw_replay_all(r)) << "raw replays differ";
}

TEST_F(ReplicationReplica, FollowReplayOnReplicaDeliversEventsAsTheyCommit) {
  constexpr uint64_t kBefore = 1'000;
  constexpr uint64_t kAfter = 50'000;
  tools::NodeProcess& p = start_primary("p");
  tools::NodeProcess& r = start_replica("r", p.address());
  ASSERT_TRUE(append_events(p, 0, kBefore).ok());
  ASSERT_TRUE(wait_converged(p, {&r}));
  ASSERT_TRUE(wait_replica_commit(p, r));

  absl::StatusOr<std::unique_ptr<Client>> c = connect(r);
  ASSERT_TRUE(c.ok()) << c.status();
  ReplayOptions o;
  o.from_seq = 0;
  o.follow = true;
  std::unique_ptr<Replayer> replayer = (*c)->replay(o);
  std::atomic<uint64_t> in_order{0};
  std::atomic<bool> wrong{false};
  std::thread reader([&] {
    uint64_t last_seq = 0;
    while (std::optional<ReplayEvent> e = replayer->next()) {
      const uint64_t want = in_order.load();
      if ((want != 0 && e->seq <= last_seq) || !is_test_event(e->view, want)) {
        wrong = true;
        return;
      }
      last_seq = e->seq;
      if (in_order.fetch_add(1) + 1 == kBefore + kAfter) return;
    }
  });
  ASSERT_TRUE(wait_until([&] { return in_order.load() >= kBefore || wrong; }, absl::Seconds(60)));
  ASSERT_TRUE(append_events(p, kBefore, kAfter).ok());
  const bool all = wait_until([&] { return in_order.load() == kBefore + kAfter || wrong; }, absl::Seconds(60));
  replayer->cancel();
  reader.join();
  EXPECT_TRUE(all) << "the follow replay on the replica delivered " << in_order.load() << " of "
                   << kBefore + kAfter << " events";
  EXPECT_FALSE(wrong) << "event " << in_order.load() << " came out of order or changed";
}

TEST_F(ReplicationReplica, ReplicaRefusesAppendWithFailedPreconditionNamingThePrimary) {
  tools::NodeProcess& p = start_primary("p");
  tools::NodeProcess& r = start_replica("r", p.address());
  ASSERT_TRUE(append_events(p, 0, 100).ok());
  ASSERT_TRUE(wait_converged(p, {&r}));
  const v1::NodeStatus before = status_now(p);

  // On the generated stub: the batch is refused, the status names the primary.
  std::unique_ptr<v1::EventLog::Stub> stub = v1::EventLog::NewStub(channel(r.address()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->Append(&ctx);
  v1::AppendRequest req;
  req.set_batch_id(1);
  std::string record(kRecordBytes, '\0');
  const std::string payload = event_payload(100);
  EventHeader h(event_timestamp(100), event_type(100), kPayloadBytes);
  encode_record(reinterpret_cast<std::byte*>(record.data()), h, as_bytes(payload));
  req.set_records(record);
  stream->Write(req);
  stream->WritesDone();
  v1::AppendResponse resp;
  EXPECT_FALSE(stream->Read(&resp)) << "the replica acknowledged batch " << resp.batch_id();
  const grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  const std::optional<Redirect> redirect = redirect_from(ctx);
  ASSERT_TRUE(redirect.has_value()) << "no " << kEpochKey << " in the trailing metadata";
  EXPECT_EQ(redirect->primary, p.address());
  EXPECT_EQ(redirect->epoch, before.epoch());

  // Nothing reached either log.
  EXPECT_EQ(status_now(r).next_seq(), before.next_seq());
  EXPECT_EQ(status_now(p).next_seq(), before.next_seq());
}

TEST_F(ReplicationReplica, ClientAppendingToReplicaIsSentToThePrimary) {
  tools::NodeProcess& p = start_primary("p");
  tools::NodeProcess& r = start_replica("r", p.address());
  ASSERT_TRUE(append_events(p, 0, 100).ok());
  ASSERT_TRUE(wait_converged(p, {&r}));

  // The replica's refusal names the primary; the appender follows it there.
  BackgroundAppender via_replica(r.address(), 100, 100, 0, /*failover_timeout=*/absl::Seconds(2));
  const bool done = wait_until([&] { return via_replica.done(); }, absl::Seconds(10));
  if (!done) {
    // Unblock the appender (it gives up 2 s after its endpoint is gone).
    (void)stop("r", SIGKILL);
    (void)stop("p", SIGKILL);
  }
  absl::StatusOr<Ack> ack = via_replica.stop();
  ASSERT_TRUE(done) << "an Appender given only the replica's address did not finish appending "
                       "within 10 s";
  ASSERT_TRUE(ack.ok()) << ack.status();
  ASSERT_TRUE(wait_converged(p, {&r}));
  EXPECT_EQ(ack->end_offset, status_now(p).log_end_offset());
  absl::StatusOr<std::unique_ptr<Client>> c = connect(p);
  ASSERT_TRUE(c.ok());
  ReplayOptions o;
  o.from_seq = ack->first_seq;
  std::unique_ptr<Replayer> replayer = (*c)->replay(o);
  uint64_t i = 100;
  while (std::optional<ReplayEvent> e = replayer->next()) {
    ASSERT_TRUE(is_test_event(e->view, i)) << "seq " << e->seq;
    ++i;
  }
  EXPECT_EQ(i, 200u);
}

}  // namespace
}  // namespace ringlog::testing
