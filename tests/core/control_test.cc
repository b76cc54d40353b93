// Control records (producer marks) and check_records.
#include "ringlog/control.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace ringlog {
namespace {

using ::testing::HasSubstr;

EventView view_of(const std::string& records) {
  const auto* p = reinterpret_cast<const std::byte*>(records.data());
  const EventHeader* h = header_at(p);
  return EventView{h, ByteSpan{p + kHeaderSize, h->payload_len}};
}

TEST(ProducerMark, RoundTrips) {
  std::string out;
  append_producer_batch_mark(&out, {"producer-7", 42, 1000, 32000}, 123);
  ASSERT_EQ(out.size() % kRecordAlign, 0u);
  absl::StatusOr<size_t> n = check_records(as_bytes(out));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1u);
  const EventView ev = view_of(out);
  EXPECT_TRUE(is_control(*ev.header));
  EXPECT_EQ(ev.event_type(), kControlProducerBatch);
  EXPECT_EQ(ev.timestamp(), 123u);
  std::optional<ProducerBatchMark> m = parse_producer_batch_mark(ev);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->producer_id, "producer-7");
  EXPECT_EQ(m->producer_seq, 42u);
  EXPECT_EQ(m->events, 1000u);
  EXPECT_EQ(m->data_bytes, 32000u);
}

// A mark of an older version ends with the producer id (no data_bytes): it
// is still read, with data_bytes 0 (not known).
TEST(ProducerMark, AMarkWithoutDataBytesIsRead) {
  std::string payload(14 + 2, '\0');
  const uint64_t seq = 9;
  const uint32_t events = 3;
  const uint16_t len = 2;
  std::memcpy(payload.data(), &seq, 8);
  std::memcpy(payload.data() + 8, &events, 4);
  std::memcpy(payload.data() + 12, &len, 2);
  payload.replace(14, 2, "ab");
  EventHeader h(5, kControlProducerBatch, static_cast<uint16_t>(payload.size()));
  h.flags = kFlagControl;
  std::string out(padded_size(payload.size()), '\0');
  encode_record(reinterpret_cast<std::byte*>(out.data()), h, as_bytes(payload));
  std::optional<ProducerBatchMark> m = parse_producer_batch_mark(view_of(out));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->producer_id, "ab");
  EXPECT_EQ(m->producer_seq, 9u);
  EXPECT_EQ(m->events, 3u);
  EXPECT_EQ(m->data_bytes, 0u);
}

TEST(ProducerMark, AnOrdinaryEventIsNotAMark) {
  const std::string payload = "hello";
  const std::vector<std::byte> rec = ringlog_test::encode(ringlog_test::header_for(1, 1, payload), payload);
  const std::string s(reinterpret_cast<const char*>(rec.data()), rec.size());
  EXPECT_FALSE(is_control(*view_of(s).header));
  EXPECT_FALSE(parse_producer_batch_mark(view_of(s)).has_value());
}

TEST(ProducerMark, AMarkWithAWrongLengthIsNotParsed) {
  std::string out;
  append_producer_batch_mark(&out, {"id", 1, 1}, 0);
  // Claim a longer id than the payload holds, and fix the checksum.
  EventHeader* h = reinterpret_cast<EventHeader*>(out.data());
  const uint16_t bad = 200;
  std::memcpy(out.data() + kHeaderSize + 12, &bad, 2);
  h->fill_checksum(ByteSpan{reinterpret_cast<const std::byte*>(out.data()) + kHeaderSize, h->payload_len});
  EXPECT_FALSE(parse_producer_batch_mark(view_of(out)).has_value());
}

TEST(CheckRecords, CountsWholeValidRecords) {
  std::string batch;
  for (int i = 0; i < 5; ++i) {
    const std::string p(static_cast<size_t>(i * 3), 'x');
    const std::vector<std::byte> r = ringlog_test::encode(ringlog_test::header_for(i, 1, p), p);
    batch.append(reinterpret_cast<const char*>(r.data()), r.size());
  }
  absl::StatusOr<size_t> n = check_records(as_bytes(batch));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
}

TEST(CheckRecords, NamesTheBadRecordItsPositionAndTheReason) {
  std::string batch;
  for (int i = 0; i < 3; ++i) {
    const std::string p = "payload";
    const std::vector<std::byte> r = ringlog_test::encode(ringlog_test::header_for(i, 1, p), p);
    batch.append(reinterpret_cast<const char*>(r.data()), r.size());
  }
  const size_t rec = padded_size(7);
  batch[2 * rec + kHeaderSize] ^= 1;  // a payload byte of record 2
  absl::StatusOr<size_t> n = check_records(as_bytes(batch));
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(n.status().message()),
              HasSubstr(absl::StrCat("record 2 at byte ", 2 * rec, ": checksum mismatch")));
}

// Records of one length are checked four at a time: a fault in any lane of
// any group, in the payload, the header, the checksum or the padding, is
// found and named as it is one record at a time.
TEST(CheckRecords, FindsEveryFaultInRecordsCheckedFourAtATime) {
  const std::string p(13, 'z');  // 3 bytes of padding after the payload
  const size_t rec = padded_size(13);
  std::string batch;
  for (int i = 0; i < 11; ++i) {
    const std::vector<std::byte> r = ringlog_test::encode(ringlog_test::header_for(i, 1, p), p);
    batch.append(reinterpret_cast<const char*>(r.data()), r.size());
  }
  absl::StatusOr<size_t> all = check_records(as_bytes(batch));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, 11u);
  struct Fault {
    size_t at;  // byte within the record
    const char* reason;
  };
  const Fault faults[] = {{0, "checksum mismatch"},
                          {8, "checksum mismatch"},
                          {12, "checksum mismatch"},
                          {kHeaderSize + 12, "checksum mismatch"},
                          {kHeaderSize + 13, "nonzero padding"}};
  for (size_t bad = 0; bad < 11; ++bad) {
    for (const Fault& f : faults) {
      std::string b = batch;
      b[bad * rec + f.at] ^= 0x40;
      absl::StatusOr<size_t> n = check_records(as_bytes(b));
      ASSERT_FALSE(n.ok()) << "record " << bad << " byte " << f.at;
      EXPECT_THAT(std::string(n.status().message()),
                  HasSubstr(absl::StrCat("record ", bad, " at byte ", bad * rec, ": ", f.reason)))
          << "byte " << f.at;
    }
  }
}

TEST(CheckRecords, AZeroHeaderAmongRecordsOfOneLengthIsRefused) {
  const std::string p(64, 'q');
  const size_t rec = padded_size(64);
  std::string batch;
  for (int i = 0; i < 8; ++i) {
    const std::vector<std::byte> r = ringlog_test::encode(ringlog_test::header_for(i, 1, p), p);
    batch.append(reinterpret_cast<const char*>(r.data()), r.size());
  }
  // Record 5 becomes a zero header with a zero payload of the same length.
  std::fill(batch.begin() + 5 * rec, batch.begin() + 6 * rec, '\0');
  absl::StatusOr<size_t> n = check_records(as_bytes(batch));
  ASSERT_FALSE(n.ok());
  EXPECT_THAT(std::string(n.status().message()), HasSubstr("record 5 at byte"));
}

TEST(CheckRecords, ATruncatedRecordSaysHowMuchIsMissing) {
  const std::string p(40, 'y');
  const std::vector<std::byte> r = ringlog_test::encode(ringlog_test::header_for(1, 1, p), p);
  const std::string cut(reinterpret_cast<const char*>(r.data()), 32);
  absl::StatusOr<size_t> n = check_records(as_bytes(cut));
  ASSERT_FALSE(n.ok());
  EXPECT_THAT(std::string(n.status().message()), HasSubstr("truncated record (payload_len 40"));
}

}  // namespace
}  // namespace ringlog
