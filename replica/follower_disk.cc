// Follower: a full disk on the replica. A chunk that needs a new segment
// the disk cannot hold changes nothing (apply_chunk makes the file first);
// the follower keeps the stream, says so in its acks (the primary may need
// them to commit, and then refuses appends instead of waiting), applies
// retention and tries the chunk again until it fits. Retention is applied
// now and then otherwise too, as on a primary.
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "follower.h"
#include "spdlog/spdlog.h"

namespace ringlog {

absl::Status Follower::disk_full(absl::Time* since) const {
  std::lock_guard l(mu_);
  if (since != nullptr) *since = disk_full_since_;
  return disk_full_;
}

absl::Status Follower::apply_or_wait(Stream* stream, const v1::Chunk& chunk, uint64_t* acked) {
  absl::Status s = apply(chunk);
  while (absl::IsResourceExhausted(s)) {
    note_disk_full(s);
    if (!ack_durable(stream, /*always=*/true, acked)) return s;  // the stream is over
    maybe_apply_retention(/*now_anyway=*/true);
    {
      std::unique_lock l(mu_);
      if (cv_.wait_for(l, absl::ToChronoNanoseconds(options_.disk_retry), [&] { return stop_; })) {
        return absl::CancelledError("stopped");
      }
    }
    s = apply(chunk);
  }
  if (s.ok()) note_disk_ok();
  return s;
}

void Follower::note_disk_full(const absl::Status& s) {
  {
    std::lock_guard l(mu_);
    const bool first = disk_full_.ok();
    // What the primary is told: where, and what failed.
    disk_full_ = absl::Status(s.code(), absl::StrFormat("the disk is full in %s (%s)", log_->dir(),
                                                        s.message()));
    if (!first) return;
    disk_full_since_ = absl::Now();
  }
  const LogOptions& o = log_->options();
  spdlog::error("the disk is full in {}: {}; replication from {} waits, trying again every {}{}, "
                "and the primary is told",
                log_->dir(), std::string(s.message()), primary(), absl::FormatDuration(options_.disk_retry),
                o.retention_bytes != 0
                    ? absl::StrFormat(" after applying retention (%d bytes)", o.retention_bytes)
                    : " (free space, or restart with --retention_bytes)");
}

void Follower::note_disk_ok() {
  absl::Time since;
  {
    std::lock_guard l(mu_);
    if (disk_full_.ok()) return;
    disk_full_ = absl::OkStatus();
    since = disk_full_since_;
  }
  spdlog::warn("the disk has room again in {} after {}: replication goes on", log_->dir(),
               absl::FormatDuration(absl::Trunc(absl::Now() - since, absl::Milliseconds(1))));
}

void Follower::maybe_apply_retention(bool now_anyway) {
  const LogOptions& o = log_->options();
  if (o.retention_bytes == 0 && o.retention_age == absl::InfiniteDuration()) return;
  const absl::Time now = absl::Now();
  if (!now_anyway && now - last_retention_ < options_.retention_interval) return;
  last_retention_ = now;
  absl::StatusOr<size_t> n = log_->apply_retention(now);
  if (!n.ok()) {
    spdlog::warn("retention: {}", n.status().ToString());
  } else if (*n != 0) {
    spdlog::info("retention removed the {} oldest segments", *n);
  }
}

}  // namespace ringlog
