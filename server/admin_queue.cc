#include "admin_queue.h"

namespace ringlog {

AdminQueue::AdminQueue() : thread_([this] { loop(); }) {}

void AdminQueue::run(std::function<void()> fn) {
  {
    std::lock_guard l(mu_);
    if (!stop_) {
      queue_.push_back(std::move(fn));
      cv_.notify_one();
      return;
    }
  }
  fn();  // shutting down: run here
}

void AdminQueue::stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AdminQueue::loop() {
  std::unique_lock l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;
    std::function<void()> fn = std::move(queue_.front());
    queue_.pop_front();
    l.unlock();
    fn();
    l.lock();
  }
}

}  // namespace ringlog
