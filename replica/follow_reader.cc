#include "follow_reader.h"

#include <cassert>
#include <utility>

namespace ringlog {

FollowReader::FollowReader(Stream* stream, bool read_ahead) : stream_(stream) {
  if (read_ahead) thread_ = std::thread([this] { read_loop(); });
}

FollowReader::~FollowReader() {
  {
    std::lock_guard l(mu_);
    closing_ = true;  // frees a reader waiting for a slot; one in Read ends with the stream
  }
  writable_.notify_one();
  if (thread_.joinable()) thread_.join();
}

// Reader thread.
void FollowReader::read_loop() {
  size_t tail = 0;  // the slot the next message goes to
  for (;;) {
    {
      std::unique_lock l(mu_);
      writable_.wait(l, [&] { return count_ < kSlots || closing_; });
      if (closing_) return;
    }
    // slots_[tail] is outside [head_, head_ + count_): ours to fill without
    // the lock, and next() does not touch it until count_ covers it.
    const bool ok = stream_->Read(&slots_[tail]);
    {
      std::lock_guard l(mu_);
      if (ok) {
        ++count_;  // publishes slots_[tail]; next() takes it under mu_
      } else {
        ended_ = true;
      }
    }
    readable_.notify_one();
    if (!ok) return;
    tail = (tail + 1) % kSlots;
  }
}

// Follower thread.
FollowReader::Next FollowReader::next(v1::FollowResponse* resp, absl::Time deadline) {
  if (!thread_.joinable()) {
    assert(deadline == absl::InfiniteFuture());
    return stream_->Read(resp) ? Next::kMessage : Next::kEnded;
  }
  std::unique_lock l(mu_);
  auto ready = [&] { return count_ > 0 || ended_; };
  if (deadline == absl::InfiniteFuture()) {
    readable_.wait(l, ready);
  } else if (deadline <= absl::Now()) {
    if (!ready()) return Next::kDue;  // no wait: InfinitePast is no time point to wait for
  } else if (!readable_.wait_until(l, absl::ToChronoTime(deadline), ready)) {
    return Next::kDue;
  }
  if (count_ == 0) return Next::kEnded;  // every message read was taken first
  // Swapping leaves the caller's old buffers in the slot, for the reader to
  // parse the next message into.
  resp->Swap(&slots_[head_]);
  head_ = (head_ + 1) % kSlots;
  const bool was_full = count_-- == kSlots;
  l.unlock();
  if (was_full) writable_.notify_one();
  return Next::kMessage;
}

}  // namespace ringlog
