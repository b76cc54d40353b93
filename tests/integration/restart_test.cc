// Restarts: after SIGTERM (graceful) and after SIGKILL, each while a stream
// has batches in flight, every acknowledged event is in the log, in order and
// intact, and the directory verifies clean.
#include <signal.h>

#include <thread>

#include "harness.h"

namespace ringlog::testing {
namespace {

class IntegrationRestart : public NodeTest, public ::testing::WithParamInterface<int> {};

TEST_P(IntegrationRestart, KeepsEveryAcknowledgedEventWhileAppendsAreInFlight) {
  const int sig = GetParam();
  constexpr uint64_t kBatch = 1000;
  tools::NodeProcess& first = start_node();
  std::unique_ptr<Client> client = connect(first);

  // One stream appends batches of 1,000 events, up to 16 unacknowledged,
  // until the node goes away.
  RawAppendStream stream(client->channel());
  std::thread writer([&] {
    for (uint64_t b = 0; b < 100'000; ++b) {
      if (!stream.wait_in_flight_below(16)) break;
      std::string records;
      add_test_records(&records, 0, b * kBatch, kBatch);
      if (!stream.send(b + 1, records)) break;
    }
  });
  // 300 batches are 9.6 MB: the log has rolled past its first 8 MiB segment.
  const bool enough = stream.wait_acks(300);
  const absl::StatusOr<int> exit_code = first.stop(sig);
  writer.join();
  const grpc::Status end = stream.finish();
  ASSERT_TRUE(enough) << "the node acknowledged only " << stream.acks().size() << " batches";
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  EXPECT_EQ(*exit_code, sig == SIGTERM ? 0 : 128 + SIGKILL);
  EXPECT_FALSE(end.ok()) << "the append stream ended OK although the node went away";

  const std::vector<v1::AppendResponse> acks = stream.acks();
  std::vector<AckedBatch> acked;
  for (size_t i = 0; i < acks.size(); ++i) {
    ASSERT_EQ(acks[i].batch_id(), i + 1) << "acks out of order";
    acked.push_back(AckedBatch{0, i * kBatch, kBatch, acks[i].first_seq(), acks[i].last_seq()});
  }
  ASSERT_TRUE(acks_tile_seqs(acked, acks.size() * kBatch, /*control_per_batch=*/0));
  EXPECT_LT(acks.size(), stream.sent()) << "the stop came after every batch was acknowledged";

  // Restarted on the same directory: everything acknowledged is there.
  client = connect(start_node());
  uint64_t replayed = 0;
  EXPECT_TRUE(log_matches_acks(*client, acked, &replayed));
  EXPECT_GE(replayed, acks.size() * kBatch);
  EXPECT_EQ(status(*client).next_seq(), replayed) << "no producer id: no control records";
  // ... and it takes new appends after them.
  const uint64_t end_seq = status(*client).next_seq();
  const Ack next = append_numbered(*client, 0, replayed, kBatch);
  EXPECT_EQ(next.first_seq, end_seq);

  ASSERT_EQ(node().stop(SIGTERM).value_or(-1), 0);
  const CommandResult verify = ctl({"verify", "--data-dir=" + data_dir()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("OK"), std::string::npos) << verify.out;
}

INSTANTIATE_TEST_SUITE_P(Signals, IntegrationRestart, ::testing::Values(SIGTERM, SIGKILL),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == SIGTERM ? std::string("Sigterm")
                                                     : std::string("Sigkill");
                         });

class IntegrationCleanRestart : public NodeTest {};

// A clean stop with nothing in flight keeps every event, and the node exits 0.
TEST_F(IntegrationCleanRestart, SigtermAfterAppendsKeepsEverything) {
  std::unique_ptr<Client> client = connect(start_node());
  append_numbered(*client, 0, 0, 50'000);
  const Ack last = append_numbered(*client, 0, 50'000, 1000);
  const v1::NodeStatus before = status(*client);
  ASSERT_EQ(node().stop(SIGTERM).value_or(-1), 0);

  client = connect(start_node());
  uint64_t replayed = 0;
  EXPECT_TRUE(log_matches_acks(*client, {acked_batch(0, 50'000, last)}, &replayed));
  EXPECT_EQ(replayed, 51'000u);
  const v1::NodeStatus after = status(*client);
  EXPECT_EQ(after.next_seq(), before.next_seq());
  EXPECT_EQ(after.log_end_offset(), before.log_end_offset());
}

}  // namespace
}  // namespace ringlog::testing
