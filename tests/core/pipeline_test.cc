// Pipeline: producers write to SPSC rings, one storage thread moves the
// records into a SegmentedLog.
#include "ringlog/pipeline.h"

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

#include "absl/cleanup/cleanup.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ::testing::HasSubstr;
using namespace ringlog_test;

size_t len_of(uint64_t seq) { return 1 + (seq * 29) % 150; }

// Event `seq` of ring `ring`: type = ring, timestamp = seq, payload from both.
void write_with_retry(SpscRingBuffer::Producer& producer, size_t ring, uint64_t seq) {
  const std::string p = payload_for(seq * 64 + ring, len_of(seq));
  const EventHeader h(seq, static_cast<uint8_t>(ring), static_cast<uint16_t>(p.size()));
  for (;;) {
    const WriteResult r = producer.write_event(h, as_bytes(p));
    if (r.ok()) return;
    ASSERT_EQ(r.code(), RingErrorCode::kNotEnoughSpace);
    std::this_thread::yield();
  }
}

class PipelineTest : public TempDirTest {
 protected:
  PipelineOptions options() const {
    PipelineOptions o;
    o.ring_bytes = 64 << 10;
    o.log.segment_bytes = 128 << 10;
    return o;
  }
  std::unique_ptr<Pipeline> open(const PipelineOptions& o, RecoveryReport* report = nullptr) {
    absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Open(dir(), o, report);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }

  // Checks that the log holds `per_ring` events of each of `rings` rings,
  // each ring's in order, and returns the total.
  static uint64_t expect_log(const SegmentedLog& log, size_t rings, uint64_t per_ring) {
    std::vector<uint64_t> next(rings, 0);
    LogReader reader(log, log.start());
    uint64_t total = 0;
    while (std::optional<EventView> ev = reader.next(log.end().offset)) {
      const size_t ring = ev->event_type();
      EXPECT_LT(ring, rings);
      if (ring >= rings) break;
      const uint64_t seq = next[ring]++;
      EXPECT_EQ(ev->timestamp(), seq) << "ring " << ring;
      EXPECT_EQ(ev->payload.size(), len_of(seq)) << "ring " << ring << " seq " << seq;
      EXPECT_TRUE(payload_matches(seq * 64 + ring, ev->payload)) << "ring " << ring;
      if (ev->timestamp() != seq) break;  // one report is enough
      ++total;
    }
    for (size_t r = 0; r < rings; ++r) EXPECT_EQ(next[r], per_ring) << "ring " << r;
    return total;
  }

  static uint64_t bytes_of(uint64_t events) {
    uint64_t b = 0;
    for (uint64_t s = 0; s < events; ++s) b += padded_size(len_of(s));
    return b;
  }
};

TEST_F(PipelineTest, EventsFromTheProducerAreInTheLogInOrderAfterClose) {
  auto p = open(options());
  constexpr uint64_t kEvents = 20000;  // many times the ring's size
  for (uint64_t s = 0; s < kEvents; ++s) write_with_retry(p->producer(), 0, s);
  ASSERT_TRUE(p->close().ok());
  EXPECT_EQ(p->log().end(), (LogPosition{bytes_of(kEvents), kEvents}));
  EXPECT_EQ(expect_log(p->log(), 1, kEvents), kEvents);
  EXPECT_EQ(p->stats().events, kEvents);
  EXPECT_EQ(p->stats().bytes, bytes_of(kEvents));
  EXPECT_GE(p->log().segment_count(), 2u);
}

TEST_F(PipelineTest, DurableEqualsTheEndAfterClose) {
  auto p = open(options());
  for (uint64_t s = 0; s < 1000; ++s) write_with_retry(p->producer(), 0, s);
  ASSERT_TRUE(p->close().ok());
  EXPECT_EQ(p->durable(), p->log().end());
  EXPECT_EQ(p->log().durable_offset(), p->log().end().offset);
}

TEST_F(PipelineTest, ReopenKeepsEventsAndAppendsAfter) {
  {
    auto p = open(options());
    for (uint64_t s = 0; s < 500; ++s) write_with_retry(p->producer(), 0, s);
    ASSERT_TRUE(p->close().ok());
  }
  RecoveryReport report;
  auto p = open(options(), &report);
  EXPECT_EQ(report.events, 500u);
  EXPECT_TRUE(report.problem.empty()) << report.problem;
  for (uint64_t s = 500; s < 1000; ++s) write_with_retry(p->producer(), 0, s);
  ASSERT_TRUE(p->close().ok());
  EXPECT_EQ(expect_log(p->log(), 1, 1000), 1000u);
}

TEST_F(PipelineTest, HoldsTheDataDirectoryLock) {
  auto p = open(options());
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), options().log);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status_message(log.status()), HasSubstr("in use"));
}

// ---- Durability under each fsync policy ----

struct PolicyCase {
  const char* name;
  FsyncPolicy policy;
};
void PrintTo(const PolicyCase& c, std::ostream* os) { *os << c.name; }

class PipelineDurableTest : public PipelineTest,
                            public ::testing::WithParamInterface<PolicyCase> {};

TEST_P(PipelineDurableTest, DurableReachesTheEndWithoutClose) {
  constexpr uint64_t kEvents = 3000;
  PipelineOptions o = options();
  o.fsync = GetParam().policy;
  o.fsync_interval = absl::Milliseconds(1);
  Notification reached;
  std::atomic<bool> notified{false};
  o.on_durable = [&](LogPosition d) {
    if (d.seq >= kEvents && !notified.exchange(true)) reached.Notify();
  };
  auto p = open(o);
  for (uint64_t s = 0; s < kEvents; ++s) write_with_retry(p->producer(), 0, s);
  ASSERT_TRUE(reached.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(p->durable(), (LogPosition{bytes_of(kEvents), kEvents}));
  EXPECT_EQ(p->log().durable_offset(), bytes_of(kEvents));
  ASSERT_TRUE(p->close().ok());
}

INSTANTIATE_TEST_SUITE_P(Policies, PipelineDurableTest,
                         ::testing::Values(PolicyCase{"none", FsyncPolicy::kNone},
                                           PolicyCase{"batch", FsyncPolicy::kEveryBatch},
                                           PolicyCase{"interval", FsyncPolicy::kInterval}),
                         [](const ::testing::TestParamInfo<PolicyCase>& i) {
                           return std::string(i.param.name);
                         });

TEST_F(PipelineTest, EveryBatchPolicySyncsToDisk) {
  PipelineOptions o = options();
  o.fsync = FsyncPolicy::kEveryBatch;
  auto p = open(o);
  for (uint64_t s = 0; s < 100; ++s) write_with_retry(p->producer(), 0, s);
  ASSERT_TRUE(p->close().ok());
  EXPECT_GT(p->stats().syncs, 0u);
}

// ---- FsyncPolicy parsing ----

TEST(FsyncPolicy, ParsesNone) {
  FsyncPolicy p = FsyncPolicy::kEveryBatch;
  absl::Duration d;
  ASSERT_TRUE(parse_fsync_policy("none", &p, &d).ok());
  EXPECT_EQ(p, FsyncPolicy::kNone);
}

TEST(FsyncPolicy, ParsesBatch) {
  FsyncPolicy p = FsyncPolicy::kNone;
  absl::Duration d;
  ASSERT_TRUE(parse_fsync_policy("batch", &p, &d).ok());
  EXPECT_EQ(p, FsyncPolicy::kEveryBatch);
}

TEST(FsyncPolicy, ParsesAnInterval) {
  FsyncPolicy p = FsyncPolicy::kNone;
  absl::Duration d;
  ASSERT_TRUE(parse_fsync_policy("10ms", &p, &d).ok());
  EXPECT_EQ(p, FsyncPolicy::kInterval);
  EXPECT_EQ(d, absl::Milliseconds(10));
}

TEST(FsyncPolicy, InvalidStringsAreInvalidArgumentNamingTheInput) {
  for (const char* bad : {"", "sometimes", "10", "-5ms", "0s", "inf", "NONE"}) {
    FsyncPolicy p = FsyncPolicy::kNone;
    absl::Duration d = absl::Seconds(3);
    const absl::Status s = parse_fsync_policy(bad, &p, &d);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "\"" << bad << "\"";
    EXPECT_THAT(status_message(s), HasSubstr(std::string("\"") + bad + "\""));
    EXPECT_EQ(d, absl::Seconds(3)) << "left unchanged on error";
  }
}

TEST(FsyncPolicy, NameRoundTrips) {
  EXPECT_EQ(fsync_policy_name(FsyncPolicy::kNone, absl::ZeroDuration()), "none");
  EXPECT_EQ(fsync_policy_name(FsyncPolicy::kEveryBatch, absl::ZeroDuration()), "batch");
  const std::string name = fsync_policy_name(FsyncPolicy::kInterval, absl::Milliseconds(10));
  FsyncPolicy p = FsyncPolicy::kNone;
  absl::Duration d;
  ASSERT_TRUE(parse_fsync_policy(name, &p, &d).ok()) << name;
  EXPECT_EQ(p, FsyncPolicy::kInterval);
  EXPECT_EQ(d, absl::Milliseconds(10));
}

// ---- Several rings ----

TEST_F(PipelineTest, TwoRingsEachWithItsOwnProducerThread) {
  PipelineOptions o = options();
  o.rings = 2;
  auto p = open(o);
  ASSERT_EQ(p->ring_count(), 2u);
  constexpr uint64_t kPerRing = 20000;
  std::vector<std::thread> producers;
  for (size_t r = 0; r < 2; ++r) {
    producers.emplace_back([&p, r] {
      for (uint64_t s = 0; s < kPerRing; ++s) write_with_retry(p->producer(r), r, s);
    });
  }
  for (std::thread& t : producers) t.join();
  ASSERT_TRUE(p->close().ok());
  EXPECT_EQ(expect_log(p->log(), 2, kPerRing), 2 * kPerRing);
  EXPECT_EQ(p->log().end().seq, 2 * kPerRing);
}

// ---- Callbacks ----

TEST_F(PipelineTest, OnAppendPositionsIncrease) {
  PipelineOptions o = options();
  o.rings = 2;
  std::vector<AppendedChunk> calls;  // storage thread only until close() joins it
  o.on_append = [&](const AppendedChunk& c) { calls.push_back(c); };
  auto p = open(o);
  for (uint64_t s = 0; s < 5000; ++s) {
    write_with_retry(p->producer(0), 0, s);
    write_with_retry(p->producer(1), 1, s);
  }
  ASSERT_TRUE(p->close().ok());
  ASSERT_FALSE(calls.empty());
  uint64_t last_pos[2] = {0, 0};
  LogPosition last_end{0, 0};
  for (const AppendedChunk& c : calls) {
    ASSERT_LT(c.ring, 2u);
    EXPECT_GT(c.ring_position, last_pos[c.ring]);
    // Chunks are back to back in the log: each starts where the last ended.
    EXPECT_EQ(c.first, last_end);
    EXPECT_GT(c.end.offset, c.first.offset);
    EXPECT_GT(c.end.seq, c.first.seq);
    last_pos[c.ring] = c.ring_position;
    last_end = c.end;
  }
  EXPECT_EQ(last_end, p->log().end());
  EXPECT_EQ(last_pos[0], p->producer(0).written());
  EXPECT_EQ(last_pos[1], p->producer(1).written());
}

TEST_F(PipelineTest, OnDurablePositionsIncreaseToTheEnd) {
  PipelineOptions o = options();
  o.fsync = FsyncPolicy::kEveryBatch;
  std::vector<LogPosition> durable;  // storage thread only until close() joins it
  o.on_durable = [&](LogPosition d) { durable.push_back(d); };
  auto p = open(o);
  for (uint64_t s = 0; s < 5000; ++s) write_with_retry(p->producer(), 0, s);
  ASSERT_TRUE(p->close().ok());
  ASSERT_FALSE(durable.empty());
  for (size_t i = 1; i < durable.size(); ++i) {
    EXPECT_GE(durable[i].offset, durable[i - 1].offset) << i;
    EXPECT_GE(durable[i].seq, durable[i - 1].seq) << i;
  }
  EXPECT_GT(durable.back().offset, durable.front().offset);
  EXPECT_EQ(durable.back(), p->log().end());
}

// pipeline.h: on_durable is called "after the durable offset moves".
TEST_F(PipelineTest, OnDurableIsCalledOnlyWhenTheDurablePositionMoves) {
  PipelineOptions o = options();
  o.fsync = FsyncPolicy::kEveryBatch;
  std::vector<LogPosition> durable;  // storage thread only until close() joins it
  Notification all_durable;
  o.on_durable = [&](LogPosition d) {
    durable.push_back(d);
    if (d.seq == 5000 && !all_durable.HasBeenNotified()) all_durable.Notify();
  };
  auto p = open(o);
  for (uint64_t s = 0; s < 5000; ++s) write_with_retry(p->producer(), 0, s);
  // Everything is durable before close(): closing has nothing new to report.
  ASSERT_TRUE(all_durable.WaitForNotificationWithTimeout(absl::Seconds(60)));
  ASSERT_TRUE(p->close().ok());
  for (size_t i = 1; i < durable.size(); ++i) {
    EXPECT_NE(durable[i], durable[i - 1]) << "call " << i << " repeats the position";
  }
}

// ---- Close ----

TEST_F(PipelineTest, CloseIsIdempotent) {
  auto p = open(options());
  for (uint64_t s = 0; s < 10; ++s) write_with_retry(p->producer(), 0, s);
  EXPECT_TRUE(p->close().ok());
  EXPECT_TRUE(p->close().ok());
  EXPECT_EQ(p->log().end().seq, 10u);
}

TEST_F(PipelineTest, DestructorWithoutCloseDrainsTheRings) {
  {
    auto p = open(options());
    for (uint64_t s = 0; s < 300; ++s) write_with_retry(p->producer(), 0, s);
  }
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), options().log);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(expect_log(**log, 1, 300), 300u);
}

TEST_F(PipelineTest, WakeIsHarmless) {
  auto p = open(options());
  for (uint64_t s = 0; s < 10; ++s) {
    write_with_retry(p->producer(), 0, s);
    p->wake();
  }
  ASSERT_TRUE(p->close().ok());
  EXPECT_EQ(expect_log(p->log(), 1, 10), 10u);
}

// ---- A full ring ----

TEST_F(PipelineTest, ProducerWithAFullRingGetsNotEnoughSpaceAndNeverBlocks) {
  Notification entered;
  Notification release;
  PipelineOptions o = options();
  // The storage thread stops inside its first callback, so nothing drains the ring.
  o.on_append = [&](const AppendedChunk&) {
    if (!entered.HasBeenNotified()) {
      entered.Notify();
      release.WaitForNotification();
    }
  };
  auto p = open(o);
  absl::Cleanup unblock = [&] {
    if (!release.HasBeenNotified()) release.Notify();
  };
  write_with_retry(p->producer(), 0, 0);
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(60)));
  uint64_t accepted = 1;
  WriteResult r;
  const uint64_t bound = o.ring_bytes / padded_size(1) + 2;
  for (uint64_t i = 0; i < bound; ++i) {
    const std::string pl = payload_for(accepted * 64, len_of(accepted));
    r = p->producer().write_event(EventHeader(accepted, 0, pl.size()), as_bytes(pl));
    if (!r.ok()) break;
    ++accepted;
  }
  ASSERT_FALSE(r.ok()) << "the ring never filled";
  EXPECT_EQ(r.code(), RingErrorCode::kNotEnoughSpace);
  EXPECT_GT(r.required(), r.available());
  const std::string pl = payload_for(accepted * 64, len_of(accepted));
  EXPECT_EQ(p->producer().write_event(EventHeader(accepted, 0, pl.size()), as_bytes(pl)).code(),
            RingErrorCode::kNotEnoughSpace);
  release.Notify();
  ASSERT_TRUE(p->close().ok());
  EXPECT_EQ(expect_log(p->log(), 1, accepted), accepted);
}

// ---- A log the caller owns ----

TEST_F(PipelineTest, StartOnACallerOwnedLogAppendsAfterItsEvents) {
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), options().log);
  ASSERT_TRUE(log.ok()) << log.status();
  for (uint64_t s = 0; s < 5; ++s) {
    const std::string pl = payload_for(s * 64, len_of(s));
    ASSERT_TRUE((*log)->append_event(EventHeader(s, 0, pl.size()), as_bytes(pl)).ok());
  }
  {
    absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Start(log->get(), options());
    ASSERT_TRUE(p.ok()) << p.status();
    for (uint64_t s = 5; s < 100; ++s) write_with_retry((*p)->producer(), 0, s);
    ASSERT_TRUE((*p)->close().ok());
  }
  // The log outlives the pipeline and takes writes again.
  const std::string pl = payload_for(100 * 64, len_of(100));
  ASSERT_TRUE((*log)->append_event(EventHeader(100, 0, pl.size()), as_bytes(pl)).ok());
  EXPECT_EQ(expect_log(**log, 1, 101), 101u);
}

TEST_F(PipelineTest, StartValidatesOptions) {
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), options().log);
  ASSERT_TRUE(log.ok());
  PipelineOptions o = options();
  o.ring_bytes = 1000;
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Start(log->get(), o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PipelineTest, StartUsesRingsPreparedAhead) {
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), options().log);
  ASSERT_TRUE(log.ok());
  std::vector<SpscRingBuffer> rings;
  rings.push_back(*SpscRingBuffer::Create(options().ring_bytes));
  absl::StatusOr<std::unique_ptr<Pipeline>> p =
      Pipeline::Start(log->get(), options(), std::move(rings));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->producer().capacity(), options().ring_bytes);
  for (uint64_t s = 0; s < 50; ++s) write_with_retry((*p)->producer(), 0, s);
  ASSERT_TRUE((*p)->close().ok());
  EXPECT_EQ((*log)->end().seq, 50u);
}

TEST_F(PipelineTest, PreparedRingsMustMatchTheOptions) {
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), options().log);
  ASSERT_TRUE(log.ok());
  std::vector<SpscRingBuffer> wrong_size;
  wrong_size.push_back(*SpscRingBuffer::Create(options().ring_bytes * 2));
  EXPECT_EQ(Pipeline::Start(log->get(), options(), std::move(wrong_size)).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<SpscRingBuffer> too_many;
  too_many.push_back(*SpscRingBuffer::Create(options().ring_bytes));
  too_many.push_back(*SpscRingBuffer::Create(options().ring_bytes));
  EXPECT_EQ(Pipeline::Start(log->get(), options(), std::move(too_many)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PipelineTest, FsyncLatenciesAreCountedInTheHistogram) {
  PipelineOptions o = options();
  o.fsync = FsyncPolicy::kEveryBatch;
  auto p = open(o);
  for (uint64_t s = 0; s < 200; ++s) write_with_retry(p->producer(), 0, s);
  ASSERT_TRUE(p->close().ok());
  const PipelineStats st = p->stats();
  uint64_t n = 0;
  for (uint64_t b : st.fsync_buckets) n += b;
  EXPECT_EQ(n, st.syncs);
  EXPECT_GT(st.syncs, 0u);
  EXPECT_GT(st.fsync_seconds, 0.0);
}

TEST_F(PipelineTest, RingUsedShowsWhatTheStorageThreadHasNotTaken) {
  Notification entered;
  Notification release;
  PipelineOptions o = options();
  o.on_append = [&](const AppendedChunk&) {
    if (!entered.HasBeenNotified()) {
      entered.Notify();
      release.WaitForNotification();
    }
  };
  auto p = open(o);
  absl::Cleanup unblock = [&] {
    if (!release.HasBeenNotified()) release.Notify();
  };
  EXPECT_EQ(p->ring_used(), 0u);
  write_with_retry(p->producer(), 0, 0);
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(60)));
  for (uint64_t s = 1; s < 10; ++s) write_with_retry(p->producer(), 0, s);
  EXPECT_EQ(p->ring_used(), p->producer().used());
  EXPECT_GE(p->ring_used(), bytes_of(10) - padded_size(len_of(0)));
  release.Notify();
  ASSERT_TRUE(p->close().ok());
  EXPECT_EQ(expect_log(p->log(), 1, 10), 10u);
}

// ---- Options ----

TEST_F(PipelineTest, ZeroRingsIsInvalid) {
  PipelineOptions o = options();
  o.rings = 0;
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Open(dir(), o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(p.status()), HasSubstr("ring count 0"));
}

TEST_F(PipelineTest, BadRingSizeIsRejectedBeforeTouchingTheDirectory) {
  PipelineOptions o = options();
  o.ring_bytes = 1000;
  const std::string sub = path("not-created");
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Open(sub, o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_message(p.status()), HasSubstr("1000"));
  EXPECT_FALSE(std::filesystem::exists(sub));
}


// In a death-test child: opens a pipeline with the address space limited to
// what the process uses now plus 64 MiB, and exits 0 when Open returns
// RESOURCE_EXHAUSTED.
[[noreturn]] void open_with_little_memory(const std::string& dir, const PipelineOptions& o) {
  unsigned long pages = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr || std::fscanf(f, "%lu", &pages) != 1) std::_Exit(3);
  std::fclose(f);
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = pages * 4096 + (rlim_t{64} << 20);
  if (setrlimit(RLIMIT_AS, &rl) != 0) std::_Exit(4);
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Open(dir, o);
  std::fprintf(stderr, "Open: %s\n", std::string(p.status().ToString()).c_str());
  std::_Exit(!p.ok() && p.status().code() == absl::StatusCode::kResourceExhausted ? 0 : 5);
}

// A ring that cannot be allocated (no memory) must give an error, like any
// other failure in Open, not bring the process down.
TEST_F(PipelineTest, RingAllocationFailureIsAnErrorNotACrash) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "address-space limits and sanitizers do not mix";
#endif
  GTEST_FLAG_SET(death_test_style, "fast");  // no threads yet; the child shares dir()
  PipelineOptions o = options();
  o.log.prepare_ahead = false;
  o.ring_bytes = size_t{256} << 20;  // over the limit
  EXPECT_EXIT(open_with_little_memory(dir(), o), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ringlog

namespace ringlog {
namespace {

using Action = SyncSchedule::Action;
const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

TEST(SyncSchedule, NothingWrittenMeansNothingToDo) {
  SyncSchedule s(FsyncPolicy::kEveryBatch, absl::Milliseconds(10));
  EXPECT_EQ(s.due(false, kT0), Action::kNothing);
  EXPECT_EQ(s.due(true, kT0), Action::kFlush);  // closing flushes anyway
}

TEST(SyncSchedule, NonePublishesWithoutFlushingUntilClose) {
  SyncSchedule s(FsyncPolicy::kNone, absl::Milliseconds(10));
  s.wrote();
  EXPECT_EQ(s.due(false, kT0), Action::kPublish);
  s.done(Action::kPublish, kT0);
  EXPECT_FALSE(s.unsynced());
  s.wrote();
  EXPECT_EQ(s.due(true, kT0), Action::kFlush);
}

TEST(SyncSchedule, EveryBatchFlushesEachTime) {
  SyncSchedule s(FsyncPolicy::kEveryBatch, absl::Milliseconds(10));
  for (int i = 0; i < 3; ++i) {
    s.wrote();
    EXPECT_EQ(s.due(false, kT0 + absl::Microseconds(i)), Action::kFlush);
    s.done(Action::kFlush, kT0 + absl::Microseconds(i));
  }
}

TEST(SyncSchedule, IntervalWaitsForTheIntervalSinceTheLastFlush) {
  SyncSchedule s(FsyncPolicy::kInterval, absl::Milliseconds(10));
  s.wrote();
  EXPECT_EQ(s.due(false, kT0), Action::kFlush);  // the first flush is due at once
  s.done(Action::kFlush, kT0);
  s.wrote();
  EXPECT_EQ(s.due(false, kT0 + absl::Milliseconds(9)), Action::kNothing);
  EXPECT_EQ(s.due(true, kT0 + absl::Milliseconds(9)), Action::kFlush);
  EXPECT_EQ(s.due(false, kT0 + absl::Milliseconds(10)), Action::kFlush);
}

TEST(SyncSchedule, NextDueIsTheIntervalsEndWhileSomethingIsUnsynced) {
  SyncSchedule s(FsyncPolicy::kInterval, absl::Milliseconds(10));
  EXPECT_EQ(s.next_due(), absl::InfiniteFuture());  // nothing to sync: no deadline
  s.wrote();
  EXPECT_EQ(s.next_due(), absl::InfinitePast());  // never flushed: due at once
  s.done(Action::kFlush, kT0);
  EXPECT_EQ(s.next_due(), absl::InfiniteFuture());
  s.wrote();
  EXPECT_EQ(s.next_due(), kT0 + absl::Milliseconds(10));
  EXPECT_EQ(s.due(false, s.next_due()), Action::kFlush);
}

TEST(SyncSchedule, NextDueIsNowForPoliciesWithoutAnInterval) {
  for (FsyncPolicy p : {FsyncPolicy::kNone, FsyncPolicy::kEveryBatch}) {
    SyncSchedule s(p, absl::Milliseconds(10));
    EXPECT_EQ(s.next_due(), absl::InfiniteFuture());
    s.wrote();
    EXPECT_EQ(s.next_due(), absl::InfinitePast());
  }
}

}  // namespace
}  // namespace ringlog
