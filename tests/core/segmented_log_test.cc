// SegmentedLog and LogReader: the log over a directory of segment files.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ringlog/storage.h"
#include "test_util.h"

namespace ringlog {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;
using namespace ringlog_test;

constexpr uint64_t kSegmentBytes = 128 << 10;
constexpr uint64_t kT0 = 1'700'000'000'000'000'000;  // ns, late 2023

class SegmentedLogTest : public TempDirTest {
 protected:
  LogOptions options() const {
    LogOptions o;
    o.segment_bytes = kSegmentBytes;
    o.index_interval_bytes = 1024;
    return o;
  }

  std::unique_ptr<SegmentedLog> open(const LogOptions& o, RecoveryReport* report = nullptr) {
    absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), o, report);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }
  std::unique_ptr<SegmentedLog> open(RecoveryReport* report = nullptr) {
    return open(options(), report);
  }

  static size_t len_of(uint64_t seq) { return 8 + (seq * 37) % 200; }

  // Appends `n` events with the next seqs; `ts(seq)` gives each timestamp.
  void append(SegmentedLog& log, uint64_t n,
              const std::function<uint64_t(uint64_t)>& ts = [](uint64_t s) { return kT0 + s; }) {
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t seq = offsets_.size();
      ASSERT_EQ(log.end().seq, seq);
      const std::string p = payload_for(seq, len_of(seq));
      offsets_.push_back(log.end().offset);
      ts_.push_back(ts(seq));
      ASSERT_TRUE(log.append_event(header_for(ts_.back(), 1, p), as_bytes(p)).ok()) << seq;
    }
  }
  // Appends until the log has at least `segments` segments.
  void append_segments(SegmentedLog& log, size_t segments) {
    while (log.segment_count() < segments) append(log, 100);
  }
  // Forgets events from `seq` on (after a truncation).
  void forget_from(uint64_t seq) {
    offsets_.resize(seq);
    ts_.resize(seq);
  }
  uint64_t end_offset(uint64_t seq) const { return offsets_[seq] + padded_size(len_of(seq)); }

  // Reads from `from_seq` to the end and checks each event against what was appended.
  void expect_events(const SegmentedLog& log, uint64_t from_seq, uint64_t to_seq) {
    absl::StatusOr<LogPosition> start = log.find_seq(from_seq);
    ASSERT_TRUE(start.ok()) << start.status();
    LogReader reader(log, *start);
    uint64_t seq = from_seq;
    while (std::optional<EventView> ev = reader.next(log.end().offset)) {
      ASSERT_LT(seq, to_seq);
      ASSERT_EQ(ev->timestamp(), ts_[seq]) << "seq " << seq;
      ASSERT_EQ(ev->payload.size(), len_of(seq)) << "seq " << seq;
      ASSERT_TRUE(payload_matches(seq, ev->payload)) << "seq " << seq;
      ++seq;
    }
    EXPECT_TRUE(reader.status().ok()) << reader.status();
    EXPECT_EQ(seq, to_seq);
    EXPECT_EQ(reader.position(), log.end());
  }

  // The segment file holding event `seq`, and the record's offset in that file.
  std::pair<std::string, uint64_t> file_offset_of(const SegmentedLog& log, uint64_t seq) const {
    for (const SegmentInfo& s : log.segments()) {
      if (seq >= s.base_seq && seq < s.base_seq + s.events) {
        return {s.path, kFileHeaderSize + offsets_[seq] - s.base_offset};
      }
    }
    ADD_FAILURE() << "no segment holds seq " << seq;
    return {"", 0};
  }

  // Names of the segment files in the data directory, sorted.
  std::vector<std::string> segment_files() const {
    std::vector<std::string> names;
    for (const fs::directory_entry& e : fs::directory_iterator(dir())) {
      const std::string name = e.path().filename().string();
      if (name.ends_with(".evtl")) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  // Every file under the data directory and its bytes.
  std::map<std::string, std::string> snapshot() const {
    std::map<std::string, std::string> out;
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir())) {
      if (e.is_regular_file()) out[e.path().string()] = read_file(e.path().string());
    }
    return out;
  }

  std::vector<uint64_t> offsets_;  // log offset of each seq appended
  std::vector<uint64_t> ts_;       // timestamp of each seq appended
};

// ---- Open, append, reopen ----

TEST_F(SegmentedLogTest, OpenCreatesTheDirectoryAndAFirstSegment) {
  const std::string sub = path("a/b/log");
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(sub, options());
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_TRUE(fs::exists(sub + "/00000000000000000000.evtl"));
  EXPECT_EQ((*log)->start(), (LogPosition{0, 0}));
  EXPECT_EQ((*log)->end(), (LogPosition{0, 0}));
  EXPECT_EQ((*log)->segment_count(), 1u);
}

TEST_F(SegmentedLogTest, AppendEventMovesTheEnd) {
  auto log = open();
  append(*log, 3);
  EXPECT_EQ(log->end(), (LogPosition{end_offset(2), 3}));
  expect_events(*log, 0, 3);
}

TEST_F(SegmentedLogTest, AppendBatchOfRecords) {
  auto log = open();
  std::vector<std::byte> batch;
  for (uint64_t seq = 0; seq < 5; ++seq) {
    const std::string p = payload_for(seq, len_of(seq));
    offsets_.push_back(batch.size());
    ts_.push_back(kT0 + seq);
    const std::vector<std::byte> rec = encode(header_for(kT0 + seq, 1, p), p);
    batch.insert(batch.end(), rec.begin(), rec.end());
  }
  const AppendResult r = log->append(batch);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.bytes, batch.size());
  EXPECT_EQ(r.events, 5u);
  expect_events(*log, 0, 5);
}

TEST_F(SegmentedLogTest, AppendBatchRollsAcrossSegments) {
  auto log = open();
  std::vector<std::byte> batch;
  for (uint64_t seq = 0; seq < 3000; ++seq) {
    const std::string p = payload_for(seq, len_of(seq));
    offsets_.push_back(batch.size());
    ts_.push_back(kT0 + seq);
    const std::vector<std::byte> rec = encode(header_for(kT0 + seq, 1, p), p);
    batch.insert(batch.end(), rec.begin(), rec.end());
  }
  const AppendResult r = log->append(batch);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.events, 3000u);
  EXPECT_GE(log->segment_count(), 3u);
  expect_events(*log, 0, 3000);
}

TEST_F(SegmentedLogTest, AppendEventRejectsBadInput) {
  auto log = open();
  const std::string big(kMaxPayload + 1, 'x');
  EXPECT_EQ(log->append_event(EventHeader(1, 1, 0), as_bytes(big)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->append_event(EventHeader(1, 1, 3), as_bytes("ab")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log->end(), (LogPosition{0, 0}));
}

TEST_F(SegmentedLogTest, SegmentSizeBelowTheLargestRecordIsInvalid) {
  LogOptions o = options();
  o.segment_bytes = 4096;
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), o);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(log.status()), HasSubstr("4096"));
}

TEST_F(SegmentedLogTest, ReopenAndAppendAcrossRestarts) {
  for (int restart = 0; restart < 3; ++restart) {
    RecoveryReport report;
    auto log = open(&report);
    EXPECT_THAT(report.problem, IsEmpty());
    EXPECT_EQ(report.events, offsets_.size());
    append(*log, 700);  // crosses segment boundaries now and then
  }
  auto log = open();
  EXPECT_GE(log->segment_count(), 2u);
  expect_events(*log, 0, offsets_.size());
}

TEST_F(SegmentedLogTest, ReopenRecoversEndAndIndex) {
  {
    auto log = open();
    append_segments(*log, 3);
  }
  auto log = open();
  const uint64_t n = offsets_.size();
  EXPECT_EQ(log->end(), (LogPosition{end_offset(n - 1), n}));
  for (uint64_t seq = 0; seq < n; seq += 97) {
    absl::StatusOr<LogPosition> p = log->find_seq(seq);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->offset, offsets_[seq]) << seq;
  }
}

// ---- Segments ----

TEST_F(SegmentedLogTest, SegmentRolloverNamesFilesByBaseOffset) {
  auto log = open();
  append_segments(*log, 4);
  const std::vector<SegmentInfo> segs = log->segments();
  std::vector<std::string> want;
  for (const SegmentInfo& s : segs) {
    const std::string name = fs::path(s.path).filename().string();
    EXPECT_EQ(name, absl::StrFormat("%020d.evtl", s.base_offset));
    want.push_back(name);
  }
  EXPECT_EQ(segment_files(), want);
  EXPECT_EQ(segs.front().base_offset, 0u);
}

TEST_F(SegmentedLogTest, SegmentsAreContiguous) {
  auto log = open();
  append_segments(*log, 4);
  const std::vector<SegmentInfo> segs = log->segments();
  for (size_t i = 1; i < segs.size(); ++i) {
    EXPECT_EQ(segs[i].base_offset, segs[i - 1].base_offset + segs[i - 1].bytes) << i;
    EXPECT_EQ(segs[i].base_seq, segs[i - 1].base_seq + segs[i - 1].events) << i;
    EXPECT_LE(segs[i - 1].bytes, kSegmentBytes - kFileHeaderSize);
    EXPECT_EQ(fs::file_size(segs[i].path), kSegmentBytes);
  }
}

TEST_F(SegmentedLogTest, EveryEventIsReadableAcrossSegments) {
  auto log = open();
  append_segments(*log, 5);
  expect_events(*log, 0, offsets_.size());
}

TEST_F(SegmentedLogTest, SealedSegmentsHaveHeaderCountersSet) {
  auto log = open();
  append_segments(*log, 4);
  const std::vector<SegmentInfo> segs = log->segments();
  for (size_t i = 0; i < segs.size(); ++i) {
    const FileHeader h = read_file_header(segs[i].path);
    EXPECT_TRUE(h.validate(segs[i].path).ok());
    EXPECT_EQ(h.base_offset, segs[i].base_offset);
    EXPECT_EQ(h.base_seq, segs[i].base_seq);
    const bool last = i + 1 == segs.size();
    EXPECT_EQ(segs[i].sealed, !last) << i;
    EXPECT_EQ(h.sealed(), !last) << i;
    if (!last) {
      EXPECT_EQ(h.event_count, segs[i].events) << i;
      EXPECT_EQ(h.write_offset, segs[i].bytes) << i;
    }
  }
}

TEST_F(SegmentedLogTest, ExplicitRollStartsANewSegmentAtTheEnd) {
  auto log = open();
  append(*log, 10);
  ASSERT_TRUE(log->roll().ok());
  ASSERT_EQ(log->segment_count(), 2u);
  EXPECT_EQ(log->segments().back().base_offset, log->end().offset);
  append(*log, 10);
  expect_events(*log, 0, 20);
}

// ---- find_seq, find_offset, find_time ----

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

// ---- Retention ----

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

// ---- Truncate ----

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

// ---- Sync ----

TEST_F(SegmentedLogTest, SyncMakesTheEndDurable) {
  auto log = open();
  append(*log, 10);
  EXPECT_EQ(log->durable_offset(), 0u);
  ASSERT_TRUE(log->sync().ok());
  EXPECT_EQ(log->durable_offset(), log->end().offset);
  append_segments(*log, 3);
  ASSERT_TRUE(log->sync(/*flush=*/false).ok());
  EXPECT_EQ(log->durable_offset(), log->end().offset);
}

// ---- The data directory lock ----

TEST_F(SegmentedLogTest, SecondOpenOfTheSameDirectoryFailsInUse) {
  auto first = open();
  absl::StatusOr<std::unique_ptr<SegmentedLog>> second = SegmentedLog::Open(dir(), options());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status_message(second.status()), HasSubstr("in use"));
  EXPECT_THAT(status_message(second.status()), HasSubstr(dir()));
}

TEST_F(SegmentedLogTest, FailedSecondOpenLeavesTheFirstWorking) {
  auto first = open();
  append(*first, 5);
  ASSERT_FALSE(SegmentedLog::Open(dir(), options()).ok());
  append(*first, 5);
  expect_events(*first, 0, 10);
}

TEST_F(SegmentedLogTest, DirectoryCanBeOpenedAgainAfterClose) {
  { auto first = open(); append(*first, 5); }
  auto second = open();
  ASSERT_NE(second, nullptr);
  expect_events(*second, 0, 5);
}

// ---- Read-only ----

TEST_F(SegmentedLogTest, ReadOnlyOpenDoesNotModifyFiles) {
  {
    auto log = open();
    append_segments(*log, 3);
  }
  // A torn last record and garbage after it: a writable open would clear both.
  const auto [file, at] = [&] {
    auto log = open();  // to find the last record's file; closes again
    return file_offset_of(*log, offsets_.size() - 1);
  }();
  write_at(file, at + 20, std::string(8, '\x11'));
  write_at(file, at + 5000, std::string(100, '\x22'));
  const auto before = snapshot();
  LogOptions o = options();
  o.read_only = true;
  RecoveryReport report;
  auto log = open(o, &report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->end().seq, offsets_.size() - 1);
  EXPECT_THAT(report.problem, HasSubstr("checksum"));
  EXPECT_EQ(report.cleared_bytes, 0u);
  forget_from(offsets_.size() - 1);
  expect_events(*log, 0, offsets_.size());
  EXPECT_EQ(snapshot(), before);
}

TEST_F(SegmentedLogTest, ReadOnlyOpenIgnoresTheLock) {
  auto writer = open();
  append(*writer, 5);
  LogOptions o = options();
  o.read_only = true;
  auto reader = open(o);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->end().seq, 5u);
}

TEST_F(SegmentedLogTest, ReadOnlyOpenOfAnEmptyDirectoryIsNotFound) {
  LogOptions o = options();
  o.read_only = true;
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), o);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status_message(log.status()), HasSubstr(dir()));
}

// ---- Recovery ----

TEST_F(SegmentedLogTest, TornTailEndsBeforeTheTornRecord) {
  { auto log = open(); append_segments(*log, 3); }
  const uint64_t last = offsets_.size() - 1;
  const auto [file, at] = [&] { auto log = open(); return file_offset_of(*log, last); }();
  const uint64_t size = padded_size(len_of(last));
  write_at(file, at + size / 2, std::string(size - size / 2, '\0'));
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(log->end(), (LogPosition{offsets_[last], last}));
  EXPECT_THAT(report.problem, HasSubstr(file));
  EXPECT_THAT(report.quarantined, IsEmpty());
  EXPECT_TRUE(all_zero(file, at, at + size));
  forget_from(last);
  expect_events(*log, 0, last);
}

TEST_F(SegmentedLogTest, GarbledTornTailIsClearedAndAppendsFollow) {
  { auto log = open(); append_segments(*log, 2); }
  const uint64_t last = offsets_.size() - 1;
  const auto [file, at] = [&] { auto log = open(); return file_offset_of(*log, last); }();
  const uint64_t size = padded_size(len_of(last));
  write_at(file, at + size / 2, std::string(size - size / 2, '\xA5'));
  {
    RecoveryReport report;
    auto log = open(&report);
    EXPECT_GT(report.cleared_bytes, 0u);
    EXPECT_TRUE(all_zero(file, at, at + size));
    forget_from(last);
    append(*log, 10);
  }
  auto log = open();
  expect_events(*log, 0, last + 10);
}

TEST_F(SegmentedLogTest, GarbageAfterTheLastRecordIsCleared) {
  { auto log = open(); append(*log, 100); }
  const std::string file = path("00000000000000000000.evtl");
  const uint64_t at = kFileHeaderSize + end_offset(99) + 8192;
  std::mt19937 rng(3);
  std::string garbage(500, '\0');
  for (char& c : garbage) c = static_cast<char>(1 + rng() % 255);
  write_at(file, at, garbage);
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(log->end().seq, 100u);
  EXPECT_GT(report.cleared_bytes, 0u);
  EXPECT_TRUE(all_zero(file, at, at + garbage.size()));
}

TEST_F(SegmentedLogTest, ClearedGarbageDoesNotComeBackAfterMoreAppends) {
  { auto log = open(); append(*log, 100); }
  const std::string file = path("00000000000000000000.evtl");
  // Stale but valid records just past where the next 50 appends will end.
  uint64_t gap = 0;
  for (uint64_t seq = 100; seq < 150; ++seq) gap += padded_size(len_of(seq));
  std::string stale;
  for (uint64_t i = 0; i < 5; ++i) {
    const std::string p = payload_for(9000 + i, 30);
    const std::vector<std::byte> rec = encode(header_for(kT0 + 9000 + i, 1, p), p);
    stale.append(reinterpret_cast<const char*>(rec.data()), rec.size());
  }
  write_at(file, kFileHeaderSize + end_offset(99) + gap, stale);
  {
    RecoveryReport report;
    auto log = open(&report);
    EXPECT_GT(report.cleared_bytes, 0u);
    append(*log, 50);
  }
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(report.cleared_bytes, 0u);
  EXPECT_EQ(log->end().seq, 150u);
  expect_events(*log, 0, 150);
}

TEST_F(SegmentedLogTest, CorruptChecksumInTheActiveSegmentEndsTheLogThere) {
  { auto log = open(); append(*log, 100); }
  const std::string file = path("00000000000000000000.evtl");
  corrupt_byte(file, kFileHeaderSize + offsets_[40] + kHeaderSize + 3);
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(log->end(), (LogPosition{offsets_[40], 40}));
  EXPECT_THAT(report.problem, HasSubstr(file));
  EXPECT_THAT(report.problem, HasSubstr("checksum"));
  EXPECT_THAT(report.quarantined, IsEmpty());
}

TEST_F(SegmentedLogTest, CorruptChecksumMidLogQuarantinesLaterSegments) {
  { auto log = open(); append_segments(*log, 4); }
  const uint64_t k = 300;  // in the first segment
  const std::vector<std::string> files = segment_files();
  corrupt_byte(path(files[0]), kFileHeaderSize + offsets_[k] + kHeaderSize);
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(log->end(), (LogPosition{offsets_[k], k}));
  EXPECT_THAT(report.problem, HasSubstr(path(files[0])));
  EXPECT_THAT(report.problem, HasSubstr("checksum"));
  ASSERT_THAT(report.quarantined, SizeIs(files.size() - 1));
  for (size_t i = 0; i < report.quarantined.size(); ++i) {
    EXPECT_THAT(report.quarantined[i], StartsWith(path("quarantine/") + files[i + 1]));
    EXPECT_TRUE(fs::exists(report.quarantined[i]));
    EXPECT_FALSE(fs::exists(path(files[i + 1])));
  }
  forget_from(k);
  expect_events(*log, 0, k);
}

// After recovery cut the log inside a sealed segment, the events appended
// next must survive a restart.
TEST_F(SegmentedLogTest, AppendsAfterAMidLogCorruptionSurviveReopen) {
  { auto log = open(); append_segments(*log, 4); }
  const uint64_t k = 300;
  corrupt_byte(path(segment_files()[0]), kFileHeaderSize + offsets_[k] + kHeaderSize);
  {
    auto log = open();
    ASSERT_EQ(log->end().seq, k);
    forget_from(k);
    append(*log, 50, [](uint64_t s) { return kT0 + 1'000'000 + s; });
  }
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_THAT(report.problem, IsEmpty());
  EXPECT_THAT(report.quarantined, IsEmpty());
  EXPECT_EQ(log->end().seq, k + 50);
  expect_events(*log, 0, k + 50);
}

TEST_F(SegmentedLogTest, SegmentWhoseHeaderDisagreesWithItsNameIsQuarantined) {
  { auto log = open(); append_segments(*log, 3); }
  const std::vector<std::string> files = segment_files();
  FileHeader h = read_file_header(path(files[2]));
  h.base_offset += 8;
  write_file_header(path(files[2]), h);
  fix_file_header_checksum(path(files[2]));
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_THAT(report.problem, HasSubstr(path(files[2])));
  EXPECT_THAT(report.problem, HasSubstr("base offset"));
  EXPECT_THAT(report.quarantined, SizeIs(1));
  const uint64_t second_end = std::stoull(files[2].substr(0, 20));
  EXPECT_EQ(log->end().offset, second_end);
  uint64_t n = 0;
  while (n < offsets_.size() && offsets_[n] < second_end) ++n;
  forget_from(n);
  expect_events(*log, 0, n);
}

TEST_F(SegmentedLogTest, FileThatIsNotOursNamedLikeASegmentIsAClearError) {
  { auto log = open(); append(*log, 10); }
  const std::string alien = path("00000000000000999999.evtl");
  write_file(alien, std::string(4096, 'z'));
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), options());
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status_message(log.status()), HasSubstr(alien));
  EXPECT_THAT(status_message(log.status()), HasSubstr("not a ringlog segment"));
  EXPECT_EQ(read_file(alien), std::string(4096, 'z'));
}

TEST_F(SegmentedLogTest, ShortFileNamedLikeASegmentIsAClearError) {
  const std::string alien = path("00000000000000000000.evtl");
  write_file(alien, "tiny");
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), options());
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status_message(log.status()), HasSubstr(alien));
}

TEST_F(SegmentedLogTest, OtherFilesInTheDirectoryAreIgnored) {
  write_file(path("README"), "not a segment");
  write_file(path("0000.evtl"), "wrong name length");
  auto log = open();
  ASSERT_NE(log, nullptr);
  append(*log, 3);
  expect_events(*log, 0, 3);
}

TEST_F(SegmentedLogTest, LastSegmentThatWasNeverStartedIsReplaced) {
  { auto log = open(); append(*log, 10); }
  const std::string unstarted = path(absl::StrFormat("%020d.evtl", end_offset(9)));
  write_file(unstarted, std::string(kSegmentBytes, '\0'));
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_THAT(report.problem, HasSubstr("never started"));
  EXPECT_THAT(report.quarantined, IsEmpty());
  // The log goes on in a properly started segment at the same base offset.
  EXPECT_TRUE(read_file_header(unstarted).validate(unstarted).ok());
  EXPECT_EQ(read_file_header(unstarted).base_offset, end_offset(9));
  append(*log, 5);
  log.reset();
  RecoveryReport again;
  log = open(&again);
  EXPECT_THAT(again.problem, IsEmpty());
  expect_events(*log, 0, 15);
}

// ---- LogReader ----

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
