#include "kit/load.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace ringlog::testkit {

namespace {

// Without a rate, a burst is this many events.
constexpr uint64_t kBurst = 1000;

}  // namespace

BackgroundLoad::BackgroundLoad(LoadOptions options)
    : options_(std::move(options)), thread_([this] { run(); }) {}

BackgroundLoad::~BackgroundLoad() { (void)stop(); }

void BackgroundLoad::run() {
  ClientOptions o;
  o.endpoints = options_.endpoints;
  o.failover_timeout = options_.failover_timeout;
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
  if (!c.ok()) return finish(c.status());
  absl::StatusOr<std::unique_ptr<Appender>> a = (*c)->appender();
  if (!a.ok()) return finish(a.status());
  absl::StatusOr<Ack> result = append_all(**a);
  if (absl::Status s = (*a)->close(); !s.ok() && result.ok()) result = s;
  acked_.store((*a)->events_acked(), std::memory_order_release);
  failovers_ = (*a)->failovers();
  duplicates_ = (*a)->duplicates();
  finish(std::move(result));
}

absl::StatusOr<Ack> BackgroundLoad::append_all(Appender& a) {
  const uint64_t rate = options_.events_per_second;
  const absl::Time started = absl::Now();
  uint64_t n = 0;  // events appended
  while (n < options_.max_events && !stop_.load(std::memory_order_acquire)) {
    uint64_t end = n + kBurst;
    if (rate != 0 && options_.drain_each_burst) {
      // Pacing (not synchronization): the events due by now.
      end = static_cast<uint64_t>(absl::ToDoubleSeconds(absl::Now() - started) *
                                  static_cast<double>(rate)) + 1;
    } else if (rate != 0) {
      // Pacing (not synchronization): hold back while ahead of the rate.
      const absl::Time due = started + absl::Seconds(1) * (static_cast<double>(n) / rate);
      if (const absl::Duration ahead = due - absl::Now(); ahead > absl::ZeroDuration()) {
        absl::SleepFor(ahead);
      }
    }
    end = std::min(end, options_.max_events);
    if (absl::Status s = append_burst(a, n, end); !s.ok()) return s;
    n = appended();
    if (!options_.drain_each_burst) {
      if (absl::Status s = a.flush(); !s.ok()) return s;
      continue;
    }
    absl::StatusOr<Ack> ack = a.drain();  // fails over by itself if need be
    if (!ack.ok()) return ack.status();
    acked_.store(a.events_acked(), std::memory_order_release);
    epoch_.store(ack->epoch, std::memory_order_release);
    absl::SleepFor(absl::Milliseconds(2));  // pacing
  }
  return a.drain();
}

// Appends events [n, end) of the load, fewer if stopped meanwhile.
absl::Status BackgroundLoad::append_burst(Appender& a, uint64_t n, uint64_t end) {
  for (; n < end && !stop_.load(std::memory_order_acquire); ++n) {
    const uint64_t i = options_.first + n;
    const std::string p = event_payload(options_.stream, i, options_.payload_bytes);
    const absl::Status s = a.append(event_type(options_.stream, i),
                                    event_timestamp(options_.stream, i), as_bytes(p));
    if (!s.ok()) return s;
    appended_.store(n + 1, std::memory_order_release);
  }
  return absl::OkStatus();
}

void BackgroundLoad::finish(absl::StatusOr<Ack> result) {
  if (!result.ok()) failed_.store(true, std::memory_order_release);
  result_ = std::move(result);
  done_.store(true, std::memory_order_release);  // release: publishes result_
}

absl::StatusOr<Ack> BackgroundLoad::stop() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  return result_ ? *result_ : absl::StatusOr<Ack>(absl::UnknownError("not run"));
}

}  // namespace ringlog::testkit
