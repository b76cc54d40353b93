#include "ringlog/ring.h"

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ::testing::HasSubstr;
using ringlog_test::encode;
using ringlog_test::header_for;
using ringlog_test::payload_for;
using ringlog_test::status_message;
using ringlog_test::to_string;

RingBuffer make_ring(size_t capacity) {
  absl::StatusOr<RingBuffer> r = RingBuffer::Create(capacity);
  EXPECT_TRUE(r.ok()) << r.status();
  return std::move(*r);
}

// Writes event `seq` (timestamp seq, payload_for(seq, len)).
WriteResult write_seq(RingBuffer& ring, uint64_t seq, size_t len) {
  const std::string p = payload_for(seq, len);
  return ring.write_event(header_for(seq, 1, p), as_bytes(p));
}

// Reads one event and checks that it is event `seq` with a `len`-byte payload.
void expect_read_seq(RingBuffer& ring, uint64_t seq, size_t len) {
  std::optional<EventView> ev = ring.read_event();
  ASSERT_TRUE(ev.has_value()) << "expected event " << seq;
  EXPECT_EQ(ev->timestamp(), seq);
  EXPECT_EQ(to_string(ev->payload), payload_for(seq, len)) << "event " << seq;
  EXPECT_TRUE(ev->header->verify_checksum(ev->payload));
}

// ---- The seed's tests ----

TEST(RingBuffer, NewCreatesEmptyBuffer) {
  RingBuffer ring = make_ring(1024);
  EXPECT_TRUE(ring.is_empty());
  EXPECT_EQ(ring.capacity(), 1024u);
  EXPECT_EQ(ring.used(), 0u);
  EXPECT_EQ(ring.available(), 1024u);
  EXPECT_FALSE(ring.read_event().has_value());
}

TEST(RingBuffer, WriteSingleEvent) {
  RingBuffer ring = make_ring(1024);
  ASSERT_TRUE(write_seq(ring, 1, 10).ok());
  EXPECT_FALSE(ring.is_empty());
  EXPECT_EQ(ring.used(), padded_size(10));
  EXPECT_EQ(ring.available(), 1024u - padded_size(10));
}

TEST(RingBuffer, ReadSingleEvent) {
  RingBuffer ring = make_ring(1024);
  const std::string payload = "hello, ring";
  EventHeader h(42, 7, payload.size());
  h.flags = 3;
  ASSERT_TRUE(ring.write_event(h, as_bytes(payload)).ok());
  std::optional<EventView> ev = ring.read_event();
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->header->timestamp, 42u);
  EXPECT_EQ(ev->header->event_type, 7);
  EXPECT_EQ(ev->header->flags, 3);
  EXPECT_EQ(ev->header->payload_len, payload.size());
  EXPECT_TRUE(ev->header->verify_checksum(ev->payload));
  EXPECT_EQ(to_string(ev->payload), payload);
  EXPECT_TRUE(ring.is_empty());
  EXPECT_EQ(ring.used(), 0u);
}

TEST(RingBuffer, WriteMultipleEventsKeepsFifoOrder) {
  RingBuffer ring = make_ring(4096);
  for (uint64_t i = 0; i < 20; ++i) ASSERT_TRUE(write_seq(ring, i, i * 3).ok()) << i;
  for (uint64_t i = 0; i < 20; ++i) expect_read_seq(ring, i, i * 3);
  EXPECT_FALSE(ring.read_event().has_value());
}

TEST(RingBuffer, BufferFullReturnsErrorWithRequiredAndAvailable) {
  RingBuffer ring = make_ring(256);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(write_seq(ring, i, 48).ok());  // 4 x 64 bytes
  const WriteResult r = write_seq(ring, 4, 48);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.code(), RingErrorCode::kNotEnoughSpace);
  EXPECT_EQ(r.required(), 64u);
  EXPECT_EQ(r.available(), 0u);
}

TEST(RingBuffer, BufferFullWritesNothing) {
  RingBuffer ring = make_ring(256);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(write_seq(ring, i, 48).ok());
  ASSERT_FALSE(write_seq(ring, 99, 48).ok());
  EXPECT_EQ(ring.used(), 256u);
  for (uint64_t i = 0; i < 4; ++i) expect_read_seq(ring, i, 48);
  EXPECT_FALSE(ring.read_event().has_value());
}

TEST(RingBuffer, RequiredAndAvailableWhenPartlyFull) {
  RingBuffer ring = make_ring(256);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(write_seq(ring, i, 48).ok());
  expect_read_seq(ring, 0, 48);  // 64 bytes free, at the start
  const WriteResult r = write_seq(ring, 4, 64);  // 80 bytes
  ASSERT_EQ(r.code(), RingErrorCode::kNotEnoughSpace);
  EXPECT_EQ(r.required(), 80u);
  EXPECT_EQ(r.available(), 64u);
  for (uint64_t i = 1; i < 4; ++i) expect_read_seq(ring, i, 48);
  EXPECT_FALSE(ring.read_event().has_value());
}

TEST(RingBuffer, FailedWriteNearTheEndLeavesEarlierEventsIntact) {
  RingBuffer ring = make_ring(256);
  ASSERT_TRUE(write_seq(ring, 0, 48).ok());  // 64 bytes; 192 left before the end
  ASSERT_FALSE(write_seq(ring, 1, 200).ok());  // 216 bytes never fit
  expect_read_seq(ring, 0, 48);
  EXPECT_FALSE(ring.read_event().has_value());
  ASSERT_TRUE(write_seq(ring, 2, 200).ok());  // fits once the ring is empty
  expect_read_seq(ring, 2, 200);
}

TEST(RingBuffer, FullRingAcceptsAgainAfterARead) {
  RingBuffer ring = make_ring(256);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(write_seq(ring, i, 48).ok());
  ASSERT_FALSE(write_seq(ring, 4, 48).ok());
  expect_read_seq(ring, 0, 48);
  EXPECT_TRUE(write_seq(ring, 4, 48).ok());
  for (uint64_t i = 1; i < 5; ++i) expect_read_seq(ring, i, 48);
}

TEST(RingBuffer, WrapAroundKeepsFifoOrder) {
  RingBuffer ring = make_ring(256);
  std::deque<std::pair<uint64_t, size_t>> pending;
  uint64_t next_write = 0;
  for (int round = 0; round < 500; ++round) {
    // Write until full, then read about half: the positions move around the
    // buffer with every odd record size.
    for (;;) {
      const size_t len = (next_write * 13) % 70;
      if (!write_seq(ring, next_write, len).ok()) break;
      pending.emplace_back(next_write++, len);
    }
    for (size_t n = (pending.size() + 1) / 2; n > 0; --n) {
      expect_read_seq(ring, pending.front().first, pending.front().second);
      pending.pop_front();
    }
  }
  while (!pending.empty()) {
    expect_read_seq(ring, pending.front().first, pending.front().second);
    pending.pop_front();
  }
  EXPECT_GT(next_write * 40, 256u * 50);  // wrapped many times
  EXPECT_TRUE(ring.is_empty());
}

TEST(RingBuffer, WrapWithAFullHeaderLeftWritesAMarker) {
  RingBuffer ring = make_ring(128);
  ASSERT_TRUE(write_seq(ring, 0, 80).ok());  // 96 bytes: 32 left before the end
  expect_read_seq(ring, 0, 80);
  ASSERT_TRUE(write_seq(ring, 1, 40).ok());  // 56 bytes: goes to the start
  expect_read_seq(ring, 1, 40);
  EXPECT_TRUE(ring.is_empty());
}

TEST(RingBuffer, WrapWithLessThanAHeaderLeftSkipsToStart) {
  RingBuffer ring = make_ring(128);
  ASSERT_TRUE(write_seq(ring, 0, 104).ok());  // 120 bytes: 8 left, too few for a marker
  expect_read_seq(ring, 0, 104);
  ASSERT_TRUE(write_seq(ring, 1, 5).ok());
  expect_read_seq(ring, 1, 5);
  EXPECT_TRUE(ring.is_empty());
}

TEST(RingBuffer, EmptyPayloadRoundTrips) {
  RingBuffer ring = make_ring(64);
  ASSERT_TRUE(ring.write_event(EventHeader(5, 2, 0), {}).ok());
  std::optional<EventView> ev = ring.read_event();
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->timestamp(), 5u);
  EXPECT_TRUE(ev->payload.empty());
  EXPECT_TRUE(ev->header->verify_checksum(ev->payload));
}

TEST(RingBuffer, LargestPayloadRoundTrips) {
  RingBuffer ring = make_ring(128 << 10);
  ASSERT_TRUE(write_seq(ring, 9, kMaxPayload).ok());
  expect_read_seq(ring, 9, kMaxPayload);
}

TEST(RingBuffer, RecordLargerThanTheRingIsNotEnoughSpace) {
  RingBuffer ring = make_ring(64);
  const WriteResult r = write_seq(ring, 0, 100);
  EXPECT_EQ(r.code(), RingErrorCode::kNotEnoughSpace);
  EXPECT_EQ(r.required(), padded_size(100));
  EXPECT_TRUE(ring.is_empty());
}

// ---- Capacity ----

TEST(RingBuffer, CapacityMustBePowerOfTwo) {
  absl::StatusOr<RingBuffer> r = RingBuffer::Create(1000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(r.status()), HasSubstr("1000"));
  EXPECT_THAT(status_message(r.status()), HasSubstr("power of two"));
}

TEST(RingBuffer, CapacityBelow64IsRejected) {
  absl::StatusOr<RingBuffer> r = RingBuffer::Create(32);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(r.status()), HasSubstr("32"));
  EXPECT_THAT(status_message(r.status()), HasSubstr("at least 64"));
}

TEST(RingBuffer, CapacityZeroIsRejected) {
  absl::StatusOr<RingBuffer> r = RingBuffer::Create(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RingBuffer, CapacityOver2GiBIsRejected) {
  absl::StatusOr<RingBuffer> r = RingBuffer::Create(size_t{4} << 30);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(r.status()), HasSubstr("4294967296"));
  EXPECT_THAT(status_message(r.status()), HasSubstr("at most 2 GiB"));
}

TEST(RingBuffer, SmallestCapacityWorks) {
  RingBuffer ring = make_ring(kMinRingCapacity);
  ASSERT_TRUE(write_seq(ring, 3, 48).ok());  // exactly 64 bytes
  expect_read_seq(ring, 3, 48);
}

TEST(SpscRingBuffer, CapacityIsValidatedLikeRingBuffer) {
  absl::StatusOr<SpscRingBuffer> r = SpscRingBuffer::Create(3000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(r.status()), HasSubstr("3000"));
}

// ---- Bad input and WriteResult ----

TEST(RingBuffer, PayloadOver65535IsPayloadTooLarge) {
  RingBuffer ring = make_ring(256 << 10);
  const std::string big(kMaxPayload + 1, 'x');
  const WriteResult r = ring.write_event(EventHeader(1, 1, 0), as_bytes(big));
  EXPECT_EQ(r.code(), RingErrorCode::kPayloadTooLarge);
  EXPECT_EQ(r.required(), kMaxPayload + 1);
  EXPECT_EQ(r.available(), kMaxPayload);
  EXPECT_TRUE(ring.is_empty());
}

TEST(RingBuffer, HeaderLengthDifferentFromPayloadIsLengthMismatch) {
  RingBuffer ring = make_ring(1024);
  const std::string p = "four";
  const WriteResult r = ring.write_event(EventHeader(1, 1, 5), as_bytes(p));
  EXPECT_EQ(r.code(), RingErrorCode::kLengthMismatch);
  EXPECT_TRUE(ring.is_empty());
}

TEST(WriteResult, DefaultIsOk) {
  const WriteResult r;
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.code(), RingErrorCode::kOk);
  EXPECT_TRUE(r.status().ok());
}

TEST(WriteResult, NotEnoughSpaceIsResourceExhaustedNamingSizes) {
  const absl::Status s = WriteResult::not_enough_space(64, 8).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status_message(s), HasSubstr("required 64"));
  EXPECT_THAT(status_message(s), HasSubstr("available 8"));
}

TEST(WriteResult, PayloadTooLargeIsInvalidArgumentNamingSizes) {
  const absl::Status s =
      WriteResult::error(RingErrorCode::kPayloadTooLarge, 70000, kMaxPayload).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(s), HasSubstr("70000"));
  EXPECT_THAT(status_message(s), HasSubstr("65535"));
}

TEST(WriteResult, LengthMismatchIsInvalidArgumentNamingBothLengths) {
  RingBuffer ring = make_ring(1024);
  const std::string p = "four";
  const absl::Status s = ring.write_event(EventHeader(1, 1, 5), as_bytes(p)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(s), HasSubstr("payload_len 5"));
  EXPECT_THAT(status_message(s), HasSubstr("payload size 4"));
}

TEST(WriteResult, IoErrorIsUnavailableNamingTheSize) {
  const absl::Status s = WriteResult::error(RingErrorCode::kIoError, 120, 0).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status_message(s), HasSubstr("120 bytes"));
}

TEST(WriteResult, SizesSaturateAt32Bits) {
  const WriteResult r = WriteResult::not_enough_space(uint64_t{1} << 40, 5);
  EXPECT_EQ(r.required(), UINT32_MAX);
  EXPECT_EQ(r.available(), 5u);
}

// ---- Batches ----

TEST(RingBuffer, ReadBatchReturnsWholeContiguousRecords) {
  RingBuffer ring = make_ring(1024);
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(write_seq(ring, i, 10 + i).ok());
  const RecordBatch b = ring.read_batch(1 << 20);
  ASSERT_EQ(b.count, 5u);
  size_t off = 0;
  for (uint64_t i = 0; i < 5; ++i) {
    EventView v;
    ASSERT_EQ(check_record(b.bytes.data() + off, b.bytes.size() - off, &v), RecordStatus::kOk);
    EXPECT_EQ(v.timestamp(), i);
    off += v.header->padded_size();
  }
  EXPECT_EQ(off, b.bytes.size());
  EXPECT_TRUE(ring.is_empty());
}

TEST(RingBuffer, ReadBatchRespectsMaxBytes) {
  RingBuffer ring = make_ring(1024);
  for (uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(write_seq(ring, i, 16).ok());  // 32 bytes each
  const RecordBatch b = ring.read_batch(100);
  EXPECT_EQ(b.count, 3u);
  EXPECT_EQ(b.bytes.size(), 96u);
  expect_read_seq(ring, 3, 16);
}

TEST(RingBuffer, ReadBatchReturnsOneRecordEvenWhenOverMaxBytes) {
  RingBuffer ring = make_ring(1024);
  ASSERT_TRUE(write_seq(ring, 0, 100).ok());
  const RecordBatch b = ring.read_batch(8);
  EXPECT_EQ(b.count, 1u);
  EXPECT_EQ(b.bytes.size(), padded_size(100));
}

TEST(RingBuffer, ReadBatchStopsAtTheWrap) {
  RingBuffer ring = make_ring(512);
  for (uint64_t i = 0; i < 7; ++i) ASSERT_TRUE(write_seq(ring, i, 48).ok());  // 448 bytes
  expect_read_seq(ring, 0, 48);
  expect_read_seq(ring, 1, 48);
  ASSERT_TRUE(write_seq(ring, 7, 64).ok());  // 80 bytes: only 64 before the end, wraps
  RecordBatch b = ring.read_batch(1 << 20);
  EXPECT_EQ(b.count, 5u);
  EXPECT_EQ(header_at(b.bytes.data())->timestamp, 2u);
  b = ring.read_batch(1 << 20);
  ASSERT_EQ(b.count, 1u);
  EXPECT_EQ(header_at(b.bytes.data())->timestamp, 7u);
}

TEST(RingBuffer, WriteRecordsCopiesABatchReadableEventByEvent) {
  RingBuffer ring = make_ring(1024);
  std::vector<std::byte> batch;
  for (uint64_t i = 0; i < 4; ++i) {
    const std::string p = payload_for(i, i + 1);
    const std::vector<std::byte> rec = encode(header_for(i, 1, p), p);
    batch.insert(batch.end(), rec.begin(), rec.end());
  }
  ASSERT_TRUE(ring.write_records(batch).ok());
  EXPECT_EQ(ring.used(), batch.size());
  for (uint64_t i = 0; i < 4; ++i) expect_read_seq(ring, i, i + 1);
}

TEST(RingBuffer, WriteRecordsThatDoNotFitWriteNothing) {
  RingBuffer ring = make_ring(64);
  const std::vector<std::byte> batch(128);
  const WriteResult r = ring.write_records(batch);
  EXPECT_EQ(r.code(), RingErrorCode::kNotEnoughSpace);
  EXPECT_EQ(r.required(), 128u);
  EXPECT_TRUE(ring.is_empty());
}

// ---- SpscRingBuffer ends on one thread ----

TEST(SpscRingBuffer, ProducerToConsumerRoundTrip) {
  absl::StatusOr<SpscRingBuffer> ring = SpscRingBuffer::Create(1024);
  ASSERT_TRUE(ring.ok());
  auto [producer, consumer] = std::move(*ring).split();
  EXPECT_TRUE(consumer.is_empty());
  const std::string p = payload_for(5, 33);
  ASSERT_TRUE(producer.write_event(header_for(5, 2, p), as_bytes(p)).ok());
  std::optional<EventView> ev = consumer.read_event();
  ASSERT_TRUE(ev.has_value());
  EXPECT_EQ(ev->timestamp(), 5u);
  EXPECT_EQ(to_string(ev->payload), p);
  EXPECT_TRUE(consumer.is_empty());
}

TEST(SpscRingBuffer, ConsumerHoldsSpaceUntilRelease) {
  absl::StatusOr<SpscRingBuffer> ring = SpscRingBuffer::Create(128);
  ASSERT_TRUE(ring.ok());
  auto [producer, consumer] = std::move(*ring).split();
  const std::string p = payload_for(0, 48);
  ASSERT_TRUE(producer.write_event(header_for(0, 1, p), as_bytes(p)).ok());
  ASSERT_TRUE(producer.write_event(header_for(1, 1, p), as_bytes(p)).ok());
  ASSERT_TRUE(consumer.read_event().has_value());
  // The view is still in use: its space is not handed back yet.
  EXPECT_EQ(producer.write_event(header_for(2, 1, p), as_bytes(p)).code(),
            RingErrorCode::kNotEnoughSpace);
  consumer.release();
  EXPECT_TRUE(producer.write_event(header_for(2, 1, p), as_bytes(p)).ok());
}

TEST(SpscRingBuffer, WrittenAndConsumedPositionsMeet) {
  absl::StatusOr<SpscRingBuffer> ring = SpscRingBuffer::Create(256);
  ASSERT_TRUE(ring.ok());
  auto [producer, consumer] = std::move(*ring).split();
  for (uint64_t i = 0; i < 50; ++i) {
    const std::string p = payload_for(i, 40);
    ASSERT_TRUE(producer.write_event(header_for(i, 1, p), as_bytes(p)).ok());
    ASSERT_TRUE(consumer.read_event().has_value());
    consumer.release();
    EXPECT_EQ(consumer.consumed(), producer.written()) << i;
  }
  EXPECT_GT(producer.written(), 256u);
  EXPECT_EQ(producer.used(), 0u);
}

}  // namespace
}  // namespace ringlog
