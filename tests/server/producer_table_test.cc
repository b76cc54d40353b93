// Idempotent appends: the producer table (producer_table.h).
#include "producer_table.h"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <vector>

#include "ringlog/control.h"
#include "test_util.h"

namespace ringlog {
namespace {

// Runs posted callbacks when told, as the notifier thread would later.
struct Posted {
  std::vector<std::function<void()>> fns;
  ProducerTable::Post post() {
    return [this](std::function<void()> fn) { fns.push_back(std::move(fn)); };
  }
  void run() {
    std::vector<std::function<void()>> now;
    now.swap(fns);
    for (auto& f : now) f();
  }
};

// Records what one `done` was called with.
struct Answer {
  std::optional<absl::StatusOr<CommitResult>> got;
  AppendDone done() {
    return [this](absl::StatusOr<CommitResult> r) { got = std::move(r); };
  }
};

CommitResult result(uint64_t first, uint64_t end, uint64_t count) {
  return CommitResult{LogPosition{first, first / 10}, LogPosition{end, end / 10}, count, end, 1, false};
}

TEST(ProducerTable, NewSeqsAreAppendedAndRepeatsAreNot) {
  ProducerTable t;
  Posted p;
  Answer a1, a2;
  AppendDone d1 = a1.done();
  EXPECT_TRUE(t.admit({"p", 1}, LogPosition{}, 1, d1, p.post()));
  AppendDone d2 = a2.done();
  EXPECT_FALSE(t.admit({"p", 1}, LogPosition{}, 1, d2, p.post()));
  EXPECT_FALSE(a2.got.has_value());  // waits for the first to complete
  t.completed({"p", 1}, result(0, 100, 3));
  ASSERT_TRUE(a2.got.has_value());
  ASSERT_TRUE(a2.got->ok());
  EXPECT_TRUE((*a2.got)->duplicate);
  EXPECT_EQ((*a2.got)->first.offset, 0u);
  EXPECT_EQ((*a2.got)->end.offset, 100u);
  EXPECT_EQ((*a2.got)->count, 3u);
  EXPECT_FALSE(a1.got.has_value());  // the first one's done is the caller's
}

TEST(ProducerTable, RepeatOfACommittedBatchIsAnsweredThroughPost) {
  ProducerTable t;
  Posted p;
  Answer a1, a2;
  AppendDone d1 = a1.done();
  ASSERT_TRUE(t.admit({"p", 5}, LogPosition{}, 1, d1, p.post()));
  t.completed({"p", 5}, result(200, 300, 2));
  AppendDone d2 = a2.done();
  EXPECT_FALSE(t.admit({"p", 5}, LogPosition{300, 30}, 4, d2, p.post()));
  EXPECT_FALSE(a2.got.has_value());  // never on the caller's thread
  p.run();
  ASSERT_TRUE(a2.got.has_value() && a2.got->ok());
  EXPECT_TRUE((*a2.got)->duplicate);
  EXPECT_EQ((*a2.got)->first.offset, 200u);
  EXPECT_EQ((*a2.got)->commit_offset, 300u);
  EXPECT_EQ((*a2.got)->epoch, 4u);
}

TEST(ProducerTable, OlderSeqGetsAnEmptyRangeAtTheLatestEnd) {
  ProducerTable t;
  Posted p;
  Answer a1, a2, old;
  AppendDone d1 = a1.done(), d2 = a2.done(), d3 = old.done();
  ASSERT_TRUE(t.admit({"p", 1}, LogPosition{}, 1, d1, p.post()));
  t.completed({"p", 1}, result(0, 100, 3));
  ASSERT_TRUE(t.admit({"p", 2}, LogPosition{100, 10}, 1, d2, p.post()));
  t.completed({"p", 2}, result(100, 250, 4));
  EXPECT_FALSE(t.admit({"p", 1}, LogPosition{250, 25}, 1, d3, p.post()));
  p.run();
  ASSERT_TRUE(old.got.has_value() && old.got->ok());
  EXPECT_TRUE((*old.got)->duplicate);
  EXPECT_EQ((*old.got)->first, (*old.got)->end);
  EXPECT_EQ((*old.got)->end.offset, 250u);
  EXPECT_EQ((*old.got)->count, 0u);
}

TEST(ProducerTable, FailedBatchMayBeSentAgainAndItsWaitersFail) {
  ProducerTable t;
  Posted p;
  Answer a1, a2, a3;
  AppendDone d1 = a1.done(), d2 = a2.done(), d3 = a3.done();
  ASSERT_TRUE(t.admit({"p", 7}, LogPosition{}, 1, d1, p.post()));
  EXPECT_FALSE(t.admit({"p", 7}, LogPosition{}, 1, d2, p.post()));
  t.completed({"p", 7}, absl::UnavailableError("stopped"));
  ASSERT_TRUE(a2.got.has_value());
  EXPECT_EQ(a2.got->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(t.admit({"p", 7}, LogPosition{}, 1, d3, p.post()));  // taken again
}

// Batches fail in order (a refused batch ends its stream), but their
// failures may be reported in any order: every one of them may be sent
// again and is taken, none answered as a duplicate of what was never stored.
TEST(ProducerTable, BatchesThatFailedUnstoredAreTakenAgainWhateverTheOrderOfTheReports) {
  for (bool later_first : {false, true}) {
    ProducerTable t;
    Posted p;
    Answer a[4];
    AppendDone d[4] = {a[0].done(), a[1].done(), a[2].done(), a[3].done()};
    ASSERT_TRUE(t.admit({"p", 5}, LogPosition{}, 1, d[0], p.post()));
    ASSERT_TRUE(t.admit({"p", 6}, LogPosition{}, 1, d[1], p.post()));
    const absl::Status full = absl::ResourceExhaustedError("the disk is full");
    if (later_first) t.completed({"p", 6}, full);
    t.completed({"p", 5}, full);
    if (!later_first) t.completed({"p", 6}, full);
    EXPECT_TRUE(t.admit({"p", 5}, LogPosition{}, 1, d[2], p.post())) << later_first;
    EXPECT_TRUE(t.admit({"p", 6}, LogPosition{}, 1, d[3], p.post())) << later_first;
  }
}

// A batch refused while it waited for its commit stays in the log: sent
// again, it is answered as a duplicate once the commit covers it, whether
// the later batch's failure (unstored) was reported before or after.
TEST(ProducerTable, ARefusedBatchInTheLogIsADuplicateOnceCommitted) {
  for (bool later_first : {false, true}) {
    ProducerTable t;
    Posted p;
    Answer a[4];
    AppendDone d[4] = {a[0].done(), a[1].done(), a[2].done(), a[3].done()};
    ASSERT_TRUE(t.admit({"p", 5}, LogPosition{}, 1, d[0], p.post()));
    ASSERT_TRUE(t.admit({"p", 6}, LogPosition{}, 1, d[1], p.post()));
    const absl::Status full = absl::ResourceExhaustedError("a replica cannot store");
    if (later_first) t.completed({"p", 6}, full);
    t.refused_in_log({"p", 5}, result(100, 200, 3), full);
    if (!later_first) t.completed({"p", 6}, full);
    EXPECT_FALSE(t.admit({"p", 5}, LogPosition{100, 10}, 1, d[2], p.post())) << later_first;
    EXPECT_TRUE(t.admit({"p", 6}, LogPosition{100, 10}, 1, d[3], p.post())) << later_first;
    p.run();
    EXPECT_FALSE(a[2].got.has_value());  // not committed yet
    t.on_commit(LogPosition{200, 20}, 1);
    ASSERT_TRUE(a[2].got.has_value() && a[2].got->ok()) << later_first;
    EXPECT_TRUE((*a[2].got)->duplicate);
    EXPECT_EQ((*a[2].got)->first.offset, 100u);
    EXPECT_EQ((*a[2].got)->count, 3u);
  }
}

// A repeat of the batch last in the log while a later one is on its way
// gets that batch's own range, at once if it is committed.
TEST(ProducerTable, RepeatOfTheLastStoredBatchWhileTheNextIsInFlight) {
  ProducerTable t;
  Posted p;
  Answer a1, a2, dup;
  AppendDone d1 = a1.done(), d2 = a2.done(), d3 = dup.done();
  ASSERT_TRUE(t.admit({"p", 1}, LogPosition{}, 1, d1, p.post()));
  t.completed({"p", 1}, result(0, 100, 3));
  ASSERT_TRUE(t.admit({"p", 2}, LogPosition{100, 10}, 1, d2, p.post()));
  EXPECT_FALSE(t.admit({"p", 1}, LogPosition{100, 10}, 1, d3, p.post()));
  p.run();
  ASSERT_TRUE(dup.got.has_value() && dup.got->ok());
  EXPECT_TRUE((*dup.got)->duplicate);
  EXPECT_EQ((*dup.got)->first.offset, 0u);
  EXPECT_EQ((*dup.got)->end.offset, 100u);
  EXPECT_EQ((*dup.got)->count, 3u);
}

TEST(ProducerTable, ProducersAreIndependent) {
  ProducerTable t;
  Posted p;
  Answer a, b;
  AppendDone da = a.done(), db = b.done();
  EXPECT_TRUE(t.admit({"a", 3}, LogPosition{}, 1, da, p.post()));
  EXPECT_TRUE(t.admit({"b", 3}, LogPosition{}, 1, db, p.post()));
}

// A batch as the primary writes it: `events` data records, then its mark.
std::string marked_batch(const std::string& producer, uint64_t seq, uint32_t events) {
  std::string out;
  for (uint32_t i = 0; i < events; ++i) {
    const std::string payload = ringlog_test::payload_for(i, 10);
    const std::vector<std::byte> rec = ringlog_test::encode(ringlog_test::header_for(1, 0, payload), payload);
    out.append(reinterpret_cast<const char*>(rec.data()), rec.size());
  }
  append_producer_batch_mark(&out, ProducerBatchMark{producer, seq, events}, 1);
  return out;
}

TEST(ProducerTable, LearnsMarksFromTheLog) {
  ProducerTable t;
  const std::string log = marked_batch("p", 4, 3) + marked_batch("q", 9, 2);
  t.learn(ByteSpan(reinterpret_cast<const std::byte*>(log.data()), log.size()),
          LogPosition{1000, 50});
  Posted p;
  Answer dup, next;
  AppendDone d = dup.done(), n = next.done();
  EXPECT_FALSE(t.admit({"p", 4}, LogPosition{1000 + log.size(), 57}, 2, d, p.post()));
  p.run();
  ASSERT_TRUE(dup.got.has_value() && dup.got->ok());
  EXPECT_TRUE((*dup.got)->duplicate);
  EXPECT_EQ((*dup.got)->count, 3u);
  EXPECT_EQ((*dup.got)->first.seq, 50u);  // its first data record
  EXPECT_EQ((*dup.got)->end.seq, 54u);    // after its mark
  EXPECT_TRUE(t.admit({"q", 10}, LogPosition{}, 2, n, p.post()));
}

// After a failover the new primary knows the batch from its log, but its
// commit offset may not cover it yet: the resend is answered once the
// commit offset does, not left waiting for a completion that never comes.
TEST(ProducerTable, RepeatOfABatchKnownFromTheLogIsAnsweredWhenCommitted) {
  ProducerTable t;
  const std::string log = marked_batch("p", 4, 3);
  t.learn(ByteSpan(reinterpret_cast<const std::byte*>(log.data()), log.size()), LogPosition{0, 0});
  Posted p;
  Answer dup;
  AppendDone d = dup.done();
  EXPECT_FALSE(t.admit({"p", 4}, LogPosition{0, 0}, 2, d, p.post()));
  p.run();
  t.on_commit(LogPosition{log.size() - 8, 3}, 2);  // short of its end
  EXPECT_FALSE(dup.got.has_value());
  t.on_commit(LogPosition{log.size(), 4}, 2);
  ASSERT_TRUE(dup.got.has_value() && dup.got->ok());
  EXPECT_TRUE((*dup.got)->duplicate);
  EXPECT_EQ((*dup.got)->end.offset, log.size());
  EXPECT_EQ((*dup.got)->count, 3u);
  EXPECT_EQ((*dup.got)->commit_offset, log.size());
}

TEST(ProducerTable, DuplicatesWaitingForTheCommitFailWhenTheTermEnds) {
  ProducerTable t;
  const std::string log = marked_batch("p", 4, 3);
  t.learn(ByteSpan(reinterpret_cast<const std::byte*>(log.data()), log.size()), LogPosition{0, 0});
  Posted p;
  Answer dup;
  AppendDone d = dup.done();
  EXPECT_FALSE(t.admit({"p", 4}, LogPosition{0, 0}, 2, d, p.post()));
  t.fail_waiting(absl::UnavailableError("stepped down"));
  ASSERT_TRUE(dup.got.has_value());
  EXPECT_EQ(dup.got->status().code(), absl::StatusCode::kUnavailable);
  t.on_commit(LogPosition{log.size(), 4}, 2);  // answered once only
}

// A batch refused before it was queued (the node stopping) answers the
// duplicates that waited for it on the notifier thread, never on the
// caller's: the caller holds its stream's lock, which their callbacks take
// (one stream and its own resends deadlocked there at shutdown).
TEST(ProducerTable, RefusedBatchAnswersItsWaitersThroughPostOnly) {
  ProducerTable t;
  Posted p;
  Answer a1, dup, again;
  AppendDone d1 = a1.done(), d2 = dup.done(), d3 = again.done();
  ASSERT_TRUE(t.admit({"p", 3}, LogPosition{}, 1, d1, p.post()));
  EXPECT_FALSE(t.admit({"p", 3}, LogPosition{}, 1, d2, p.post()));
  t.refused({"p", 3}, absl::UnavailableError("the node is shutting down"), p.post());
  EXPECT_FALSE(dup.got.has_value()) << "ran on the refusing thread";
  p.run();
  ASSERT_TRUE(dup.got.has_value());
  EXPECT_EQ(dup.got->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(a1.got.has_value());  // the refused batch's own done is the caller's
  EXPECT_TRUE(t.admit({"p", 3}, LogPosition{}, 1, d3, p.post()));  // may be sent again
}

// Once the term ended the commit offset does not move: a duplicate of a
// batch known from the log but not committed is answered at once, not left
// waiting (its stream would never end, nor the node's stop). A new term
// lets duplicates wait for the commit again.
TEST(ProducerTable, DuplicateAfterTheTermEndedIsAnsweredAtOnce) {
  ProducerTable t;
  const std::string log = marked_batch("p", 4, 3);
  t.learn(ByteSpan(reinterpret_cast<const std::byte*>(log.data()), log.size()), LogPosition{0, 0});
  t.fail_waiting(absl::UnavailableError("the node stopped"));
  Posted p;
  Answer late, next_term;
  AppendDone d1 = late.done(), d2 = next_term.done();
  EXPECT_FALSE(t.admit({"p", 4}, LogPosition{0, 0}, 2, d1, p.post()));
  EXPECT_FALSE(late.got.has_value());  // never on the caller's thread
  p.run();
  ASSERT_TRUE(late.got.has_value());
  EXPECT_EQ(late.got->status().code(), absl::StatusCode::kUnavailable);

  t.start_term();
  EXPECT_FALSE(t.admit({"p", 4}, LogPosition{0, 0}, 3, d2, p.post()));
  p.run();
  EXPECT_FALSE(next_term.got.has_value());  // waits for the commit offset
  t.on_commit(LogPosition{log.size(), 4}, 3);
  ASSERT_TRUE(next_term.got.has_value() && next_term.got->ok());
  EXPECT_TRUE((*next_term.got)->duplicate);
}

// Every batch of a producer that failed may be sent again, not only the
// latest: a node that stopped with several of a producer's batches in flight
// failed them all, and their resends are appended, not parked as
// duplicates of batches that are not in the log (their streams, waiting
// for an answer that never came, kept the node's stop from finishing).
TEST(ProducerTable, EveryFailedBatchMayBeSentAgain) {
  ProducerTable t;
  Posted p;
  Answer a1, a2, a3, r1, r2, r3;
  AppendDone d1 = a1.done(), d2 = a2.done(), d3 = a3.done();
  AppendDone e1 = r1.done(), e2 = r2.done(), e3 = r3.done();
  ASSERT_TRUE(t.admit({"p", 1}, LogPosition{}, 1, d1, p.post()));
  ASSERT_TRUE(t.admit({"p", 2}, LogPosition{}, 1, d2, p.post()));
  ASSERT_TRUE(t.admit({"p", 3}, LogPosition{}, 1, d3, p.post()));
  t.completed({"p", 1}, result(0, 100, 3));
  t.completed({"p", 2}, absl::UnavailableError("stopped"));
  t.completed({"p", 3}, absl::UnavailableError("stopped"));
  EXPECT_FALSE(t.admit({"p", 1}, LogPosition{100, 10}, 1, e1, p.post()));  // in the log
  EXPECT_TRUE(t.admit({"p", 2}, LogPosition{100, 10}, 1, e2, p.post()));
  EXPECT_TRUE(t.admit({"p", 3}, LogPosition{100, 10}, 1, e3, p.post()));
  p.run();
  ASSERT_TRUE(r1.got.has_value() && r1.got->ok());
  EXPECT_TRUE((*r1.got)->duplicate);
  EXPECT_EQ((*r1.got)->end.offset, 100u);
}

// A duplicate of a batch still in flight gets that batch's own result, even
// when later batches of the producer were taken meanwhile.
TEST(ProducerTable, DuplicateOfABatchInFlightGetsItsOwnResult) {
  ProducerTable t;
  Posted p;
  Answer a1, a2, dup;
  AppendDone d1 = a1.done(), d2 = a2.done(), d3 = dup.done();
  ASSERT_TRUE(t.admit({"p", 1}, LogPosition{}, 1, d1, p.post()));
  ASSERT_TRUE(t.admit({"p", 2}, LogPosition{}, 1, d2, p.post()));
  EXPECT_FALSE(t.admit({"p", 1}, LogPosition{}, 1, d3, p.post()));
  t.completed({"p", 1}, result(0, 100, 3));
  ASSERT_TRUE(dup.got.has_value() && dup.got->ok());
  EXPECT_TRUE((*dup.got)->duplicate);
  EXPECT_EQ((*dup.got)->first.offset, 0u);
  EXPECT_EQ((*dup.got)->end.offset, 100u);
  EXPECT_EQ((*dup.got)->count, 3u);
}

}  // namespace
}  // namespace ringlog
