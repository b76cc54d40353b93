// SegmentedLog: opening, appending, reopening, rolling segments, syncing, the
// directory lock and read-only opens.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ringlog/segmented_log.h"
#include "segmented_log_fixture.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace ringlog_test;

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
  const std::vector<std::byte> batch = batch_of(5);
  const AppendResult r = log->append(batch);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.bytes, batch.size());
  EXPECT_EQ(r.events, 5u);
  expect_events(*log, 0, 5);
}

TEST_F(SegmentedLogTest, AppendBatchRollsAcrossSegments) {
  auto log = open();
  const std::vector<std::byte> batch = batch_of(3000);
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

}  // namespace
}  // namespace ringlog
