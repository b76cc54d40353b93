// SegmentedLog recovery on open: torn tails, garbage and corrupt records,
// quarantined segments, and files in the directory that are not segments.
#include <cstdint>
#include <filesystem>
#include <random>
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
using ::testing::SizeIs;
using ::testing::StartsWith;
using namespace ringlog_test;

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
  BatchBuilder stale;
  for (uint64_t i = 0; i < 5; ++i) {
    const std::string p = payload_for(9000 + i, 30);
    stale.add(header_for(kT0 + 9000 + i, 1, p), p);
  }
  write_at(file, kFileHeaderSize + end_offset(99) + gap, to_string(stale.bytes()));
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

// Damage in a segment that others follow is never a torn tail: the damaged
// file is copied aside, the later ones moved aside, and the loss reported.
TEST_F(SegmentedLogTest, CorruptChecksumMidLogQuarantinesLaterSegments) {
  { auto log = open(); append_segments(*log, 4); }
  const uint64_t k = 300;  // in the first segment
  const std::vector<std::string> files = segment_files();
  const std::string damaged = read_file(path(files[0]));
  corrupt_byte(path(files[0]), kFileHeaderSize + offsets_[k] + kHeaderSize);
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(log->end(), (LogPosition{offsets_[k], k}));
  EXPECT_THAT(report.problem, HasSubstr(path(files[0])));
  EXPECT_THAT(report.problem, HasSubstr("checksum"));
  EXPECT_THAT(report.data_loss, HasSubstr("checksum"));
  EXPECT_EQ(report.lost_from, offsets_[k]);
  ASSERT_THAT(report.quarantined, SizeIs(files.size()));
  EXPECT_THAT(report.quarantined[0], StartsWith(path("quarantine/") + files[0] + ".damaged."));
  EXPECT_NE(read_file(report.quarantined[0]), damaged);  // the damaged bytes, as found
  EXPECT_EQ(read_file(report.quarantined[0]).size(), damaged.size());
  for (size_t i = 1; i < report.quarantined.size(); ++i) {
    EXPECT_THAT(report.quarantined[i], StartsWith(path("quarantine/") + files[i]));
    EXPECT_TRUE(fs::exists(report.quarantined[i]));
    EXPECT_FALSE(fs::exists(path(files[i])));
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
    ASSERT_TRUE(log->lost().has_value());
    ASSERT_TRUE(log->accept_loss().ok());  // goes on without the lost records
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

}  // namespace
}  // namespace ringlog
