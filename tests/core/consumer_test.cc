#include "ringlog/consumer.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ::testing::ElementsAre;
using ringlog_test::header_for;
using ringlog_test::payload_for;
using ringlog_test::to_string;

// Records what it is given; fails the events whose timestamp `fail_if` picks.
class Recorder : public EventConsumer {
 public:
  explicit Recorder(std::string name, std::vector<std::string>* order = nullptr,
                    bool (*fail_if)(uint64_t) = nullptr)
      : name_(std::move(name)), order_(order), fail_if_(fail_if) {}

  bool consume(const EventHeader& h, ByteSpan payload) override {
    seqs.push_back(h.timestamp);
    payloads.push_back(to_string(payload));
    if (order_ != nullptr) order_->push_back(name_ + ":" + std::to_string(h.timestamp));
    return fail_if_ == nullptr || !fail_if_(h.timestamp);
  }
  std::string_view name() const override { return name_; }
  void flush() override { ++flushes; }

  std::vector<uint64_t> seqs;
  std::vector<std::string> payloads;
  int flushes = 0;

 private:
  std::string name_;
  std::vector<std::string>* order_;
  bool (*fail_if_)(uint64_t);
};

bool is_odd(uint64_t v) { return v % 2 == 1; }

// The dispatcher drains both ring kinds; each harness gives one of them.
struct RingHarness {
  RingHarness() : ring(std::move(*RingBuffer::Create(4096))) {}
  bool write(uint64_t seq) {
    const std::string p = payload_for(seq, 10 + seq % 7);
    return ring.write_event(header_for(seq, 1, p), as_bytes(p)).ok();
  }
  RingBuffer& source() { return ring; }
  bool is_empty() { return ring.is_empty(); }
  RingBuffer ring;
};

struct SpscHarness {
  SpscHarness() {
    auto [p, c] = std::move(*SpscRingBuffer::Create(4096)).split();
    producer = std::move(p);
    consumer = std::move(c);
  }
  bool write(uint64_t seq) {
    const std::string p = payload_for(seq, 10 + seq % 7);
    return producer.write_event(header_for(seq, 1, p), as_bytes(p)).ok();
  }
  SpscRingBuffer::Consumer& source() { return consumer; }
  bool is_empty() { return consumer.is_empty(); }
  SpscRingBuffer::Producer producer;
  SpscRingBuffer::Consumer consumer;
};

template <typename H>
class EventDispatcherTest : public ::testing::Test {
 protected:
  void write_n(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) ASSERT_TRUE(harness_.write(i)) << i;
  }
  H harness_;
  EventDispatcher dispatcher_;
};

using Harnesses = ::testing::Types<RingHarness, SpscHarness>;
class HarnessNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, RingHarness> ? "RingBuffer" : "SpscConsumer";
  }
};
TYPED_TEST_SUITE(EventDispatcherTest, Harnesses, HarnessNames);

TYPED_TEST(EventDispatcherTest, DrainEmptyBuffer) {
  Recorder& r = this->dispatcher_.template emplace_consumer<Recorder>("r");
  const DrainStats s = this->dispatcher_.drain(this->harness_.source());
  EXPECT_EQ(s.events_read, 0u);
  EXPECT_EQ(s.delivered, 0u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_TRUE(r.seqs.empty());
}

TYPED_TEST(EventDispatcherTest, DrainDeliversToConsumer) {
  Recorder& r = this->dispatcher_.template emplace_consumer<Recorder>("r");
  this->write_n(3);
  const DrainStats s = this->dispatcher_.drain(this->harness_.source());
  EXPECT_EQ(s.events_read, 3u);
  EXPECT_EQ(s.delivered, 3u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_THAT(r.seqs, ElementsAre(0, 1, 2));
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(r.payloads[i], payload_for(i, 10 + i % 7));
  EXPECT_TRUE(this->harness_.is_empty());
}

TYPED_TEST(EventDispatcherTest, DrainTracksFailures) {
  this->dispatcher_.template emplace_consumer<Recorder>("odd-fails", nullptr, &is_odd);
  this->write_n(5);
  const DrainStats s = this->dispatcher_.drain(this->harness_.source());
  EXPECT_EQ(s.events_read, 5u);
  EXPECT_EQ(s.delivered, 3u);
  EXPECT_EQ(s.failed, 2u);
}

TYPED_TEST(EventDispatcherTest, DrainBatchRespectsLimit) {
  Recorder& r = this->dispatcher_.template emplace_consumer<Recorder>("r");
  this->write_n(10);
  DrainStats s = this->dispatcher_.drain_batch(this->harness_.source(), 4);
  EXPECT_EQ(s.events_read, 4u);
  EXPECT_THAT(r.seqs, ElementsAre(0, 1, 2, 3));
  s = this->dispatcher_.drain_batch(this->harness_.source(), 4);
  EXPECT_EQ(s.events_read, 4u);
  s = this->dispatcher_.drain_batch(this->harness_.source(), 4);
  EXPECT_EQ(s.events_read, 2u);
  EXPECT_EQ(r.seqs.size(), 10u);
  EXPECT_EQ(r.seqs.back(), 9u);
}

TYPED_TEST(EventDispatcherTest, DrainBatchZeroReadsNothing) {
  Recorder& r = this->dispatcher_.template emplace_consumer<Recorder>("r");
  this->write_n(2);
  EXPECT_EQ(this->dispatcher_.drain_batch(this->harness_.source(), 0).events_read, 0u);
  EXPECT_TRUE(r.seqs.empty());
  EXPECT_FALSE(this->harness_.is_empty());
}

TYPED_TEST(EventDispatcherTest, MultipleConsumersEachGetEveryEventInOrder) {
  std::vector<std::string> order;
  Recorder& a = this->dispatcher_.template emplace_consumer<Recorder>("a", &order);
  Recorder& b = this->dispatcher_.template emplace_consumer<Recorder>("b", &order, &is_odd);
  EXPECT_EQ(this->dispatcher_.consumer_count(), 2u);
  this->write_n(2);
  const DrainStats s = this->dispatcher_.drain(this->harness_.source());
  EXPECT_EQ(s.events_read, 2u);
  EXPECT_EQ(s.delivered, 3u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_THAT(a.seqs, ElementsAre(0, 1));
  EXPECT_THAT(b.seqs, ElementsAre(0, 1));
  EXPECT_THAT(order, ElementsAre("a:0", "b:0", "a:1", "b:1"));
}

TYPED_TEST(EventDispatcherTest, SuccessRateCalculation) {
  this->dispatcher_.template emplace_consumer<Recorder>("odd-fails", nullptr, &is_odd);
  this->write_n(4);
  const DrainStats s = this->dispatcher_.drain(this->harness_.source());
  EXPECT_DOUBLE_EQ(s.success_rate(), 0.5);
}

TYPED_TEST(EventDispatcherTest, TotalsAccumulateOverDrains) {
  this->dispatcher_.template emplace_consumer<Recorder>("odd-fails", nullptr, &is_odd);
  this->write_n(6);
  (void)this->dispatcher_.drain_batch(this->harness_.source(), 3);
  (void)this->dispatcher_.drain(this->harness_.source());
  EXPECT_EQ(this->dispatcher_.totals().events_read, 6u);
  EXPECT_EQ(this->dispatcher_.totals().delivered, 3u);
  EXPECT_EQ(this->dispatcher_.totals().failed, 3u);
}

TYPED_TEST(EventDispatcherTest, DrainHandsTheSpaceBack) {
  this->dispatcher_.template emplace_consumer<Recorder>("r");
  uint64_t written = 0;
  while (this->harness_.write(written)) ++written;  // fill the ring
  ASSERT_GT(written, 0u);
  EXPECT_EQ(this->dispatcher_.drain(this->harness_.source()).events_read, written);
  EXPECT_TRUE(this->harness_.write(written));
}

TYPED_TEST(EventDispatcherTest, FlushReachesEveryConsumer) {
  Recorder& a = this->dispatcher_.template emplace_consumer<Recorder>("a");
  Recorder& b = this->dispatcher_.template emplace_consumer<Recorder>("b");
  this->dispatcher_.flush();
  EXPECT_EQ(a.flushes, 1);
  EXPECT_EQ(b.flushes, 1);
}

TEST(DrainStats, SuccessRateCalculation) {
  DrainStats s;
  s.delivered = 3;
  s.failed = 1;
  EXPECT_DOUBLE_EQ(s.success_rate(), 0.75);
  s.delivered = 0;
  EXPECT_DOUBLE_EQ(s.success_rate(), 0.0);
}

TEST(DrainStats, SuccessRateEmpty) {
  EXPECT_DOUBLE_EQ(DrainStats{}.success_rate(), 1.0);
}

TEST(DrainStats, PlusEqualsAddsEveryCounter) {
  DrainStats a{1, 2, 3};
  a += DrainStats{10, 20, 30};
  EXPECT_EQ(a.events_read, 11u);
  EXPECT_EQ(a.delivered, 22u);
  EXPECT_EQ(a.failed, 33u);
}

}  // namespace
}  // namespace ringlog
