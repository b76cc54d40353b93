// Idempotent appends: what each producer has written, and who waits on it.
//
// A producer (producer_id) numbers its batches (producer_seq). The primary
// appends each new batch with a producer-batch mark (ringlog/control.h) after
// its records, so that the table can be rebuilt from the log after a restart
// or a failover. A batch whose seq the table has already taken is never
// appended again: its sender gets the first one's result, marked duplicate.
//
// Threads: admit() and refused() run on gRPC threads (Node::submit);
// completed() on the notifier thread or where a primary term ends; learn()
// on the follower's thread (a replica) or at start.
// Every member is guarded by mu_; waiters run outside it.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ringlog/storage.h"

namespace ringlog {

struct CommitResult {
  LogPosition first;
  LogPosition end;  // just past the last record (the producer mark, if any)
  uint64_t count = 0;  // data records
  uint64_t commit_offset = 0;
  uint64_t epoch = 0;
  bool duplicate = false;  // this producer_seq was appended before
};

// An append's identity for idempotence: empty id means none.
struct ProducerRef {
  std::string id;
  uint64_t seq = 0;
};

// Called once per submitted batch, on the notifier thread: with the result
// once the batch is committed, or with the error that stopped it.
using AppendDone = std::function<void(absl::StatusOr<CommitResult>)>;

class ProducerTable {
 public:
  // Runs a callback later on another thread (the commit notifier), never on
  // the caller's: admit() may be called with locks held that `done` takes.
  using Post = std::function<void(std::function<void()>)>;

  // A batch of `producer` arrives. Returns true when it is new (neither in
  // flight nor at or below the producer's latest seq in the log): the caller
  // appends it (with its mark) and reports with completed(). Otherwise
  // `done` is taken and runs with the first batch's result, marked
  // duplicate: when that completes here, if it is in flight; else (it is
  // in the log) through `post` at once if it is committed (end at or below
  // `commit`), or at on_commit() once the commit offset covers it. For a
  // batch older than the producer's latest in the log the position is not
  // kept: the answer carries an empty range at the latest one's end. The
  // caller runs on_commit() afterwards (the commit offset may have moved
  // meanwhile).
  bool admit(const ProducerRef& producer, LogPosition commit, uint64_t epoch, AppendDone& done,
             const Post& post);

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
  // stored; runs the duplicates that waited for it. A failed batch's seq,
  // and every later one, may be taken again: a producer's batches fail in
  // order (a refused batch ends its stream), so none after it is stored.
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

 private:
  // completed(): the new state under mu_; returns the waiters to run.
  std::vector<AppendDone> complete_locked(const ProducerRef& producer,
                                          const absl::StatusOr<CommitResult>& r);

  struct State {
    // The latest batch known to be in this log: the highest seq that
    // completed here, or that the log's marks name.
    bool known = false;
    uint64_t seq = 0;
    LogPosition first;  // of its first data record
    LogPosition end;    // after its mark
    uint64_t count = 0;
    // Seqs taken as new and not yet completed, each with the duplicates
    // that wait for its result.
    std::map<uint64_t, std::vector<AppendDone>> pending;
  };
  // A duplicate of a batch known from the log, until the commit covers it.
  struct CommitWaiter {
    LogPosition first;
    LogPosition end;
    uint64_t count = 0;
    AppendDone done;
  };

  std::mutex mu_;
  std::map<std::string, State> producers_;
  std::multimap<uint64_t, CommitWaiter> commit_waiters_;  // by end offset
  absl::Status term_ended_;  // not OK between fail_waiting() and start_term()
};

}  // namespace ringlog
