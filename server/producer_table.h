// Idempotent appends: what each producer has written, and who waits on it.
//
// A producer (producer_id) numbers its batches (producer_seq). The primary
// appends each new batch with a producer-batch mark (ringlog/control.h) after
// its records, so that the table can be rebuilt from the log after a restart
// or a failover. A batch whose seq the table has already taken is never
// appended again: its sender gets the first one's result, marked duplicate.
//
// Threads: admit() runs on gRPC threads (Node::submit); completed() on the
// notifier thread; learn() on the follower's thread (a replica) or at start.
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

  // A batch of `producer` arrives. Returns true when it is new: the caller
  // appends it (with its mark) and reports with completed() or
  // refused_in_log(). Otherwise `done` is taken and runs with the first
  // batch's result, marked duplicate: through `post` at once if that is in
  // the log and committed (end at or below `commit`); at on_commit() once
  // the commit offset covers it, if it is in the log but not committed yet
  // (known from the log after a restart or a failover, or refused while it
  // waited for the commit); else when it completes here. For a batch older
  // than the latest one in the log the position is not kept: the answer
  // carries an empty range at the latest one's end. The caller runs
  // on_commit() afterwards (the commit offset may have moved meanwhile).
  bool admit(const ProducerRef& producer, LogPosition commit, uint64_t epoch, AppendDone& done,
             const Post& post);

  // The commit offset moved (notifier thread): answers the duplicates whose
  // first batch it now covers.
  void on_commit(LogPosition commit, uint64_t epoch);
  // The primary term ended: the duplicates still waiting for the commit
  // offset get `s`.
  void fail_waiting(const absl::Status& s);

  // The new batch of `producer` committed (r ok) or failed without being
  // stored; runs the duplicates that waited for it. A failed batch's seq,
  // and every later one, may be taken again: a producer's batches fail in
  // order (a refused batch ends its stream), so none after it is stored.
  void completed(const ProducerRef& producer, const absl::StatusOr<CommitResult>& r);
  // The batch is in the log at `where` but was refused (`s`) before its
  // commit: it stays, and a resend is answered as a duplicate once the
  // commit offset covers it. Duplicates waiting for it get `s`.
  void refused_in_log(const ProducerRef& producer, const CommitResult& where,
                      const absl::Status& s);

  // Learns producer marks from records that reached the log (a replica, or
  // the log at start) starting at log position `first`.
  void learn(ByteSpan records, LogPosition first);
  // Learns the marks of the log's last segments (producers that fail over
  // send again within seconds: the recent marks are the ones that matter).
  void rebuild(const SegmentedLog& log);

 private:
  struct State {
    // The highest producer_seq taken and not known to have failed unstored.
    uint64_t last_seq = 0;
    // The highest one known to be in the log (0: none), and where.
    uint64_t placed_seq = 0;
    LogPosition first;  // of its first data record
    LogPosition end;    // after its mark
    uint64_t count = 0;
    // Duplicates of batches taken but not yet in the log, by seq.
    std::map<uint64_t, std::vector<AppendDone>> waiting;
  };
  // A duplicate of a batch known from the log, until the commit covers it.
  struct CommitWaiter {
    LogPosition first;
    LogPosition end;
    uint64_t count = 0;
    AppendDone done;
  };
  // mu_ held: where `st`'s batch `seq` (at or below placed_seq) is.
  static CommitWaiter placed_answer(const State& st, uint64_t seq, AppendDone done);

  std::mutex mu_;
  std::map<std::string, State> producers_;
  std::multimap<uint64_t, CommitWaiter> commit_waiters_;  // by end offset
};

}  // namespace ringlog
