// LogReader: reading a SegmentedLog in order, event by event and in slices,
// beside a writer.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ringlog/log_reader.h"
#include "ringlog/segmented_log.h"
#include "segmented_log_fixture.h"
#include "test_util.h"

namespace ringlog {
namespace {

using namespace ringlog_test;

TEST_F(SegmentedLogTest, ReaderNextFollowsTheLogAcrossSegments) {
  auto log = open();
  append_segments(*log, 4);
  expect_events(*log, 0, offsets_.size());
}

TEST_F(SegmentedLogTest, ReaderNextStopsAtTheLimit) {
  auto log = open();
  append_segments(*log, 4);
  const uint64_t k = log->segments()[2].base_seq + 7;
  LogReader reader(*log, LogPosition{0, 0});
  uint64_t n = 0;
  while (std::optional<EventView> ev = reader.next(offsets_[k])) {
    ASSERT_EQ(ev->timestamp(), ts_[n]);
    ++n;
  }
  EXPECT_EQ(n, k);
  EXPECT_EQ(reader.position(), (LogPosition{offsets_[k], k}));
  std::optional<EventView> ev = reader.next(log->end().offset);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->timestamp(), ts_[k]);
}

TEST_F(SegmentedLogTest, ReaderNextStopsAtSegmentBoundaryLimit) {
  auto log = open();
  append_segments(*log, 3);
  const SegmentInfo second = log->segments()[1];
  LogReader reader(*log, LogPosition{0, 0});
  uint64_t n = 0;
  while (reader.next(second.base_offset)) ++n;
  EXPECT_EQ(n, second.base_seq);
}

TEST_F(SegmentedLogTest, ReaderNextHonoursALowerLimitAfterAnEarlierCall) {
  auto log = open();
  append(*log, 100);
  LogReader reader(*log, LogPosition{0, 0});
  ASSERT_TRUE(reader.next(log->end().offset).has_value());
  // "The next record before limit_offset": nothing is before the reader's position.
  EXPECT_FALSE(reader.next(reader.position().offset).has_value());
}

TEST_F(SegmentedLogTest, ReaderSeesEventsAppendedLater) {
  auto log = open();
  append(*log, 5);
  LogReader reader(*log, LogPosition{0, 0});
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(reader.next(log->end().offset));
  EXPECT_FALSE(reader.next(log->end().offset).has_value());
  EXPECT_TRUE(reader.status().ok());
  append(*log, 1);
  std::optional<EventView> ev = reader.next(log->end().offset);
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->timestamp(), ts_[5]);
}

// Slices smaller and larger than the index interval (1 KiB here): a slice
// ends where the sparse index says, and its count must still be exact.
TEST_F(SegmentedLogTest, ReaderNextSliceFollowsTheLogAcrossSegments) {
  auto log = open();
  append_segments(*log, 4);
  const std::vector<SegmentInfo> segs = log->segments();
  for (const size_t max : {size_t{700}, size_t{3000}, size_t{50000}, size_t{1} << 20}) {
    SCOPED_TRACE(max);
    LogReader reader(*log, LogPosition{0, 0});
    LogPosition expect{0, 0};
    while (std::optional<LogSlice> s = reader.next_slice(log->end().offset, max)) {
      ASSERT_EQ(s->position, expect);
      ASSERT_FALSE(s->records.empty());
      ASSERT_LE(s->records.bytes.size(), max);
      const bool at_base = std::any_of(segs.begin(), segs.end(), [&](const SegmentInfo& i) {
        return i.base_offset == expect.offset;
      });
      EXPECT_EQ(s->starts_segment, at_base) << expect.offset;
      ASSERT_NE(s->segment_header, nullptr);
      EXPECT_LE(s->segment_header->base_offset, expect.offset);
      // Every record in the slice is valid and is the next event.
      size_t off = 0;
      for (size_t i = 0; i < s->records.count; ++i) {
        EventView v;
        ASSERT_EQ(check_record(s->records.bytes.data() + off, s->records.bytes.size() - off, &v),
                  RecordStatus::kOk);
        ASSERT_EQ(v.timestamp(), ts_[expect.seq + i]);
        off += v.header->padded_size();
      }
      ASSERT_EQ(off, s->records.bytes.size());
      // A slice stops short only where the next record would not fit.
      const uint64_t next = expect.offset + off;
      const bool segment_ends = std::any_of(segs.begin(), segs.end(), [&](const SegmentInfo& i) {
        return i.base_offset == next;
      });
      if (next < log->end().offset && !segment_ends) {
        const size_t k = expect.seq + s->records.count;
        EXPECT_GT(off + padded_size(len_of(k)), max) << "at offset " << next;
      }
      expect = LogPosition{next, expect.seq + s->records.count};
    }
    EXPECT_EQ(expect, log->end());
    EXPECT_EQ(reader.position(), log->end());
  }
}

TEST_F(SegmentedLogTest, ReaderNextSliceNeverSpansTwoSegments) {
  auto log = open();
  append_segments(*log, 3);
  const uint64_t boundary = log->segments()[1].base_offset;
  LogReader reader(*log, LogPosition{0, 0});
  while (std::optional<LogSlice> s = reader.next_slice(log->end().offset, 1 << 20)) {
    const uint64_t end = s->position.offset + s->records.bytes.size();
    EXPECT_FALSE(s->position.offset < boundary && end > boundary);
  }
}

TEST_F(SegmentedLogTest, ReaderNextSliceStopsAtTheLimit) {
  auto log = open();
  append_segments(*log, 3);
  const uint64_t k = log->segments()[1].base_seq + 11;
  LogReader reader(*log, LogPosition{0, 0});
  uint64_t events = 0;
  while (std::optional<LogSlice> s = reader.next_slice(offsets_[k], 2000)) {
    events += s->records.count;
  }
  EXPECT_EQ(events, k);
  EXPECT_EQ(reader.position(), (LogPosition{offsets_[k], k}));
}

TEST_F(SegmentedLogTest, ReaderFollowsAConcurrentWriter) {
  auto log = open();
  constexpr uint64_t kEvents = 20000;
  // Appending fills offsets_ and ts_; the reader thread checks the payloads,
  // which are derived from the seq alone.
  std::thread reader_thread([&] {
    LogReader reader(*log, LogPosition{0, 0});
    uint64_t seq = 0;
    while (seq < kEvents) {
      std::optional<EventView> ev = reader.next(log->end().offset);
      if (!ev) {
        ASSERT_TRUE(reader.status().ok()) << reader.status();
        std::this_thread::yield();
        continue;
      }
      ASSERT_EQ(ev->timestamp(), kT0 + seq);
      ASSERT_EQ(ev->payload.size(), len_of(seq));
      ASSERT_TRUE(payload_matches(seq, ev->payload)) << seq;
      ++seq;
    }
  });
  for (uint64_t i = 0; i < kEvents; ++i) {
    const std::string p = payload_for(i, len_of(i));
    EXPECT_TRUE(log->append_event(header_for(kT0 + i, 1, p), as_bytes(p)).ok()) << i;
  }
  reader_thread.join();
  EXPECT_GE(log->segment_count(), 10u);
}

}  // namespace
}  // namespace ringlog
