#include "node.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "follow_reactor.h"
#include "peers.h"
#include "ringlog/control.h"
#include "ringlog/redirect.h"
#include "ringlog/status_macros.h"
#include "spdlog/spdlog.h"

namespace ringlog {
namespace {

// The node id kept in <dir>/NODE_ID, made on first start.
absl::StatusOr<std::string> load_node_id(const std::string& dir) {
  const std::string path = dir + "/NODE_ID";
  {
    std::ifstream in(path);
    std::string id;
    if (in && std::getline(in, id) && !id.empty()) return id;
  }
  absl::BitGen gen;
  const std::string id = absl::StrFormat("node-%08x", absl::Uniform<uint32_t>(gen));
  std::ofstream out(path, std::ios::trunc);
  out << id << "\n";
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return id;
}

// <dir>/ROLE remembers the node's role across restarts: "primary", or
// "replica HOST:PORT". Flags give only the role of a first start.
struct SavedRole {
  Role role = Role::kPrimary;
  std::string primary;
};

std::optional<SavedRole> load_role(const std::string& dir) {
  std::ifstream in(dir + "/ROLE");
  std::string word;
  if (!(in >> word)) return std::nullopt;
  SavedRole r;
  if (word == "primary") return r;
  if (word != "replica") return std::nullopt;
  r.role = Role::kReplica;
  in >> r.primary;
  return r;
}


}  // namespace

void Node::save_role(const std::string& dir, Role role, const std::string& primary) {
  const std::string path = dir + "/ROLE";
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << (role == Role::kPrimary ? "primary" : "replica " + primary) << "\n";
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
}

absl::StatusOr<size_t> validate_records(ByteSpan records, size_t max_bytes) {
  if (records.empty()) return absl::InvalidArgumentError("empty batch: no records");
  if (records.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "batch of %d bytes is over the limit of %d bytes (--max_batch_bytes)", records.size(),
        max_bytes));
  }
  return check_records(records);
}

Node::Node(const NodeOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<Node>> Node::Open(const NodeOptions& options,
                                                 RecoveryReport* report) {
  std::unique_ptr<Node> n(new Node(options));
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log =
      SegmentedLog::Open(options.data_dir, options.pipeline.log, report);
  if (!log.ok()) return log.status();
  n->log_ = std::move(*log);
  if (options.node_id.empty()) {
    absl::StatusOr<std::string> id = load_node_id(options.data_dir);
    if (!id.ok()) return id.status();
    n->node_id_ = *id;
  } else {
    n->node_id_ = options.node_id;
  }
  absl::StatusOr<EpochHistory> epochs = EpochHistory::Load(options.data_dir);
  if (!epochs.ok()) return epochs.status();
  n->epochs_ = std::make_unique<EpochHistory>(std::move(*epochs));
  n->epoch_.store(n->epochs_->current(), std::memory_order_release);
  n->notifier_.on_advance([raw = n.get()](LogPosition c) { raw->complete_committed(c); });
  n->rebuild_producers();
  n->admin_thread_ = std::thread([raw = n.get()] { raw->admin_loop(); });
  n->ticker_ = std::thread([raw = n.get()] { raw->ticker_loop(); });
  std::lock_guard rl(n->role_mu_);
  Role role = options.role;
  std::string follow = options.primary;
  if (std::optional<SavedRole> saved = load_role(options.data_dir)) {
    if (saved->role != role || (role == Role::kReplica && saved->primary != follow)) {
      spdlog::warn("the data directory says this node is {}{} (a promotion or failover changed "
                   "it); that wins over the flags. Change roles with ringlogctl promote/follow.",
                   saved->role == Role::kPrimary ? "the primary" : "a replica of ",
                   saved->primary);
    }
    role = saved->role;
    follow = role == Role::kReplica ? saved->primary : "";
  }
  if (role == Role::kReplica && follow.empty()) {
    // Fenced before it knew whom to follow: look for the primary.
    for (const PeerStatus& ps : query_peers(options.peers, n->node_id_, absl::Milliseconds(500))) {
      if (ps.status.role() == v1::ROLE_PRIMARY) follow = ps.address;
    }
  }
  if (role == Role::kPrimary && !options.peers.empty()) {
    // Before taking a single append: is another node primary in a later
    // epoch (this node was failed over while it was down)? Then follow it.
    for (const PeerStatus& ps : query_peers(options.peers, n->node_id_, absl::Milliseconds(500))) {
      if (ps.status.role() == v1::ROLE_PRIMARY && ps.status.epoch() > n->epoch()) {
        spdlog::warn("{} is primary in epoch {}, later than ours ({}): starting as its replica",
                     ps.address, ps.status.epoch(), n->epoch());
        follow = ps.address;
      }
    }
  }
  if (role == Role::kPrimary && follow.empty()) {
    n->role_.store(Role::kPrimary, std::memory_order_release);
    if (absl::Status s = n->start_primary(); !s.ok()) return s;
  } else {
    n->role_.store(Role::kReplica, std::memory_order_release);
    n->start_follower(follow, /*force=*/false);
  }
  save_role(options.data_dir, n->role(), follow);
  return n;
}

void Node::start_follower(const std::string& primary, bool force) {
  FollowerOptions fo;
  fo.primary = primary;
  fo.allow_truncate_below_commit = force;
  fo.commit_floor = notifier_.commit().offset;
  fo.node_id = node_id_;
  fo.advertise = advertise();
  fo.fsync = options_.pipeline.fsync;
  fo.fsync_interval = options_.pipeline.fsync_interval;
  fo.on_commit = [this](LogPosition c, uint64_t) { notifier_.advance(c); };
  fo.on_applied = [this](ByteSpan records, LogPosition first) { learn_producers(records, first); };
  fo.on_epoch = [this](uint64_t e) {
    if (e > epoch_.load(std::memory_order_acquire)) epoch_.store(e, std::memory_order_release);
  };
  follower_ = std::make_unique<Follower>(log_.get(), epochs_.get(), &epochs_mu_, fo);
  follower_->start();
  fenced_.clear();
  run_admin([this] { prepare_rings(); });
}

void Node::prepare_rings() {
  // Admin thread. Allocating and touching the ring memory takes a while on a
  // machine whose memory is cold; a replica does it now, not at promotion.
  const size_t n = 1 + options_.embedded_rings;
  std::vector<SpscRingBuffer> rings;
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<SpscRingBuffer> r = SpscRingBuffer::Create(options_.pipeline.ring_bytes);
    if (!r.ok()) return;  // promotion will try again and report it
    rings.push_back(std::move(*r));
  }
  std::lock_guard rl(role_mu_);
  if (role() == Role::kReplica) spare_rings_ = std::move(rings);
}

Node::~Node() { (void)close(); }

absl::Status Node::start_primary() {
  PipelineOptions po = options_.pipeline;
  po.rings = 1 + options_.embedded_rings;
  po.on_append = [this](const AppendedChunk& c) { on_append(c); };
  po.on_durable = [this](LogPosition d) { on_durable(d); };
  // Everything recovered from disk is durable here. With min_replica_acks = 0
  // it is also committed; otherwise the commit offset waits for the
  // replicas' acks (the tail may never have reached them).
  durable_.store(log_->end());
  if (options_.min_replica_acks == 0) notifier_.advance(log_->end());
  std::vector<SpscRingBuffer> rings;
  if (spare_rings_.size() == po.rings) rings.swap(spare_rings_);
  spare_rings_.clear();
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Start(log_.get(), po, std::move(rings));
  if (!p.ok()) return p.status();
  pipeline_ = std::move(*p);
  {
    std::lock_guard l(intake_mu_);
    intake_open_ = !stopping();
    intake_done_ = false;
  }
  intake_thread_ = std::thread([this, pl = pipeline_] { intake_loop(pl.get()); });
  return absl::OkStatus();
}

absl::Status Node::stop_primary(const absl::Status& why) {
  // role_mu_ held. No new batches; the ones taken go through the ring.
  {
    std::lock_guard l(intake_mu_);
    intake_open_ = false;
  }
  intake_cv_.notify_all();
  if (intake_thread_.joinable()) intake_thread_.join();
  absl::Status s;
  if (pipeline_) {
    s = pipeline_->close();  // drains the ring and syncs
    const PipelineStats st = pipeline_->stats();
    std::lock_guard l(counters_mu_);
    past_.events_appended += st.events;
    past_.bytes_appended += st.bytes;
    for (size_t i = 0; i < kFsyncBucketCount; ++i) past_.fsync_buckets[i] += st.fsync_buckets[i];
    past_.fsync_seconds += st.fsync_seconds;
  }
  pipeline_.reset();  // its counters are in past_ now
  // What the last sync committed is acknowledged; the rest fails with `why`.
  complete_committed(commit());
  fail_all(why);
  {
    std::lock_guard l(commit_mu_);
    replicas_.clear();
  }
  wake_followers();  // they see the new role and end
  return s;
}

void Node::set_advertise(const std::string& address) {
  {
    std::lock_guard l(advertise_mu_);
    advertise_ = address;
  }
  std::lock_guard rl(role_mu_);
  if (follower_) follower_->set_advertise(address);
}

std::string Node::advertise() const {
  std::lock_guard l(advertise_mu_);
  return advertise_.empty() ? options_.listen : advertise_;
}

absl::Status Node::not_primary(absl::string_view action) const {
  std::lock_guard l(role_mu_);
  const std::string primary = follower_ ? follower_->primary() : "";
  const std::string named = !primary.empty() ? primary
                            : fenced_.empty() ? "(unknown)"
                                              : "(unknown: " + fenced_ + ")";
  return NotPrimary(primary, epoch(),
                    absl::StrCat("this node is a replica; ", action, " the primary at ", named));
}

SpscRingBuffer::Producer* Node::embedded_producer(size_t i) {
  std::shared_ptr<Pipeline> p = pipeline();
  if (!p || role() != Role::kPrimary || i == 0 || i > options_.embedded_rings) return nullptr;
  return &p->producer(i);
}

NodeCounters Node::counters() const {
  NodeCounters c;
  {
    std::lock_guard l(counters_mu_);
    c = past_;
  }
  if (std::shared_ptr<Pipeline> pl = pipeline()) {
    const PipelineStats st = pl->stats();
    c.events_appended += st.events;
    c.bytes_appended += st.bytes;
    for (size_t i = 0; i < kFsyncBucketCount; ++i) c.fsync_buckets[i] += st.fsync_buckets[i];
    c.fsync_seconds += st.fsync_seconds;
  }
  c.ring_full = ring_full_.load(std::memory_order_relaxed);
  return c;
}

std::vector<ReplicaLag> Node::replica_lag_seconds() const {
  std::vector<ReplicaLag> out;
  const uint64_t durable = durable_.load().offset;
  const absl::Time now = absl::Now();
  for (const ReplicaView& v : replicas()) {
    out.push_back({v.node_id, v.acked.offset >= durable ? 0.0
                                                        : absl::ToDoubleSeconds(now - v.caught_up_at)});
  }
  return out;
}

absl::Status Node::close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  stop_intake();
  durable_notifier_.release_waiters();
  {
    std::lock_guard l(admin_mu_);
    admin_stop_ = true;
  }
  admin_cv_.notify_all();
  if (admin_thread_.joinable()) admin_thread_.join();
  {
    std::lock_guard l(followers_mu_);
    ticker_stop_ = true;
  }
  ticker_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::lock_guard rl(role_mu_);
  if (follower_) follower_->stop();
  // Complete what the last sync commits, so that nothing committed is
  // reported as failed.
  return stop_primary(absl::UnavailableError("the node stopped before the append was committed"));
}

// ---- Role changes ----

void Node::run_admin(std::function<void()> fn) {
  {
    std::lock_guard l(admin_mu_);
    if (!admin_stop_) {
      admin_queue_.push_back(std::move(fn));
      admin_cv_.notify_one();
      return;
    }
  }
  fn();  // shutting down: run here
}

void Node::admin_loop() {
  std::unique_lock l(admin_mu_);
  for (;;) {
    admin_cv_.wait(l, [&] { return admin_stop_ || !admin_queue_.empty(); });
    if (admin_queue_.empty()) return;
    std::function<void()> fn = std::move(admin_queue_.front());
    admin_queue_.pop_front();
    l.unlock();
    fn();
    l.lock();
  }
}

void Node::fill_status(v1::NodeStatus* out) const {
  out->set_role(role() == Role::kPrimary ? v1::ROLE_PRIMARY : v1::ROLE_REPLICA);
  out->set_node_id(node_id_);
  out->set_epoch(epoch());
  out->set_listen(advertise());
  const LogPosition start = log_->start();
  const LogPosition end = log_->end();
  out->set_log_start_offset(start.offset);
  out->set_log_end_offset(end.offset);
  out->set_first_seq(start.seq);
  out->set_next_seq(end.seq);
  out->set_durable_offset(log_->durable_offset());
  out->set_commit_offset(commit().offset);
  uint64_t file_bytes = 0;
  const std::vector<SegmentInfo> segs = log_->segments();
  for (const SegmentInfo& s : segs) file_bytes += s.file_bytes;
  out->set_segment_count(segs.size());
  out->set_segment_bytes(file_bytes);
  if (std::shared_ptr<Pipeline> pl = pipeline()) {
    out->set_ring_used_bytes(pl->ring_used(0));
    out->set_ring_capacity_bytes(options_.pipeline.ring_bytes);
    const PipelineStats st = pl->stats();
    out->set_events_appended(st.events);
    out->set_bytes_appended(st.bytes);
    if (absl::Status e = pl->error(); !e.ok()) out->set_storage_error(std::string(e.message()));
  }
  out->set_active_append_streams(append_streams.load(std::memory_order_relaxed));
  out->set_active_replay_streams(replay_streams.load(std::memory_order_relaxed));
  out->set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - started_));
  out->set_min_replica_acks(options_.min_replica_acks);
  if (role() == Role::kPrimary) {
    const LogPosition end = log_->end();
    const absl::Time now = absl::Now();
    for (const ReplicaView& v : replicas()) {
      v1::ReplicaInfo* r = out->add_replicas();
      r->set_node_id(v.node_id);
      r->set_peer(v.advertise.empty() ? v.peer : v.advertise);
      r->set_acked_offset(v.acked.offset);
      r->set_lag_bytes(end.offset - std::min(end.offset, v.acked.offset));
      r->set_lag_events(end.seq - std::min(end.seq, v.acked.seq));
      r->set_seconds_since_ack(absl::ToDoubleSeconds(now - v.last_ack));
      r->set_connected(v.connected);
    }
  } else if (std::lock_guard rl(role_mu_); follower_) {
    out->set_primary(follower_->primary());
    out->set_primary_known(!out->primary().empty());
    out->set_applied_offset(follower_->applied_offset());
    switch (follower_->state()) {
      case FollowerState::kConnecting:
      case FollowerState::kStopped:
        out->set_replica_state(v1::REPLICA_STATE_CONNECTING);
        break;
      case FollowerState::kCatchingUp:
        out->set_replica_state(v1::REPLICA_STATE_CATCHING_UP);
        break;
      case FollowerState::kStreaming:
        out->set_replica_state(v1::REPLICA_STATE_STREAMING);
        break;
    }
    if (const std::string e = follower_->last_error(); !e.empty() &&
        follower_->state() == FollowerState::kConnecting) {
      out->set_replication_error(e);
    }
  } else if (role() == Role::kReplica) {
    out->set_no_primary_reason(fenced_);
  }
}

}  // namespace ringlog
