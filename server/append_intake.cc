#include "append_intake.h"

#include <chrono>

namespace ringlog {

void AppendIntake::start(Pipeline* pipeline, bool open, Hooks hooks) {
  hooks_ = std::move(hooks);
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

void AppendIntake::wake() {
  {
    std::lock_guard l(queue_mu_);
    woken_ = true;
  }
  queue_cv_.notify_one();
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

AppendIntake::Next AppendIntake::take(Batch* b) {
  std::unique_lock l(queue_mu_);
  queue_cv_.wait(l, [&] { return !queue_.empty() || !open_ || woken_; });
  woken_ = false;
  if (queue_.empty()) return open_ ? Next::kWake : Next::kClosed;
  *b = std::move(queue_.front());
  queue_.pop_front();
  return Next::kBatch;
}

void AppendIntake::loop(Pipeline* pipeline) {
  uint64_t asked = 0;  // ring 0's position this thread asked the pipeline to drop to
  for (;;) {
    Batch b;
    const Next next = take(&b);
    if (next == Next::kClosed) return;
    const bool blocked = storage_blocked(pipeline, &asked);
    if (next == Next::kWake) continue;
    if (absl::Status why = refusal_for(b, blocked, pipeline); !why.ok()) {
      refuse(std::move(b), std::move(why));
      continue;
    }
    if (!write(pipeline, b, &asked)) continue;
  }
}

bool AppendIntake::storage_blocked(Pipeline* pipeline, uint64_t* asked) {
  SpscRingBuffer::Producer& producer = pipeline->producer(0);
  if (pipeline->refusing() && *asked < producer.written()) {
    *asked = producer.written();
    pipeline->refuse_to(*asked);
  }
  return pipeline->refusing() || pipeline->refused_to() < *asked;
}

absl::Status AppendIntake::refusal_for(const Batch& b, bool storage_blocked, Pipeline* pipeline) {
  if (storage_blocked) {
    const absl::Status e = pipeline->stall().error;
    return hooks_.storage_refusal ? hooks_.storage_refusal(e) : e;
  }
  // acquire: pairs with the release store of whoever refused the earlier batch.
  if (b.order && b.order->broken.load(std::memory_order_acquire)) {
    return absl::ResourceExhaustedError(
        "not stored: an earlier batch of this stream was refused, and batches are stored in order");
  }
  return hooks_.refusal ? hooks_.refusal() : absl::OkStatus();
}

bool AppendIntake::write(Pipeline* pipeline, Batch& b, uint64_t* asked) {
  SpscRingBuffer::Producer& producer = pipeline->producer(0);
  const std::string records = std::move(b.records);
  const ByteSpan span(reinterpret_cast<const std::byte*>(records.data()), records.size());
  int waits = 0;
  while (!producer.write_records(span)) {
    // relaxed: a statistic.
    if (waits == 0) ring_full_.fetch_add(1, std::memory_order_relaxed);
    // The ring is full: the storage thread is behind, or cannot store (a
    // full disk), in which case the pipeline refuses within refuse_after.
    if (storage_blocked(pipeline, asked)) {
      absl::Status why = refusal_for(b, true, pipeline);
      refuse(std::move(b), std::move(why));
      return false;
    }
    pipeline->wake();
    if (++waits < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  b.ring_end = producer.written();
  uint64_t placed = 0;
  Refused refused;
  {
    std::lock_guard l(match_mu_);
    written_.push_back(std::move(b));
    placed = match_locked(&refused);
  }
  refuse_all(std::move(refused));
  // The storage thread appended it (and the commit offset may have passed
  // it) before it was matched: complete it now, not at the next commit.
  if (placed != 0 && placed <= hooks_.committed()) post_(hooks_.complete);
  pipeline->wake();
  return true;
}

void AppendIntake::refuse(Batch b, absl::Status why) {
  // release: pairs with the acquire in refusal_for().
  if (b.order) b.order->broken.store(true, std::memory_order_release);
  post_([this, b = std::move(b), why = std::move(why)]() mutable { failed_(std::move(b), why); });
}

void AppendIntake::refuse_all(Refused refused) {
  for (auto& [b, why] : refused) refuse(std::move(b), std::move(why));
}

void AppendIntake::on_append(const AppendedChunk& c) {
  if (c.ring != 0) return;
  Refused refused;
  {
    std::lock_guard l(match_mu_);
    chunks_.push_back(Chunk{c.ring_position, c.first, c.end, absl::OkStatus()});
    match_locked(&refused);
  }
  refuse_all(std::move(refused));
}

void AppendIntake::on_refused(uint64_t ring_position, const absl::Status& why) {
  Refused refused;
  {
    std::lock_guard l(match_mu_);
    chunks_.push_back(Chunk{ring_position, {}, {}, why.ok() ? absl::UnknownError("refused") : why});
    match_locked(&refused);
  }
  refuse_all(std::move(refused));
}

uint64_t AppendIntake::match_locked(Refused* refused) {
  uint64_t placed = 0;
  while (!written_.empty() && !chunks_.empty()) {
    Chunk& c = chunks_.front();
    Batch& b = written_.front();
    if (b.ring_end > c.ring_position) {
      chunks_.pop_front();  // every batch of it is placed
      continue;
    }
    if (!c.refused.ok()) {
      // Dropped unstored. Its stream's later batches are refused from now
      // on, before the pipeline lets the intake write again (release: pairs
      // with the acquire in refusal_for()).
      if (b.order) b.order->broken.store(true, std::memory_order_release);
      const bool last = b.ring_end == c.ring_position;
      refused->emplace_back(std::move(b), c.refused);
      written_.pop_front();
      if (last) chunks_.pop_front();
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

std::deque<AppendIntake::Batch> AppendIntake::take_appended() {
  std::lock_guard l(match_mu_);
  std::deque<Batch> out;
  out.swap(appended_);
  return out;
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
