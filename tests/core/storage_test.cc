// MmapWriter and MmapReader: one segment file with the seed's interface, and
// the recovery every segment file gets when it is opened.
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ringlog/storage.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace ringlog_test;

constexpr uint64_t kFileBytes = 1 << 20;

class MmapStorageTest : public TempDirTest {
 protected:
  std::string file() const { return path("events.evtl"); }

  MmapWriter create(uint64_t capacity = kFileBytes) {
    absl::StatusOr<MmapWriter> w = MmapWriter::Create(file(), capacity);
    EXPECT_TRUE(w.ok()) << w.status();
    return std::move(*w);
  }
  MmapWriter reopen(RecoveryReport* report = nullptr) {
    absl::StatusOr<MmapWriter> w = MmapWriter::Open(file(), report);
    EXPECT_TRUE(w.ok()) << w.status();
    return std::move(*w);
  }
  MmapReader reader() {
    absl::StatusOr<MmapReader> r = MmapReader::Open(file());
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }

  static size_t len_of(uint64_t seq) { return 1 + (seq * 37) % 120; }

  // Writes events first..first+n-1 and remembers each record's file offset.
  void write_events(MmapWriter& w, uint64_t first, uint64_t n) {
    for (uint64_t seq = first; seq < first + n; ++seq) {
      const std::string p = payload_for(seq, len_of(seq));
      record_offsets_.push_back(kFileHeaderSize + w.write_offset());
      ASSERT_TRUE(w.write_event(header_for(seq, 1, p), as_bytes(p)).ok()) << seq;
    }
  }
  // File offset of record `seq`, and the end of its padding.
  uint64_t offset_of(uint64_t seq) const { return record_offsets_.at(seq); }
  uint64_t end_of(uint64_t seq) const { return offset_of(seq) + padded_size(len_of(seq)); }

  // Checks that the file holds exactly events 0..n-1.
  void expect_events(uint64_t n) {
    MmapReader r = reader();
    uint64_t seq = 0;
    for (const EventView& ev : r) {
      ASSERT_LT(seq, n);
      EXPECT_EQ(ev.timestamp(), seq);
      EXPECT_TRUE(payload_matches(seq, ev.payload)) << seq;
      EXPECT_EQ(ev.payload.size(), len_of(seq)) << seq;
      ++seq;
    }
    EXPECT_EQ(seq, n);
    EXPECT_EQ(r.event_count(), n);
  }

  std::vector<uint64_t> record_offsets_;
};

// ---- The seed's tests ----

TEST_F(MmapStorageTest, CreateAndWrite) {
  MmapWriter w = create();
  EXPECT_EQ(file_size(file()), kFileBytes);
  EXPECT_EQ(w.capacity(), kFileBytes - kFileHeaderSize);
  write_events(w, 0, 3);
  EXPECT_EQ(w.event_count(), 3u);
  EXPECT_EQ(w.write_offset(), padded_size(len_of(0)) + padded_size(len_of(1)) +
                                  padded_size(len_of(2)));
}

TEST_F(MmapStorageTest, CreateWritesAValidFileHeader) {
  MmapWriter w = create();
  const FileHeader h = read_file_header(file());
  EXPECT_EQ(std::string(h.magic, 4), "EVTL");
  EXPECT_EQ(h.version, kFileVersion);
  EXPECT_EQ(h.header_size, kFileHeaderSize);
  EXPECT_EQ(h.file_size, kFileBytes);
  EXPECT_GT(h.created_ns, 0u);
  EXPECT_TRUE(h.validate(file()).ok());
}

// Found by fuzz/segment_recovery: a segment at offset 2^64 - 1 wrapped its
// records' offsets around to 0.
TEST(FileHeader, BasePositionThatWouldWrapIsCorrupt) {
  FileHeader h;
  h.base_offset = UINT64_MAX;
  h.fill_checksum();
  EXPECT_EQ(h.validate("f").code(), absl::StatusCode::kDataLoss);
  h.base_offset = kMaxBasePosition;
  h.base_seq = kMaxBasePosition + 1;
  h.fill_checksum();
  EXPECT_EQ(h.validate("f").code(), absl::StatusCode::kDataLoss);
  h.base_seq = kMaxBasePosition;
  h.fill_checksum();
  EXPECT_TRUE(h.validate("f").ok());
}

TEST_F(MmapStorageTest, WriteAndReadBack) {
  {
    MmapWriter w = create();
    write_events(w, 0, 100);
    ASSERT_TRUE(w.sync().ok());
  }
  expect_events(100);
  EXPECT_THAT(reader().problem(), IsEmpty());
}

TEST_F(MmapStorageTest, IteratorWorks) {
  MmapWriter w = create();
  write_events(w, 0, 10);
  MmapReader r = reader();
  EXPECT_EQ(std::distance(r.begin(), r.end()), 10);
  MmapReader::Iterator it = r.begin();
  EXPECT_EQ((*it).timestamp(), 0u);
  ++it;
  EXPECT_EQ((*it++).timestamp(), 1u);
  EXPECT_EQ((*it).timestamp(), 2u);
  // Zero copy: the payload sits right after its header in the mapping.
  const EventView ev = *it;
  EXPECT_EQ(ev.payload.data(), reinterpret_cast<const std::byte*>(ev.header) + kHeaderSize);
}

TEST_F(MmapStorageTest, ReplayVisitsEveryEventInOrder) {
  MmapWriter w = create();
  write_events(w, 0, 25);
  std::vector<uint64_t> seen;
  EXPECT_EQ(reader().replay([&](const EventView& ev) { seen.push_back(ev.timestamp()); }), 25u);
  ASSERT_EQ(seen.size(), 25u);
  for (uint64_t i = 0; i < 25; ++i) EXPECT_EQ(seen[i], i);
}

TEST_F(MmapStorageTest, EmptyFileReadsNoEvents) {
  MmapWriter w = create();
  MmapReader r = reader();
  EXPECT_EQ(r.event_count(), 0u);
  EXPECT_EQ(r.begin(), r.end());
}

TEST_F(MmapStorageTest, ReopenExistingFileKeepsEventsAndAppendsAfter) {
  {
    MmapWriter w = create();
    write_events(w, 0, 5);
  }
  MmapWriter w = reopen();
  EXPECT_EQ(w.event_count(), 5u);
  EXPECT_EQ(w.write_offset(), end_of(4) - kFileHeaderSize);
  write_events(w, 5, 3);
  EXPECT_EQ(offset_of(5), end_of(4));
  expect_events(8);
}

TEST_F(MmapStorageTest, ReopenTwiceAcrossRestarts) {
  { MmapWriter w = create(); write_events(w, 0, 4); }
  { MmapWriter w = reopen(); write_events(w, 4, 4); }
  { MmapWriter w = reopen(); write_events(w, 8, 4); }
  expect_events(12);
}

TEST_F(MmapStorageTest, BufferFullReturnsNotEnoughSpace) {
  MmapWriter w = create(kFileHeaderSize + 256);
  const std::string p(48, 'x');  // 64-byte records
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(w.write_event(EventHeader(i, 1, 48), as_bytes(p)).ok());
  const WriteResult r = w.write_event(EventHeader(4, 1, 48), as_bytes(p));
  EXPECT_EQ(r.code(), RingErrorCode::kNotEnoughSpace);
  EXPECT_EQ(r.required(), 64u);
  EXPECT_EQ(r.available(), 0u);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(w.event_count(), 4u);
  EXPECT_EQ(w.write_offset(), 256u);
}

TEST_F(MmapStorageTest, FullFileWritesNothing) {
  MmapWriter w = create(kFileHeaderSize + 100);  // 96 record bytes
  const std::string p(48, 'x');
  ASSERT_TRUE(w.write_event(EventHeader(0, 1, 48), as_bytes(p)).ok());
  const WriteResult r = w.write_event(EventHeader(1, 1, 48), as_bytes(p));
  EXPECT_EQ(r.code(), RingErrorCode::kNotEnoughSpace);
  EXPECT_EQ(r.available(), 32u);
  EXPECT_EQ(w.event_count(), 1u);
  EXPECT_TRUE(all_zero(file(), kFileHeaderSize + 64, kFileHeaderSize + 100));
}

TEST_F(MmapStorageTest, InvalidFileReturnsErrorNamingThePath) {
  write_file(file(), std::string(4096, 'A'));
  absl::StatusOr<MmapReader> r = MmapReader::Open(file());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status_message(r.status()), HasSubstr(file()));
  EXPECT_THAT(status_message(r.status()), HasSubstr("not a ringlog segment file"));
}

TEST_F(MmapStorageTest, InvalidFileIsNotModifiedByWriterOpen) {
  const std::string junk(4096, 'A');
  write_file(file(), junk);
  absl::StatusOr<MmapWriter> w = MmapWriter::Open(file());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status_message(w.status()), HasSubstr(file()));
  EXPECT_EQ(read_file(file()), junk);
}

TEST_F(MmapStorageTest, FileShorterThanHeaderIsRejected) {
  write_file(file(), "EVTL short");
  absl::StatusOr<MmapWriter> w = MmapWriter::Open(file());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status_message(w.status()), HasSubstr(file()));
  EXPECT_THAT(status_message(w.status()), HasSubstr("shorter than the 64-byte header"));
}

TEST_F(MmapStorageTest, MissingFileIsNotFound) {
  absl::StatusOr<MmapReader> r = MmapReader::Open(file());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status_message(r.status()), HasSubstr(file()));
}

TEST_F(MmapStorageTest, HeaderChecksumMismatchIsDataLoss) {
  { MmapWriter w = create(); }
  corrupt_byte(file(), offsetof(FileHeader, created_ns));
  absl::StatusOr<MmapReader> r = MmapReader::Open(file());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status_message(r.status()), HasSubstr("checksum"));
}

TEST_F(MmapStorageTest, UnsupportedVersionIsRejected) {
  { MmapWriter w = create(); }
  FileHeader h = read_file_header(file());
  h.version = 2;
  write_file_header(file(), h);
  fix_file_header_checksum(file());
  absl::StatusOr<MmapReader> r = MmapReader::Open(file());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status_message(r.status()), HasSubstr("version 2"));
}

TEST_F(MmapStorageTest, CapacityTooSmallForAHeaderIsInvalid) {
  absl::StatusOr<MmapWriter> w = MmapWriter::Create(file(), 70);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(w.status()), HasSubstr("70"));
}

// ---- Bad input ----

TEST_F(MmapStorageTest, PayloadOver65535IsPayloadTooLarge) {
  MmapWriter w = create();
  const std::string big(kMaxPayload + 1, 'x');
  const WriteResult r = w.write_event(EventHeader(1, 1, 0), as_bytes(big));
  EXPECT_EQ(r.code(), RingErrorCode::kPayloadTooLarge);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(w.event_count(), 0u);
}

TEST_F(MmapStorageTest, LengthMismatchWritesNothing) {
  MmapWriter w = create();
  const std::string p = "abc";
  EXPECT_EQ(w.write_event(EventHeader(1, 1, 4), as_bytes(p)).code(),
            RingErrorCode::kLengthMismatch);
  EXPECT_EQ(w.event_count(), 0u);
  EXPECT_EQ(w.write_offset(), 0u);
}

// ---- Recovery ----

TEST_F(MmapStorageTest, TornTailZeroedSecondHalfEndsBeforeTheTornRecord) {
  { MmapWriter w = create(); write_events(w, 0, 10); }
  const uint64_t mid = (offset_of(9) + end_of(9)) / 2;
  write_at(file(), mid, std::string(end_of(9) - mid, '\0'));
  RecoveryReport report;
  MmapWriter w = reopen(&report);
  EXPECT_EQ(w.event_count(), 9u);
  EXPECT_EQ(report.events, 9u);
  EXPECT_THAT(report.problem, HasSubstr(file()));
  EXPECT_TRUE(all_zero(file(), offset_of(9), end_of(9)));
  expect_events(9);
}

TEST_F(MmapStorageTest, TornTailGarbledSecondHalfEndsBeforeTheTornRecord) {
  { MmapWriter w = create(); write_events(w, 0, 10); }
  const uint64_t mid = (offset_of(9) + end_of(9)) / 2;
  write_at(file(), mid, std::string(end_of(9) - mid, '\x5a'));
  RecoveryReport report;
  MmapWriter w = reopen(&report);
  EXPECT_EQ(w.event_count(), 9u);
  EXPECT_THAT(report.problem, HasSubstr("checksum"));
  EXPECT_GT(report.cleared_bytes, 0u);
  EXPECT_TRUE(all_zero(file(), offset_of(9), end_of(9) + 64));
}

TEST_F(MmapStorageTest, FileCutInsideTheLastRecordEndsBeforeIt) {
  {
    MmapWriter w = create(kFileHeaderSize + 4096);
    write_events(w, 0, 10);
  }
  truncate_file(file(), offset_of(9) + 20);
  RecoveryReport report;
  MmapWriter w = reopen(&report);
  EXPECT_EQ(w.event_count(), 9u);
  EXPECT_THAT(report.problem, HasSubstr("truncated"));
  EXPECT_EQ(w.capacity(), offset_of(9) + 16 - kFileHeaderSize);  // whole 8-byte words only
  EXPECT_TRUE(all_zero(file(), offset_of(9), kFileHeaderSize + w.capacity()));
}

TEST_F(MmapStorageTest, AppendAfterTornTailContinuesAtTheEnd) {
  { MmapWriter w = create(); write_events(w, 0, 10); }
  write_at(file(), end_of(9) - 4, std::string(4, '\x7f'));  // the last record's payload or padding
  record_offsets_.resize(9);
  {
    MmapWriter w = reopen();
    ASSERT_EQ(w.event_count(), 9u);
    write_events(w, 9, 5);
  }
  expect_events(14);
}

TEST_F(MmapStorageTest, GarbageAfterTheLastRecordIsCleared) {
  { MmapWriter w = create(); write_events(w, 0, 10); }
  std::mt19937 rng(7);
  std::string garbage(300, '\0');
  for (char& c : garbage) c = static_cast<char>(1 + rng() % 255);
  const uint64_t at = end_of(9) + 4096;
  write_at(file(), at, garbage);
  RecoveryReport report;
  MmapWriter w = reopen(&report);
  EXPECT_EQ(w.event_count(), 10u);
  EXPECT_GT(report.cleared_bytes, 0u);
  EXPECT_TRUE(all_zero(file(), at, at + garbage.size()));
}

TEST_F(MmapStorageTest, StaleRecordsAfterAGapAreNotResurrected) {
  { MmapWriter w = create(); write_events(w, 0, 10); }
  // Valid records of an older incarnation sit exactly where the next
  // appends will end; unless recovery clears them, filling the gap would
  // bring them back as part of the log.
  uint64_t gap = 0;
  for (uint64_t seq = 10; seq < 15; ++seq) gap += padded_size(len_of(seq));
  std::string stale;
  for (uint64_t i = 0; i < 3; ++i) {
    const std::string p = payload_for(1000 + i, 24);
    const std::vector<std::byte> rec = encode(header_for(1000 + i, 9, p), p);
    stale.append(reinterpret_cast<const char*>(rec.data()), rec.size());
  }
  write_at(file(), end_of(9) + gap, stale);
  {
    RecoveryReport report;
    MmapWriter w = reopen(&report);
    EXPECT_EQ(w.event_count(), 10u);
    EXPECT_GT(report.cleared_bytes, 0u);
    write_events(w, 10, 5);
  }
  RecoveryReport report;
  MmapWriter w = reopen(&report);
  EXPECT_EQ(w.event_count(), 15u);
  EXPECT_EQ(report.cleared_bytes, 0u);
  expect_events(15);
}

TEST_F(MmapStorageTest, CorruptChecksumMidFileEndsTheLogThere) {
  { MmapWriter w = create(); write_events(w, 0, 10); }
  corrupt_byte(file(), offset_of(4) + kHeaderSize);  // first payload byte of event 4
  RecoveryReport report;
  MmapWriter w = reopen(&report);
  EXPECT_EQ(w.event_count(), 4u);
  EXPECT_THAT(report.problem, HasSubstr(file()));
  EXPECT_THAT(report.problem, HasSubstr("checksum"));
  EXPECT_TRUE(all_zero(file(), offset_of(4), end_of(9)));
}

// The record checksum alone decides: an edit with its checksum fixed is a valid record.
TEST_F(MmapStorageTest, EditedRecordWithItsChecksumFixedIsAccepted) {
  { MmapWriter w = create(); write_events(w, 0, 10); }
  corrupt_byte(file(), offset_of(4) + kHeaderSize + 9);
  fix_record_checksum(file(), offset_of(4));
  RecoveryReport report;
  MmapWriter w = reopen(&report);
  EXPECT_EQ(w.event_count(), 10u);
  EXPECT_THAT(report.problem, IsEmpty());
  MmapReader r = reader();
  auto it = r.begin();
  std::advance(it, 4);
  EXPECT_EQ(static_cast<char>((*it).payload[9]), static_cast<char>(~pattern_byte(4, 9)));
}

TEST_F(MmapStorageTest, NonzeroPaddingEndsTheLog) {
  { MmapWriter w = create(); write_events(w, 0, 10); }
  ASSERT_NE(len_of(6) % 8, 0u);  // event 6 has padding
  write_at(file(), end_of(6) - 1, std::string(1, '\x01'));
  RecoveryReport report;
  MmapWriter w = reopen(&report);
  EXPECT_EQ(w.event_count(), 6u);
  EXPECT_THAT(report.problem, HasSubstr("padding"));
}

TEST_F(MmapStorageTest, ReaderDoesNotModifyACorruptFile) {
  { MmapWriter w = create(); write_events(w, 0, 10); }
  corrupt_byte(file(), offset_of(7) + kHeaderSize);
  write_at(file(), end_of(9) + 1000, std::string(50, '\x33'));
  const std::string before = read_file(file());
  MmapReader r = reader();
  EXPECT_EQ(r.event_count(), 7u);
  EXPECT_THAT(r.problem(), HasSubstr("checksum"));
  EXPECT_EQ(read_file(file()), before);
}

TEST_F(MmapStorageTest, ReaderReportsACleanEndWithNoProblem) {
  { MmapWriter w = create(); write_events(w, 0, 3); }
  MmapReader r = reader();
  EXPECT_THAT(r.problem(), IsEmpty());
  EXPECT_EQ(r.valid_bytes(), end_of(2) - kFileHeaderSize);
  EXPECT_EQ(std::string(r.header().magic, 4), "EVTL");
}

}  // namespace
}  // namespace ringlog
