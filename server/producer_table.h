// Idempotent appends: what each producer has written, and who waits on it.
//
// A producer (producer_id) numbers its batches (producer_seq, from 1; 0 is
// not idempotent and never reaches this table). The primary appends each new
// batch with a producer-batch mark (ringlog/control.h) after its records, so
// that the table can be rebuilt from the log after a restart or a failover.
// Kafka's rules, as ringlog.proto states them for clients:
//
//   - A batch whose seq is in flight, or among the producer's last
//     kProducerWindow batches in the log, is never appended again: its
//     sender gets the original's result (seqs and offsets), marked duplicate.
//   - A new batch must carry the seq after the highest one taken (in flight
//     or in the log): `next`. A higher seq is out of sequence and refused
//     (FAILED_PRECONDITION naming `next`); a lower one that is neither in
//     flight nor in the window was stored before and cannot be answered
//     (ALREADY_EXISTS). Nothing refused is stored.
//   - A producer the table does not know (new, or forgotten: see below) may
//     start at any seq: a producer that restarts against a node that forgot
//     it goes on.
//   - A batch that failed without being stored gives its seq back: the next
//     seq expected is the lowest such one (a producer's batches fail in
//     order: a refused batch ends its stream, and its later ones with it).
//
// The table is bounded: at most max_producers producers (the least recently
// seen is forgotten first), and one not seen for `expiry` is forgotten.
// "Seen" is a batch taken or completed here, or a mark learned from the log
// (so a restart or a promotion counts as seen for every producer rebuilt).
// A producer with batches in flight is never forgotten.
//
// Threads: admit() and refused() run on gRPC threads (Node::submit);
// completed() on the notifier thread or where a primary term ends; learn()
// and truncated() on the follower's thread (a replica) or at start.
// Every member is guarded by mu_; waiters run outside it.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ringlog/storage.h"

namespace ringlog {

struct CommitResult {
  LogPosition first;
  LogPosition end;  // just past the last record (the producer mark, if any)
  uint64_t count = 0;  // data records; never 0 (a batch is never empty)
  uint64_t commit_offset = 0;
  uint64_t epoch = 0;
  bool duplicate = false;  // this producer_seq was appended before
};

// An append's identity for idempotence: empty id (or seq 0) means none.
struct ProducerRef {
  std::string id;
  uint64_t seq = 0;
  bool idempotent() const { return !id.empty() && seq != 0; }
};

// Called once per submitted batch, on the notifier thread: with the result
// once the batch is committed, or with the error that stopped it.
using AppendDone = std::function<void(absl::StatusOr<CommitResult>)>;

struct ProducerTableOptions {
  // Producers remembered at most (--max_producers); beyond it the least
  // recently seen one without batches in flight is forgotten. 0: no bound.
  size_t max_producers = 100'000;
  // A producer not seen for this long is forgotten (--producer_expiry);
  // absl::InfiniteDuration(): never.
  absl::Duration expiry = absl::Hours(7 * 24);
  // The time, for expiry (tests set it); empty: absl::Now.
  std::function<absl::Time()> clock;
};

// For metrics.
struct ProducerStats {
  uint64_t producers = 0;        // remembered now
  uint64_t duplicates = 0;       // resends answered with their original's range
  uint64_t out_of_sequence = 0;  // refused: a gap (FAILED_PRECONDITION)
  uint64_t too_old = 0;          // refused: stored, but no longer remembered (ALREADY_EXISTS)
  uint64_t evicted = 0;          // forgotten beyond max_producers
  uint64_t expired = 0;          // forgotten after expiry
};

class ProducerTable {
 public:
  // Runs a callback later on another thread (the commit notifier), never on
  // the caller's: admit() may be called with locks held that `done` takes.
  using Post = std::function<void(std::function<void()>)>;

  explicit ProducerTable(ProducerTableOptions options = ProducerTableOptions());

  // A batch of `producer` (idempotent(): a producer id and a seq above 0)
  // arrives. Returns
  //   true:  it is new (the seq expected, or the producer is unknown): the
  //          caller appends it (with its mark) and reports with completed();
  //   false: a duplicate; `done` is taken and runs with the original's
  //          result, marked duplicate: when that completes here, if it is in
  //          flight; else (it is in the log) through `post` at once if it is
  //          committed (end at or below `commit`), or at on_commit() once the
  //          commit offset covers it. The caller runs on_commit() afterwards
  //          (the commit offset may have moved meanwhile);
  //   an error: refused, nothing to store, `done` untouched:
  //          FAILED_PRECONDITION for a seq past the one expected (the message
  //          names it), ALREADY_EXISTS for a seq stored before whose range
  //          this node no longer knows (older than the window).
  absl::StatusOr<bool> admit(const ProducerRef& producer, LogPosition commit, uint64_t epoch,
                             AppendDone& done, const Post& post);

  // The commit offset moved (notifier thread): answers the duplicates whose
  // first batch it now covers.
  void on_commit(LogPosition commit, uint64_t epoch);
  // The primary term ended: the duplicates still waiting for the commit
  // offset get `s`, and so does each one admit() takes from now on that
  // would wait for it (the commit offset no longer moves), until
  // start_term().
  void fail_waiting(const absl::Status& s);
  // A primary term starts: duplicates may wait for the commit offset again.
  void start_term();

  // The new batch of `producer` committed (r ok) or failed without being
  // stored; runs the duplicates that waited for it. A failed batch's seq is
  // expected again: a producer's batches fail in order (a refused batch ends
  // its stream), so none after it is stored.
  void completed(const ProducerRef& producer, const absl::StatusOr<CommitResult>& r);
  // A batch admit() took as new was refused before it was queued (the node
  // is stopping or not the primary): as completed() with `s`, but the
  // duplicates that waited for it run through `post`, never on the caller's
  // thread, which may hold a lock that they take (its stream's).
  void refused(const ProducerRef& producer, const absl::Status& s, const Post& post);
  // The batch is in the log at `where` but was refused (`s`) before its
  // commit (the replicas could not store it): it stays, and a resend is
  // answered as a duplicate once the commit offset covers it. Duplicates
  // waiting for it get `s`.
  void refused_in_log(const ProducerRef& producer, const CommitResult& where,
                      const absl::Status& s);

  // Learns producer marks from records that reached the log (a replica, or
  // the log at start) starting at log position `first`.
  void learn(ByteSpan records, LogPosition first);
  // Learns the marks of the log's last segments (producers that fail over
  // send again within seconds: the recent marks are the ones that matter).
  void rebuild(const SegmentedLog& log);
  // The log was cut at `offset` (a replica's tail that diverged): batches
  // past it are no longer in the log, and are forgotten.
  void truncated(uint64_t offset);

  ProducerStats stats();

 private:
  // A batch of the producer in this log.
  struct Stored {
    uint64_t seq = 0;
    LogPosition first;  // of its first data record (offset unknown when !range_known)
    LogPosition end;    // after its mark
    uint64_t count = 0;  // data records
    bool range_known = true;  // false: from a mark without data_bytes
  };
  struct State {
    // The latest batches in the log, by seq, at most kProducerWindow.
    std::vector<Stored> window;
    // Seqs taken as new and not yet completed, each with the duplicates
    // that wait for its result.
    std::map<uint64_t, std::vector<AppendDone>> pending;
    uint64_t next = 1;  // the seq a new batch must carry
    absl::Time seen;
    std::list<const std::string*>::iterator lru;
  };
  using Map = std::unordered_map<std::string, State>;
  // A duplicate of a batch known from the log, until the commit covers it.
  struct CommitWaiter {
    LogPosition first;
    LogPosition end;
    uint64_t count = 0;
    AppendDone done;
  };

  absl::Time now() const { return options_.clock ? options_.clock() : absl::Now(); }
  // The producer's state, made if new, marked seen now (most recent).
  State& touch_locked(const std::string& id, absl::Time now);
  void forget_locked(Map::iterator it);
  // Forgets the producers expired at `now`, then the least recently seen
  // beyond max_producers (never one with batches in flight).
  void bound_locked(absl::Time now);
  // `b` is in the log: into the window (the oldest beyond it dropped).
  static void record(State& st, const Stored& b);
  // completed(): the new state under mu_; returns the waiters to run.
  std::vector<AppendDone> complete_locked(const ProducerRef& producer,
                                          const absl::StatusOr<CommitResult>& r);

  const ProducerTableOptions options_;
  std::mutex mu_;
  Map producers_;
  std::list<const std::string*> lru_;  // keys of producers_, least recently seen first
  std::multimap<uint64_t, CommitWaiter> commit_waiters_;  // by end offset
  absl::Status term_ended_;  // not OK between fail_waiting() and start_term()
  ProducerStats stats_;
};

}  // namespace ringlog
