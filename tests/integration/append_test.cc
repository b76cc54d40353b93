// Appending over gRPC: many events over concurrent streams, acknowledged with
// seqs that match what a replay finds.
#include <thread>

#include "harness.h"

namespace ringlog::testing {
namespace {

class IntegrationAppend : public NodeTest {};

// Two Appenders in two threads, 500,000 events each. Each thread drains
// after every batch, so every batch's ack is seen; the streams still
// interleave on the server. The acks' seq ranges must not overlap and must
// tile the log, and a replay must find each event at its acked seq.
TEST_F(IntegrationAppend, MillionEventsOverTwoStreamsReplayInOrder) {
  constexpr uint64_t kPerStream = 500'000;
  constexpr uint64_t kBatch = 8192;
  ClientOptions o;
  o.batch_bytes = kBatch * kTestRecordBytes;  // one batch per drain
  std::unique_ptr<Client> client = connect(start_node(), o);

  std::vector<AckedBatch> acked[2];
  absl::Status errors[2];
  auto run = [&](uint64_t stream) {
    absl::StatusOr<std::unique_ptr<Appender>> a = client->appender();
    if (!a.ok()) {
      errors[stream] = a.status();
      return;
    }
    for (uint64_t first = 0; first < kPerStream; first += kBatch) {
      const uint64_t count = std::min(kBatch, kPerStream - first);
      for (uint64_t i = first; i < first + count; ++i) {
        const std::string p = test_payload(stream, i);
        if (absl::Status s =
                (*a)->append(test_type(stream, i), test_timestamp(stream, i), as_bytes(p));
            !s.ok()) {
          errors[stream] = s;
          return;
        }
      }
      absl::StatusOr<Ack> ack = (*a)->drain();
      if (!ack.ok()) {
        errors[stream] = ack.status();
        return;
      }
      acked[stream].push_back(AckedBatch{stream, first, count, ack->first_seq, ack->last_seq});
      if (ack->commit_offset < ack->end_offset) {
        errors[stream] = absl::InternalError("an ack's commit offset is before its batch's end");
        return;
      }
    }
    errors[stream] = (*a)->close();
  };
  std::thread t0(run, 0);
  std::thread t1(run, 1);
  t0.join();
  t1.join();
  ASSERT_TRUE(errors[0].ok()) << errors[0];
  ASSERT_TRUE(errors[1].ok()) << errors[1];

  std::vector<AckedBatch> all = acked[0];
  all.insert(all.end(), acked[1].begin(), acked[1].end());
  // The Appender's batches are idempotent: each is followed by its producer
  // marker, a control record that takes the next seq.
  EXPECT_TRUE(acks_tile_seqs(all, 2 * kPerStream, /*control_per_batch=*/1));
  uint64_t replayed = 0;
  EXPECT_TRUE(log_matches_acks(*client, all, &replayed));
  EXPECT_EQ(replayed, 2 * kPerStream);

  const v1::NodeStatus st = status(*client);
  EXPECT_EQ(st.next_seq(), 2 * kPerStream + all.size());
  EXPECT_EQ(st.events_appended(), st.next_seq());
  EXPECT_GE(st.log_end_offset(), 2 * kPerStream * kTestRecordBytes);
  EXPECT_GE(st.segment_count(), 4u) << "32 MB of records in 8 MiB segments";
}

// Two streams each send 200 batches without waiting for acks: every ack
// arrives in order, names its batch, and the seqs and offsets of all acks
// tile the log exactly.
TEST_F(IntegrationAppend, PipelinedAcksTileTheLog) {
  constexpr uint64_t kBatches = 200;
  constexpr uint64_t kBatch = 500;
  std::unique_ptr<Client> client = connect(start_node());

  std::vector<v1::AppendResponse> acks[2];
  grpc::Status results[2];
  auto run = [&](uint64_t stream) {
    RawAppendStream s(client->channel());
    for (uint64_t b = 0; b < kBatches; ++b) {
      std::string records;
      add_test_records(&records, stream, b * kBatch, kBatch);
      if (!s.send(b + 1, records)) break;
    }
    results[stream] = s.finish();
    acks[stream] = s.acks();
  };
  std::thread t0(run, 0);
  std::thread t1(run, 1);
  t0.join();
  t1.join();

  std::vector<AckedBatch> all;
  std::vector<std::pair<uint64_t, uint64_t>> offsets;  // first, end
  for (uint64_t stream = 0; stream < 2; ++stream) {
    ASSERT_TRUE(results[stream].ok()) << results[stream].error_message();
    ASSERT_EQ(acks[stream].size(), kBatches);
    for (uint64_t b = 0; b < kBatches; ++b) {
      const v1::AppendResponse& a = acks[stream][b];
      EXPECT_EQ(a.batch_id(), b + 1) << "acks come in the order the batches were sent";
      EXPECT_FALSE(a.duplicate());
      EXPECT_EQ(a.end_offset() - a.first_offset(), kBatch * kTestRecordBytes);
      EXPECT_GE(a.commit_offset(), a.end_offset());
      all.push_back(AckedBatch{stream, b * kBatch, kBatch, a.first_seq(), a.last_seq()});
      offsets.emplace_back(a.first_offset(), a.end_offset());
    }
  }
  // No producer id on these streams: no control records between batches.
  EXPECT_TRUE(acks_tile_seqs(all, 2 * kBatches * kBatch, /*control_per_batch=*/0));
  std::sort(offsets.begin(), offsets.end());
  for (size_t i = 1; i < offsets.size(); ++i) {
    EXPECT_EQ(offsets[i].first, offsets[i - 1].second) << "offset ranges leave a gap or overlap";
  }
  uint64_t replayed = 0;
  EXPECT_TRUE(log_matches_acks(*client, all, &replayed));
  EXPECT_EQ(replayed, 2 * kBatches * kBatch);
}

}  // namespace
}  // namespace ringlog::testing
