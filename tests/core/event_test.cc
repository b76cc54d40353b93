#include "ringlog/event.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ringlog/crc32c.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ringlog_test::encode;

// The 16 bytes of a header as they sit in memory (and on disk).
std::vector<uint8_t> bytes_of(const EventHeader& h) {
  std::vector<uint8_t> b(sizeof h);
  std::memcpy(b.data(), &h, sizeof h);
  return b;
}

TEST(EventHeader, SizeIs16Bytes) {
  EXPECT_EQ(sizeof(EventHeader), 16u);
  EXPECT_EQ(kHeaderSize, 16u);
  EXPECT_EQ(alignof(EventHeader), 8u);
}

TEST(EventHeader, TotalSizeIncludesPayload) {
  EXPECT_EQ(EventHeader(1, 2, 0).total_size(), 16u);
  EXPECT_EQ(EventHeader(1, 2, 5).total_size(), 21u);
  EXPECT_EQ(EventHeader(1, 2, 65535).total_size(), 16u + 65535u);
}

TEST(EventHeader, PaddedSizeRoundsUpToEight) {
  EXPECT_EQ(EventHeader(0, 0, 0).padded_size(), 16u);
  EXPECT_EQ(EventHeader(0, 0, 1).padded_size(), 24u);
  EXPECT_EQ(EventHeader(0, 0, 8).padded_size(), 24u);
  EXPECT_EQ(EventHeader(0, 0, 9).padded_size(), 32u);
  EXPECT_EQ(padded_size(kMaxPayload), kMaxRecordSize);
  EXPECT_EQ(kMaxRecordSize % kRecordAlign, 0u);
}

TEST(EventHeader, NewSetsFieldsCorrectly) {
  const EventHeader h(123456789, 7, 42);
  EXPECT_EQ(h.timestamp, 123456789u);
  EXPECT_EQ(h.event_type, 7);
  EXPECT_EQ(h.payload_len, 42);
  EXPECT_EQ(h.flags, 0);
  EXPECT_EQ(h.checksum, 0u);
}

TEST(EventHeader, FieldsSitAtTheirByteOffsetsLittleEndian) {
  EventHeader h(0x0807060504030201, 0x11, 0x1413);
  h.flags = 0x12;
  h.checksum = 0x18171615;
  const std::vector<uint8_t> b = bytes_of(h);
  EXPECT_THAT(b, ::testing::ElementsAre(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x11,
                                        0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18));
}

TEST(EventHeader, ChecksumCoversHeaderBytes0To11AndPayload) {
  const std::string payload = "hello";
  EventHeader h(99, 3, payload.size());
  h.flags = 1;
  const std::vector<uint8_t> b = bytes_of(h);
  const uint32_t want = crc32c::extend(crc32c::value(b.data(), 12), payload.data(), payload.size());
  EXPECT_EQ(h.compute_checksum(as_bytes(payload)), want);
}

TEST(EventHeader, FillThenVerifySucceeds) {
  const std::string payload = "some payload";
  EventHeader h(1, 2, payload.size());
  h.fill_checksum(as_bytes(payload));
  EXPECT_NE(h.checksum, 0u);
  EXPECT_TRUE(h.verify_checksum(as_bytes(payload)));
}

TEST(EventHeader, VerifyFailsWhenPayloadChanges) {
  std::string payload = "some payload";
  EventHeader h(1, 2, payload.size());
  h.fill_checksum(as_bytes(payload));
  payload[3] ^= 0x01;
  EXPECT_FALSE(h.verify_checksum(as_bytes(payload)));
}

TEST(EventHeader, VerifyFailsWhenAHeaderFieldChanges) {
  const std::string payload = "abc";
  EventHeader h(1, 2, payload.size());
  h.fill_checksum(as_bytes(payload));
  h.flags = 1;
  EXPECT_FALSE(h.verify_checksum(as_bytes(payload)));
}

TEST(EventHeader, VerifyFailsWhenPayloadSizeDiffersFromHeader) {
  const std::string payload = "abcd";
  EventHeader h(1, 2, 3);
  h.fill_checksum(as_bytes(payload));
  EXPECT_FALSE(h.verify_checksum(as_bytes(payload)));
}

TEST(EncodeRecord, WritesHeaderWithChecksumPayloadAndZeroPadding) {
  const std::string payload = "12345";  // 16 + 5 = 21, padded to 24
  std::vector<std::byte> buf(24, std::byte{0xAB});
  EXPECT_EQ(encode_record(buf.data(), EventHeader(5, 1, 5), as_bytes(payload)), 24u);
  const EventHeader* h = header_at(buf.data());
  EXPECT_EQ(h->timestamp, 5u);
  EXPECT_TRUE(h->verify_checksum(ByteSpan(buf.data() + 16, 5)));
  EXPECT_EQ(std::memcmp(buf.data() + 16, payload.data(), 5), 0);
  for (size_t i = 21; i < 24; ++i) EXPECT_EQ(buf[i], std::byte{0}) << i;
}

TEST(CheckRecord, AcceptsAnEncodedRecord) {
  const std::string payload = "payload";
  std::vector<std::byte> rec = encode(EventHeader(7, 9, payload.size()), payload);
  EventView v;
  ASSERT_EQ(check_record(rec.data(), rec.size(), &v), RecordStatus::kOk);
  EXPECT_EQ(v.timestamp(), 7u);
  EXPECT_EQ(v.event_type(), 9);
  EXPECT_EQ(ringlog_test::to_string(v.payload), payload);
  EXPECT_EQ(v.record().size(), rec.size());
}

TEST(CheckRecord, ZeroBytesAreTheEnd) {
  std::vector<std::byte> zeros(64);
  EXPECT_EQ(check_record(zeros.data(), zeros.size(), nullptr), RecordStatus::kZero);
  EXPECT_EQ(check_record(zeros.data(), 8, nullptr), RecordStatus::kZero);
}

TEST(CheckRecord, ShortNonzeroTailIsTruncated) {
  std::vector<std::byte> b(8);
  b[3] = std::byte{1};
  EXPECT_EQ(check_record(b.data(), b.size(), nullptr), RecordStatus::kTruncated);
}

TEST(CheckRecord, RecordRunningPastTheBufferIsTruncated) {
  std::vector<std::byte> rec = encode(EventHeader(1, 1, 40), std::string(40, 'x'));
  EXPECT_EQ(check_record(rec.data(), rec.size() - 8, nullptr), RecordStatus::kTruncated);
}

TEST(CheckRecord, FlippedPayloadByteIsBadChecksum) {
  std::vector<std::byte> rec = encode(EventHeader(1, 1, 10), std::string(10, 'x'));
  rec[20] ^= std::byte{0x40};
  EXPECT_EQ(check_record(rec.data(), rec.size(), nullptr), RecordStatus::kBadChecksum);
}

TEST(CheckRecord, NonzeroPaddingIsBadPadding) {
  std::vector<std::byte> rec = encode(EventHeader(1, 1, 3), "abc");
  rec[rec.size() - 1] = std::byte{1};
  EXPECT_EQ(check_record(rec.data(), rec.size(), nullptr), RecordStatus::kBadPadding);
}

TEST(CheckRecord, StatusNamesAreDistinct) {
  EXPECT_STREQ(record_status_name(RecordStatus::kOk), "ok");
  EXPECT_STREQ(record_status_name(RecordStatus::kBadChecksum), "checksum mismatch");
  EXPECT_STREQ(record_status_name(RecordStatus::kTruncated), "truncated record");
  EXPECT_STREQ(record_status_name(RecordStatus::kZero), "zero header");
  EXPECT_STREQ(record_status_name(RecordStatus::kBadPadding), "nonzero padding");
}

}  // namespace
}  // namespace ringlog
