// SegmentedLog lookups by seq, offset and time, which go through each
// segment's sparse index.
#include <cstdint>
#include <random>
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
using namespace ringlog_test;

TEST_F(SegmentedLogTest, FindSeqAtEverySegmentBoundary) {
  auto log = open();
  append_segments(*log, 4);
  for (const SegmentInfo& s : log->segments()) {
    for (uint64_t seq : {s.base_seq, s.base_seq + s.events - 1}) {
      if (seq >= offsets_.size()) continue;
      absl::StatusOr<LogPosition> p = log->find_seq(seq);
      ASSERT_TRUE(p.ok()) << p.status();
      EXPECT_EQ(*p, (LogPosition{offsets_[seq], seq}));
    }
  }
}

TEST_F(SegmentedLogTest, FindSeqOfEveryEvent) {
  auto log = open();
  append_segments(*log, 3);
  for (uint64_t seq = 0; seq < offsets_.size(); ++seq) {
    absl::StatusOr<LogPosition> p = log->find_seq(seq);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_EQ(p->offset, offsets_[seq]) << seq;
  }
}

TEST_F(SegmentedLogTest, FindSeqAtTheEndReturnsEnd) {
  auto log = open();
  append(*log, 10);
  absl::StatusOr<LogPosition> p = log->find_seq(10);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, log->end());
}

TEST_F(SegmentedLogTest, FindSeqPastTheEndIsOutOfRangeNamingTheRange) {
  auto log = open();
  append(*log, 10);
  absl::StatusOr<LogPosition> p = log->find_seq(11);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(status_message(p.status()), HasSubstr("seq 11"));
  EXPECT_THAT(status_message(p.status()), HasSubstr("0 to 9"));
}

TEST_F(SegmentedLogTest, FindOffsetOfRecordBoundaries) {
  auto log = open();
  append_segments(*log, 3);
  for (uint64_t seq = 0; seq < offsets_.size(); seq += 53) {
    absl::StatusOr<LogPosition> p = log->find_offset(offsets_[seq]);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->seq, seq);
  }
  absl::StatusOr<LogPosition> end = log->find_offset(log->end().offset);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, log->end());
}

TEST_F(SegmentedLogTest, FindOffsetInsideARecordIsInvalidArgument) {
  auto log = open();
  append(*log, 10);
  absl::StatusOr<LogPosition> p = log->find_offset(offsets_[4] + 8);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(p.status()), HasSubstr(std::to_string(offsets_[4] + 8)));
}

TEST_F(SegmentedLogTest, FindOffsetPastTheEndIsOutOfRange) {
  auto log = open();
  append(*log, 10);
  absl::StatusOr<LogPosition> p = log->find_offset(log->end().offset + 8);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kOutOfRange);
}

// First seq whose timestamp is >= t, by brute force.
uint64_t first_at_or_after(const std::vector<uint64_t>& ts, uint64_t t) {
  for (uint64_t i = 0; i < ts.size(); ++i) {
    if (ts[i] >= t) return i;
  }
  return ts.size();
}

TEST_F(SegmentedLogTest, FindTimeWithIncreasingTimestamps) {
  auto log = open();
  append(*log, 3000, [](uint64_t s) { return kT0 + 10 * s; });
  ASSERT_GE(log->segment_count(), 3u);
  for (uint64_t t = kT0 - 5; t <= kT0 + 10 * 3000 + 5; t += 7) {
    absl::StatusOr<LogPosition> p = log->find_time(t);
    ASSERT_TRUE(p.ok()) << p.status();
    const uint64_t want = first_at_or_after(ts_, t);
    ASSERT_EQ(p->seq, want) << "t = " << t - kT0;
    if (want < offsets_.size()) {
      ASSERT_EQ(p->offset, offsets_[want]);
    }
  }
}

TEST_F(SegmentedLogTest, FindTimeWithRunsOfEqualTimestamps) {
  auto log = open();
  append(*log, 3000, [](uint64_t s) { return kT0 + 100 * (s / 250); });  // 250 per value
  ASSERT_GE(log->segment_count(), 3u);
  for (uint64_t k = 0; k < 12; ++k) {
    const uint64_t t = kT0 + 100 * k;
    absl::StatusOr<LogPosition> p = log->find_time(t);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->seq, 250 * k);
    absl::StatusOr<LogPosition> q = log->find_time(t + 1);
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->seq, 250 * (k + 1));
  }
}

TEST_F(SegmentedLogTest, FindTimeWithNonMonotonicTimestamps) {
  auto log = open();
  std::mt19937_64 rng(42);
  std::vector<uint64_t> random_ts(4000);
  for (uint64_t& t : random_ts) t = kT0 + rng() % 100000;
  append(*log, random_ts.size(), [&](uint64_t s) { return random_ts[s]; });
  ASSERT_GE(log->segment_count(), 3u);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t t = kT0 + rng() % 100100;
    absl::StatusOr<LogPosition> p = log->find_time(t);
    ASSERT_TRUE(p.ok());
    const uint64_t want = first_at_or_after(ts_, t);
    ASSERT_EQ(p->seq, want) << "t = " << t - kT0;
    if (want < offsets_.size()) {
      ASSERT_EQ(p->offset, offsets_[want]);
    }
  }
}

TEST_F(SegmentedLogTest, FindTimeAtSegmentBoundaries) {
  auto log = open();
  append(*log, 3000, [](uint64_t s) { return kT0 + 10 * s; });
  for (const SegmentInfo& s : log->segments()) {
    if (s.events == 0) continue;
    absl::StatusOr<LogPosition> p = log->find_time(ts_[s.base_seq]);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p, (LogPosition{s.base_offset, s.base_seq}));
    p = log->find_time(ts_[s.base_seq] - 1);  // just after the previous segment's last event
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p, (LogPosition{s.base_offset, s.base_seq}));
  }
}

TEST_F(SegmentedLogTest, FindTimeAfterTheLastEventReturnsEnd) {
  auto log = open();
  append(*log, 500);
  absl::StatusOr<LogPosition> p = log->find_time(ts_.back() + 1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, log->end());
}

TEST_F(SegmentedLogTest, FindTimeBeforeTheFirstEventReturnsStart) {
  auto log = open();
  append(*log, 500);
  absl::StatusOr<LogPosition> p = log->find_time(0);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (LogPosition{0, 0}));
}

TEST_F(SegmentedLogTest, FindTimeOnAnEmptyLogReturnsEnd) {
  auto log = open();
  absl::StatusOr<LogPosition> p = log->find_time(kT0);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, log->end());
}

TEST_F(SegmentedLogTest, FindTimeAfterReopenUsesTheRebuiltIndex) {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> random_ts(3000);
  for (uint64_t& t : random_ts) t = kT0 + rng() % 50000;
  { auto log = open(); append(*log, random_ts.size(), [&](uint64_t s) { return random_ts[s]; }); }
  auto log = open();
  for (uint64_t t = kT0; t < kT0 + 50100; t += 37) {
    absl::StatusOr<LogPosition> p = log->find_time(t);
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(p->seq, first_at_or_after(ts_, t)) << "t = " << t - kT0;
  }
}

}  // namespace
}  // namespace ringlog
