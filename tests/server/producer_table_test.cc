// Idempotent appends: the producer table (producer_table.h).
#include "producer_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <optional>
#include <vector>

#include "ringlog/control.h"
#include "test_util.h"

namespace ringlog {
namespace {

using ::testing::HasSubstr;

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

// ProducerTable::admit() for a batch that must not be refused: true when it
// is new, false when a duplicate.
bool admit(ProducerTable& t, const ProducerRef& producer, LogPosition commit, uint64_t epoch,
           AppendDone& done, const ProducerTable::Post& post) {
  absl::StatusOr<bool> r = t.admit(producer, commit, epoch, done, post);
  if (!r.ok()) {
    ADD_FAILURE() << "refused: " << r.status();
    return false;
  }
  return *r;
}

TEST(ProducerTable, NewSeqsAreAppendedAndRepeatsAreNot) {
  ProducerTable t;
  Posted p;
  Answer a1, a2;
  AppendDone d1 = a1.done();
  EXPECT_TRUE(admit(t, {"p", 1}, LogPosition{}, 1, d1, p.post()));
  AppendDone d2 = a2.done();
  EXPECT_FALSE(admit(t, {"p", 1}, LogPosition{}, 1, d2, p.post()));
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
  ASSERT_TRUE(admit(t, {"p", 5}, LogPosition{}, 1, d1, p.post()));
  t.completed({"p", 5}, result(200, 300, 2));
  AppendDone d2 = a2.done();
  EXPECT_FALSE(admit(t, {"p", 5}, LogPosition{300, 30}, 4, d2, p.post()));
  EXPECT_FALSE(a2.got.has_value());  // never on the caller's thread
  p.run();
  ASSERT_TRUE(a2.got.has_value() && a2.got->ok());
  EXPECT_TRUE((*a2.got)->duplicate);
  EXPECT_EQ((*a2.got)->first.offset, 200u);
  EXPECT_EQ((*a2.got)->commit_offset, 300u);
  EXPECT_EQ((*a2.got)->epoch, 4u);
}

// A resend of an older batch than the latest, within the window, gets its
// own original range (an empty range at the latest one's end was answered,
// and its last_seq underflowed to first_seq - 1).
TEST(ProducerTable, OlderSeqInTheWindowGetsItsOwnRange) {
  ProducerTable t;
  Posted p;
  Answer a1, a2, old;
  AppendDone d1 = a1.done(), d2 = a2.done(), d3 = old.done();
  ASSERT_TRUE(admit(t, {"p", 1}, LogPosition{}, 1, d1, p.post()));
  t.completed({"p", 1}, result(0, 100, 3));
  ASSERT_TRUE(admit(t, {"p", 2}, LogPosition{100, 10}, 1, d2, p.post()));
  t.completed({"p", 2}, result(100, 250, 4));
  EXPECT_FALSE(admit(t, {"p", 1}, LogPosition{250, 25}, 1, d3, p.post()));
  p.run();
  ASSERT_TRUE(old.got.has_value() && old.got->ok());
  EXPECT_TRUE((*old.got)->duplicate);
  EXPECT_EQ((*old.got)->first.offset, 0u);
  EXPECT_EQ((*old.got)->end.offset, 100u);
  EXPECT_EQ((*old.got)->count, 3u);
  EXPECT_EQ((*old.got)->commit_offset, 250u);
}

TEST(ProducerTable, FailedBatchMayBeSentAgainAndItsWaitersFail) {
  ProducerTable t;
  Posted p;
  Answer a1, a2, a3;
  AppendDone d1 = a1.done(), d2 = a2.done(), d3 = a3.done();
  ASSERT_TRUE(admit(t, {"p", 7}, LogPosition{}, 1, d1, p.post()));
  EXPECT_FALSE(admit(t, {"p", 7}, LogPosition{}, 1, d2, p.post()));
  t.completed({"p", 7}, absl::UnavailableError("stopped"));
  ASSERT_TRUE(a2.got.has_value());
  EXPECT_EQ(a2.got->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(admit(t, {"p", 7}, LogPosition{}, 1, d3, p.post()));  // taken again
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
    ASSERT_TRUE(admit(t, {"p", 5}, LogPosition{}, 1, d[0], p.post()));
    ASSERT_TRUE(admit(t, {"p", 6}, LogPosition{}, 1, d[1], p.post()));
    const absl::Status full = absl::ResourceExhaustedError("the disk is full");
    if (later_first) t.completed({"p", 6}, full);
    t.completed({"p", 5}, full);
    if (!later_first) t.completed({"p", 6}, full);
    EXPECT_TRUE(admit(t, {"p", 5}, LogPosition{}, 1, d[2], p.post())) << later_first;
    EXPECT_TRUE(admit(t, {"p", 6}, LogPosition{}, 1, d[3], p.post())) << later_first;
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
    ASSERT_TRUE(admit(t, {"p", 5}, LogPosition{}, 1, d[0], p.post()));
    ASSERT_TRUE(admit(t, {"p", 6}, LogPosition{}, 1, d[1], p.post()));
    const absl::Status full = absl::ResourceExhaustedError("a replica cannot store");
    if (later_first) t.completed({"p", 6}, full);
    t.refused_in_log({"p", 5}, result(100, 200, 3), full);
    if (!later_first) t.completed({"p", 6}, full);
    EXPECT_FALSE(admit(t, {"p", 5}, LogPosition{100, 10}, 1, d[2], p.post())) << later_first;
    EXPECT_TRUE(admit(t, {"p", 6}, LogPosition{100, 10}, 1, d[3], p.post())) << later_first;
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
  ASSERT_TRUE(admit(t, {"p", 1}, LogPosition{}, 1, d1, p.post()));
  t.completed({"p", 1}, result(0, 100, 3));
  ASSERT_TRUE(admit(t, {"p", 2}, LogPosition{100, 10}, 1, d2, p.post()));
  EXPECT_FALSE(admit(t, {"p", 1}, LogPosition{100, 10}, 1, d3, p.post()));
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
  EXPECT_TRUE(admit(t, {"a", 3}, LogPosition{}, 1, da, p.post()));
  EXPECT_TRUE(admit(t, {"b", 3}, LogPosition{}, 1, db, p.post()));
}

// A batch as the primary writes it: `events` data records, then its mark.
std::string marked_batch(const std::string& producer, uint64_t seq, uint32_t events) {
  std::string out;
  for (uint32_t i = 0; i < events; ++i) {
    const std::string payload = ringlog_test::payload_for(i, 10);
    const std::vector<std::byte> rec = ringlog_test::encode(ringlog_test::header_for(1, 0, payload), payload);
    out.append(reinterpret_cast<const char*>(rec.data()), rec.size());
  }
  append_producer_batch_mark(
      &out, ProducerBatchMark{producer, seq, events, static_cast<uint32_t>(out.size())}, 1);
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
  EXPECT_FALSE(admit(t, {"p", 4}, LogPosition{1000 + log.size(), 57}, 2, d, p.post()));
  p.run();
  ASSERT_TRUE(dup.got.has_value() && dup.got->ok());
  EXPECT_TRUE((*dup.got)->duplicate);
  EXPECT_EQ((*dup.got)->count, 3u);
  EXPECT_EQ((*dup.got)->first.seq, 50u);  // its first data record
  EXPECT_EQ((*dup.got)->first.offset, 1000u);
  EXPECT_EQ((*dup.got)->end.seq, 54u);    // after its mark
  EXPECT_EQ((*dup.got)->end.offset, 1000u + marked_batch("p", 4, 3).size());
  EXPECT_TRUE(admit(t, {"q", 10}, LogPosition{}, 2, n, p.post()));
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
  EXPECT_FALSE(admit(t, {"p", 4}, LogPosition{0, 0}, 2, d, p.post()));
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
  EXPECT_FALSE(admit(t, {"p", 4}, LogPosition{0, 0}, 2, d, p.post()));
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
  ASSERT_TRUE(admit(t, {"p", 3}, LogPosition{}, 1, d1, p.post()));
  EXPECT_FALSE(admit(t, {"p", 3}, LogPosition{}, 1, d2, p.post()));
  t.refused({"p", 3}, absl::UnavailableError("the node is shutting down"), p.post());
  EXPECT_FALSE(dup.got.has_value()) << "ran on the refusing thread";
  p.run();
  ASSERT_TRUE(dup.got.has_value());
  EXPECT_EQ(dup.got->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(a1.got.has_value());  // the refused batch's own done is the caller's
  EXPECT_TRUE(admit(t, {"p", 3}, LogPosition{}, 1, d3, p.post()));  // may be sent again
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
  EXPECT_FALSE(admit(t, {"p", 4}, LogPosition{0, 0}, 2, d1, p.post()));
  EXPECT_FALSE(late.got.has_value());  // never on the caller's thread
  p.run();
  ASSERT_TRUE(late.got.has_value());
  EXPECT_EQ(late.got->status().code(), absl::StatusCode::kUnavailable);

  t.start_term();
  EXPECT_FALSE(admit(t, {"p", 4}, LogPosition{0, 0}, 3, d2, p.post()));
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
  ASSERT_TRUE(admit(t, {"p", 1}, LogPosition{}, 1, d1, p.post()));
  ASSERT_TRUE(admit(t, {"p", 2}, LogPosition{}, 1, d2, p.post()));
  ASSERT_TRUE(admit(t, {"p", 3}, LogPosition{}, 1, d3, p.post()));
  t.completed({"p", 1}, result(0, 100, 3));
  t.completed({"p", 2}, absl::UnavailableError("stopped"));
  t.completed({"p", 3}, absl::UnavailableError("stopped"));
  EXPECT_FALSE(admit(t, {"p", 1}, LogPosition{100, 10}, 1, e1, p.post()));  // in the log
  EXPECT_TRUE(admit(t, {"p", 2}, LogPosition{100, 10}, 1, e2, p.post()));
  EXPECT_TRUE(admit(t, {"p", 3}, LogPosition{100, 10}, 1, e3, p.post()));
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
  ASSERT_TRUE(admit(t, {"p", 1}, LogPosition{}, 1, d1, p.post()));
  ASSERT_TRUE(admit(t, {"p", 2}, LogPosition{}, 1, d2, p.post()));
  EXPECT_FALSE(admit(t, {"p", 1}, LogPosition{}, 1, d3, p.post()));
  t.completed({"p", 1}, result(0, 100, 3));
  ASSERT_TRUE(dup.got.has_value() && dup.got->ok());
  EXPECT_TRUE((*dup.got)->duplicate);
  EXPECT_EQ((*dup.got)->first.offset, 0u);
  EXPECT_EQ((*dup.got)->end.offset, 100u);
  EXPECT_EQ((*dup.got)->count, 3u);
}


// ---- Kafka's rules: sequence, window, bounds ----

// Admits and commits batches seqs [from, to] of `producer`, batch k at
// offsets [100k, 100k + 100) with 3 data records.
void store(ProducerTable& t, const std::string& producer, uint64_t from, uint64_t to) {
  Posted p;
  for (uint64_t k = from; k <= to; ++k) {
    Answer a;
    AppendDone d = a.done();
    ASSERT_TRUE(admit(t, {producer, k}, LogPosition{}, 1, d, p.post())) << k;
    t.completed({producer, k}, result(100 * k, 100 * k + 100, 3));
  }
}

// The next seq must be the last plus one; a gap is refused with
// FAILED_PRECONDITION naming the seq expected, nothing taken, and the seq
// expected is still taken afterwards. Batches pipelined behind one in
// flight follow the highest seq taken.
TEST(ProducerTable, AGapIsRefusedNamingTheExpectedSeq) {
  ProducerTable t;
  store(t, "p", 1, 5);
  Posted p;
  Answer gap, next, behind;
  AppendDone d1 = gap.done(), d2 = next.done(), d3 = behind.done();
  absl::StatusOr<bool> r = t.admit({"p", 10}, LogPosition{}, 1, d1, p.post());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("expected 6"));
  EXPECT_TRUE(d1 != nullptr) << "a refusal leaves `done` to the caller";
  // Seq 7 was never stored: not a duplicate either.
  r = t.admit({"p", 7}, LogPosition{}, 1, d1, p.post());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(admit(t, {"p", 6}, LogPosition{}, 1, d2, p.post()));
  EXPECT_TRUE(admit(t, {"p", 7}, LogPosition{}, 1, d3, p.post())) << "behind one in flight";
  p.run();
  EXPECT_FALSE(gap.got.has_value());
  const ProducerStats st = t.stats();
  EXPECT_EQ(st.out_of_sequence, 2u);
  EXPECT_EQ(st.producers, 1u);
}

// A producer the table does not know may start at any seq; from then on
// its sequence holds.
TEST(ProducerTable, AnUnknownProducerMayStartAtAnySeq) {
  ProducerTable t;
  store(t, "p", 1000, 1000);
  Posted p;
  Answer a;
  AppendDone d = a.done();
  absl::StatusOr<bool> r = t.admit({"p", 1002}, LogPosition{}, 1, d, p.post());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("expected 1001"));
}

// Each of the last kProducerWindow batches, sent again, gets its own range;
// one older than that is refused with ALREADY_EXISTS, never answered with
// another batch's range or an empty one.
TEST(ProducerTable, EveryBatchOfTheWindowGetsItsOwnRangeAndOlderOnesAreRefused) {
  ProducerTable t;
  const uint64_t last = kProducerWindow + 10;
  store(t, "p", 1, last);
  Posted p;
  for (uint64_t k = last - kProducerWindow + 1; k <= last; ++k) {
    Answer a;
    AppendDone d = a.done();
    EXPECT_FALSE(admit(t, {"p", k}, LogPosition{100 * last + 100, 0}, 1, d, p.post())) << k;
    p.run();
    ASSERT_TRUE(a.got.has_value() && a.got->ok()) << k;
    EXPECT_TRUE((*a.got)->duplicate);
    EXPECT_EQ((*a.got)->first.offset, 100 * k) << k;
    EXPECT_EQ((*a.got)->end.offset, 100 * k + 100) << k;
    EXPECT_EQ((*a.got)->count, 3u);
  }
  for (uint64_t k : {uint64_t{1}, last - kProducerWindow}) {
    Answer a;
    AppendDone d = a.done();
    absl::StatusOr<bool> r = t.admit({"p", k}, LogPosition{100 * last + 100, 0}, 1, d, p.post());
    ASSERT_FALSE(r.ok()) << k;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists) << r.status();
    p.run();
    EXPECT_FALSE(a.got.has_value());
  }
  const ProducerStats st = t.stats();
  EXPECT_EQ(st.duplicates, kProducerWindow);
  EXPECT_EQ(st.too_old, 2u);
}

// Rebuilt from the log (a restart, or a replica promoted), the window holds
// the last kProducerWindow marks of each producer with their whole range:
// first offset included, from the mark's data_bytes.
TEST(ProducerTable, TheWindowIsRebuiltFromTheMarksWithTheOriginalRanges) {
  ProducerTable t;
  std::string log;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // first, end offset of seq k at [k - 1]
  for (uint64_t k = 1; k <= kProducerWindow + 3; ++k) {
    const uint64_t first = log.size();
    log += marked_batch("p", k, 2);
    ranges.emplace_back(first, log.size());
  }
  t.learn(ByteSpan(reinterpret_cast<const std::byte*>(log.data()), log.size()), LogPosition{0, 0});
  Posted p;
  for (uint64_t k = 4; k <= kProducerWindow + 3; ++k) {
    Answer a;
    AppendDone d = a.done();
    EXPECT_FALSE(admit(t, {"p", k}, LogPosition{log.size(), 0}, 1, d, p.post()));
    p.run();
    ASSERT_TRUE(a.got.has_value() && a.got->ok());
    EXPECT_EQ((*a.got)->first.offset, ranges[k - 1].first) << k;
    EXPECT_EQ((*a.got)->first.seq, 3 * (k - 1)) << k;
    EXPECT_EQ((*a.got)->end.offset, ranges[k - 1].second) << k;
    EXPECT_EQ((*a.got)->count, 2u);
  }
  Answer old, next;
  AppendDone d1 = old.done(), d2 = next.done();
  absl::StatusOr<bool> r = t.admit({"p", 3}, LogPosition{log.size(), 0}, 1, d1, p.post());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(admit(t, {"p", kProducerWindow + 4}, LogPosition{}, 1, d2, p.post()));
}

// A mark written by an older version has no data_bytes: its batch's seq is
// known (not stored again, and the next seq follows it), its offsets are
// not: a resend is refused rather than answered with a made-up range.
TEST(ProducerTable, AMarkWithoutDataBytesIsKnownButItsRangeIsNot) {
  ProducerTable t;
  std::string log;
  const std::string payload = ringlog_test::payload_for(0, 10);
  const std::vector<std::byte> rec =
      ringlog_test::encode(ringlog_test::header_for(1, 0, payload), payload);
  log.append(reinterpret_cast<const char*>(rec.data()), rec.size());
  // The old layout: the payload ends with the producer id.
  std::string mark;
  {
    std::string old_payload(14 + 1, '\0');
    const uint64_t seq = 3;
    const uint32_t events = 1;
    const uint16_t len = 1;
    std::memcpy(old_payload.data(), &seq, 8);
    std::memcpy(old_payload.data() + 8, &events, 4);
    std::memcpy(old_payload.data() + 12, &len, 2);
    old_payload[14] = 'p';
    EventHeader h(1, kControlProducerBatch, static_cast<uint16_t>(old_payload.size()));
    h.flags = kFlagControl;
    mark.assign(padded_size(old_payload.size()), '\0');
    encode_record(reinterpret_cast<std::byte*>(mark.data()), h, as_bytes(old_payload));
  }
  log += mark;
  t.learn(ByteSpan(reinterpret_cast<const std::byte*>(log.data()), log.size()), LogPosition{0, 0});
  Posted p;
  Answer dup, next;
  AppendDone d1 = dup.done(), d2 = next.done();
  absl::StatusOr<bool> r = t.admit({"p", 3}, LogPosition{log.size(), 2}, 1, d1, p.post());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(admit(t, {"p", 4}, LogPosition{}, 1, d2, p.post()));
}

// --max_producers: beyond it the least recently seen producer is forgotten
// (and may then start again from any seq); one with a batch in flight is not.
TEST(ProducerTable, TheLeastRecentlySeenProducerIsForgottenBeyondTheBound) {
  ProducerTableOptions o;
  o.max_producers = 2;
  ProducerTable t(o);
  store(t, "a", 1, 3);
  store(t, "b", 1, 3);
  Posted p;
  Answer a;
  AppendDone d = a.done();
  // "a" seen again: "b" is now the least recent.
  EXPECT_FALSE(admit(t, {"a", 3}, LogPosition{1000, 0}, 1, d, p.post()));
  store(t, "c", 1, 1);
  ProducerStats st = t.stats();
  EXPECT_EQ(st.producers, 2u);
  EXPECT_EQ(st.evicted, 1u);
  Answer b;
  AppendDone db = b.done();
  EXPECT_TRUE(admit(t, {"b", 1}, LogPosition{}, 1, db, p.post())) << "forgotten: a new start";
  // "b" (seq 1) is in flight now: the next eviction takes another.
  store(t, "d", 1, 1);
  st = t.stats();
  EXPECT_EQ(st.producers, 2u);
  Answer b2;
  AppendDone db2 = b2.done();
  EXPECT_FALSE(admit(t, {"b", 1}, LogPosition{}, 1, db2, p.post())) << "b, in flight, was kept";
}

// --producer_expiry: a producer not seen for that long is forgotten; one
// seen since is not.
TEST(ProducerTable, AnIdleProducerExpires) {
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  ProducerTableOptions o;
  o.expiry = absl::Hours(1);
  o.clock = [&now] { return now; };
  ProducerTable t(o);
  store(t, "idle", 1, 2);
  store(t, "busy", 1, 2);
  now += absl::Minutes(40);
  store(t, "busy", 3, 3);
  now += absl::Minutes(30);
  ProducerStats st = t.stats();
  EXPECT_EQ(st.producers, 1u);
  EXPECT_EQ(st.expired, 1u);
  Posted p;
  Answer a, b;
  AppendDone da = a.done(), db = b.done();
  EXPECT_TRUE(admit(t, {"idle", 1}, LogPosition{}, 1, da, p.post())) << "forgotten: a new start";
  EXPECT_FALSE(admit(t, {"busy", 3}, LogPosition{1000, 0}, 1, db, p.post()));
}

// A replica that cuts its log's tail forgets the batches past the cut: a
// resend of one of them after its promotion is appended, not answered with
// a range that now holds other records.
TEST(ProducerTable, BatchesPastATruncationAreForgotten) {
  ProducerTable t;
  std::string log;
  for (uint64_t k = 1; k <= 4; ++k) log += marked_batch("p", k, 2);
  const std::string other = marked_batch("q", 1, 2);
  log += other;
  t.learn(ByteSpan(reinterpret_cast<const std::byte*>(log.data()), log.size()), LogPosition{0, 0});
  const uint64_t cut = 2 * marked_batch("p", 1, 2).size();  // after p's seq 2
  t.truncated(cut);
  Posted p;
  Answer a2, a3, q1;
  AppendDone d2 = a2.done(), d3 = a3.done(), dq = q1.done();
  EXPECT_FALSE(admit(t, {"p", 2}, LogPosition{cut, 0}, 1, d2, p.post()));
  EXPECT_TRUE(admit(t, {"p", 3}, LogPosition{cut, 0}, 1, d3, p.post()));
  EXPECT_TRUE(admit(t, {"q", 1}, LogPosition{cut, 0}, 1, dq, p.post())) << "q is gone";
  EXPECT_EQ(t.stats().producers, 2u);
}

// A batch that failed unstored gives its seq back even while later ones of
// the producer, failing too, are still in flight; not a gap.
TEST(ProducerTable, AFailedSeqIsExpectedAgainBeforeTheLaterFailuresAreReported) {
  ProducerTable t;
  store(t, "p", 1, 4);
  Posted p;
  Answer a[5];
  AppendDone d[5] = {a[0].done(), a[1].done(), a[2].done(), a[3].done(), a[4].done()};
  ASSERT_TRUE(admit(t, {"p", 5}, LogPosition{}, 1, d[0], p.post()));
  ASSERT_TRUE(admit(t, {"p", 6}, LogPosition{}, 1, d[1], p.post()));
  t.completed({"p", 5}, absl::ResourceExhaustedError("full"));
  EXPECT_TRUE(admit(t, {"p", 5}, LogPosition{}, 1, d[2], p.post()));
  EXPECT_FALSE(admit(t, {"p", 6}, LogPosition{}, 1, d[3], p.post())) << "6 is still in flight";
  t.completed({"p", 6}, absl::ResourceExhaustedError("full"));
  ASSERT_TRUE(a[3].got.has_value());
  EXPECT_EQ(a[3].got->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(admit(t, {"p", 6}, LogPosition{}, 1, d[4], p.post()));
}

}  // namespace
}  // namespace ringlog
