// Node: a full disk, here or on the replicas a commit needs.
//
// Here: the pipeline keeps a batch it could not store and retries (see
// pipeline_stall.cc); after --disk_full_timeout it refuses ring 0, and the
// intake refuses what it holds and what comes, unstored, until the log
// stores again. On the replicas: a replica that cannot store says so in its
// acks; when fewer replicas than --min_replica_acks can store, the batches
// waiting for their commit are refused after the same timeout (they stay in
// this log and commit once a replica has room: a resend with the same
// producer id and seq is answered as a duplicate), and new ones are refused
// unstored. The ticker thread watches both, logs each episode once at ERROR
// and tells the health service whether appends are taken.
#include <sys/statvfs.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "node.h"
#include "spdlog/spdlog.h"

namespace ringlog {

namespace {

// "the disk is full in DIR (what failed)", or the error for another kind.
std::string describe(const std::string& dir, const absl::Status& error) {
  const bool full = error.ok() || absl::IsResourceExhausted(error);
  return absl::StrFormat("%s in %s (%s)", full ? "the disk is full" : "the log cannot store", dir,
                         error.message());
}

}  // namespace

absl::Status Node::storage_refusal(const absl::Status& error) const {
  const bool full = error.ok() || absl::IsResourceExhausted(error);
  return absl::Status(full ? absl::StatusCode::kResourceExhausted : error.code(),
                      absl::StrFormat("not stored: %s; nothing of this batch is in the log, and "
                                      "appends resume by themselves once space is freed",
                                      describe(options_.data_dir, error)));
}

absl::Status Node::replica_refusal() const {
  // acquire: pairs with the release store in watch_replicas().
  if (!replicas_refusing_.load(std::memory_order_acquire)) return absl::OkStatus();
  std::lock_guard l(refusal_mu_);
  return replica_refusal_;
}

void Node::replica_storage(const std::string& replica_id, const std::string& reported) {
  const std::string error = reported.substr(0, 512);  // for status and logs: bounded
  if (!commits_.replica_storage(replica_id, error)) return;
  if (error.empty()) {
    spdlog::info("replica {} can store again", replica_id);
  } else {
    spdlog::warn("replica {} cannot store: {}", replica_id, error);
  }
}

void Node::storage_watch(absl::Time now) {
  // A commit offset noted within a millisecond of the last checkpoint write
  // waits for the next one: write it now, so that a replica restarted after
  // a crash knows its commit offset (a replay --from-end starts there).
  log_->write_pending_checkpoint();
  watch_own_disk(pipeline());
  watch_replicas(now);
  const NodeHealth now_health = health();
  std::lock_guard l(health_mu_);
  if (now_health == health_) return;
  health_ = now_health;
  if (health_listener_) health_listener_(now_health);
}

void Node::watch_own_disk(const std::shared_ptr<Pipeline>& pl) {
  if (watched_pipeline_.lock() != pl) {  // a new primary term
    watched_pipeline_ = pl;
    stalls_seen_ = 0;
    in_stall_ = false;
  }
  if (!pl) return;
  const StorageStall st = pl->stall();
  if (st.episodes > stalls_seen_) {
    stalls_seen_ = st.episodes;
    in_stall_ = true;
    spdlog::error("{}; appends wait, and are refused with RESOURCE_EXHAUSTED after {}, until "
                  "space is freed{}",
                  describe(options_.data_dir, st.error),
                  absl::FormatDuration(options_.disk_full_timeout),
                  options_.pipeline.log.retention_bytes != 0 ? " (retention is applied meanwhile)" : "");
  }
  if (in_stall_ && !st.stalled) {
    in_stall_ = false;
    spdlog::warn("the log stores again in {}: appends are taken", options_.data_dir);
  }
}

void Node::watch_replicas(absl::Time now) {
  std::vector<std::string> full;
  uint32_t able = 0;
  if (role() == Role::kPrimary && options_.min_replica_acks != 0) {
    for (const ReplicaView& v : replicas()) {
      if (!v.storage_error.empty()) {
        full.push_back(absl::StrFormat("replica %s at %s: %s", v.node_id,
                                       v.advertise.empty() ? v.peer : v.advertise, v.storage_error));
      } else if (v.connected) {
        ++able;
      }
    }
  }
  if (full.empty() || able >= options_.min_replica_acks) {
    if (replica_stall_since_ != absl::InfiniteFuture()) {
      spdlog::warn("enough replicas can store again: appends are taken");
    }
    replica_stall_since_ = absl::InfiniteFuture();
    replicas_stalled_.store(false, std::memory_order_relaxed);
    replicas_refusing_.store(false, std::memory_order_release);
    return;
  }
  const std::string who = absl::StrJoin(full, "; ");
  if (replica_stall_since_ == absl::InfiniteFuture()) {
    replica_stall_since_ = now;
    replicas_stalled_.store(true, std::memory_order_relaxed);
    spdlog::error("appends cannot commit: cannot store on {}; a commit needs {} replica ack(s) "
                  "(--min_replica_acks) where {} replica(s) can give one; appends are refused "
                  "with RESOURCE_EXHAUSTED after {}, until a replica has room",
                  who, options_.min_replica_acks, able,
                  absl::FormatDuration(options_.disk_full_timeout));
  }
  if (now - replica_stall_since_ < options_.disk_full_timeout) return;
  absl::Status s = absl::ResourceExhaustedError(absl::StrFormat(
      "cannot store on %s; a commit needs %d replica ack(s) (--min_replica_acks) where %d "
      "replica(s) can give one. A batch refused this way either never reached the primary's "
      "log, or stays in it and is committed once a replica has room: sent again with the same "
      "producer_id and producer_seq, it is stored once or answered as a duplicate",
      who, options_.min_replica_acks, able));
  {
    std::lock_guard l(refusal_mu_);
    replica_refusal_ = s;
  }
  // release: replica_refusal_ is written before; pairs with replica_refusal().
  replicas_refusing_.store(true, std::memory_order_release);
  post([this, s] { refuse_waiting(s); });
}

void Node::refuse_waiting(const absl::Status& s) {
  // Notifier thread. What the commit covers is acknowledged first.
  complete_committed(commit());
  const uint64_t epoch = this->epoch();
  for (AppendIntake::Batch& b : intake_.take_appended()) {
    // release: pairs with the acquire in the intake; the stream's later
    // batches are refused from now on.
    if (b.order) b.order->broken.store(true, std::memory_order_release);
    const CommitResult where = b.stored(commit().offset, epoch);
    if (!b.producer.id.empty()) producers_.refused_in_log(b.producer, where, s);
    appends_refused_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
    b.done(s);
  }
  producers_.fail_waiting(s);
}

bool Node::compute_write_ready() const {
  if (role() != Role::kPrimary || stopping()) return false;
  if (log_->lost()) return false;  // DATA_LOSS: no appends (node_loss.cc)
  if (replicas_stalled_.load(std::memory_order_relaxed)) return false;  // relaxed: a gauge
  std::shared_ptr<Pipeline> pl = pipeline();
  return pl && !pl->stall().stalled;
}

NodeHealth Node::health() const {
  NodeHealth h;
  if (stopping() || log_->lost()) return h;  // lost records: see node_loss.cc
  h.append = compute_write_ready();
  if (role() == Role::kPrimary) {
    h.replay = true;
    h.replication = true;
    return h;
  }
  // A replica's replays are current while it streams from a primary: not
  // while it connects, catches up, or knows no primary (its primary gone).
  std::lock_guard rl(role_mu_);
  h.replay = follower_ != nullptr && follower_->state() == FollowerState::kStreaming &&
             !follower_->primary().empty();
  return h;
}

void Node::set_health_listener(std::function<void(const NodeHealth&)> fn) {
  std::lock_guard l(health_mu_);
  health_listener_ = std::move(fn);
  health_ = health();
  if (health_listener_) health_listener_(health_);
}

void Node::fill_storage_status(v1::NodeStatus* out, const absl::Status& replica_disk,
                               absl::Time replica_since) const {
  // A replica's follower describes it already; a primary's pipeline gives the error.
  std::string full = absl::IsResourceExhausted(replica_disk) ? std::string(replica_disk.message()) : "";
  absl::Time since = replica_since;
  if (std::shared_ptr<Pipeline> pl = pipeline()) {
    const StorageStall st = pl->stall();
    if (st.stalled && absl::IsResourceExhausted(st.error)) {
      full = describe(options_.data_dir, st.error);
      since = st.since;
    }
    if (pl->refusing()) out->set_append_refusal(std::string(storage_refusal(st.error).message()));
  }
  if (!full.empty()) {
    out->set_disk_full(full);
    out->set_disk_full_seconds(absl::ToDoubleSeconds(absl::Now() - since));
  }
  if (out->append_refusal().empty()) {
    if (absl::Status r = replica_refusal(); !r.ok()) out->set_append_refusal(std::string(r.message()));
  }
  out->set_appends_refused(appends_refused_.load(std::memory_order_relaxed));  // relaxed: a counter
  struct statvfs fs;
  if (statvfs(options_.data_dir.c_str(), &fs) == 0) {
    out->set_disk_free_bytes(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize);
  }
}

}  // namespace ringlog
