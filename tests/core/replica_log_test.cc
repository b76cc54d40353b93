// A log copied the way a replica copies it (SegmentedLog::start_segment plus
// append without rolling) is byte-identical to the original.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "ringlog/storage.h"
#include "test_util.h"

namespace ringlog {
namespace {

namespace fs = std::filesystem;
using ::ringlog_test::TempDirTest;

class ReplicaLogTest : public TempDirTest {
 protected:
  LogOptions options() const {
    LogOptions o;
    o.segment_bytes = 128 << 10;
    return o;
  }
  std::unique_ptr<SegmentedLog> open(const std::string& sub) {
    absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(path(sub), options());
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }
  static void fill(SegmentedLog& log, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      const std::string p = ringlog_test::payload_for(i, 8 + i % 90);
      ASSERT_TRUE(log.append_event(ringlog_test::header_for(1000 + i, 1, p), as_bytes(p)).ok());
    }
  }
  // Copies `from` into `to` as a replica does, in slices of at most `chunk` bytes.
  static void copy(const SegmentedLog& from, SegmentedLog& to, size_t chunk) {
    LogReader reader(from, to.end());
    while (std::optional<LogSlice> s = reader.next_slice(from.end().offset, chunk)) {
      if (s->starts_segment) {
        ASSERT_TRUE(to.start_segment(*s->segment_header).ok());
      }
      const AppendResult r = to.append(s->records.bytes, /*auto_roll=*/false);
      ASSERT_TRUE(r.status.ok()) << r.status;
    }
  }
  std::vector<std::string> files(const std::string& sub) const {
    std::vector<std::string> out;
    for (const fs::directory_entry& e : fs::directory_iterator(path(sub))) {
      if (e.path().extension() == ".evtl") out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(ReplicaLogTest, CopiedLogIsByteIdenticalAcrossSegments) {
  auto primary = open("p");
  auto replica = open("r");
  fill(*primary, 8000);
  ASSERT_GT(primary->segment_count(), 3u);
  copy(*primary, *replica, 4096);
  EXPECT_EQ(replica->end(), primary->end());
  primary.reset();
  replica.reset();
  ASSERT_EQ(files("p"), files("r"));
  for (const std::string& f : files("p")) {
    EXPECT_EQ(ringlog_test::read_file(path("p/" + f)), ringlog_test::read_file(path("r/" + f))) << f;
  }
}

TEST_F(ReplicaLogTest, CopyingInTwoGoesAfterAReopenStaysIdentical) {
  auto primary = open("p");
  fill(*primary, 2000);
  {
    auto replica = open("r");
    copy(*primary, *replica, 1 << 20);
  }
  fill(*primary, 3000);
  {
    auto replica = open("r");  // recovered, then resumes from its end
    copy(*primary, *replica, 1 << 20);
    EXPECT_EQ(replica->end(), primary->end());
  }
  primary.reset();
  for (const std::string& f : files("p")) {
    EXPECT_EQ(ringlog_test::read_file(path("p/" + f)), ringlog_test::read_file(path("r/" + f))) << f;
  }
}

TEST_F(ReplicaLogTest, ASegmentStartedAgainKeepsEveryEarlierSegment) {
  // A replica rolled to a new, empty segment, then the chunk that was to fill
  // it was refused; the primary sends the segment's header again.
  auto primary = open("p");
  fill(*primary, 8000);
  const std::vector<SegmentInfo> segs = primary->segments();
  ASSERT_GT(segs.size(), 2u);
  auto replica = open("r");
  LogReader reader(*primary, replica->end());
  const FileHeader* second = nullptr;
  while (std::optional<LogSlice> s = reader.next_slice(segs[1].base_offset, 1 << 20)) {
    if (s->starts_segment) {
      ASSERT_TRUE(replica->start_segment(*s->segment_header).ok());
    }
    ASSERT_TRUE(replica->append(s->records.bytes, false).status.ok());
  }
  absl::StatusOr<LogSlice> at_second =
      primary->read(replica->end(), primary->end().offset, 1 << 20);
  ASSERT_TRUE(at_second.ok());
  ASSERT_TRUE(at_second->starts_segment);
  second = at_second->segment_header;
  ASSERT_TRUE(replica->start_segment(*second).ok());  // rolls to an empty segment
  ASSERT_TRUE(replica->start_segment(*second).ok());  // the same again
  EXPECT_EQ(replica->start().offset, 0u);
  EXPECT_EQ(replica->segment_count(), 2u);
  copy(*primary, *replica, 1 << 20);
  EXPECT_EQ(replica->end(), primary->end());
  EXPECT_EQ(replica->segment_count(), primary->segment_count());
}

TEST_F(ReplicaLogTest, AHeaderThatDoesNotStartAtTheEndIsRefused) {
  auto primary = open("p");
  auto replica = open("r");
  fill(*primary, 3000);
  fill(*replica, 10);
  const FileHeader h =
      *primary->read(primary->start(), primary->end().offset, 1 << 20)->segment_header;
  const absl::Status s = replica->start_segment(h);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(replica->end().seq, 10u);
}

TEST_F(ReplicaLogTest, AnEmptyLogStartsOverWhereThePrimarysLogStarts) {
  auto primary = open("p");
  fill(*primary, 5000);
  std::vector<SegmentInfo> segs = primary->segments();
  ASSERT_GT(segs.size(), 2u);
  // The primary's log as retention left it: from its third segment on.
  absl::StatusOr<LogSlice> third = primary->read(LogPosition{segs[2].base_offset, segs[2].base_seq},
                                                 primary->end().offset, 1 << 20);
  ASSERT_TRUE(third.ok());
  auto replica = open("r");
  ASSERT_TRUE(replica->start_segment(*third->segment_header).ok());
  EXPECT_EQ(replica->start(), (LogPosition{segs[2].base_offset, segs[2].base_seq}));
  EXPECT_EQ(replica->end(), replica->start());
  copy(*primary, *replica, 1 << 16);
  EXPECT_EQ(replica->end(), primary->end());
}

}  // namespace
}  // namespace ringlog
