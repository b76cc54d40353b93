// SegmentedLog retention: removing the oldest sealed segments by size and by
// age, and what lookups and readers see below the new start.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ringlog/log_reader.h"
#include "ringlog/segmented_log.h"
#include "segmented_log_fixture.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ::testing::HasSubstr;
using namespace ringlog_test;

TEST_F(SegmentedLogTest, RetentionByBytesRemovesOldestSealedSegments) {
  LogOptions o = options();
  o.retention_bytes = 2 * kSegmentBytes;
  auto log = open(o);
  append_segments(*log, 6);
  const std::vector<SegmentInfo> before = log->segments();
  absl::StatusOr<size_t> removed = log->apply_retention(absl::Now());
  ASSERT_TRUE(removed.ok()) << removed.status();
  ASSERT_GT(*removed, 0u);
  const std::vector<SegmentInfo> after = log->segments();
  EXPECT_EQ(after.size(), before.size() - *removed);
  EXPECT_EQ(log->start(), (LogPosition{after.front().base_offset, after.front().base_seq}));
  EXPECT_LE(log->end().offset - log->start().offset, o.retention_bytes);
  for (size_t i = 0; i < *removed; ++i) EXPECT_FALSE(fs::exists(before[i].path)) << i;
  expect_events(*log, log->start().seq, offsets_.size());
}

TEST_F(SegmentedLogTest, FindSeqBelowStartAfterRetentionIsOutOfRange) {
  LogOptions o = options();
  o.retention_bytes = kSegmentBytes;
  auto log = open(o);
  append_segments(*log, 4);
  ASSERT_TRUE(log->apply_retention(absl::Now()).ok());
  ASSERT_GT(log->start().seq, 0u);
  absl::StatusOr<LogPosition> p = log->find_seq(0);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(status_message(p.status()), HasSubstr("retention"));
  absl::StatusOr<LogPosition> q = log->find_offset(0);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(status_message(q.status()), HasSubstr("retention"));
}

TEST_F(SegmentedLogTest, FindTimeBeforeStartAfterRetentionReturnsStart) {
  LogOptions o = options();
  o.retention_bytes = kSegmentBytes;
  auto log = open(o);
  append_segments(*log, 4);
  ASSERT_TRUE(log->apply_retention(absl::Now()).ok());
  ASSERT_GT(log->start().seq, 0u);
  absl::StatusOr<LogPosition> p = log->find_time(kT0);  // the first event's time, now removed
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, log->start());
}

TEST_F(SegmentedLogTest, ReaderBelowStartAfterRetentionReportsOutOfRange) {
  LogOptions o = options();
  o.retention_bytes = kSegmentBytes;
  auto log = open(o);
  append_segments(*log, 4);
  ASSERT_TRUE(log->apply_retention(absl::Now()).ok());
  LogReader reader(*log, LogPosition{0, 0});
  EXPECT_FALSE(reader.next(log->end().offset).has_value());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(SegmentedLogTest, RetentionNeverRemovesTheActiveSegment) {
  LogOptions o = options();
  o.retention_bytes = 1;
  auto log = open(o);
  append_segments(*log, 3);
  append(*log, 5);
  ASSERT_TRUE(log->apply_retention(absl::Now()).ok());
  ASSERT_EQ(log->segment_count(), 1u);
  EXPECT_FALSE(log->segments().front().sealed);
  EXPECT_EQ(log->start().offset, log->segments().front().base_offset);
  expect_events(*log, log->start().seq, offsets_.size());
}

TEST_F(SegmentedLogTest, RetentionByAgeRemovesSegmentsWithOnlyOldEvents) {
  LogOptions o = options();
  o.retention_age = absl::Hours(1);
  auto log = open(o);
  const uint64_t kNew = kT0 + 10 * 3600'000'000'000ull;  // ten hours later
  append(*log, 2500, [](uint64_t s) { return kT0 + s; });
  append(*log, 1500, [&](uint64_t s) { return kNew + s; });
  uint64_t first_new_base = 0;
  uint64_t first_new_base_seq = 0;
  for (const SegmentInfo& s : log->segments()) {
    if (2500 >= s.base_seq && 2500 < s.base_seq + s.events) {
      first_new_base = s.base_offset;
      first_new_base_seq = s.base_seq;
    }
  }
  ASSERT_GT(first_new_base, 0u);
  absl::StatusOr<size_t> removed = log->apply_retention(absl::FromUnixNanos(kNew + 60'000'000'000));
  ASSERT_TRUE(removed.ok());
  EXPECT_GT(*removed, 0u);
  EXPECT_EQ(log->start(), (LogPosition{first_new_base, first_new_base_seq}));
  expect_events(*log, first_new_base_seq, offsets_.size());
}

TEST_F(SegmentedLogTest, RetentionByAgeKeepsTheActiveSegmentEvenWhenOld) {
  LogOptions o = options();
  o.retention_age = absl::Hours(1);
  auto log = open(o);
  append_segments(*log, 3);
  absl::StatusOr<size_t> removed = log->apply_retention(absl::FromUnixNanos(kT0) + absl::Hours(5));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 2u);
  EXPECT_EQ(log->segment_count(), 1u);
}

TEST_F(SegmentedLogTest, NoRetentionLimitsRemoveNothing) {
  auto log = open();
  append_segments(*log, 3);
  absl::StatusOr<size_t> removed = log->apply_retention(absl::Now() + absl::Hours(1000000));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0u);
  EXPECT_EQ(log->segment_count(), 3u);
}

TEST_F(SegmentedLogTest, RetentionSurvivesReopen) {
  LogOptions o = options();
  o.retention_bytes = kSegmentBytes;
  uint64_t start_seq = 0;
  {
    auto log = open(o);
    append_segments(*log, 4);
    ASSERT_TRUE(log->apply_retention(absl::Now()).ok());
    start_seq = log->start().seq;
  }
  auto log = open(o);
  EXPECT_EQ(log->start().seq, start_seq);
  expect_events(*log, start_seq, offsets_.size());
}

}  // namespace
}  // namespace ringlog
