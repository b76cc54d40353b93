// The commit offset, and the thread that acts on it moving.
//
// Whoever moves the durable or commit offset (the storage thread, replication
// acks) calls advance(), which only stores and signals: it never blocks and
// never runs callbacks. The notifier thread then runs the callbacks of the
// waiters whose target the commit offset has reached, outside any lock. gRPC
// reactors park here when they have caught up and are resumed from here.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "ringlog/storage.h"

namespace ringlog {

class CommitNotifier {
 public:
  using Callback = std::function<void()>;
  using Token = uint64_t;

  CommitNotifier();
  ~CommitNotifier();  // runs what was posted, then stops the thread

  // Any thread; never blocks beyond a short lock.
  void advance(LogPosition commit);
  LogPosition commit() const { return commit_.load(); }

  // Runs `cb` once on the notifier thread when the commit offset passes
  // `offset` (commit > offset), or at release_waiters(). Returns a token for
  // cancel(), or nullopt (and never runs cb) after release_waiters().
  std::optional<Token> wait_past(uint64_t offset, Callback cb);
  // Runs `cb` on the notifier thread soon (never on the caller's thread, so
  // the caller may hold locks that cb takes).
  void post(Callback cb);
  // True when the callback was removed before it ran.
  bool cancel(Token t);
  // Runs every callback registered with on_advance() after each advance,
  // on the notifier thread (the node uses it to complete appends).
  void on_advance(std::function<void(LogPosition)> fn);

  // Shutdown: runs every waiter now; later wait_past() calls refuse.
  void release_waiters();

 private:
  void run();

  AtomicPosition commit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = false;  // commit moved since the thread last looked
  bool released_ = false;
  bool stopped_ = false;
  Token next_token_ = 1;
  // Waiters by the offset they wait to be passed.
  std::multimap<uint64_t, std::pair<Token, Callback>> waiters_;
  std::vector<Callback> posted_;
  std::vector<std::function<void(LogPosition)>> on_advance_;
  std::thread thread_;
};

}  // namespace ringlog
