// Append intake: batches through ring 0 of a real pipeline, matched to their
// log positions by ring position and completed in order (append_intake.h).
#include "append_intake.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <vector>

#include "commit_notifier.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ringlog_test::TempDirTest;

class AppendIntakeTest : public TempDirTest {
 protected:
  // A batch of `events` records of `len` payload bytes.
  static std::string batch(uint64_t first_seq, size_t events, size_t len) {
    std::string out;
    for (size_t i = 0; i < events; ++i) {
      const std::string payload = ringlog_test::payload_for(first_seq + i, len);
      const std::vector<std::byte> rec =
          ringlog_test::encode(ringlog_test::header_for(1, 0, payload), payload);
      out.append(reinterpret_cast<const char*>(rec.data()), rec.size());
    }
    return out;
  }
};

TEST_F(AppendIntakeTest, BatchesGetTheirLogPositionsInOrderAcrossRingWraps) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<AppendIntake::Batch> done;
  // The notifier is destroyed before the intake: its last callbacks use it.
  CommitNotifier* posts = nullptr;
  AppendIntake intake([&](std::function<void()> fn) { posts->post(std::move(fn)); },
                      [](AppendIntake::Batch, absl::Status s) { FAIL() << s; });
  CommitNotifier notifier;
  posts = &notifier;
  PipelineOptions o;
  o.ring_bytes = 16 << 10;  // small: the batches wrap it many times
  o.log.segment_bytes = 256 << 10;
  // As on a primary: the storage thread places chunks, then reports the
  // durable offset, which moves the commit offset; each move completes what
  // it covers, and the intake completes what it places behind the commit.
  o.on_append = [&](const AppendedChunk& c) { intake.on_append(c); };
  o.on_durable = [&](LogPosition d) { notifier.advance(d); };
  notifier.on_advance([&](LogPosition c) {
    std::deque<AppendIntake::Batch> d = intake.take_committed(c.offset);
    std::lock_guard l(mu);
    for (auto& b : d) done.push_back(std::move(b));
    cv.notify_all();
  });
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir(), o.log);
  ASSERT_TRUE(log.ok()) << log.status();
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Start(log->get(), o, {});
  ASSERT_TRUE(p.ok()) << p.status();
  AppendIntake::Hooks hooks;
  hooks.committed = [&] { return notifier.commit().offset; };
  hooks.complete = [&] {
    std::deque<AppendIntake::Batch> d = intake.take_committed(notifier.commit().offset);
    std::lock_guard l(mu);
    for (auto& b : d) done.push_back(std::move(b));
    cv.notify_all();
  };
  intake.start(p->get(), true, std::move(hooks));

  constexpr size_t kBatches = 20000;
  uint64_t seq = 0;
  for (size_t i = 0; i < kBatches; ++i) {
    const size_t events = 1 + i % 7;
    AppendIntake::Batch b;
    b.records = batch(seq, events, 8 + (i * 37) % 200);
    b.records_bytes = b.records.size();
    b.count = events;
    b.done = [](absl::StatusOr<CommitResult>) {};
    seq += events;
    ASSERT_TRUE(intake.submit(b));
  }
  {
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(60), [&] { return done.size() == kBatches; }))
        << done.size() << " of " << kBatches << " batches placed";
  }
  ASSERT_TRUE((*p)->close().ok());
  intake.stop();
  LogPosition next{0, 0};
  for (const AppendIntake::Batch& b : done) {
    EXPECT_EQ(b.first, next);
    EXPECT_EQ(b.end.offset - b.first.offset, b.records_bytes);
    EXPECT_EQ(b.end.seq - b.first.seq, b.count);
    next = b.end;
  }
  EXPECT_EQ(next, (*log)->end());
}

TEST_F(AppendIntakeTest, ClosedIntakeRefusesAndTakeAllReturnsTheQueue) {
  AppendIntake intake([](std::function<void()> fn) { fn(); },
                      [](AppendIntake::Batch, absl::Status) {});
  AppendIntake::Batch b;
  b.records = batch(0, 1, 8);
  b.records_bytes = b.records.size();
  b.count = 1;
  ASSERT_TRUE(intake.submit(b));  // queued: no thread is taking them yet
  EXPECT_EQ(intake.take_all().size(), 1u);
  intake.close();
  AppendIntake::Batch c;
  c.records = "x";
  EXPECT_FALSE(intake.submit(c));
  EXPECT_EQ(c.records, "x");  // left with the caller
}

}  // namespace
}  // namespace ringlog
