#include "ringlog/pipeline.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ringlog {
namespace {

constexpr int kSpinRounds = 64;
constexpr int kYieldRounds = 8;

inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

absl::Status parse_fsync_policy(std::string_view s, FsyncPolicy* policy,
                                absl::Duration* interval) {
  if (s == "none") {
    *policy = FsyncPolicy::kNone;
    return absl::OkStatus();
  }
  if (s == "batch") {
    *policy = FsyncPolicy::kEveryBatch;
    return absl::OkStatus();
  }
  absl::Duration d;
  if (absl::ParseDuration(absl::string_view(s.data(), s.size()), &d) && d > absl::ZeroDuration() && d != absl::InfiniteDuration()) {
    *policy = FsyncPolicy::kInterval;
    *interval = d;
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid fsync policy \"", absl::string_view(s.data(), s.size()), "\": expected none, batch, or an interval such as 10ms"));
}

std::string fsync_policy_name(FsyncPolicy p, absl::Duration interval) {
  switch (p) {
    case FsyncPolicy::kNone: return "none";
    case FsyncPolicy::kEveryBatch: return "batch";
    case FsyncPolicy::kInterval: return absl::FormatDuration(interval);
  }
  return "unknown";
}

SyncSchedule::Action SyncSchedule::due(bool force, absl::Time now) const noexcept {
  if (!unsynced_ && !force) return Action::kNothing;
  switch (policy_) {
    case FsyncPolicy::kNone:
      return force ? Action::kFlush : Action::kPublish;
    case FsyncPolicy::kEveryBatch:
      return Action::kFlush;
    case FsyncPolicy::kInterval:
      return force || now - last_flush_ >= interval_ ? Action::kFlush : Action::kNothing;
  }
  return Action::kFlush;
}

absl::Time SyncSchedule::next_due() const noexcept {
  if (!unsynced_) return absl::InfiniteFuture();
  return policy_ == FsyncPolicy::kInterval ? last_flush_ + interval_ : absl::InfinitePast();
}

void SyncSchedule::done(Action a, absl::Time now) noexcept {
  if (a == Action::kNothing) return;
  unsynced_ = false;
  if (a == Action::kFlush) last_flush_ = now;
}

Pipeline::Pipeline(SegmentedLog* log, std::unique_ptr<SegmentedLog> owned,
                   const PipelineOptions& options)
    : options_(options),
      owned_log_(std::move(owned)),
      log_(log),
      sync_schedule_(options.fsync, options.fsync_interval) {}

namespace {
absl::Status validate(const PipelineOptions& options) {
  if (options.rings == 0 || options.rings > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid ring count ", options.rings, ": must be between 1 and 64"));
  }
  return detail::validate_capacity(options.ring_bytes);
}
}  // namespace

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Open(const std::string& dir,
                                                         const PipelineOptions& options,
                                                         RecoveryReport* report) {
  // Check the options before touching the data directory.
  if (absl::Status s = validate(options); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = SegmentedLog::Open(dir, options.log, report);
  if (!log.ok()) return log.status();
  SegmentedLog* raw = log->get();
  std::unique_ptr<Pipeline> p(new Pipeline(raw, std::move(*log), options));
  if (absl::Status s = p->start({}); !s.ok()) return s;
  return p;
}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Start(SegmentedLog* log,
                                                          const PipelineOptions& options,
                                                          std::vector<SpscRingBuffer> rings) {
  if (absl::Status s = validate(options); !s.ok()) return s;
  if (!rings.empty() && rings.size() != options.rings) {
    return absl::InvalidArgumentError(absl::StrCat(rings.size(), " rings given for ", options.rings));
  }
  std::unique_ptr<Pipeline> p(new Pipeline(log, nullptr, options));
  if (absl::Status s = p->start(std::move(rings)); !s.ok()) return s;
  return p;
}

absl::Status Pipeline::start(std::vector<SpscRingBuffer> rings) {
  for (size_t i = 0; i < options_.rings; ++i) {
    absl::StatusOr<SpscRingBuffer> ring =
        i < rings.size() ? absl::StatusOr<SpscRingBuffer>(std::move(rings[i]))
                         : SpscRingBuffer::Create(options_.ring_bytes);
    if (!ring.ok()) return ring.status();
    if (ring->capacity() != options_.ring_bytes) {
      return absl::InvalidArgumentError("a ring given has another capacity than ring_bytes");
    }
    auto [producer, consumer] = std::move(*ring).split();
    producers_.push_back(std::make_unique<SpscRingBuffer::Producer>(std::move(producer)));
    consumers_.push_back(std::move(consumer));
  }
  carry_.resize(options_.rings);
  carry_first_.resize(options_.rings);
  durable_.store(log_->end());
  thread_ = std::thread([this] { run(); });
  return absl::OkStatus();
}

Pipeline::~Pipeline() {
  if (thread_.joinable()) (void)close();
}

absl::Status Pipeline::close() {
  if (!closed_ && thread_.joinable()) {
    closed_ = true;
    // release: pairs with the acquire load in run(); everything the caller did
    // before close() (its last writes to the rings) is seen by the drain.
    stop_.store(true, std::memory_order_release);
    {
      std::lock_guard l(wake_mu_);
      wake_cv_.notify_one();
    }
    thread_.join();
  }
  return error();
}

void Pipeline::wake() {
  // A read-modify-write (a locked instruction, a full barrier on x86) keeps
  // the caller's ring write from passing this read of parked_; nap() does the
  // same on its side, so at least one of the two sees the other. Were a wake
  // ever missed, the nap still ends after idle_sleep.
  if (parked_.fetch_add(0, std::memory_order_seq_cst) != 0) {
    std::lock_guard l(wake_mu_);
    woken_ = true;
    wake_cv_.notify_one();
  }
}

LogPosition Pipeline::durable() const { return durable_.load(); }

absl::Status Pipeline::error() const {
  std::lock_guard l(error_mu_);
  return error_;
}

StorageStall Pipeline::stall() const {
  std::lock_guard l(error_mu_);
  StorageStall s = stall_;
  s.refusing = refusing();
  return s;
}

void Pipeline::set_error(absl::Status s) {
  std::lock_guard l(error_mu_);
  error_ = std::move(s);
}

PipelineStats Pipeline::stats() const {
  // relaxed: counters for reporting; no other data depends on them.
  PipelineStats st;
  st.events = events_.load(std::memory_order_relaxed);
  st.bytes = bytes_.load(std::memory_order_relaxed);
  st.batches = batches_.load(std::memory_order_relaxed);
  st.syncs = syncs_.load(std::memory_order_relaxed);
  st.append_errors = append_errors_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < kFsyncBucketCount; ++i) {
    st.fsync_buckets[i] = fsync_buckets_[i].load(std::memory_order_relaxed);
  }
  st.fsync_seconds = static_cast<double>(fsync_nanos_.load(std::memory_order_relaxed)) / 1e9;
  return st;
}

// ---- The storage thread ----

void Pipeline::run() {
  last_retention_ = absl::Now();
  nap_ = options_.idle_sleep;
  const bool retention = options_.log.retention_bytes != 0 ||
                         options_.log.retention_age != absl::InfiniteDuration();
  for (;;) {
    if (step()) {
      idle_rounds_ = 0;
      nap_ = options_.idle_sleep;
      make_durable(false);
      continue;
    }
    make_durable(false);
    if (retention && absl::Now() - last_retention_ >= options_.retention_interval) {
      last_retention_ = absl::Now();
      if (absl::StatusOr<size_t> n = log_->apply_retention(last_retention_); !n.ok()) {
        set_error(n.status());
      }
    }
    // acquire: pairs with the release store in close().
    if (stop_.load(std::memory_order_acquire)) {
      // Drain what the producers wrote before close(); stop early only when
      // the log cannot take more (the error is reported by close()).
      while (step()) {
      }
      break;
    }
    nap();
  }
  make_durable(true);
}

bool Pipeline::step() {
  drop_refused();
  if (stalled_) {
    const absl::Time now = absl::Now();
    if (now < retry_at_ || !retry_stalled(now)) return false;
  }
  bool moved = false;
  for (size_t i = 0; i < consumers_.size(); ++i) {
    if (stalled_ && carry_[i].empty()) continue;  // the waiting batches first
    moved = move_ring(i) || moved;
  }
  if (stalled_ && std::all_of(carry_.begin(), carry_.end(),
                              [](const ByteSpan& c) { return c.empty(); })) {
    end_stall();
  }
  return moved;
}

bool Pipeline::move_ring(size_t i) {
  ByteSpan batch = carry_[i];
  if (batch.empty()) {
    // Hands the previous batch's space back to the producer, then takes
    // everything contiguous, so a run published at once is never split.
    batch = consumers_[i].read_batch(SIZE_MAX).bytes;
    if (batch.empty()) return false;
  }
  const LogPosition first = carry_first_[i].value_or(log_->end());
  const AppendResult r = append_whole(batch);
  // relaxed: statistics only.
  events_.fetch_add(r.events, std::memory_order_relaxed);
  bytes_.fetch_add(r.bytes, std::memory_order_relaxed);
  if (r.bytes != 0) sync_schedule_.wrote();
  if (!r.status.ok()) {
    // Keep it and retry later; the ring fills meanwhile and its producer
    // sees kNotEnoughSpace, so nothing is lost.
    carry_[i] = batch.subspan(r.bytes);
    if (r.bytes != 0) carry_first_[i] = first;
    append_errors_.fetch_add(1, std::memory_order_relaxed);
    stall(r.status, absl::Now());
    return r.bytes != 0;
  }
  carry_[i] = {};
  carry_first_[i].reset();
  batches_.fetch_add(1, std::memory_order_relaxed);
  if (options_.on_append) {
    options_.on_append(AppendedChunk{i, consumers_[i].consumed(), first, log_->end()});
  }
  return true;
}

void Pipeline::make_durable(bool force) {
  const SyncSchedule::Action action = sync_schedule_.due(force, absl::Now());
  if (action == SyncSchedule::Action::kNothing) return;
  const bool flush = action == SyncSchedule::Action::kFlush;
  const LogPosition end = log_->end();
  const absl::Time t0 = absl::Now();
  if (absl::Status s = log_->sync(flush); !s.ok()) {
    set_error(s);
    return;
  }
  const absl::Time t1 = absl::Now();
  sync_schedule_.done(action, t1);
  if (flush) {
    const double secs = absl::ToDoubleSeconds(t1 - t0);
    size_t b = 0;
    while (b < std::size(kFsyncBuckets) && secs > kFsyncBuckets[b]) ++b;
    // relaxed: statistics only.
    fsync_buckets_[b].fetch_add(1, std::memory_order_relaxed);
    fsync_nanos_.fetch_add(static_cast<uint64_t>(secs * 1e9), std::memory_order_relaxed);
    syncs_.fetch_add(1, std::memory_order_relaxed);
  }
  if (end == durable_.load()) return;  // a forced flush that moved nothing
  durable_.store(end);
  if (options_.on_durable) options_.on_durable(end);
}

void Pipeline::nap() {
  if (stalled_) {
    stall_nap();
    return;
  }
  if (idle_rounds_ < kSpinRounds) {
    ++idle_rounds_;
    cpu_relax();
    return;
  }
  if (idle_rounds_ < kSpinRounds + kYieldRounds) {
    ++idle_rounds_;
    std::this_thread::yield();
    return;
  }
  // seq_cst read-modify-write: ordered before the ring checks below; pairs
  // with the one in wake().
  parked_.exchange(1, std::memory_order_seq_cst);
  bool empty = true;
  for (SpscRingBuffer::Consumer& c : consumers_) empty = empty && c.is_empty();
  if (empty && !stop_.load(std::memory_order_acquire)) {
    std::unique_lock l(wake_mu_);
    wake_cv_.wait_for(l, absl::ToChronoNanoseconds(nap_));
    woken_ = false;
    nap_ = std::min(nap_ * 2, std::max(options_.idle_sleep, options_.idle_sleep_max));
  }
  parked_.store(0, std::memory_order_relaxed);
}

}  // namespace ringlog
