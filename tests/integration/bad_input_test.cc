// Bad input: each malformed batch is refused with its status code and a
// message naming the problem, the batches before it on the same stream are
// acknowledged, and the log is left as it was. Bad replay positions and
// filters are refused the same way.
#include <cstring>

#include "ringlog/control.h"

#include "harness.h"

namespace ringlog::testing {
namespace {

constexpr uint64_t kMaxBatchBytes = uint64_t{1} << 20;

// `n` valid 32-byte records (stream 9, so they stand out; never appended).
std::string valid_records(uint64_t n) {
  std::string r;
  add_test_records(&r, 9, 0, n);
  return r;
}

// How long a refusal may take before the test calls it a hang: a healthy
// node answers a bad batch within milliseconds.
constexpr absl::Duration kRefusalDeadline = absl::Seconds(5);

// Five valid records of stream 1: the batch sent before the bad one.
std::string earlier_batch() {
  std::string r;
  add_test_records(&r, 1, 0, 5);
  return r;
}

struct BadBatch {
  std::string name;
  std::function<std::string()> make;
  grpc::StatusCode code;
  std::vector<std::string> message_parts;
};

void PrintTo(const BadBatch& b, std::ostream* os) { *os << b.name; }

std::vector<BadBatch> bad_batches() {
  return {
      {"CorruptChecksum",
       [] {
         std::string r = valid_records(4);
         r[2 * kTestRecordBytes + 12] ^= 0x5a;  // record 2's checksum
         return r;
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"batch 1 (batch_id 2)", "record 2 at byte 64", "checksum mismatch"}},
      {"CorruptPayload",
       [] {
         std::string r = valid_records(4);
         r[3 * kTestRecordBytes + 20] ^= 0x01;  // a payload byte of record 3
         return r;
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"record 3 at byte 96", "checksum mismatch"}},
      {"TruncatedRecord",
       [] {
         std::string r = valid_records(3);
         r.resize(r.size() - 8);
         return r;
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"record 2 at byte 64", "truncated record (payload_len 16 needs 32 bytes, 24 left)"}},
      {"TruncatedHeader",
       [] { return valid_records(1) + std::string(8, '\xff'); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"record 1 at byte 32", "truncated record"}},
      {"NonzeroPadding",
       [] {
         std::string r = make_record(1, 1, "hello");  // 16 + 5 bytes, 3 of padding
         r[kHeaderSize + 5] = 1;
         return valid_records(1) + r;
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"record 1 at byte 32", "nonzero padding"}},
      {"ZeroHeader",
       [] { return valid_records(1) + std::string(kTestRecordBytes, '\0'); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"record 1 at byte 32", "zero header"}},
      {"PayloadLenPastBatchEnd",
       [] {
         // The header claims 4,000 bytes of payload; the batch ends 16 bytes in.
         std::string big = make_record(1, 1, std::string(4000, 'x'));
         return valid_records(1) + big.substr(0, kHeaderSize + 16);
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"record 1 at byte 32", "payload_len 4000 needs 4016 bytes, 32 left"}},
      {"EmptyBatch",
       [] { return std::string(); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"batch 1 (batch_id 2)", "empty batch"}},
      // Control records (flags bit 7) are the node's own: a producer may not
      // write one, with a valid checksum or not.
      {"ControlFlagSet",
       [] {
         EventHeader h(1, 1, 16);
         h.flags = kFlagControl;
         std::string r(kTestRecordBytes, '\0');
         encode_record(reinterpret_cast<std::byte*>(r.data()), h, as_bytes(std::string(16, 'c')));
         return valid_records(1) + r;
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"batch 1 (batch_id 2)", "record 1 at byte 32", "flags bit 7"}},
      // Another producer's batch mark, forged with a high seq: stored, it
      // would make that producer's next batches look like duplicates.
      {"ForgedProducerMark",
       [] {
         std::string r = valid_records(2);
         append_producer_batch_mark(&r, ProducerBatchMark{"victim", 1'000'000, 2}, 1);
         return r;
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"record 2 at byte 64", "control records are written only by the node"}},
      // Past --max_batch_bytes but within gRPC's limit (max_batch_bytes +
      // 64 KiB): the validator refuses it.
      {"JustOverMaxBatchBytes",
       [] { return valid_records((kMaxBatchBytes + 8192) / kTestRecordBytes); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"batch of 1056768 bytes is over the limit of 1048576 bytes (--max_batch_bytes)"}},
      // Far past it: refused unparsed, with the same code and words
      // (RESOURCE_EXHAUSTED means a full disk, never a large request).
      {"FarOverMaxBatchBytes",
       [] { return valid_records(4 * kMaxBatchBytes / kTestRecordBytes); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"batch 1 refused", "over the limit of 1048576 bytes (--max_batch_bytes)"}},
      {"FarFarOverMaxBatchBytes",
       [] { return valid_records(40 * kMaxBatchBytes / kTestRecordBytes); },
       grpc::StatusCode::INVALID_ARGUMENT,
       {"batch 1 refused", "over the limit of 1048576 bytes (--max_batch_bytes)"}},
  };
}

class IntegrationBadBatch : public NodeTest, public ::testing::WithParamInterface<BadBatch> {
 protected:
  void SetUp() override {
    client_ = connect(start_node({"--max_batch_bytes=" + std::to_string(kMaxBatchBytes)}));
    first_ = append_numbered(*client_, 0, 0, 10);
    start_ = status(*client_).next_seq();  // where the earlier batch goes
  }
  // The log holds the 10 events and the earlier batch (no producer id: no
  // control record after it), and takes a valid append right after.
  void expect_log_intact() {
    const v1::NodeStatus st = status(*client_);
    EXPECT_EQ(st.next_seq(), start_ + 5);
    EXPECT_EQ(st.events_appended(), start_ + 5);
    EXPECT_TRUE(st.storage_error().empty()) << st.storage_error();
    const Ack next = append_numbered(*client_, 0, 10, 1);
    EXPECT_EQ(next.first_seq, start_ + 5);
    uint64_t replayed = 0;
    EXPECT_TRUE(
        log_matches_acks(*client_,
                         {acked_batch(0, 0, first_), AckedBatch{1, 0, 5, start_, start_ + 4},
                          acked_batch(0, 10, next)},
                         &replayed));
    EXPECT_EQ(replayed, 16u);
  }
  std::unique_ptr<Client> client_;
  Ack first_;
  uint64_t start_ = 0;
};

// The earlier batch is acknowledged before the bad one is sent, so nothing
// else is in flight on the stream when the bad batch arrives.
TEST_P(IntegrationBadBatch, IsRefusedWithItsReasonAndLeavesTheLogIntact) {
  const BadBatch& bad = GetParam();
  RawAppendStream stream(client_->channel(), kRefusalDeadline);
  ASSERT_TRUE(stream.send(1, earlier_batch()));
  ASSERT_TRUE(stream.wait_acks(1));
  (void)stream.send(2, bad.make());  // may fail: the server may end the call first
  const grpc::Status s = stream.finish();

  EXPECT_NE(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << "the node neither refused the bad batch nor ended the call within " << kRefusalDeadline;
  EXPECT_EQ(s.error_code(), bad.code) << s.error_message();
  for (const std::string& part : bad.message_parts) {
    EXPECT_NE(s.error_message().find(part), std::string::npos)
        << "\"" << s.error_message() << "\" does not say \"" << part << "\"";
  }
  const std::vector<v1::AppendResponse> acks = stream.acks();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].batch_id(), 1u);
  EXPECT_EQ(acks[0].first_seq(), start_);
  EXPECT_EQ(acks[0].last_seq(), start_ + 4);
  expect_log_intact();
}

INSTANTIATE_TEST_SUITE_P(Batches, IntegrationBadBatch, ::testing::ValuesIn(bad_batches()),
                         [](const ::testing::TestParamInfo<BadBatch>& p) { return p.param.name; });

class IntegrationBadBatchPipelined : public NodeTest {};

// Twenty valid batches, a bad one and a valid one go out back to back: the
// twenty are acknowledged in order, the bad one ends the stream naming it,
// and the one after it is not appended.
TEST_F(IntegrationBadBatchPipelined, BatchesBeforeTheBadOneAreAcknowledged) {
  std::unique_ptr<Client> client = connect(start_node());
  RawAppendStream stream(client->channel(), kRefusalDeadline);
  for (uint64_t b = 0; b < 20; ++b) {
    std::string r;
    add_test_records(&r, 0, b * 5, 5);
    ASSERT_TRUE(stream.send(b + 1, r));
  }
  std::string bad = valid_records(3);
  bad[kTestRecordBytes + 12] ^= 1;
  (void)stream.send(21, bad);
  std::string after;
  add_test_records(&after, 0, 100, 5);
  (void)stream.send(22, after);
  const grpc::Status s = stream.finish();

  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find(
                "batch 20 (batch_id 21) refused: record 1 at byte 32: checksum mismatch"),
            std::string::npos)
      << s.error_message();
  const std::vector<v1::AppendResponse> acks = stream.acks();
  ASSERT_EQ(acks.size(), 20u);
  std::vector<AckedBatch> acked;
  for (uint64_t b = 0; b < 20; ++b) {
    EXPECT_EQ(acks[b].batch_id(), b + 1);
    acked.push_back(AckedBatch{0, b * 5, 5, acks[b].first_seq(), acks[b].last_seq()});
  }
  EXPECT_TRUE(acks_tile_seqs(acked, 100, /*control_per_batch=*/0));
  EXPECT_EQ(status(*client).next_seq(), 100u);
  uint64_t replayed = 0;
  EXPECT_TRUE(log_matches_acks(*client, acked, &replayed));
  EXPECT_EQ(replayed, 100u);
}

// Batches refused for what the request says rather than for its records,
// as the first batch of a stream (nothing else in flight).
class IntegrationRefusedRequest : public NodeTest {
 protected:
  void SetUp() override { client_ = connect(start_node()); }
  grpc::Status send_alone(const v1::AppendRequest& req) {
    RawAppendStream stream(client_->channel(), kRefusalDeadline);
    (void)stream.send(req);
    const grpc::Status s = stream.finish();
    EXPECT_NE(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << "the node neither refused the batch nor ended the call within " << kRefusalDeadline;
    EXPECT_TRUE(stream.acks().empty());
    EXPECT_EQ(status(*client_).next_seq(), 0u) << "a refused batch was appended";
    return s;
  }
  std::unique_ptr<Client> client_;
};

TEST_F(IntegrationRefusedRequest, WrongExpectedEpochIsFailedPrecondition) {
  v1::AppendRequest req;
  req.set_batch_id(1);
  req.set_records(valid_records(3));
  req.set_expected_epoch(status(*client_).epoch() + 5);
  const grpc::Status s = send_alone(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_NE(s.error_message().find("expects epoch"), std::string::npos) << s.error_message();
}

// Fencing works from the first epoch: an expected_epoch of 0, present, is
// checked like any other (a primary promoted once is in epoch 1).
TEST_F(IntegrationRefusedRequest, ExpectedEpochZeroIsChecked) {
  v1::AppendRequest req;
  req.set_batch_id(1);
  req.set_records(valid_records(3));
  req.set_expected_epoch(0);
  ASSERT_EQ(status(*client_).epoch(), 0u) << "a fresh node starts in epoch 0";
  {
    RawAppendStream stream(client_->channel(), kRefusalDeadline);
    ASSERT_TRUE(stream.send(req));
    ASSERT_TRUE(stream.wait_acks(1)) << "epoch 0 expected, epoch 0 held";
    ASSERT_TRUE(stream.finish().ok());
  }
  const uint64_t appended = status(*client_).next_seq();
  ASSERT_EQ(appended, 3u);
  // A primary promoted again (forced) starts epoch 1.
  grpc::ClientContext ctx;
  v1::PromoteRequest promote;
  promote.set_force(true);
  v1::PromoteResponse promoted;
  const grpc::Status ps = v1::Admin::NewStub(client_->channel())->Promote(&ctx, promote, &promoted);
  ASSERT_TRUE(ps.ok()) << ps.error_message();
  ASSERT_EQ(promoted.epoch(), 1u);
  RawAppendStream stream(client_->channel(), kRefusalDeadline);
  (void)stream.send(req);
  const grpc::Status s = stream.finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_NE(s.error_message().find("expects epoch 0 but this node is in epoch 1"),
            std::string::npos)
      << s.error_message();
  EXPECT_TRUE(stream.acks().empty());
  EXPECT_EQ(status(*client_).log_end_offset(), promoted.start_offset()) << "nothing appended";
}

// A frame that is not an AppendRequest ends the stream with INVALID_ARGUMENT
// (as Replay answers one), and nothing is appended.
TEST_F(IntegrationRefusedRequest, MalformedFrameIsInvalidArgument) {
  // Field 1 (records) declared 100 bytes long, with 3 bytes after it.
  const GenericResult r =
      generic_call(client_->channel(), "/ringlog.v1.EventLog/Append", std::string("\x0a\x64" "abc", 5));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << r.status.error_message();
  EXPECT_NE(r.status.error_message().find("is not an AppendRequest"), std::string::npos)
      << r.status.error_message();
  EXPECT_TRUE(r.responses.empty());
  EXPECT_EQ(status(*client_).next_seq(), 0u);
}

// The admin calls too: a request that does not parse is INVALID_ARGUMENT
// (a typed unary method would answer UNIMPLEMENTED), and changes nothing.
TEST_F(IntegrationRefusedRequest, MalformedAdminRequestIsInvalidArgument) {
  for (const char* method : {"GetStatus", "Promote", "Follow"}) {
    const GenericResult r = generic_call(client_->channel(), std::string("/ringlog.v1.Admin/") + method,
                                         std::string("\x0a\x64" "abc", 5));
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method << ": " << r.status.error_message();
    EXPECT_NE(r.status.error_message().find("malformed"), std::string::npos)
        << r.status.error_message();
  }
  const v1::NodeStatus st = status(*client_);
  EXPECT_EQ(st.role(), v1::ROLE_PRIMARY);
  EXPECT_EQ(st.epoch(), 0u);
}

TEST_F(IntegrationRefusedRequest, OverlongProducerIdIsInvalidArgument) {
  v1::AppendRequest req;
  req.set_batch_id(1);
  req.set_records(valid_records(3));
  req.set_producer_id(std::string(300, 'p'));
  req.set_producer_seq(1);
  const grpc::Status s = send_alone(req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_NE(s.error_message().find("producer_id of 300 bytes"), std::string::npos)
      << s.error_message();
}

// ---- Replay positions and filters ----

class IntegrationBadReplay : public NodeTest {
 protected:
  void SetUp() override {
    client_ = connect(start_node());
    append_numbered(*client_, 0, 0, 10);
    const v1::NodeStatus st = status(*client_);
    end_seq_ = st.next_seq();
    end_offset_ = st.log_end_offset();
  }
  // Replays with `req` and checks the code, the message, that nothing was
  // sent, and that the log is as it was.
  void expect_refused(const v1::ReplayRequest& req, grpc::StatusCode code,
                      const std::string& part) {
    const RawReplay r = raw_replay(client_->channel(), req);
    EXPECT_EQ(r.status.error_code(), code) << r.status.error_message();
    EXPECT_NE(r.status.error_message().find(part), std::string::npos)
        << "\"" << r.status.error_message() << "\" does not say \"" << part << "\"";
    EXPECT_TRUE(r.responses.empty());
    EXPECT_EQ(status(*client_).next_seq(), end_seq_);
  }
  std::unique_ptr<Client> client_;
  uint64_t end_seq_ = 0;
  uint64_t end_offset_ = 0;
};

TEST_F(IntegrationBadReplay, FromSeqPastTheEndIsOutOfRangeNamingTheValidRange) {
  v1::ReplayRequest req;
  req.set_from_seq(end_seq_ + 1);
  expect_refused(req, grpc::StatusCode::OUT_OF_RANGE,
                 "valid seqs 0 to " + std::to_string(end_seq_ - 1));
  req.set_from_seq(999'999);
  expect_refused(req, grpc::StatusCode::OUT_OF_RANGE, "seq 999999 is past the end");
  // The end itself is a valid place to start: nothing to send, a clean end.
  req.set_from_seq(end_seq_);
  const RawReplay at_end = raw_replay(client_->channel(), req);
  EXPECT_TRUE(at_end.status.ok()) << at_end.status.error_message();
}

TEST_F(IntegrationBadReplay, FromOffsetInsideARecordIsInvalidArgument) {
  v1::ReplayRequest req;
  req.set_from_offset(8);
  expect_refused(req, grpc::StatusCode::INVALID_ARGUMENT, "offset 8 is not the start of a record");
  req.set_from_offset(end_offset_ + kTestRecordBytes);
  expect_refused(req, grpc::StatusCode::OUT_OF_RANGE,
                 "offsets 0 to " + std::to_string(end_offset_));
  req.set_from_offset(3 * kTestRecordBytes);
  const RawReplay ok = raw_replay(client_->channel(), req);
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  ASSERT_FALSE(ok.responses.empty());
  EXPECT_EQ(ok.responses.front().first_seq(), 3u);
}

TEST_F(IntegrationBadReplay, EventTypeOver255IsInvalidArgument) {
  v1::ReplayRequest req;
  req.add_event_types(1);
  req.add_event_types(256);
  expect_refused(req, grpc::StatusCode::INVALID_ARGUMENT, "event type 256 is out of range 0-255");
}

// ---- Replication.Follow, served raw ----

class IntegrationBadFollow : public NodeTest {
 protected:
  void SetUp() override {
    client_ = connect(start_node());
    append_numbered(*client_, 0, 0, 10);
    end_seq_ = status(*client_).next_seq();
  }
  // Follows with `request` (serialized) as the first message and checks the
  // code and message, that no chunk was sent, and that the log is intact.
  void expect_refused(const std::string& request, grpc::StatusCode code, const std::string& part) {
    const GenericResult r =
        generic_call(client_->channel(), "/ringlog.v1.Replication/Follow", request);
    EXPECT_EQ(r.status.error_code(), code) << r.status.error_message();
    EXPECT_NE(r.status.error_message().find(part), std::string::npos)
        << "\"" << r.status.error_message() << "\" does not say \"" << part << "\"";
    EXPECT_TRUE(r.responses.empty());
    EXPECT_EQ(status(*client_).next_seq(), end_seq_);
    EXPECT_TRUE(status(*client_).replicas().empty());
  }
  std::unique_ptr<Client> client_;
  uint64_t end_seq_ = 0;
};

TEST_F(IntegrationBadFollow, BytesThatAreNoFollowRequestAreInvalidArgument) {
  expect_refused("\xff\xff\xff\xff", grpc::StatusCode::INVALID_ARGUMENT,
                 "malformed FollowRequest");
}

TEST_F(IntegrationBadFollow, AnAckBeforeTheHelloIsInvalidArgument) {
  expect_refused(bytes_field(2, ""), grpc::StatusCode::INVALID_ARGUMENT,
                 "the first message must be a hello");
}

// A follower that lies: it acks far more than the primary ever sent it. On a
// primary that needs one replica's ack, that ack must not commit anything.
class IntegrationHostileFollower : public NodeTest {};

TEST_F(IntegrationHostileFollower, AnAckBeyondWhatWasSentEndsTheStreamAndCountsForNothing) {
  std::unique_ptr<Client> client = connect(start_node({"--min_replica_acks=1"}));
  // A batch the primary stores but cannot commit: no replica has acked it.
  RawAppendStream append(client->channel(), absl::Seconds(60));
  std::string records;
  add_test_records(&records, 1, 0, 5);
  ASSERT_TRUE(append.send(1, records));
  ASSERT_TRUE(wait_until([&] { return status(*client).durable_offset() == records.size(); },
                         absl::Seconds(30)));

  std::unique_ptr<v1::Replication::Stub> stub = v1::Replication::NewStub(client->channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::unique_ptr<grpc::ClientReaderWriter<v1::FollowRequest, v1::FollowResponse>> follow =
      stub->Follow(&ctx);
  v1::FollowRequest hello;
  hello.mutable_hello()->set_node_id("liar");
  ASSERT_TRUE(follow->Write(hello));
  v1::FollowResponse resp;
  ASSERT_TRUE(follow->Read(&resp));
  ASSERT_TRUE(resp.has_directive());
  v1::FollowRequest ack;
  ack.mutable_ack()->set_durable_offset(uint64_t{1} << 50);
  ack.mutable_ack()->set_applied_offset(uint64_t{1} << 50);
  ack.mutable_ack()->set_durable_seq(uint64_t{1} << 40);
  (void)follow->Write(ack);  // the primary may end the call at once
  while (follow->Read(&resp)) {
  }
  const grpc::Status end = follow->Finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << end.error_message();
  EXPECT_NE(end.error_message().find("beyond what this stream sent"), std::string::npos)
      << end.error_message();

  // Nothing was committed, and the batch is still waiting for a real ack.
  const v1::NodeStatus st = status(*client);
  EXPECT_EQ(st.commit_offset(), 0u);
  EXPECT_EQ(st.log_end_offset(), records.size());
  EXPECT_TRUE(append.acks().empty());
  for (const v1::ReplicaInfo& r : st.replicas()) {
    EXPECT_LE(r.acked_offset(), records.size()) << r.node_id();
  }
}

}  // namespace
}  // namespace ringlog::testing
