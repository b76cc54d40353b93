#include "commit_notifier.h"

namespace ringlog {

CommitNotifier::CommitNotifier() : thread_([this] { run(); }) {}

CommitNotifier::~CommitNotifier() {
  {
    std::lock_guard l(mu_);
    stopped_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void CommitNotifier::advance(LogPosition commit) {
  commit_.store(commit);
  {
    std::lock_guard l(mu_);
    dirty_ = true;
  }
  cv_.notify_one();
}

std::optional<CommitNotifier::Token> CommitNotifier::wait_past(uint64_t offset, Callback cb) {
  std::unique_lock l(mu_);
  if (released_) return std::nullopt;
  const Token t = next_token_++;
  waiters_.emplace(offset, std::make_pair(t, std::move(cb)));
  // The commit may have passed `offset` before we registered: look again.
  dirty_ = true;
  l.unlock();
  cv_.notify_one();
  return t;
}

void CommitNotifier::post(Callback cb) {
  {
    std::lock_guard l(mu_);
    posted_.push_back(std::move(cb));
  }
  cv_.notify_one();
}

bool CommitNotifier::cancel(Token t) {
  std::lock_guard l(mu_);
  for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
    if (it->second.first == t) {
      waiters_.erase(it);
      return true;
    }
  }
  return false;
}

void CommitNotifier::on_advance(std::function<void(LogPosition)> fn) {
  std::lock_guard l(mu_);
  on_advance_.push_back(std::move(fn));
}

void CommitNotifier::release_waiters() {
  {
    std::lock_guard l(mu_);
    released_ = true;
    dirty_ = true;
  }
  cv_.notify_one();
}

void CommitNotifier::run() {
  std::unique_lock l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return dirty_ || stopped_ || !posted_.empty(); });
    if (stopped_ && !dirty_ && posted_.empty()) return;
    dirty_ = false;
    const LogPosition c = commit_.load();
    std::vector<Callback> ready;
    ready.swap(posted_);
    // Waiters whose offset the commit has passed (all of them once released).
    auto end = released_ ? waiters_.end() : waiters_.lower_bound(c.offset);
    for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second.second));
    waiters_.erase(waiters_.begin(), end);
    const std::vector<std::function<void(LogPosition)>> hooks = on_advance_;
    l.unlock();
    for (const auto& h : hooks) h(c);
    for (Callback& cb : ready) cb();
    l.lock();
  }
}

}  // namespace ringlog
