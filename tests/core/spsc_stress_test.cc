// Two threads on one SpscRingBuffer: a producer writes millions of events of
// odd sizes into a small ring, the consumer checks every byte and the order.
//
// RINGLOG_SPSC_EVENTS sets the event count (e.g. smaller under TSan).
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ringlog/ring.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ringlog_test::pattern_byte;

uint64_t event_count(uint64_t fallback) {
  const char* env = std::getenv("RINGLOG_SPSC_EVENTS");
  if (env == nullptr || *env == '\0') return fallback;
  return std::strtoull(env, nullptr, 10);
}

// Payload length of event `seq`: 1 to `max` bytes, varying from event to event.
size_t len_of(uint64_t seq, size_t max) { return 1 + ((seq * 2654435761u) >> 7) % max; }

void fill_payload(uint64_t seq, std::byte* out, size_t len) {
  for (size_t i = 0; i < len; ++i) out[i] = static_cast<std::byte>(pattern_byte(seq, i));
  if (len >= 8) std::memcpy(out, &seq, 8);
}

// The first thing that went wrong on either thread; stops both.
class Failure {
 public:
  void set(std::string what) {
    std::lock_guard<std::mutex> l(mu_);
    if (message_.empty()) message_ = std::move(what);
    failed_.store(true, std::memory_order_release);
  }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string message() {
    std::lock_guard<std::mutex> l(mu_);
    return message_;
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mu_;
  std::string message_;
};

// Checks that `ev` is event `seq` with a payload of `len` bytes; "" when it is.
std::string check_event(const EventView& ev, uint64_t seq, size_t len) {
  if (ev.timestamp() != seq) {
    return "expected seq " + std::to_string(seq) + ", got " + std::to_string(ev.timestamp());
  }
  if (ev.payload.size() != len) {
    return "seq " + std::to_string(seq) + ": payload of " + std::to_string(ev.payload.size()) +
           " bytes, expected " + std::to_string(len);
  }
  if (!ev.header->verify_checksum(ev.payload)) return "seq " + std::to_string(seq) + ": checksum";
  if (len >= 8) {
    uint64_t embedded;
    std::memcpy(&embedded, ev.payload.data(), 8);
    if (embedded != seq) return "seq " + std::to_string(seq) + ": payload carries another seq";
  }
  for (size_t i = len >= 8 ? 8 : 0; i < len; ++i) {
    if (ev.payload[i] != static_cast<std::byte>(pattern_byte(seq, i))) {
      return "seq " + std::to_string(seq) + ": payload byte " + std::to_string(i);
    }
  }
  return "";
}

SpscRingBuffer make_ring(size_t capacity) {
  absl::StatusOr<SpscRingBuffer> r = SpscRingBuffer::Create(capacity);
  EXPECT_TRUE(r.ok()) << r.status();
  return std::move(*r);
}

// Producer: events 0..n-1, retrying while the ring is full.
void produce_events(SpscRingBuffer::Producer& producer, uint64_t n, size_t max_len,
                    Failure& failure) {
  std::vector<std::byte> payload(max_len);
  for (uint64_t seq = 0; seq < n && !failure.failed(); ++seq) {
    const size_t len = len_of(seq, max_len);
    fill_payload(seq, payload.data(), len);
    const EventHeader h(seq, static_cast<uint8_t>(seq), static_cast<uint16_t>(len));
    for (;;) {
      const WriteResult r = producer.write_event(h, ByteSpan(payload.data(), len));
      if (r.ok()) break;
      if (r.code() != RingErrorCode::kNotEnoughSpace) {
        failure.set("write of seq " + std::to_string(seq) + ": " + std::string(r.status().message()));
        return;
      }
      if (failure.failed()) return;
      std::this_thread::yield();
    }
  }
}

// Consumer: alternates between read_event and read_batch of varying sizes.
void consume_events(SpscRingBuffer::Consumer& consumer, uint64_t n, size_t max_len,
                    Failure& failure, uint64_t* batches_seen) {
  uint64_t next = 0;
  uint64_t round = 0;
  while (next < n && !failure.failed()) {
    ++round;
    if ((round / 128) % 2 == 0) {
      std::optional<EventView> ev = consumer.read_event();
      if (!ev) {
        std::this_thread::yield();
        continue;
      }
      if (std::string e = check_event(*ev, next, len_of(next, max_len)); !e.empty()) {
        return failure.set("read_event: " + e);
      }
      ++next;
    } else {
      const size_t max_bytes = 1 + (round * 977) % 8192;
      const RecordBatch b = consumer.read_batch(max_bytes);
      if (b.empty()) {
        std::this_thread::yield();
        continue;
      }
      ++*batches_seen;
      size_t off = 0;
      for (size_t i = 0; i < b.count; ++i) {
        EventView v;
        const RecordStatus st = check_record(b.bytes.data() + off, b.bytes.size() - off, &v);
        if (st != RecordStatus::kOk) {
          return failure.set("read_batch record " + std::to_string(next) + ": " +
                             record_status_name(st));
        }
        if (std::string e = check_event(v, next, len_of(next, max_len)); !e.empty()) {
          return failure.set("read_batch: " + e);
        }
        ++next;
        off += v.header->padded_size();
      }
      if (off != b.bytes.size()) return failure.set("batch bytes do not match its records");
      if (b.count > 1 && off > max_bytes) return failure.set("batch over max_bytes");
    }
  }
  consumer.release();
}

void run_events(size_t ring_bytes, uint64_t n, size_t max_len) {
  auto [producer, consumer] = make_ring(ring_bytes).split();
  Failure failure;
  uint64_t batches = 0;
  std::thread consumer_thread([&] { consume_events(consumer, n, max_len, failure, &batches); });
  std::thread producer_thread([&] { produce_events(producer, n, max_len, failure); });
  producer_thread.join();
  consumer_thread.join();
  ASSERT_FALSE(failure.failed()) << failure.message();
  EXPECT_GT(batches, 0u);
  EXPECT_TRUE(consumer.is_empty());
  EXPECT_EQ(consumer.consumed(), producer.written());
  uint64_t record_bytes = 0;
  for (uint64_t seq = 0; seq < n; ++seq) record_bytes += padded_size(len_of(seq, max_len));
  EXPECT_GE(producer.written(), record_bytes);  // plus wrap markers
}

TEST(SpscStress, OddSizedEventsArriveWholeAndInOrder) {
  run_events(64 << 10, event_count(3'000'000), 200);
}

TEST(SpscStress, LargeEventsInASmallRing) {
  // Records up to the largest payload in a ring that holds only a few of them.
  run_events(256 << 10, std::max<uint64_t>(event_count(3'000'000) / 300, 2000), kMaxPayload);
}

// ---- write_records: a multi-record batch is published at once ----

// Producer batch b holds `batch_size(b)` records; in each, event_type is the
// index in the batch and flags the batch's size.
size_t batch_size(uint64_t b) { return 1 + (b * 7) % 16; }

TEST(SpscStress, WriteRecordsBatchesAreSeenWhole) {
  const uint64_t n = event_count(3'000'000);
  auto [producer, consumer] = make_ring(64 << 10).split();
  Failure failure;

  std::thread producer_thread([&] {
    std::vector<std::byte> batch;
    std::vector<std::byte> payload(200);
    uint64_t seq = 0;
    for (uint64_t b = 0; seq < n && !failure.failed(); ++b) {
      const size_t m = batch_size(b);
      batch.clear();
      for (size_t i = 0; i < m; ++i, ++seq) {
        const size_t len = len_of(seq, 200);
        fill_payload(seq, payload.data(), len);
        EventHeader h(seq, static_cast<uint8_t>(i), static_cast<uint16_t>(len));
        h.flags = static_cast<uint8_t>(m);
        const size_t at = batch.size();
        batch.resize(at + padded_size(len));
        encode_record(batch.data() + at, h, ByteSpan(payload.data(), len));
      }
      while (!producer.write_records(batch)) {
        if (failure.failed()) return;
        std::this_thread::yield();
      }
    }
  });

  // The producer stops after the batch that holds seq n-1, so the consumer
  // is done once it has read past n-1 (batches are taken whole).
  uint64_t next = 0;
  while (next < n && !failure.failed()) {
    const RecordBatch got = consumer.read_batch(SIZE_MAX);
    if (got.empty()) {
      std::this_thread::yield();
      continue;
    }
    size_t off = 0;
    size_t index = 0;
    size_t size = 0;
    for (size_t i = 0; i < got.count; ++i) {
      EventView v;
      if (check_record(got.bytes.data() + off, got.bytes.size() - off, &v) != RecordStatus::kOk) {
        failure.set("bad record at seq " + std::to_string(next));
        break;
      }
      if (std::string e = check_event(v, next, len_of(next, 200)); !e.empty()) {
        failure.set(e);
        break;
      }
      if (v.header->event_type != index) {
        failure.set("seq " + std::to_string(next) + " is record " +
                    std::to_string(v.header->event_type) + " of its batch, expected " +
                    std::to_string(index) + ": a batch was seen in part");
        break;
      }
      size = v.header->flags;
      index = index + 1 == size ? 0 : index + 1;
      off += v.header->padded_size();
      ++next;
    }
    if (!failure.failed() && index != 0) {
      failure.set("read_batch ended inside a producer batch at seq " + std::to_string(next));
    }
  }
  producer_thread.join();
  ASSERT_FALSE(failure.failed()) << failure.message();
  EXPECT_GE(next, n);
  EXPECT_TRUE(consumer.is_empty());
}

}  // namespace
}  // namespace ringlog
