#include "append_intake.h"

#include <chrono>

namespace ringlog {

void AppendIntake::start(Pipeline* pipeline, bool open, std::function<uint64_t()> committed,
                         std::function<void()> complete) {
  committed_ = std::move(committed);
  complete_ = std::move(complete);
  {
    std::lock_guard l(queue_mu_);
    open_ = open;
  }
  thread_ = std::thread([this, pipeline] { loop(pipeline); });
}

void AppendIntake::stop() {
  close();
  if (thread_.joinable()) thread_.join();
}

void AppendIntake::close() {
  {
    std::lock_guard l(queue_mu_);
    open_ = false;
  }
  queue_cv_.notify_all();
}

bool AppendIntake::submit(Batch& b) {
  {
    std::lock_guard l(queue_mu_);
    if (!open_) return false;
    queue_.push_back(std::move(b));
  }
  queue_cv_.notify_one();
  return true;
}

void AppendIntake::loop(Pipeline* pipeline) {
  SpscRingBuffer::Producer& producer = pipeline->producer(0);
  for (;;) {
    Batch b;
    {
      std::unique_lock l(queue_mu_);
      queue_cv_.wait(l, [&] { return !queue_.empty() || !open_; });
      if (queue_.empty()) return;
      b = std::move(queue_.front());
      queue_.pop_front();
    }
    const std::string records = std::move(b.records);
    const ByteSpan span(reinterpret_cast<const std::byte*>(records.data()), records.size());
    int waits = 0;
    absl::Status failed;
    while (!producer.write_records(span)) {
      // relaxed: a statistic.
      if (waits == 0) ring_full_.fetch_add(1, std::memory_order_relaxed);
      // The ring is full: the storage thread is behind, or cannot write
      // (a full disk). Wait for room; give up on a storage error.
      if (absl::Status e = pipeline->error(); !e.ok()) {
        failed = e;
        break;
      }
      pipeline->wake();
      if (++waits < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    if (!failed.ok()) {
      post_([this, b = std::move(b), failed]() mutable { failed_(std::move(b), failed); });
      continue;
    }
    b.ring_end = producer.written();
    uint64_t placed = 0;
    {
      std::lock_guard l(match_mu_);
      written_.push_back(std::move(b));
      placed = match_locked();
    }
    // The storage thread appended it (and the commit offset may have passed
    // it) before it was matched: complete it now, not at the next commit.
    if (placed != 0 && placed <= committed_()) post_(complete_);
    pipeline->wake();
  }
}

void AppendIntake::on_append(const AppendedChunk& c) {
  if (c.ring != 0) return;
  std::lock_guard l(match_mu_);
  chunks_.push_back(Chunk{c.ring_position, c.first, c.end});
  match_locked();
}

uint64_t AppendIntake::match_locked() {
  uint64_t placed = 0;
  while (!written_.empty() && !chunks_.empty()) {
    Chunk& c = chunks_.front();
    Batch& b = written_.front();
    if (b.ring_end > c.ring_position) {
      chunks_.pop_front();  // every batch of it is placed
      continue;
    }
    b.first = c.next;
    b.end = LogPosition{c.next.offset + b.records_bytes, c.next.seq + b.count};
    c.next = b.end;
    placed = b.end.offset;
    if (b.ring_end == c.ring_position) chunks_.pop_front();
    appended_.push_back(std::move(b));
    written_.pop_front();
  }
  return placed;
}

std::deque<AppendIntake::Batch> AppendIntake::take_committed(uint64_t commit) {
  std::deque<Batch> done;
  std::lock_guard l(match_mu_);
  while (!appended_.empty() && appended_.front().end.offset <= commit) {
    done.push_back(std::move(appended_.front()));
    appended_.pop_front();
  }
  return done;
}

std::deque<AppendIntake::Batch> AppendIntake::take_all() {
  std::deque<Batch> all;
  {
    std::lock_guard l(match_mu_);
    for (Batch& b : appended_) all.push_back(std::move(b));
    for (Batch& b : written_) all.push_back(std::move(b));
    appended_.clear();
    written_.clear();
    chunks_.clear();
  }
  std::lock_guard l(queue_mu_);
  for (Batch& b : queue_) all.push_back(std::move(b));
  queue_.clear();
  return all;
}

}  // namespace ringlog
