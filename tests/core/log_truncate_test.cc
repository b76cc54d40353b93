// SegmentedLog truncation: dropping every record from a boundary on.
#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ringlog/segmented_log.h"
#include "segmented_log_fixture.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using namespace ringlog_test;

TEST_F(SegmentedLogTest, TruncateInTheMiddleOfASegment) {
  auto log = open();
  append_segments(*log, 4);
  const SegmentInfo second = log->segments()[1];
  const uint64_t k = second.base_seq + second.events / 2;
  ASSERT_TRUE(log->truncate(offsets_[k]).ok());
  EXPECT_EQ(log->end(), (LogPosition{offsets_[k], k}));
  EXPECT_EQ(log->segment_count(), 2u);
  EXPECT_THAT(segment_files(), SizeIs(2));
  forget_from(k);
  expect_events(*log, 0, k);
}

TEST_F(SegmentedLogTest, AppendAfterTruncateContinuesWithTheRightSeqs) {
  auto log = open();
  append_segments(*log, 4);
  const SegmentInfo second = log->segments()[1];
  const uint64_t k = second.base_seq + second.events / 2;
  ASSERT_TRUE(log->truncate(offsets_[k]).ok());
  forget_from(k);
  append(*log, 50, [](uint64_t s) { return kT0 + 1'000'000 + s; });  // new timestamps
  absl::StatusOr<LogPosition> p = log->find_seq(k);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->offset, offsets_[k]);
  expect_events(*log, 0, k + 50);
}

TEST_F(SegmentedLogTest, ReopenSeesTheTruncatedLog) {
  uint64_t k = 0;
  {
    auto log = open();
    append_segments(*log, 4);
    const SegmentInfo second = log->segments()[1];
    k = second.base_seq + second.events / 2;
    ASSERT_TRUE(log->truncate(offsets_[k]).ok());
    forget_from(k);
    append(*log, 20, [](uint64_t s) { return kT0 + 1'000'000 + s; });
  }
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_THAT(report.problem, IsEmpty());
  EXPECT_THAT(report.quarantined, IsEmpty());
  EXPECT_EQ(log->end().seq, k + 20);
  expect_events(*log, 0, k + 20);
}

TEST_F(SegmentedLogTest, TruncateAtASegmentBoundary) {
  auto log = open();
  append_segments(*log, 4);
  const SegmentInfo third = log->segments()[2];
  ASSERT_TRUE(log->truncate(third.base_offset).ok());
  EXPECT_EQ(log->end(), (LogPosition{third.base_offset, third.base_seq}));
  forget_from(third.base_seq);
  expect_events(*log, 0, third.base_seq);
  append(*log, 30, [](uint64_t s) { return kT0 + 1'000'000 + s; });
  expect_events(*log, 0, third.base_seq + 30);
  auto reopened_end = log->end();
  log.reset();
  auto again = open();
  EXPECT_EQ(again->end(), reopened_end);
  expect_events(*again, 0, third.base_seq + 30);
}

TEST_F(SegmentedLogTest, TruncateToTheEndChangesNothing) {
  auto log = open();
  append(*log, 10);
  const LogPosition end = log->end();
  ASSERT_TRUE(log->truncate(end.offset).ok());
  EXPECT_EQ(log->end(), end);
  expect_events(*log, 0, 10);
}

TEST_F(SegmentedLogTest, TruncateToZeroEmptiesTheLog) {
  auto log = open();
  append_segments(*log, 3);
  ASSERT_TRUE(log->truncate(0).ok());
  EXPECT_EQ(log->end(), (LogPosition{0, 0}));
  EXPECT_EQ(log->segment_count(), 1u);
  forget_from(0);
  append(*log, 5);
  expect_events(*log, 0, 5);
}

TEST_F(SegmentedLogTest, TruncateInsideARecordIsInvalidArgument) {
  auto log = open();
  append(*log, 10);
  absl::Status s = log->truncate(offsets_[4] + 8);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(s), HasSubstr("record boundary"));
  EXPECT_EQ(log->end().seq, 10u);
  expect_events(*log, 0, 10);
}

// A bad offset must leave the log alone, including the segments after it.
TEST_F(SegmentedLogTest, TruncateInsideARecordOfAnEarlierSegmentKeepsLaterSegments) {
  auto log = open();
  append_segments(*log, 4);
  const LogPosition end = log->end();
  const size_t segments = log->segment_count();
  absl::Status s = log->truncate(offsets_[10] + 8);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->end(), end);
  EXPECT_EQ(log->segment_count(), segments);
  EXPECT_THAT(segment_files(), SizeIs(segments));
  expect_events(*log, 0, offsets_.size());
}

TEST_F(SegmentedLogTest, TruncateBeyondTheEndIsOutOfRange) {
  auto log = open();
  append(*log, 10);
  absl::Status s = log->truncate(log->end().offset + 8);
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(status_message(s), HasSubstr(std::to_string(log->end().offset + 8)));
  expect_events(*log, 0, 10);
}

TEST_F(SegmentedLogTest, TruncateLowersTheDurableOffset) {
  auto log = open();
  append(*log, 10);
  ASSERT_TRUE(log->sync().ok());
  ASSERT_EQ(log->durable_offset(), log->end().offset);
  ASSERT_TRUE(log->truncate(offsets_[5]).ok());
  EXPECT_EQ(log->durable_offset(), offsets_[5]);
}

}  // namespace
}  // namespace ringlog
