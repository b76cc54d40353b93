// Replay: follow mode, the end of a replay without follow, filters and limits.
#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "harness.h"
#include "ringlog/crc32c.h"

namespace ringlog::testing {
namespace {

class IntegrationReplay : public NodeTest {};

// The events are events first_index, first_index + 1, ... of stream 0, with
// their content, at increasing seqs.
::testing::AssertionResult in_order_from(const std::vector<ReplayedEvent>& events,
                                         uint64_t first_index) {
  for (size_t i = 0; i < events.size(); ++i) {
    uint64_t stream = 0;
    uint64_t index = 0;
    if (!parse_test_payload(as_bytes(events[i].payload), &stream, &index) || stream != 0 ||
        index != first_index + i || events[i].type != test_type(0, index) ||
        events[i].timestamp != test_timestamp(0, index)) {
      return ::testing::AssertionFailure()
             << "event " << i << " (seq " << events[i].seq << ") is not event " << first_index + i
             << " of stream 0";
    }
    if (i > 0 && events[i].seq <= events[i - 1].seq) {
      return ::testing::AssertionFailure()
             << "seq " << events[i].seq << " after seq " << events[i - 1].seq;
    }
  }
  return ::testing::AssertionSuccess();
}

// The replay's last event so far is event `index` of stream 0.
bool last_index_is(const BackgroundReplay& replay, uint64_t index) {
  const std::vector<ReplayedEvent> events = replay.events();
  uint64_t stream = 0;
  uint64_t last = 0;
  return !events.empty() &&
         parse_test_payload(as_bytes(events.back().payload), &stream, &last) && last == index;
}

TEST_F(IntegrationReplay, FollowSeesEventsAppendedAfterItStarted) {
  std::unique_ptr<Client> client = connect(start_node());
  ReplayOptions o;
  o.follow = true;
  BackgroundReplay follow(*client, o);
  // The replay is open on the (empty) log before anything is appended.
  ASSERT_TRUE(wait_until([&] { return status(*client).active_replay_streams() == 1; }));

  append_numbered(*client, 0, 0, 1000);
  ASSERT_TRUE(wait_until([&] { return follow.count() == 1000; })) << follow.count();
  // Caught up, it waits for the commit offset to move instead of ending.
  append_numbered(*client, 0, 1000, 1000);
  ASSERT_TRUE(wait_until([&] { return follow.count() == 2000; })) << follow.count();
  EXPECT_FALSE(follow.ended()) << "a follow replay ended when it caught up";
  EXPECT_EQ(status(*client).active_replay_streams(), 1u);

  EXPECT_TRUE(absl::IsCancelled(follow.stop()));
  EXPECT_TRUE(in_order_from(follow.events(), 0));
}

TEST_F(IntegrationReplay, WithoutFollowEndsAtTheCommitOffset) {
  std::unique_ptr<Client> client = connect(start_node());
  append_numbered(*client, 0, 0, 1000);
  const v1::NodeStatus st = status(*client);

  ReplayResult r = replay_all(*client, ReplayOptions());
  ASSERT_FALSE(r.timed_out) << "a replay without follow did not end";
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.events.size(), 1000u);
  EXPECT_TRUE(in_order_from(r.events, 0));

  v1::ReplayRequest req;
  req.set_from_start(true);
  RawReplay raw = raw_replay(client->channel(), req);
  ASSERT_TRUE(raw.status.ok()) << raw.status.error_message();
  ASSERT_FALSE(raw.responses.empty());
  EXPECT_EQ(raw.responses.back().next_offset(), st.commit_offset());
  EXPECT_EQ(raw.responses.back().next_seq(), st.next_seq());
}

// While another stream keeps appending, a replay without follow still ends,
// and no response runs past the commit offset it reports.
TEST_F(IntegrationReplay, WithoutFollowEndsWhileAppendsContinue) {
  std::unique_ptr<Client> client = connect(start_node());
  append_numbered(*client, 0, 0, 10'000);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> appended{10'000};
  std::string writer_error;
  std::thread writer([&] {
    try {
      while (!stop.load()) {
        const uint64_t first = appended.load();
        append_numbered(*client, 0, first, 1000);
        appended.store(first + 1000);
      }
    } catch (const std::exception& e) {
      writer_error = e.what();
    }
  });
  v1::ReplayRequest req;
  req.set_from_start(true);
  req.set_max_batch_bytes(64 << 10);
  RawReplay raw = raw_replay(client->channel(), req, absl::Seconds(60));
  stop.store(true);
  writer.join();
  EXPECT_EQ(writer_error, "");

  ASSERT_TRUE(raw.status.ok()) << raw.status.error_message();
  uint64_t next_seq = 0;
  uint64_t events = 0;
  for (const v1::ReplayResponse& r : raw.responses) {
    EXPECT_LE(r.next_offset(), r.commit_offset()) << "served past the commit offset";
    // Each seq looked at is sent, or listed as a control record left out.
    const uint64_t sent = r.records().size() / kTestRecordBytes;
    EXPECT_EQ(sent + r.skipped_seqs_size(), r.next_seq() - next_seq);
    for (uint64_t skipped : r.skipped_seqs()) {
      EXPECT_GE(skipped, next_seq);
      EXPECT_LT(skipped, r.next_seq());
    }
    next_seq = r.next_seq();
    events += sent;
  }
  EXPECT_GE(events, 10'000u);
  EXPECT_LE(events, appended.load());
}

// Responses after the first, whichever way they are built (runs of the
// mapping, or records copied one by one when there is a limit), and one
// holding nothing but a control record left out (here: the producer mark
// after a batch that filled the response before it).
TEST_F(IntegrationReplay, EveryResponseAfterTheFirstIsSentWhateverItHolds) {
  std::unique_ptr<Client> client = connect(start_node());
  // One batch of just over kMaxRecordSize bytes (the smallest response
  // limit), which the node follows with a producer mark.
  constexpr uint64_t kEvents = kMaxRecordSize / kTestRecordBytes + 1;
  v1::AppendRequest req;
  req.set_batch_id(1);
  req.set_producer_id("p");
  req.set_producer_seq(1);
  add_test_records(req.mutable_records(), 0, 0, kEvents);
  RawAppendStream append(client->channel());
  ASSERT_TRUE(append.send(req));
  ASSERT_TRUE(append.wait_acks(1));

  v1::ReplayRequest rr;
  rr.set_from_start(true);
  rr.set_max_batch_bytes(static_cast<uint32_t>(kEvents * kTestRecordBytes));
  RawReplay raw = raw_replay(client->channel(), rr);
  ASSERT_TRUE(raw.status.ok()) << raw.status.error_message();
  ASSERT_EQ(raw.responses.size(), 2u);
  EXPECT_EQ(raw.responses[0].records().size(), kEvents * kTestRecordBytes);
  EXPECT_EQ(raw.responses[0].next_seq(), kEvents);
  EXPECT_TRUE(raw.responses[1].records().empty());
  EXPECT_EQ(raw.responses[1].next_seq(), kEvents + 1) << "the mark is looked at";

  // With a limit, over two such batches: responses of copied records.
  req.set_batch_id(2);
  req.set_producer_seq(2);
  req.clear_records();
  add_test_records(req.mutable_records(), 0, kEvents, kEvents);
  ASSERT_TRUE(append.send(req));
  ASSERT_TRUE(append.wait_acks(2));
  EXPECT_TRUE(append.finish().ok());
  rr.set_limit(2 * kEvents);
  raw = raw_replay(client->channel(), rr);
  ASSERT_TRUE(raw.status.ok()) << raw.status.error_message();
  uint64_t events = 0;
  for (const v1::ReplayResponse& r : raw.responses) events += r.records().size() / kTestRecordBytes;
  EXPECT_GE(raw.responses.size(), 2u);
  EXPECT_EQ(events, 2 * kEvents);
}

// ---- Filters and limits, over 3,000 events of types 1, 2, 3 in turn ----

class IntegrationReplayFilters : public NodeTest {
 protected:
  static constexpr uint64_t kEvents = 3000;
  void SetUp() override {
    client_ = connect(start_node());
    append_numbered(*client_, 0, 0, kEvents);
  }
  std::unique_ptr<Client> client_;
};

TEST_F(IntegrationReplayFilters, TypesFilterReturnsOnlyThoseTypesWithTheirSeqs) {
  ReplayOptions o;
  o.event_types = {2};
  ReplayResult r = replay_all(*client_, o);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.events.size(), kEvents / 3);
  for (size_t i = 0; i < r.events.size(); ++i) {
    const uint64_t want = 3 * i + 1;  // test_type(0, i) == 1 + i % 3
    uint64_t stream = 0;
    uint64_t index = 0;
    ASSERT_TRUE(parse_test_payload(as_bytes(r.events[i].payload), &stream, &index));
    EXPECT_EQ(r.events[i].type, 2);
    EXPECT_EQ(r.events[i].seq, want);
    EXPECT_EQ(index, want);
  }

  o.event_types = {1, 3};
  EXPECT_EQ(replay_all(*client_, o).events.size(), 2 * kEvents / 3);
  o.event_types = {200};
  r = replay_all(*client_, o);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.events.empty());
}

TEST_F(IntegrationReplayFilters, LimitStopsAfterNEvents) {
  // The server ends the stream itself at the limit.
  v1::ReplayRequest req;
  req.set_from_seq(100);
  req.set_limit(10);
  RawReplay raw = raw_replay(client_->channel(), req);
  ASSERT_TRUE(raw.status.ok()) << raw.status.error_message();
  size_t bytes = 0;
  for (const v1::ReplayResponse& r : raw.responses) bytes += r.records().size();
  EXPECT_EQ(bytes, 10 * kTestRecordBytes);
  EXPECT_EQ(raw.responses.front().first_seq(), 100u);

  ReplayOptions o;
  o.limit = 10;
  ReplayResult r = replay_all(*client_, o);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(in_order_from(r.events, 0));
  EXPECT_EQ(r.events.size(), 10u);

  o.from_seq = kEvents - 5;  // fewer left than the limit
  EXPECT_EQ(replay_all(*client_, o).events.size(), 5u);

  o.from_seq.reset();
  o.limit = 5;
  o.event_types = {3};
  r = replay_all(*client_, o);
  ASSERT_EQ(r.events.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(r.events[i].seq, 3 * i + 2);
}

// Finding: max_batch_bytes was raised to 64 KiB when asked for less, and a
// response could pass it by a record. Every response now holds at most what
// was asked (with and without filters), and all events still arrive.
TEST_F(IntegrationReplayFilters, MaxBatchBytesBoundsEveryResponse) {
  for (const uint32_t max : {uint32_t{100}, uint32_t{4096}, uint32_t{10'000}}) {
    for (const bool filtered : {false, true}) {
      SCOPED_TRACE(absl::StrCat("max_batch_bytes ", max, filtered ? ", types 1 and 2" : ""));
      v1::ReplayRequest req;
      req.set_from_start(true);
      req.set_max_batch_bytes(max);
      if (filtered) {
        req.add_event_types(1);
        req.add_event_types(2);
      }
      RawReplay raw = raw_replay(client_->channel(), req);
      ASSERT_TRUE(raw.status.ok()) << raw.status.error_message();
      size_t bytes = 0;
      size_t largest = 0;
      for (const v1::ReplayResponse& r : raw.responses) {
        bytes += r.records().size();
        largest = std::max(largest, r.records().size());
      }
      EXPECT_EQ(bytes, (filtered ? 2 * kEvents / 3 : kEvents) * kTestRecordBytes);
      // (A record larger than max_batch_bytes would come alone.)
      EXPECT_LE(largest, std::max<size_t>(max, kTestRecordBytes));
    }
  }
}

TEST_F(IntegrationReplayFilters, FromTimestampStartsAtFirstEventAtOrAfterIt) {
  ReplayOptions o;
  o.from_timestamp = test_timestamp(0, 1234) - 1;  // between events 1233 and 1234
  ReplayResult r = replay_all(*client_, o);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.events.size(), kEvents - 1234);
  EXPECT_TRUE(in_order_from(r.events, 1234));

  o.from_timestamp = test_timestamp(0, 1234);  // exactly event 1234's
  r = replay_all(*client_, o);
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(r.events.front().seq, 1234u);

  o.from_timestamp = 0;
  EXPECT_EQ(replay_all(*client_, o).events.size(), kEvents);
  o.from_timestamp = test_timestamp(0, kEvents);  // after the last event
  r = replay_all(*client_, o);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.events.empty());
}

TEST_F(IntegrationReplayFilters, FromEndSeesOnlyNewEvents) {
  ReplayOptions o;
  o.from_end = true;
  ReplayResult now = replay_all(*client_, o);
  EXPECT_TRUE(now.status.ok()) << now.status;
  EXPECT_TRUE(now.events.empty()) << "without follow, from_end has nothing to send";

  const uint64_t end = status(*client_).next_seq();
  o.follow = true;
  BackgroundReplay follow(*client_, o);
  ASSERT_TRUE(wait_until([&] { return status(*client_).active_replay_streams() == 1; }));
  append_numbered(*client_, 0, kEvents, 500);
  ASSERT_TRUE(wait_until([&] { return last_index_is(follow, kEvents + 499); }));
  const std::vector<ReplayedEvent> events = follow.events();
  EXPECT_GE(events.front().seq, end) << "from_end delivered an event from before the call";
  uint64_t stream = 0;
  uint64_t first_index = 0;
  ASSERT_TRUE(parse_test_payload(as_bytes(events.front().payload), &stream, &first_index));
  EXPECT_GE(first_index, kEvents);
  EXPECT_TRUE(in_order_from(events, first_index));
  EXPECT_TRUE(absl::IsCancelled(follow.stop()));
}

// A replica restarted (its data directory knows the commit offset) serves
// from_end from the end: an operator's `replay --from-end --follow` on it
// prints the events appended after the call, none of the old ones.
class IntegrationReplicaReplay : public NodeTest {
 protected:
  // The commit offset in <dir>/CHECKPOINT, read as docs/format.md gives it
  // (the valid copy of the higher generation); nullopt when none is valid.
  static std::optional<uint64_t> checkpointed_commit(const std::string& dir) {
    std::ifstream f(dir + "/CHECKPOINT", std::ios::binary);
    char slots[128] = {};
    if (!f.read(slots, sizeof slots)) return std::nullopt;
    std::optional<uint64_t> commit;
    uint64_t newest = 0;
    for (const char* b : {slots, slots + 64}) {
      uint64_t generation = 0;
      uint64_t committed = 0;
      uint32_t crc = 0;
      std::memcpy(&generation, b + 8, 8);
      std::memcpy(&committed, b + 40, 8);
      std::memcpy(&crc, b + 60, 4);
      if (std::memcmp(b, "RLCK", 4) != 0 || crc != crc32c::value(b, 60)) continue;
      if (!commit || generation > newest) {
        newest = generation;
        commit = committed;
      }
    }
    return commit;
  }

  // Appends kOld events through a primary and its replica, stops the
  // replica with `sig` once it holds them committed (for SIGKILL, once its
  // checkpoint says so: nothing is written at the kill), restarts it, and
  // checks that a from_end replay on it gets the kNew events appended next,
  // and only those.
  void from_end_after_restart(int sig) {
    constexpr uint64_t kOld = 20000;
    constexpr uint64_t kNew = 10;
    const std::string primary_address = start_node({"--role=primary"}, 0).address();
    std::unique_ptr<Client> primary = connect(node(0));
    const std::vector<std::string> replica_flags = {"--role=replica",
                                                    "--primary=" + primary_address};
    start_node(replica_flags, 1);
    append_numbered(*primary, 0, 0, kOld);
    const uint64_t commit = status(*primary).commit_offset();
    {
      std::unique_ptr<Client> replica = connect(node(1));
      ASSERT_TRUE(wait_until([&] { return status(*replica).commit_offset() == commit; }));
    }
    if (sig == SIGKILL) {
      ASSERT_TRUE(wait_until([&] { return checkpointed_commit(data_dir(1)) == commit; }))
          << "the replica's checkpoint never recorded commit offset " << commit
          << " (it holds " << checkpointed_commit(data_dir(1)).value_or(0) << ")";
      ASSERT_TRUE(node(1).stop(SIGKILL).ok());
    } else {
      ASSERT_EQ(*node(1).stop(sig), 0);
    }

    std::unique_ptr<Client> replica = connect(start_node(replica_flags, 1));
    ReplayOptions o;
    o.from_end = true;
    o.follow = true;
    BackgroundReplay follow(*replica, o);
    ASSERT_TRUE(wait_until([&] { return status(*replica).active_replay_streams() == 1; }));
    append_numbered(*primary, 0, kOld, kNew);
    ASSERT_TRUE(wait_until([&] { return last_index_is(follow, kOld + kNew - 1); }));
    const std::vector<ReplayedEvent> events = follow.events();
    EXPECT_EQ(events.size(), kNew) << "from_end on the restarted replica sent old events";
    uint64_t stream = 0;
    uint64_t first_index = 0;
    ASSERT_TRUE(parse_test_payload(as_bytes(events.front().payload), &stream, &first_index));
    EXPECT_EQ(first_index, kOld);
    EXPECT_TRUE(in_order_from(events, first_index));
    EXPECT_TRUE(absl::IsCancelled(follow.stop()));
  }
};

TEST_F(IntegrationReplicaReplay, FromEndOnARestartedReplicaSendsOnlyNewEvents) {
  from_end_after_restart(SIGTERM);
}

// After a crash: the node writes the commit offset it noted to its
// checkpoint within its 100 ms tick, without waiting for a flush or a close.
TEST_F(IntegrationReplicaReplay, FromEndOnAReplicaRestartedAfterACrashSendsOnlyNewEvents) {
  from_end_after_restart(SIGKILL);
}

}  // namespace
}  // namespace ringlog::testing
