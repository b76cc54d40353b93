// Idempotent appends (AppendRequest.producer_id and producer_seq) with
// Kafka's semantics, against a real ringlogd: acks in request order, a
// duplicate answered with its original's range (also after a restart),
// seq 0 not idempotent, gaps and resends older than the window refused with
// nothing stored, and the bounds on the producers remembered.
#include <signal.h>

#include <map>

#include "gmock/gmock.h"
#include "harness.h"
#include "ringlog/control.h"

namespace ringlog::testing {
namespace {

using ::testing::HasSubstr;

class IntegrationIdempotence : public NodeTest {
 protected:
  // Events [10 (k - 1), 10 k) of stream 0: the batch sent with seq k.
  static std::string batch(uint64_t k) {
    std::string records;
    add_test_records(&records, 0, (k - 1) * kEvents, kEvents);
    return records;
  }
  // Sends seqs [from, to] of `producer` on a stream of their own and
  // returns their acks (all of them, or the test fails).
  std::vector<v1::AppendResponse> append_seqs(Client& client, const std::string& producer,
                                              uint64_t from, uint64_t to) {
    RawAppendStream s(client.channel());
    for (uint64_t k = from; k <= to; ++k) EXPECT_TRUE(s.send(k, batch(k), producer, k));
    const grpc::Status end = s.finish();
    EXPECT_TRUE(end.ok()) << end.error_message();
    std::vector<v1::AppendResponse> acks = s.acks();
    EXPECT_EQ(acks.size(), to + 1 - from);
    return acks;
  }
  // Sends one batch on a stream of its own; the status the stream ended
  // with, and its ack if it got one.
  struct One {
    grpc::Status end;
    std::optional<v1::AppendResponse> ack;
  };
  One send_one(Client& client, const std::string& producer, uint64_t seq, uint64_t k) {
    RawAppendStream s(client.channel());
    EXPECT_TRUE(s.send(1, batch(k), producer, seq));
    One r;
    r.end = s.finish();
    const std::vector<v1::AppendResponse> acks = s.acks();
    if (!acks.empty()) r.ack = acks.front();
    return r;
  }
  // The metrics port the node logged.
  int metrics_port() {
    return testkit::logged_metrics_port([&] { return output(); }, absl::Seconds(30));
  }
  std::map<std::string, double> metrics(int port) {
    return testkit::parse_metrics(testkit::http_get(port, "/metrics"));
  }

  static constexpr uint64_t kEvents = 10;
};

::testing::AssertionResult same_range(const v1::AppendResponse& dup,
                                      const v1::AppendResponse& original) {
  if (dup.first_seq() == original.first_seq() && dup.last_seq() == original.last_seq() &&
      dup.first_offset() == original.first_offset() &&
      dup.end_offset() == original.end_offset()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "batch_id " << dup.batch_id() << " acked seqs " << dup.first_seq() << ".."
         << dup.last_seq() << " offsets " << dup.first_offset() << ".." << dup.end_offset()
         << "; its original (batch_id " << original.batch_id() << ") seqs "
         << original.first_seq() << ".." << original.last_seq() << " offsets "
         << original.first_offset() << ".." << original.end_offset();
}

// Scenario: 200 batches of producer "p" (seqs 1..200) pipelined on one
// stream, every 10th sent again right after itself (same seq, its own
// batch_id), then, once all are acknowledged, seqs 185, 193 and 199 again.
// Every ack comes in request order; the 23 resends are duplicates, each
// with its own original's seqs and offsets; the log holds each event once.
TEST_F(IntegrationIdempotence, AcksComeInRequestOrderAndEachDuplicateCarriesItsOriginalsRange) {
  constexpr uint64_t kBatches = 200;
  std::unique_ptr<Client> client = connect(start_node());
  RawAppendStream s(client->channel());
  std::vector<uint64_t> seq_of;  // producer seq of batch_id i + 1
  for (uint64_t k = 1; k <= kBatches; ++k) {
    const std::string records = batch(k);
    ASSERT_TRUE(s.send(seq_of.size() + 1, records, "p", k));
    seq_of.push_back(k);
    if (k % 10 == 0) {
      ASSERT_TRUE(s.send(seq_of.size() + 1, records, "p", k));
      seq_of.push_back(k);
    }
  }
  // Once all of them are committed, three of the last 16 (the window) sent
  // again on the same stream: each gets its own original's range, though
  // it is not the producer's latest batch.
  ASSERT_TRUE(s.wait_acks(seq_of.size()));
  for (uint64_t k : {kBatches - 15, kBatches - 7, kBatches - 1}) {
    ASSERT_TRUE(s.send(seq_of.size() + 1, batch(k), "p", k));
    seq_of.push_back(k);
  }
  const grpc::Status end = s.finish();
  ASSERT_TRUE(end.ok()) << end.error_message();
  const std::vector<v1::AppendResponse> acks = s.acks();
  ASSERT_EQ(acks.size(), seq_of.size());

  size_t out_of_place = 0;
  for (size_t i = 0; i < acks.size(); ++i) out_of_place += acks[i].batch_id() != i + 1;
  EXPECT_EQ(out_of_place, 0u) << "acks out of request order";

  std::map<uint64_t, v1::AppendResponse> by_id;
  for (const v1::AppendResponse& a : acks) by_id[a.batch_id()] = a;
  ASSERT_EQ(by_id.size(), seq_of.size());
  std::map<uint64_t, v1::AppendResponse> original;  // by producer seq
  std::vector<AckedBatch> acked;
  size_t duplicates = 0;
  for (uint64_t id = 1; id <= seq_of.size(); ++id) {
    const v1::AppendResponse& a = by_id[id];
    const uint64_t k = seq_of[id - 1];
    EXPECT_GE(a.last_seq(), a.first_seq()) << "batch_id " << id << ": an empty range";
    EXPECT_EQ(a.last_seq() - a.first_seq() + 1, kEvents) << "batch_id " << id;
    if (a.duplicate()) {
      ++duplicates;
      ASSERT_TRUE(original.count(k)) << "batch_id " << id << " is a duplicate of nothing";
      EXPECT_TRUE(same_range(a, original[k]));
    } else {
      EXPECT_FALSE(original.count(k)) << "seq " << k << " appended twice";
      original[k] = a;
      acked.push_back(AckedBatch{0, (k - 1) * kEvents, kEvents, a.first_seq(), a.last_seq()});
    }
  }
  EXPECT_EQ(duplicates, kBatches / 10 + 3);
  EXPECT_TRUE(acks_tile_seqs(acked, kBatches * kEvents, /*control_per_batch=*/1));
  uint64_t replayed = 0;
  EXPECT_TRUE(log_matches_acks(*client, acked, &replayed));
  EXPECT_EQ(replayed, kBatches * kEvents);
}

// Scenario: the same batch sent twice with a producer_id and producer_seq 0.
// Seq 0 is not idempotent: both are appended, neither is a duplicate, and
// neither has a control record after it.
TEST_F(IntegrationIdempotence, SeqZeroIsNotIdempotent) {
  std::unique_ptr<Client> client = connect(start_node());
  RawAppendStream s(client->channel());
  ASSERT_TRUE(s.send(1, batch(1), "p", 0));
  ASSERT_TRUE(s.send(2, batch(1), "p", 0));
  const grpc::Status end = s.finish();
  ASSERT_TRUE(end.ok()) << end.error_message();
  const std::vector<v1::AppendResponse> acks = s.acks();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_FALSE(acks[0].duplicate());
  EXPECT_FALSE(acks[1].duplicate()) << "seq 0 was taken as a duplicate";
  EXPECT_EQ(acks[0].first_seq(), 0u);
  EXPECT_EQ(acks[1].first_seq(), kEvents) << "no control record between them";
  EXPECT_EQ(status(*client).next_seq(), 2 * kEvents);
}

// Scenario: producer "p" stores seqs 1..5, then sends seq 10 (a gap): the
// stream ends with FAILED_PRECONDITION naming the seq expected (6) and the
// log does not move. Seq 7, never stored, is refused the same way (it was
// answered as a duplicate with an empty range). Seq 6 is then appended.
TEST_F(IntegrationIdempotence, AGapIsRefusedNamingTheExpectedSeqAndNothingIsStored) {
  std::unique_ptr<Client> client = connect(start_node());
  const std::vector<v1::AppendResponse> first = append_seqs(*client, "p", 1, 5);
  ASSERT_EQ(first.size(), 5u);
  const v1::NodeStatus before = status(*client);

  One gap = send_one(*client, "p", 10, 6);
  EXPECT_EQ(gap.end.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << gap.end.error_message();
  EXPECT_THAT(gap.end.error_message(), HasSubstr("expected 6"));
  EXPECT_FALSE(gap.ack.has_value()) << "a batch after a gap was acknowledged";
  EXPECT_EQ(status(*client).log_end_offset(), before.log_end_offset()) << "the gap was stored";

  One never = send_one(*client, "p", 7, 6);
  EXPECT_EQ(never.end.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << never.end.error_message();
  EXPECT_THAT(never.end.error_message(), HasSubstr("expected 6"));
  EXPECT_FALSE(never.ack.has_value()) << "seq 7, never stored, was acknowledged";
  EXPECT_EQ(status(*client).log_end_offset(), before.log_end_offset());

  One next = send_one(*client, "p", 6, 6);
  ASSERT_TRUE(next.end.ok()) << next.end.error_message();
  ASSERT_TRUE(next.ack.has_value());
  EXPECT_FALSE(next.ack->duplicate());
  EXPECT_EQ(next.ack->first_offset(), before.log_end_offset());
  EXPECT_EQ(next.ack->first_seq(), before.next_seq());
}

// Scenario: producer "p" stores seqs 1..3; the node is killed (SIGKILL) and
// restarted on its log. Seqs 2 and 3 sent again are duplicates with their
// originals' seqs and offsets (first_offset was 0), rebuilt from the log's
// producer marks; seq 4 is appended right after them.
TEST_F(IntegrationIdempotence, ADuplicateAfterARestartGetsItsOriginalsRange) {
  std::unique_ptr<Client> client = connect(start_node());
  const std::vector<v1::AppendResponse> original = append_seqs(*client, "p", 1, 3);
  ASSERT_EQ(original.size(), 3u);
  ASSERT_GT(original[1].first_offset(), 0u);
  client.reset();
  ASSERT_EQ(*node().stop(SIGKILL), 128 + SIGKILL);
  client = connect(start_node());

  const std::vector<v1::AppendResponse> again = append_seqs(*client, "p", 2, 4);
  ASSERT_EQ(again.size(), 3u);
  EXPECT_TRUE(again[0].duplicate());
  EXPECT_TRUE(same_range(again[0], original[1]));
  EXPECT_TRUE(again[1].duplicate());
  EXPECT_TRUE(same_range(again[1], original[2]));
  EXPECT_FALSE(again[2].duplicate());
  EXPECT_EQ(again[2].first_offset(), original[2].end_offset());
  EXPECT_EQ(again[2].first_seq(), original[2].last_seq() + 2) << "after seq 3's control record";
  uint64_t replayed = 0;
  std::vector<AckedBatch> acked;
  for (const v1::AppendResponse& a : original) {
    acked.push_back(AckedBatch{0, acked.size() * kEvents, kEvents, a.first_seq(), a.last_seq()});
  }
  acked.push_back(AckedBatch{0, 3 * kEvents, kEvents, again[2].first_seq(), again[2].last_seq()});
  EXPECT_TRUE(log_matches_acks(*client, acked, &replayed));
  EXPECT_EQ(replayed, 4 * kEvents);
}

// Scenario: producer "p" stores kProducerWindow + 4 batches. Seq 1, older
// than the window, sent again is refused with ALREADY_EXISTS, nothing
// stored (it was acknowledged as a duplicate with an empty range, last_seq
// = first_seq - 1); the oldest seq of the window is answered with its own
// range.
TEST_F(IntegrationIdempotence, AResendOlderThanTheWindowIsRefusedNotGivenAnEmptyRange) {
  const uint64_t last = kProducerWindow + 4;
  std::unique_ptr<Client> client = connect(start_node());
  const std::vector<v1::AppendResponse> original = append_seqs(*client, "p", 1, last);
  ASSERT_EQ(original.size(), last);
  const uint64_t end = status(*client).log_end_offset();

  One old = send_one(*client, "p", 1, 1);
  EXPECT_EQ(old.end.error_code(), grpc::StatusCode::ALREADY_EXISTS) << old.end.error_message();
  EXPECT_FALSE(old.ack.has_value()) << "acked seqs " << old.ack->first_seq() << ".."
                                    << old.ack->last_seq();
  EXPECT_EQ(status(*client).log_end_offset(), end);

  const uint64_t oldest = last - kProducerWindow + 1;
  One kept = send_one(*client, "p", oldest, oldest);
  ASSERT_TRUE(kept.end.ok()) << kept.end.error_message();
  ASSERT_TRUE(kept.ack.has_value());
  EXPECT_TRUE(kept.ack->duplicate());
  EXPECT_TRUE(same_range(*kept.ack, original[oldest - 1]));
  EXPECT_EQ(status(*client).log_end_offset(), end);
}

// What end_offset means for an idempotent batch: past its control record
// (the producer mark, seq last_seq + 1), where the next batch starts.
TEST_F(IntegrationIdempotence, AnIdempotentBatchsEndOffsetIsPastItsControlRecord) {
  std::unique_ptr<Client> client = connect(start_node());
  const std::vector<v1::AppendResponse> acks = append_seqs(*client, "p", 1, 2);
  ASSERT_EQ(acks.size(), 2u);
  std::string mark;
  append_producer_batch_mark(&mark, ProducerBatchMark{"p", 1, kEvents, kEvents * kTestRecordBytes}, 0);
  EXPECT_EQ(acks[0].end_offset() - acks[0].first_offset(), kEvents * kTestRecordBytes + mark.size());
  EXPECT_EQ(acks[1].first_offset(), acks[0].end_offset());
  EXPECT_EQ(acks[1].first_seq(), acks[0].last_seq() + 2);
  EXPECT_EQ(status(*client).log_end_offset(), acks[1].end_offset());
}

// --max_producers: with 2, a third producer makes the node forget the least
// recently seen one; the metrics count them. A forgotten producer may start
// again (its resend is appended: the bound is part of the guarantee).
TEST_F(IntegrationIdempotence, TheProducersRememberedAreBounded) {
  std::unique_ptr<Client> client =
      connect(start_node({"--max_producers=2", "--metrics_listen=127.0.0.1:0"}));
  const int port = metrics_port();
  ASSERT_GT(port, 0) << output();
  for (const char* p : {"a", "b", "c"}) ASSERT_EQ(append_seqs(*client, p, 1, 1).size(), 1u);
  std::map<std::string, double> m = metrics(port);
  EXPECT_EQ(m["ringlog_producers"], 2);
  EXPECT_EQ(m["ringlog_producers_evicted_total"], 1);

  One c = send_one(*client, "c", 1, 1);
  ASSERT_TRUE(c.ack.has_value()) << c.end.error_message();
  EXPECT_TRUE(c.ack->duplicate());
  One a = send_one(*client, "a", 1, 1);
  ASSERT_TRUE(a.ack.has_value()) << a.end.error_message();
  EXPECT_FALSE(a.ack->duplicate()) << "\"a\" was remembered beyond --max_producers=2";
  m = metrics(port);
  EXPECT_EQ(m["ringlog_producer_duplicates_total"], 1);
  EXPECT_EQ(m["ringlog_producers"], 2);
}

// --producer_expiry: a producer idle that long is forgotten.
TEST_F(IntegrationIdempotence, AnIdleProducerExpires) {
  std::unique_ptr<Client> client =
      connect(start_node({"--producer_expiry=1s", "--metrics_listen=127.0.0.1:0"}));
  const int port = metrics_port();
  ASSERT_GT(port, 0) << output();
  ASSERT_EQ(append_seqs(*client, "idle", 1, 1).size(), 1u);
  EXPECT_TRUE(wait_until([&] { return metrics(port)["ringlog_producers_expired_total"] == 1; },
                         absl::Seconds(20)));
  EXPECT_EQ(metrics(port)["ringlog_producers"], 0);
  One again = send_one(*client, "idle", 1, 1);
  ASSERT_TRUE(again.ack.has_value()) << again.end.error_message();
  EXPECT_FALSE(again.ack->duplicate());
}

// The refusals are counted.
TEST_F(IntegrationIdempotence, RefusalsAreCounted) {
  std::unique_ptr<Client> client = connect(start_node({"--metrics_listen=127.0.0.1:0"}));
  const int port = metrics_port();
  ASSERT_GT(port, 0) << output();
  ASSERT_EQ(append_seqs(*client, "p", 1, kProducerWindow + 2).size(), kProducerWindow + 2);
  EXPECT_EQ(send_one(*client, "p", kProducerWindow + 9, 1).end.error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(send_one(*client, "p", 1, 1).end.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  std::map<std::string, double> m = metrics(port);
  EXPECT_EQ(m["ringlog_producer_out_of_sequence_total"], 1);
  EXPECT_EQ(m["ringlog_producer_too_old_total"], 1);
  EXPECT_EQ(m["ringlog_producers"], 1);
}

}  // namespace
}  // namespace ringlog::testing
