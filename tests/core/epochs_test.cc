// EpochHistory: load, append, replace, truncate, end_of, and the file on disk.
#include "ringlog/epochs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace ringlog {
namespace {

using ::ringlog_test::TempDirTest;
using ::testing::HasSubstr;

class EpochHistoryTest : public TempDirTest {};

TEST_F(EpochHistoryTest, FreshDirectoryStartsAtEpochZeroFromOffsetZero) {
  absl::StatusOr<EpochHistory> h = EpochHistory::Load(dir());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->current(), 0u);
  EXPECT_EQ(h->entries(), (std::vector<EpochEntry>{{0, 0}}));
}

TEST_F(EpochHistoryTest, AppendIsKeptAcrossLoads) {
  ASSERT_TRUE(EpochHistory::Load(dir())->append(1, 100).ok());
  absl::StatusOr<EpochHistory> h = EpochHistory::Load(dir());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->entries(), (std::vector<EpochEntry>{{0, 0}, {1, 100}}));
  EXPECT_EQ(h->current(), 1u);
}

TEST_F(EpochHistoryTest, AppendMustRaiseTheEpoch) {
  EpochHistory h = *EpochHistory::Load(dir());
  ASSERT_TRUE(h.append(2, 50).ok());
  const absl::Status s = h.append(2, 80);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("not above"));
}

TEST_F(EpochHistoryTest, AnEpochWithNoRecordsIsReplacedByTheNextAtTheSameOffset) {
  EpochHistory h = *EpochHistory::Load(dir());
  ASSERT_TRUE(h.append(1, 100).ok());
  ASSERT_TRUE(h.append(2, 100).ok());
  EXPECT_EQ(h.entries(), (std::vector<EpochEntry>{{0, 0}, {2, 100}}));
}

TEST_F(EpochHistoryTest, EndOfAnEpochIsWhereTheNextStarts) {
  EpochHistory h = *EpochHistory::Load(dir());
  ASSERT_TRUE(h.append(1, 100).ok());
  ASSERT_TRUE(h.append(3, 250).ok());
  EXPECT_EQ(h.end_of(0, 999), 100u);
  EXPECT_EQ(h.end_of(1, 999), 250u);
  EXPECT_EQ(h.end_of(3, 999), 999u);  // the last epoch ends at the log's end
  EXPECT_EQ(h.end_of(2, 999), 250u);  // unknown: where the first later epoch starts
}

TEST_F(EpochHistoryTest, TruncateAfterDropsEpochsThatStartBeyond) {
  EpochHistory h = *EpochHistory::Load(dir());
  ASSERT_TRUE(h.append(1, 100).ok());
  ASSERT_TRUE(h.append(2, 200).ok());
  ASSERT_TRUE(h.truncate_after(150).ok());
  EXPECT_EQ(h.entries(), (std::vector<EpochEntry>{{0, 0}, {1, 100}}));
  EXPECT_EQ(EpochHistory::Load(dir())->entries(), h.entries());
}

TEST_F(EpochHistoryTest, ReplaceAdoptsAnotherHistory) {
  EpochHistory h = *EpochHistory::Load(dir());
  ASSERT_TRUE(h.replace({{0, 0}, {4, 40}}).ok());
  EXPECT_EQ(EpochHistory::Load(dir())->entries(), (std::vector<EpochEntry>{{0, 0}, {4, 40}}));
  EXPECT_EQ(h.replace({}).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EpochHistoryTest, MalformedFileIsDataLossNamingTheLine) {
  ringlog_test::write_file(path("EPOCHS"), "# epoch start_offset\n0 0\nthree 7\n");
  absl::StatusOr<EpochHistory> h = EpochHistory::Load(dir());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(h.status().message()), HasSubstr("EPOCHS:3"));
}

// A file of garbage is named, shown escaped and cut short, never dumped raw
// into the log, and the message says what to do.
TEST_F(EpochHistoryTest, GarbageFileIsShownEscapedWithWhatToDo) {
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 151 + 7) % 256);
  garbage[0] = 'x';
  ringlog_test::write_file(path("EPOCHS"), garbage);
  absl::StatusOr<EpochHistory> h = EpochHistory::Load(dir());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kDataLoss);
  const std::string m(h.status().message());
  EXPECT_THAT(m, HasSubstr("EPOCHS:1"));
  EXPECT_THAT(m, HasSubstr("copy EPOCHS from a replica"));
  EXPECT_LT(m.size(), 600u);
  for (char c : m) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "raw byte " << static_cast<int>(c);
}

TEST_F(EpochHistoryTest, EpochsThatGoBackwardsAreDataLoss) {
  ringlog_test::write_file(path("EPOCHS"), "0 0\n2 100\n1 200\n");
  EXPECT_EQ(EpochHistory::Load(dir()).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ringlog
