// The log's checkpoint (CHECKPOINT): recovery tells records it once held
// (synced, or committed) from a torn tail, and finds missing segment files.
#include <atomic>
#include <cstdint>
#include <thread>
#include <filesystem>
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
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;
using namespace ringlog_test;

class LogCheckpointTest : public SegmentedLogTest {
 protected:
  // A log of `segments` segments, every record synced.
  void synced_log(size_t segments) {
    auto log = open();
    append_segments(*log, segments);
    ASSERT_TRUE(log->sync().ok());
  }
};

TEST_F(LogCheckpointTest, DamageBelowTheDurableOffsetIsLossNotATornTail) {
  synced_log(2);
  const uint64_t last = offsets_.size() - 1;  // in the last segment
  const auto [file, at] = [&] { auto log = open(); return file_offset_of(*log, last); }();
  corrupt_byte(file, at + kHeaderSize);
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(log->end().offset, offsets_[last]);
  EXPECT_THAT(report.data_loss, HasSubstr("checksum"));
  EXPECT_EQ(report.lost_from, offsets_[last]);
  EXPECT_EQ(report.lost_to, end_offset(last));
  ASSERT_THAT(report.quarantined, SizeIs(1));
  EXPECT_THAT(report.quarantined[0], HasSubstr(".damaged."));
  ASSERT_TRUE(log->lost().has_value());
  EXPECT_EQ(log->lost()->from, offsets_[last]);
  EXPECT_EQ(log->lost()->to, end_offset(last));
  EXPECT_FALSE(log->lost()->at_start);
  // The loss is remembered at the next open, not forgotten after one cut.
  log.reset();
  RecoveryReport again;
  log = open(&again);
  EXPECT_EQ(again.lost_from, offsets_[last]);
  EXPECT_THAT(again.data_loss, Not(IsEmpty()));
}

TEST_F(LogCheckpointTest, ATornTailPastTheDurableOffsetIsCutQuietly) {
  uint64_t durable = 0;
  {
    auto log = open();
    append(*log, 200);
    ASSERT_TRUE(log->sync().ok());
    durable = log->end().offset;
    append(*log, 20);  // never synced: a crash may tear them
  }
  const uint64_t torn = offsets_.size() - 5;
  const auto [file, at] = [&] { auto log = open(); return file_offset_of(*log, torn); }();
  corrupt_byte(file, at + kHeaderSize);
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(log->end().offset, offsets_[torn]);
  EXPECT_GT(log->end().offset, durable);
  EXPECT_THAT(report.data_loss, IsEmpty());
  EXPECT_THAT(report.quarantined, IsEmpty());
  EXPECT_FALSE(log->lost().has_value());
}

TEST_F(LogCheckpointTest, CommittedRecordsAreOwedEvenWhenNotSyncedHere) {
  {
    auto log = open();
    append(*log, 100);
    log->note_committed(offsets_[60]);  // a replica learns commits before it syncs
  }
  const auto [file, at] = [&] { auto log = open(); return file_offset_of(*log, 30); }();
  corrupt_byte(file, at + kHeaderSize);
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(log->end().offset, offsets_[30]);
  EXPECT_EQ(report.lost_to, offsets_[60]);
  EXPECT_EQ(log->committed_offset(), offsets_[60]);
}

TEST_F(LogCheckpointTest, AMissingFirstSegmentIsLossButRetentionIsNot) {
  synced_log(4);
  const std::vector<std::string> files = segment_files();
  fs::remove(path(files[0]));
  RecoveryReport report;
  auto log = open(&report);
  ASSERT_TRUE(log->lost().has_value());
  EXPECT_TRUE(log->lost()->at_start);
  EXPECT_EQ(log->lost()->from, 0u);
  EXPECT_EQ(log->lost()->to, std::stoull(files[1].substr(0, 20)));
  EXPECT_THAT(report.data_loss, HasSubstr("missing"));
  EXPECT_THAT(report.problem, Not(IsEmpty()));  // verify says so too
}

TEST_F(LogCheckpointTest, SegmentsRemovedByRetentionAreNotLoss) {
  {
    LogOptions o = options();
    o.retention_bytes = 2 * kSegmentBytes;
    auto log = open(o);
    append_segments(*log, 6);
    ASSERT_TRUE(log->sync().ok());
    ASSERT_GT(*log->apply_retention(absl::Now()), 0u);
  }
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_GT(log->start().offset, 0u);
  EXPECT_THAT(report.data_loss, IsEmpty());
  EXPECT_THAT(report.problem, IsEmpty());
  EXPECT_FALSE(log->lost().has_value());
}

TEST_F(LogCheckpointTest, ARetentionCutShortByACrashIsFinishedAtOpen) {
  synced_log(4);
  const std::vector<std::string> files = segment_files();
  const std::string kept_copy = read_file(path(files[0]));
  {
    LogOptions o = options();
    o.retention_bytes = 1;  // drops every sealed segment
    auto log = open(o);
    ASSERT_GT(*log->apply_retention(absl::Now()), 0u);
  }
  // The checkpoint moved the start, but the first file came back (as if the
  // crash had come between the checkpoint and the delete).
  write_file(path(files[0]), kept_copy);
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_THAT(report.problem, IsEmpty());
  EXPECT_FALSE(fs::exists(path(files[0])));
  EXPECT_FALSE(log->lost().has_value());
}

TEST_F(LogCheckpointTest, AMissingLastSegmentIsLoss) {
  synced_log(3);
  const std::vector<std::string> files = segment_files();
  fs::remove(path(files.back()));
  RecoveryReport report;
  auto log = open(&report);
  ASSERT_TRUE(log->lost().has_value());
  EXPECT_FALSE(log->lost()->at_start);
  EXPECT_EQ(log->lost()->from, std::stoull(files.back().substr(0, 20)));
  EXPECT_EQ(log->lost()->to, end_offset(offsets_.size() - 1));
  EXPECT_THAT(report.data_loss, HasSubstr("missing"));
}

TEST_F(LogCheckpointTest, AMissingMiddleSegmentIsLossAndTheRestIsKeptAside) {
  synced_log(4);
  const std::vector<std::string> files = segment_files();
  fs::remove(path(files[1]));
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_EQ(log->end().offset, std::stoull(files[1].substr(0, 20)));
  ASSERT_TRUE(log->lost().has_value());
  EXPECT_EQ(log->lost()->to, end_offset(offsets_.size() - 1));
  EXPECT_THAT(report.problem, HasSubstr(files[2].substr(0, 20)));
  EXPECT_THAT(report.quarantined, SizeIs(2));
}

TEST_F(LogCheckpointTest, ADamagedSegmentHeaderIsLossNotARefusalToOpen) {
  synced_log(4);
  const std::vector<std::string> files = segment_files();
  corrupt_byte(path(files[2]), 20);  // in the header's base seq
  RecoveryReport report;
  auto log = open(&report);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(log->end().offset, std::stoull(files[2].substr(0, 20)));
  EXPECT_THAT(report.problem, HasSubstr("checksum"));
  ASSERT_TRUE(log->lost().has_value());
  // The damaged file and the one after it are moved aside, as they were.
  ASSERT_THAT(report.quarantined, SizeIs(2));
  EXPECT_THAT(report.quarantined[0], StartsWith(path("quarantine/") + files[2]));
  EXPECT_NE(read_file_header(report.quarantined[0]).checksum,
            read_file_header(report.quarantined[0]).compute_checksum());
}

TEST_F(LogCheckpointTest, AcceptedLossIsForgottenForGood) {
  synced_log(3);
  fs::remove(path(segment_files().back()));
  {
    auto log = open();
    ASSERT_TRUE(log->lost().has_value());
    ASSERT_TRUE(log->accept_loss().ok());
    EXPECT_FALSE(log->lost().has_value());
  }
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_THAT(report.problem, IsEmpty());
  EXPECT_FALSE(log->lost().has_value());
}

TEST_F(LogCheckpointTest, ATornCheckpointWriteLeavesTheOtherCopy) {
  synced_log(2);
  {
    auto log = open();
    append(*log, 10);
    ASSERT_TRUE(log->sync().ok());
  }
  // Garble one of the two 64-byte copies, whichever was written last.
  const std::string ck = read_file(path("CHECKPOINT"));
  ASSERT_THAT(ck, SizeIs(128));
  write_at(path("CHECKPOINT"), 0, std::string(64, '\x5a'));
  fs::remove(path(segment_files().back()));
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_TRUE(log->lost().has_value());  // still knows what it held
}

TEST_F(LogCheckpointTest, TruncationForgetsWhatItCuts) {
  synced_log(3);
  {
    auto log = open();
    log->note_committed(offsets_[50]);
    ASSERT_TRUE(log->truncate(offsets_[40]).ok());
  }
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_THAT(report.problem, IsEmpty());
  EXPECT_FALSE(log->lost().has_value());
  EXPECT_EQ(log->end().offset, offsets_[40]);
  EXPECT_EQ(log->committed_offset(), offsets_[40]);
}

// The commit offset comes from another thread than the writer's (the
// node's notifier) while the writer appends, rolls and syncs.
TEST_F(LogCheckpointTest, CommitsNotedFromAnotherThreadWhileTheWriterSyncs) {
  std::atomic<uint64_t> end{0};
  std::atomic<bool> done{false};
  {
    auto log = open();
    std::thread noter([&] {
      while (!done.load(std::memory_order_acquire)) {
        log->note_committed(end.load(std::memory_order_acquire));
      }
    });
    for (int i = 0; i < 40; ++i) {
      append(*log, 50);
      ASSERT_TRUE(log->sync().ok());
      end.store(log->end().offset, std::memory_order_release);
    }
    done.store(true, std::memory_order_release);
    noter.join();
    log->note_committed(log->end().offset);
  }
  RecoveryReport report;
  auto log = open(&report);
  EXPECT_THAT(report.problem, IsEmpty());
  EXPECT_EQ(log->committed_offset(), log->end().offset);
  EXPECT_GT(log->segment_count(), 1u);
}

TEST_F(LogCheckpointTest, ReadOnlyOpenReportsLossAndChangesNothing) {
  synced_log(3);
  fs::remove(path(segment_files().back()));
  const auto before = snapshot();
  LogOptions o = options();
  o.read_only = true;
  RecoveryReport report;
  auto log = open(o, &report);
  EXPECT_THAT(report.data_loss, HasSubstr("missing"));
  EXPECT_EQ(snapshot(), before);
}

}  // namespace
}  // namespace ringlog
