// Applying a chunk from the primary to a replica's log (replica/apply_chunk.h):
// a good chunk is appended where the log ends, a chunk with a bad checksum or
// one that leaves a gap is refused and writes nothing, and a chunk that starts
// a segment makes the replica start that very segment (DESIGN.md,
// "Replication", steps 3 and 4).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apply_chunk.h"
#include "ringlog/storage.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ::ringlog_test::TempDirTest;

class ApplyChunk : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    primary_ = open("primary");
    replica_ = open("replica");
  }
  std::unique_ptr<SegmentedLog> open(const std::string& sub) {
    LogOptions o;
    o.segment_bytes = 128 << 10;
    absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(path(sub), o);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }
  // Appends n events to the primary's log.
  void write_on_primary(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      const std::string p = ringlog_test::payload_for(i, 40 + i % 200);
      ASSERT_TRUE(primary_->append_event(ringlog_test::header_for(1000 + i, 1, p), as_bytes(p)).ok());
    }
  }
  // The primary's chunks from `from` on, as its Follow stream cuts them.
  std::vector<v1::Chunk> chunks_from(LogPosition from, size_t max_bytes = 4096) const {
    std::vector<v1::Chunk> out;
    LogReader reader(*primary_, from);
    while (std::optional<LogSlice> s = reader.next_slice(primary_->end().offset, max_bytes)) {
      v1::Chunk& c = out.emplace_back();
      c.set_start_offset(s->position.offset);
      c.set_start_seq(s->position.seq);
      if (s->starts_segment) {
        c.mutable_segment()->set_header(reinterpret_cast<const char*>(s->segment_header),
                                        sizeof(FileHeader));
      }
      c.set_records(reinterpret_cast<const char*>(s->records.bytes.data()), s->records.bytes.size());
    }
    return out;
  }
  // The first chunk without a segment header.
  v1::Chunk plain_chunk() const {
    for (const v1::Chunk& c : chunks_from(primary_->start())) {
      if (!c.has_segment()) return c;
    }
    ADD_FAILURE() << "every chunk starts a segment";
    return v1::Chunk();
  }

  std::unique_ptr<SegmentedLog> primary_;
  std::unique_ptr<SegmentedLog> replica_;
};

TEST_F(ApplyChunk, GoodChunkIsAppendedWhereTheLogEnds) {
  write_on_primary(20);
  const v1::Chunk first = chunks_from(primary_->start(), 1 << 20).front();
  absl::StatusOr<LogPosition> at = apply_chunk(*replica_, first);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(*at, (LogPosition{0, 0}));
  EXPECT_EQ(replica_->end(), primary_->end());
}

TEST_F(ApplyChunk, EveryChunkInTurnGivesTheSameLogAcrossSegments) {
  write_on_primary(3000);
  ASSERT_GT(primary_->segment_count(), 2u);
  for (const v1::Chunk& c : chunks_from(primary_->start())) {
    absl::StatusOr<LogPosition> at = apply_chunk(*replica_, c);
    ASSERT_TRUE(at.ok()) << at.status();
    EXPECT_EQ(at->offset, c.start_offset());
  }
  EXPECT_EQ(replica_->end(), primary_->end());
  EXPECT_EQ(replica_->segment_count(), primary_->segment_count());
}

TEST_F(ApplyChunk, BadChecksumIsRefusedAndWritesNothing) {
  write_on_primary(20);
  v1::Chunk c = chunks_from(primary_->start(), 1 << 20).front();
  (*c.mutable_records())[kHeaderSize + 3] ^= 0x01;  // a payload byte of the first record
  absl::StatusOr<LogPosition> at = apply_chunk(*replica_, c);
  EXPECT_EQ(at.status().code(), absl::StatusCode::kDataLoss) << at.status();
  EXPECT_EQ(replica_->end(), (LogPosition{0, 0}));
}

TEST_F(ApplyChunk, ChunkLeavingAGapIsRefusedAndWritesNothing) {
  write_on_primary(200);
  const v1::Chunk later = plain_chunk();
  ASSERT_GT(later.start_offset(), 0u);
  absl::StatusOr<LogPosition> at = apply_chunk(*replica_, later);
  EXPECT_EQ(at.status().code(), absl::StatusCode::kFailedPrecondition) << at.status();
  EXPECT_EQ(replica_->end(), (LogPosition{0, 0}));
}

TEST_F(ApplyChunk, SegmentHeaderAtAnotherPositionIsRefusedAndStartsNothing) {
  write_on_primary(20);
  v1::Chunk c = chunks_from(primary_->start(), 1 << 20).front();
  ASSERT_TRUE(c.has_segment());
  c.set_start_offset(c.start_offset() + 8);
  absl::StatusOr<LogPosition> at = apply_chunk(*replica_, c);
  EXPECT_EQ(at.status().code(), absl::StatusCode::kDataLoss) << at.status();
  EXPECT_EQ(replica_->end(), (LogPosition{0, 0}));
  EXPECT_EQ(replica_->segment_count(), 1u);
}

TEST_F(ApplyChunk, ShortSegmentHeaderIsRefused) {
  write_on_primary(20);
  v1::Chunk c = chunks_from(primary_->start(), 1 << 20).front();
  c.mutable_segment()->mutable_header()->resize(sizeof(FileHeader) - 1);
  absl::StatusOr<LogPosition> at = apply_chunk(*replica_, c);
  EXPECT_EQ(at.status().code(), absl::StatusCode::kDataLoss) << at.status();
  EXPECT_EQ(replica_->end(), (LogPosition{0, 0}));
}

// Found by fuzz/apply_chunk: the segment was started, then the records
// did not fit in it.
TEST_F(ApplyChunk, ChunkLargerThanTheSegmentItStartsIsRefusedAndStartsNothing) {
  write_on_primary(20);
  v1::Chunk c = chunks_from(primary_->start(), 1 << 20).front();
  FileHeader h;
  std::memcpy(&h, c.segment().header().data(), sizeof h);
  h.file_size = kFileHeaderSize + 64;
  h.fill_checksum();
  c.mutable_segment()->set_header(reinterpret_cast<const char*>(&h), sizeof h);
  absl::StatusOr<LogPosition> at = apply_chunk(*replica_, c);
  EXPECT_EQ(at.status().code(), absl::StatusCode::kDataLoss) << at.status();
  EXPECT_EQ(replica_->end(), (LogPosition{0, 0}));
  EXPECT_EQ(replica_->segments().front().file_bytes, uint64_t{128} << 10);
}

TEST_F(ApplyChunk, SegmentStartWithoutRecordsStartsTheSegmentOnly) {
  write_on_primary(3000);
  std::vector<v1::Chunk> chunks = chunks_from(primary_->start());
  size_t k = 1;
  while (k < chunks.size() && !chunks[k].has_segment()) ++k;
  ASSERT_LT(k, chunks.size()) << "the primary has one segment";
  for (size_t i = 0; i < k; ++i) ASSERT_TRUE(apply_chunk(*replica_, chunks[i]).ok());
  const size_t segments = replica_->segment_count();
  chunks[k].clear_records();
  absl::StatusOr<LogPosition> at = apply_chunk(*replica_, chunks[k]);
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->offset, chunks[k].start_offset());
  EXPECT_EQ(replica_->end().offset, chunks[k].start_offset());
  EXPECT_EQ(replica_->segment_count(), segments + 1);
}

}  // namespace
}  // namespace ringlog
