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
  append_producer_batch_mark(&out, {"producer-7", 42, 1000}, 123);
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
