// Pipeline: when the log cannot store (a full disk). The storage thread
// keeps the batch that failed, whole (a batch is never half in the log),
// and retries every error_retry: it applies retention, checks that the next
// segment's file can be made, then appends what waits. With refuse_after
// set, ring 0's producer is asked to refuse once the stall has lasted that
// long, and what ring 0 holds is dropped unstored, so that its senders get
// an answer instead of waiting for space.
#include "absl/time/clock.h"
#include "ringlog/pipeline.h"

namespace ringlog {

AppendResult Pipeline::append_whole(ByteSpan batch) {
  // A batch that needs a roll goes in only once the next segment's file
  // exists: a full disk refuses it before any of it is written.
  if (batch.size() > log_->active_room()) {
    if (absl::Status s = log_->reserve_next_segment(); !s.ok()) return AppendResult{0, 0, s};
  }
  const LogPosition first = log_->end();
  AppendResult r = log_->append(batch);
  if (r.status.ok() || r.bytes == 0) return r;
  // Part of it went in (it needed more than one new segment): cut it back
  // before anything publishes it. Only if the cut fails too does the part
  // stay, to be completed by the retry.
  if (log_->truncate(first.offset).ok()) {
    r.bytes = 0;
    r.events = 0;
  }
  return r;
}

void Pipeline::stall(const absl::Status& s, absl::Time now) {
  retry_at_ = now + options_.error_retry;
  if (!stalled_) {
    stalled_ = true;
    stalled_since_ = now;
  }
  {
    std::lock_guard l(error_mu_);
    if (!stall_.stalled) {
      stall_.stalled = true;
      stall_.since = now;
      ++stall_.episodes;
    }
    stall_.error = s;
    error_ = s;
  }
  if (!refusing_.load(std::memory_order_relaxed) && now - stalled_since_ >= options_.refuse_after) {
    // release: pairs with the acquire in refusing().
    refusing_.store(true, std::memory_order_release);
    if (options_.on_refusing) options_.on_refusing();
  }
}

bool Pipeline::retry_stalled(absl::Time now) {
  const bool retention = options_.log.retention_bytes != 0 ||
                         options_.log.retention_age != absl::InfiniteDuration();
  if (retention) {
    if (absl::StatusOr<size_t> n = log_->apply_retention(now); !n.ok()) {
      stall(n.status(), now);
      return false;
    }
  }
  if (absl::Status s = log_->reserve_next_segment(); !s.ok()) {
    stall(s, now);
    return false;
  }
  return true;
}

void Pipeline::end_stall() {
  stalled_ = false;
  {
    std::lock_guard l(error_mu_);
    stall_.stalled = false;
    error_ = absl::OkStatus();
  }
  // release: the refusals reported before (on_refused) happen before ring
  // 0's producer, seeing false, writes again.
  refusing_.store(false, std::memory_order_release);
}

void Pipeline::refuse_to(uint64_t ring_position) {
  // release: pairs with the acquire in drop_refused(); ring 0's records up to
  // ring_position are published before it.
  drop_to_.store(ring_position, std::memory_order_release);
  wake();
}

void Pipeline::drop_refused() {
  // acquire: pairs with the release in refuse_to().
  const uint64_t to = drop_to_.load(std::memory_order_acquire);
  if (to <= dropped_) return;
  carry_[0] = {};
  carry_first_[0].reset();
  SpscRingBuffer::Consumer& c = consumers_[0];
  // The producer writes nothing past `to` until the drop is reported.
  while (c.consumed() < to && !c.read_batch(SIZE_MAX).bytes.empty()) {
  }
  c.release();
  dropped_ = to;
  absl::Status why;
  {
    std::lock_guard l(error_mu_);
    why = stall_.error;
  }
  if (options_.on_refused) options_.on_refused(RefusedChunk{to, why});
  // release: pairs with the acquire in refused_to(); what on_refused did is
  // seen by the producer before it writes again.
  dropped_to_.store(to, std::memory_order_release);
}

void Pipeline::stall_nap() {
  // Until the next retry, a wake() (ring 0's producer asks for a drop) or
  // close(). seq_cst read-modify-write: pairs with the one in wake(), so a
  // drop asked before this is seen by the check below and one asked after
  // it finds parked_ set and wakes us.
  parked_.exchange(1, std::memory_order_seq_cst);
  {
    std::unique_lock l(wake_mu_);
    wake_cv_.wait_until(l, absl::ToChronoTime(retry_at_), [&] {
      // acquire (both): pair with the release stores in refuse_to() and close().
      return woken_ || stop_.load(std::memory_order_acquire) ||
             drop_to_.load(std::memory_order_acquire) > dropped_;
    });
    woken_ = false;
  }
  parked_.store(0, std::memory_order_relaxed);
}

}  // namespace ringlog
