// The node's admin thread: role changes run here, one at a time, in order.
// They block (peer queries, draining the ring, syncing), which gRPC
// callbacks must not.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace ringlog {

class AdminQueue {
 public:
  AdminQueue();
  ~AdminQueue() { stop(); }
  // Runs `fn` on the admin thread; after stop(), on the caller's.
  void run(std::function<void()> fn);
  // Runs what is queued, then ends the thread; idempotent.
  void stop();

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ringlog
