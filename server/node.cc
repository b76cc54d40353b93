#include "node.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "peers.h"
#include "ringlog/control.h"
#include "ringlog/redirect.h"
#include "spdlog/spdlog.h"

namespace ringlog {
namespace {

// Retention at start too: a node restarted with --retention_bytes on a full
// disk frees space before it needs any.
void apply_retention_at_open(SegmentedLog& log) {
  const LogOptions& o = log.options();
  if (o.read_only || (o.retention_bytes == 0 && o.retention_age == absl::InfiniteDuration())) return;
  absl::StatusOr<size_t> n = log.apply_retention(absl::Now());
  if (!n.ok()) {
    spdlog::warn("retention at start: {}", n.status().ToString());
  } else if (*n != 0) {
    spdlog::info("retention at start: removed the {} oldest segments", *n);
  }
}

}  // namespace

Node::Node(const NodeOptions& options)
    : options_(options),
      producers_(options.producers),
      commits_(options.min_replica_acks),
      intake_([this](std::function<void()> fn) { post(std::move(fn)); },
              [this](AppendIntake::Batch b, absl::Status s) {
                // relaxed: a counter.
                if (absl::IsResourceExhausted(s)) appends_refused_.fetch_add(1, std::memory_order_relaxed);
                if (!b.producer.id.empty()) producers_.completed(b.producer, s);
                b.done(std::move(s));
              }) {}

absl::StatusOr<std::unique_ptr<Node>> Node::Open(const NodeOptions& options,
                                                 RecoveryReport* report) {
  std::unique_ptr<Node> n(new Node(options));
  RecoveryReport local;
  if (report == nullptr) report = &local;
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log =
      SegmentedLog::Open(options.data_dir, options.pipeline.log, report);
  if (!log.ok()) return log.status();
  n->log_ = std::move(*log);
  apply_retention_at_open(*n->log_);
  if (options.node_id.empty()) {
    absl::StatusOr<std::string> id = load_node_id(options.data_dir);
    if (!id.ok()) return id.status();
    n->node_id_ = *id;
  } else {
    if (absl::Status s = check_node_id(options.node_id); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--node_id: ", s.message()));
    }
    n->node_id_ = options.node_id;
  }
  absl::StatusOr<EpochHistory> epochs = EpochHistory::Load(options.data_dir);
  if (!epochs.ok()) return epochs.status();
  n->epochs_ = std::make_unique<EpochHistory>(std::move(*epochs));
  n->epoch_.store(n->epochs_->current(), std::memory_order_release);
  if (absl::Status s = n->open_with_loss(*report); !s.ok()) return s;
  n->restore_commit();
  n->notifier().on_advance([raw = n.get()](LogPosition c) { raw->complete_committed(c); });
  n->producers_.rebuild(*n->log_);
  n->admin_ = std::make_unique<AdminQueue>();
  n->streams_ = std::make_unique<ReplicationStreams>([raw = n.get()](absl::Time now) {
    raw->peer_watch(now);
    raw->storage_watch(now);
  });
  if (absl::Status s = n->start_role(); !s.ok()) return s;
  return n;
}

absl::Status Node::start_role() {
  std::lock_guard rl(role_mu_);
  Role role = options_.role;
  std::string follow = options_.primary;
  absl::StatusOr<std::optional<SavedRole>> loaded = load_role(options_.data_dir);
  if (!loaded.ok()) return loaded.status();
  if (const std::optional<SavedRole>& saved = *loaded) {
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
    for (const PeerStatus& ps : query_peers(options_.peers, node_id_, absl::Milliseconds(500))) {
      if (ps.status.role() == v1::ROLE_PRIMARY) follow = ps.address;
    }
  }
  // Before taking a single append: is another node primary in a later
  // epoch (this node was failed over while it was down)? Then follow it.
  // The node --primary names counts as a peer here: flags that say "replica
  // of X" beside a ROLE that says primary must not leave two primaries.
  std::vector<std::string> ask = options_.peers;
  if (options_.role == Role::kReplica && !options_.primary.empty()) ask.push_back(options_.primary);
  if (role == Role::kPrimary && !ask.empty()) {
    for (const PeerStatus& ps : query_peers(ask, node_id_, absl::Milliseconds(500))) {
      if (ps.status.role() == v1::ROLE_PRIMARY && ps.status.epoch() > epoch()) {
        spdlog::warn("{} is primary in epoch {}, later than ours ({}): starting as its replica",
                     ps.address, ps.status.epoch(), epoch());
        follow = ps.address;
      }
    }
  }
  if (role == Role::kPrimary && follow.empty()) {
    role_.store(Role::kPrimary, std::memory_order_release);
    if (absl::Status s = start_primary(); !s.ok()) return s;
  } else {
    role_.store(Role::kReplica, std::memory_order_release);
    start_follower(follow, /*force=*/false);
  }
  save_role(options_.data_dir, this->role(), follow);
  return absl::OkStatus();
}

void Node::start_follower(const std::string& primary, bool force) {
  FollowerOptions fo;
  fo.primary = primary;
  fo.allow_truncate_below_commit = force;
  fo.commit_floor = commit().offset;
  fo.node_id = node_id_;
  fo.advertise = advertise();
  fo.fsync = options_.pipeline.fsync;
  fo.fsync_interval = options_.pipeline.fsync_interval;
  fo.on_commit = [this](LogPosition c, uint64_t) { commits_.advance_commit(c); };
  fo.on_applied = [this](ByteSpan records, LogPosition first) { producers_.learn(records, first); };
  fo.on_truncated = [this](uint64_t offset) { producers_.truncated(offset); };
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
  // role_mu_ held.
  PipelineOptions po = options_.pipeline;
  po.rings = 1 + options_.embedded_rings;
  po.on_append = [this](const AppendedChunk& c) { intake_.on_append(c); };
  po.on_durable = [this](LogPosition d) { commits_.on_durable(d); };
  // A full disk: remote appends are refused after the timeout (dropped from
  // ring 0 unstored); embedded producers' rings wait for space.
  po.refuse_after = options_.disk_full_timeout;
  po.on_refusing = [this] { intake_.wake(); };
  po.on_refused = [this](const RefusedChunk& c) {
    intake_.on_refused(c.ring_position, storage_refusal(c.error));
  };
  // Everything recovered from disk is durable here.
  commits_.start_term(log_->end());
  producers_.start_term();
  std::vector<SpscRingBuffer> rings;
  if (spare_rings_.size() == po.rings) rings.swap(spare_rings_);
  spare_rings_.clear();
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Start(log_.get(), po, std::move(rings));
  if (!p.ok()) return p.status();
  std::shared_ptr<Pipeline> pl = std::move(*p);
  {
    std::lock_guard l(pipeline_mu_);
    pipeline_ = pl;
  }
  AppendIntake::Hooks hooks;
  hooks.committed = [this] { return commit().offset; };
  hooks.complete = [this] { complete_committed(commit()); };
  hooks.refusal = [this] { return replica_refusal(); };
  hooks.storage_refusal = [this](const absl::Status& e) { return storage_refusal(e); };
  intake_.start(pl.get(), !stopping(), std::move(hooks));
  return absl::OkStatus();
}

absl::Status Node::stop_primary(const absl::Status& why) {
  // role_mu_ held. No new batches; the ones taken go through the ring.
  intake_.stop();
  std::shared_ptr<Pipeline> pl;
  {
    std::lock_guard l(pipeline_mu_);
    pl.swap(pipeline_);
  }
  absl::Status s;
  if (pl) {
    s = pl->close();  // drains the ring and syncs
    const PipelineStats st = pl->stats();
    std::lock_guard l(counters_mu_);
    past_.events_appended += st.events;
    past_.bytes_appended += st.bytes;
    for (size_t i = 0; i < kFsyncBucketCount; ++i) past_.fsync_buckets[i] += st.fsync_buckets[i];
    past_.fsync_seconds += st.fsync_seconds;
  }
  // What the last sync committed is acknowledged; the rest fails with `why`.
  complete_committed(commit());
  fail_all(why);
  commits_.forget_replicas();
  streams_->resume_all();  // they see the new role and end
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
  if (!data_loss().ok()) return nullptr;
  return &p->producer(i);
}

absl::Status Node::close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  stop_intake();
  durable_notifier().release_waiters();
  if (admin_) admin_->stop();
  if (streams_) streams_->stop();
  std::lock_guard rl(role_mu_);
  if (follower_) follower_->stop();
  // Complete what the last sync commits, so that nothing committed is
  // reported as failed.
  if (!streams_) return absl::OkStatus();  // Open failed before any role started
  return stop_primary(absl::UnavailableError("the node stopped before the append was committed"));
}

}  // namespace ringlog
