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

void save_role(const std::string& dir, Role role, const std::string& primary) {
  const std::string path = dir + "/ROLE";
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << (role == Role::kPrimary ? "primary" : "replica " + primary) << "\n";
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
}

}  // namespace

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
  fo.advertise = options_.listen;
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
  // Wake the Follow streams: they see the new role and end.
  std::vector<uint64_t> ids;
  {
    std::lock_guard l(followers_mu_);
    for (const auto& [id, f] : followers_) ids.push_back(id);
  }
  for (uint64_t id : ids) resume_follower(id);
  return s;
}

std::string Node::primary_hint() const {
  std::lock_guard l(role_mu_);
  if (follower_) return follower_->primary();
  return fenced_.empty() ? "(unknown)" : "(unknown: " + fenced_ + ")";
}

SpscRingBuffer::Producer* Node::embedded_producer(size_t i) {
  std::shared_ptr<Pipeline> p = pipeline();
  if (!p || role() != Role::kPrimary || i == 0 || i > options_.embedded_rings) return nullptr;
  return &p->producer(i);
}

void Node::submit(std::string records, size_t count, ProducerRef producer, AppendDone done) {
  if (!producer.id.empty() && role() == Role::kPrimary) {
    std::lock_guard l(producers_mu_);
    ProducerState& st = producers_[producer.id];
    if (producer.seq <= st.last_seq) {
      // Sent again (after a failover or a reconnect): answer with the first
      // one's result once it is committed; never append it twice. For an
      // older batch than the producer's latest, the position is not kept: the
      // answer carries an empty range at the latest one's end.
      const bool latest = producer.seq == st.last_seq;
      AppendDone dup = [done = std::move(done), latest](absl::StatusOr<CommitResult> r) {
        if (r.ok()) {
          r->duplicate = true;
          if (!latest) {
            r->first = r->end;
            r->count = 0;
          }
        }
        done(std::move(r));
      };
      if (st.known && st.end.offset <= commit().offset) {
        CommitResult r{st.first, st.end, st.count, commit().offset, epoch(), true};
        notifier_.post([dup = std::move(dup), r] { dup(r); });
      } else {
        st.waiting.push_back(std::move(dup));
      }
      return;
    }
    st.last_seq = producer.seq;
    st.known = false;
    append_producer_batch_mark(
        &records, ProducerBatchMark{producer.id, producer.seq, static_cast<uint32_t>(count)},
        header_at(reinterpret_cast<const std::byte*>(records.data()))->timestamp);
    ++count;
  }
  Pending p;
  p.records_bytes = records.size();
  p.records = std::move(records);
  p.count = count;
  p.producer = std::move(producer);
  p.done = std::move(done);
  absl::Status refuse;
  {
    std::lock_guard l(intake_mu_);
    if (role() != Role::kPrimary) {
      refuse = absl::FailedPreconditionError(
          absl::StrCat("this node is a replica; append to the primary at ", primary_hint()));
    } else if (!intake_open_) {
      refuse = absl::UnavailableError("the node is shutting down");
    } else {
      intake_.push_back(std::move(p));
    }
  }
  if (!refuse.ok()) {
    AppendDone d = std::move(p.done);
    notifier_.post([d = std::move(d), refuse] { d(refuse); });
    return;
  }
  intake_cv_.notify_one();
}

void Node::intake_loop(Pipeline* pipeline) {
  SpscRingBuffer::Producer& producer = pipeline->producer(0);
  for (;;) {
    Pending p;
    {
      std::unique_lock l(intake_mu_);
      intake_cv_.wait(l, [&] { return !intake_.empty() || !intake_open_; });
      if (intake_.empty()) {
        intake_done_ = true;
        intake_cv_.notify_all();
        return;
      }
      p = std::move(intake_.front());
      intake_.pop_front();
    }
    std::string records = std::move(p.records);
    const ByteSpan span(reinterpret_cast<const std::byte*>(records.data()), records.size());
    // Queue it for completion before it can reach the log: the storage thread
    // may append it as soon as it is in the ring.
    {
      std::lock_guard l(acks_mu_);
      in_ring_.push_back(std::move(p));
    }
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
      Pending back;
      {
        std::lock_guard l(acks_mu_);
        back = std::move(in_ring_.back());
        in_ring_.pop_back();
      }
      notifier_.post([this, back = std::move(back), failed]() mutable {
        if (!back.producer.id.empty()) producer_completed(back, failed);
        back.done(failed);
      });
      continue;
    }
    pipeline->wake();
  }
}

void Node::on_append(const AppendedChunk& c) {
  // Storage thread: a chunk of ring 0 is in the log. It holds whole batches,
  // in the order the intake wrote them.
  if (c.ring != 0) return;
  std::lock_guard l(acks_mu_);
  LogPosition at = c.first;
  while (at.offset < c.end.offset && !in_ring_.empty()) {
    Pending& p = in_ring_.front();
    p.first = at;
    at = LogPosition{at.offset + p.records_bytes, at.seq + p.count};
    p.end = at;
    appended_.push_back(std::move(p));
    in_ring_.pop_front();
  }
}

void Node::on_durable(LogPosition durable) {
  // Storage thread.
  durable_.store(durable);
  durable_notifier_.advance(durable);
  update_commit();
}

void Node::update_commit() {
  // commit = min(durable here, the min_replica_acks-th highest replica ack).
  std::lock_guard l(commit_mu_);
  LogPosition c = durable_.load();
  if (const uint32_t n = options_.min_replica_acks; n != 0) {
    std::vector<LogPosition> acked;
    for (const auto& [id, r] : replicas_) acked.push_back(r.acked);
    if (acked.size() < n) return;
    std::sort(acked.begin(), acked.end(),
              [](const LogPosition& a, const LogPosition& b) { return a.offset > b.offset; });
    if (acked[n - 1].offset < c.offset) c = acked[n - 1];
  }
  if (c.offset > notifier_.commit().offset) notifier_.advance(c);
}

absl::StatusOr<uint64_t> Node::divergence_point(const std::vector<EpochEntry>& r,
                                                uint64_t replica_end) const {
  std::lock_guard l(epochs_mu_);
  const std::vector<EpochEntry>& p = epochs_->entries();
  size_t k = 0;
  while (k < r.size() && k < p.size() && r[k] == p[k]) ++k;
  if (k == 0) {
    if (replica_end == 0) return 0;
    return absl::FailedPreconditionError(
        "the replica's epoch history shares no epoch with this primary's: it holds another log");
  }
  // Both logs hold the same records up to the end of the last shared epoch,
  // as each of them knows it.
  const uint64_t primary_end = k < p.size() ? p[k].start_offset : log_->end().offset;
  const uint64_t replica_epoch_end = k < r.size() ? r[k].start_offset : replica_end;
  return std::min({replica_end, primary_end, replica_epoch_end});
}

std::vector<EpochEntry> Node::epoch_entries() const {
  std::lock_guard l(epochs_mu_);
  return epochs_->entries();
}

uint64_t Node::register_follower(FollowReactor* r, const std::string& replica_id,
                                 const std::string& peer, const std::string& advertise,
                                 LogPosition from) {
  {
    std::lock_guard l(commit_mu_);
    ReplicaView& v = replicas_[replica_id];
    v.node_id = replica_id;
    v.peer = peer;
    v.advertise = advertise;
    v.connected = true;
    // A replica that truncated has less than it acknowledged before.
    if (from.offset < v.acked.offset || v.last_ack == absl::Time()) v.acked = from;
    v.last_ack = absl::Now();
    if (v.caught_up_at == absl::Time()) v.caught_up_at = v.last_ack;
  }
  std::lock_guard l(followers_mu_);
  const uint64_t id = next_follower_id_++;
  followers_[id] = {r, replica_id};
  return id;
}

void Node::unregister_follower(uint64_t id) {
  std::string replica_id;
  {
    std::lock_guard l(followers_mu_);
    auto it = followers_.find(id);
    if (it == followers_.end()) return;
    replica_id = it->second.second;
    followers_.erase(it);
    // Another stream of the same replica may still be live (it reconnected).
    for (const auto& [other, f] : followers_) {
      if (f.second == replica_id) return;
    }
  }
  std::lock_guard l(commit_mu_);
  replicas_[replica_id].connected = false;
}

void Node::resume_follower(uint64_t id) {
  std::lock_guard l(followers_mu_);
  auto it = followers_.find(id);
  if (it != followers_.end()) it->second.first->resume();
}

void Node::replica_ack(const std::string& replica_id, LogPosition durable) {
  {
    std::lock_guard l(commit_mu_);
    ReplicaView& v = replicas_[replica_id];
    if (durable.offset >= v.acked.offset) v.acked = durable;
    v.last_ack = absl::Now();
    if (durable.offset >= durable_.load().offset) v.caught_up_at = v.last_ack;
    v.connected = true;
  }
  update_commit();
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

std::vector<ReplicaView> Node::replicas() const {
  std::lock_guard l(commit_mu_);
  std::vector<ReplicaView> out;
  for (const auto& [id, v] : replicas_) out.push_back(v);
  return out;
}

void Node::ticker_loop() {
  constexpr absl::Duration kHeartbeat = absl::Milliseconds(500);
  std::unique_lock l(followers_mu_);
  while (!ticker_stop_) {
    ticker_cv_.wait_for(l, std::chrono::milliseconds(100));
    const absl::Time now = absl::Now();
    for (auto& [id, f] : followers_) f.first->tick(now, kHeartbeat);
    l.unlock();
    peer_watch(now);
    l.lock();
  }
}

void Node::complete_committed(LogPosition commit) {
  // Notifier thread.
  std::deque<Pending> done;
  {
    std::lock_guard l(acks_mu_);
    while (!appended_.empty() && appended_.front().end.offset <= commit.offset) {
      done.push_back(std::move(appended_.front()));
      appended_.pop_front();
    }
  }
  const uint64_t epoch = this->epoch();
  for (Pending& p : done) {
    const uint64_t data = p.producer.id.empty() ? p.count : p.count - 1;
    const CommitResult r{p.first, p.end, data, commit.offset, epoch, false};
    if (!p.producer.id.empty()) producer_completed(p, r);
    p.done(r);
  }
}

void Node::producer_completed(const Pending& p, const absl::StatusOr<CommitResult>& r) {
  std::vector<AppendDone> waiting;
  {
    std::lock_guard l(producers_mu_);
    auto it = producers_.find(p.producer.id);
    if (it == producers_.end() || it->second.last_seq != p.producer.seq) return;
    ProducerState& st = it->second;
    waiting.swap(st.waiting);
    if (r.ok()) {
      st.known = true;
      st.first = r->first;
      st.end = r->end;
      st.count = r->count;
    } else {
      // Not appended here: a retry of this seq must be taken, not dropped.
      st.last_seq = p.producer.seq - 1;
    }
  }
  for (AppendDone& d : waiting) d(r);
}

void Node::learn_producers(ByteSpan records, LogPosition first) {
  LogPosition at = first;
  for (size_t pos = 0; pos + kHeaderSize <= records.size();) {
    const EventHeader* h = header_at(records.data() + pos);
    const size_t size = h->padded_size();
    at = LogPosition{at.offset + size, at.seq + 1};
    if (is_control(*h)) {
      const EventView ev{h, ByteSpan{records.data() + pos + kHeaderSize, h->payload_len}};
      if (std::optional<ProducerBatchMark> m = parse_producer_batch_mark(ev)) {
        std::lock_guard l(producers_mu_);
        ProducerState& st = producers_[m->producer_id];
        if (m->producer_seq >= st.last_seq) {
          st.last_seq = m->producer_seq;
          st.known = true;
          st.end = at;
          st.count = m->events;
          // The batch's data records are the `events` records before the mark.
          st.first = LogPosition{0, at.seq - 1 - m->events};
        }
      }
    }
    pos += size;
  }
}

void Node::rebuild_producers() {
  // Producers that fail over re-send within seconds: the last segments hold
  // every mark that matters.
  constexpr uint64_t kWindow = uint64_t{512} << 20;
  const LogPosition end = log_->end();
  LogPosition from = log_->start();
  for (const SegmentInfo& si : log_->segments()) {
    if (si.base_offset + kWindow >= end.offset) {
      from = LogPosition{si.base_offset, si.base_seq};
      break;
    }
  }
  LogReader reader(*log_, from);
  while (std::optional<LogSlice> s = reader.next_slice(end.offset, size_t{4} << 20)) {
    learn_producers(s->records.bytes, s->position);
  }
}

void Node::fail_all(const absl::Status& s) {
  std::deque<Pending> failed;
  {
    std::lock_guard l(intake_mu_);
    for (Pending& p : intake_) failed.push_back(std::move(p));
    intake_.clear();
  }
  {
    std::lock_guard l(acks_mu_);
    for (Pending& p : in_ring_) failed.push_back(std::move(p));
    for (Pending& p : appended_) failed.push_back(std::move(p));
    in_ring_.clear();
    appended_.clear();
  }
  for (Pending& p : failed) {
    if (!p.producer.id.empty()) producer_completed(p, s);
    p.done(s);
  }
}

void Node::stop_intake() {
  {
    std::lock_guard l(intake_mu_);
    intake_open_ = false;
  }
  intake_cv_.notify_all();
  stopping_.store(true, std::memory_order_release);
  notifier_.release_waiters();
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

absl::StatusOr<Node::Promoted> Node::promote(bool force, std::vector<std::string> peers) {
  const absl::Time t0 = absl::Now();
  std::lock_guard rl(role_mu_);
  if (stopping()) return absl::UnavailableError("the node is shutting down");
  if (role() == Role::kPrimary && !force) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is already the primary (epoch %d); use --force to start a new epoch anyway", node_id_,
        epoch()));
  }
  const LogPosition end = log_->end();
  uint64_t top_epoch = epoch();
  for (const std::string& p : options_.peers) peers.push_back(p);
  for (const PeerStatus& ps : query_peers(peers, node_id_, absl::Milliseconds(60))) {
    top_epoch = std::max(top_epoch, ps.status.epoch());
    if (force) continue;
    if (ps.status.role() == v1::ROLE_PRIMARY && ps.status.epoch() > epoch()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s (%s) is the primary in epoch %d, later than this node's %d; follow it instead, "
          "or use --force",
          ps.address, ps.status.node_id(), ps.status.epoch(), epoch()));
    }
    if (ps.status.role() == v1::ROLE_REPLICA && ps.status.log_end_offset() > end.offset) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "replica %s (%s) has a longer log (ends at offset %d) than this node (%d): promote it "
          "instead, or use --force",
          ps.address, ps.status.node_id(), ps.status.log_end_offset(), end.offset));
    }
  }
  if (follower_) {
    follower_->stop();
    top_epoch = std::max(top_epoch, follower_->primary_epoch());
    follower_.reset();
  }
  if (role() == Role::kPrimary) {
    RINGLOG_RETURN_IF_ERROR(
        stop_primary(absl::AbortedError("the primary started a new epoch; append again")));
  }
  const uint64_t new_epoch = top_epoch + 1;
  const uint64_t start = log_->end().offset;
  {
    std::lock_guard el(epochs_mu_);
    RINGLOG_RETURN_IF_ERROR(epochs_->truncate_after(start));
    RINGLOG_RETURN_IF_ERROR(epochs_->append(new_epoch, start));
  }
  epoch_.store(new_epoch, std::memory_order_release);
  role_.store(Role::kPrimary, std::memory_order_release);
  fenced_.clear();
  RINGLOG_RETURN_IF_ERROR(start_primary());
  save_role(options_.data_dir, Role::kPrimary, "");
  spdlog::warn("promoted to primary: epoch {} from offset {} in {}", new_epoch, start,
               absl::FormatDuration(absl::Now() - t0));
  return Promoted{new_epoch, start};
}

absl::StatusOr<uint64_t> Node::follow(const std::string& primary, bool force) {
  std::lock_guard rl(role_mu_);
  if (stopping()) return absl::UnavailableError("the node is shutting down");
  if (primary == options_.listen) {
    return absl::InvalidArgumentError("a node cannot follow itself");
  }
  if (role() == Role::kPrimary) {
    spdlog::warn("stepping down: following {} from now on", primary);
    RINGLOG_RETURN_IF_ERROR(stop_primary(absl::FailedPreconditionError(absl::StrFormat(
        "this node stepped down before the append was committed; append to the primary at %s",
        primary))));
    role_.store(Role::kReplica, std::memory_order_release);
  }
  if (follower_) {
    follower_->set_primary(primary);
    follower_->set_allow_truncate_below_commit(force);
  } else {
    start_follower(primary, force);
  }
  save_role(options_.data_dir, Role::kReplica, primary);
  return epoch();
}

void Node::step_down(uint64_t later_epoch, const std::string& why) {
  run_admin([this, later_epoch, why] {
    std::lock_guard rl(role_mu_);
    if (role() != Role::kPrimary || later_epoch <= epoch()) return;
    spdlog::error("stepping down: {} (epoch {} is later than ours, {}); appends are refused "
                  "until this node is told whom to follow",
                  why, later_epoch, epoch());
    const absl::Status s = stop_primary(absl::FailedPreconditionError(absl::StrFormat(
        "this node was fenced by epoch %d; append to the current primary", later_epoch)));
    if (!s.ok()) spdlog::error("stepping down: {}", s.ToString());
    role_.store(Role::kReplica, std::memory_order_release);
    fenced_ = absl::StrFormat("fenced by epoch %d: %s", later_epoch, why);
    save_role(options_.data_dir, Role::kReplica, "");
  });
}

void Node::peer_watch(absl::Time now) {
  // Ticker thread: a primary looks for a primary of a later epoch among its
  // peers, and follows it if there is one (the old primary after a failover).
  if (options_.peers.empty() || role() != Role::kPrimary || now - last_peer_check_ < absl::Seconds(1)) {
    return;
  }
  last_peer_check_ = now;
  for (const PeerStatus& ps : query_peers(options_.peers, node_id_, absl::Milliseconds(200))) {
    if (ps.status.role() == v1::ROLE_PRIMARY && ps.status.epoch() > epoch()) {
      const std::string addr = ps.address;
      spdlog::warn("{} is primary in epoch {}, later than ours ({}): following it", addr,
                   ps.status.epoch(), epoch());
      run_admin([this, addr] {
        if (absl::StatusOr<uint64_t> r = follow(addr, false); !r.ok()) {
          spdlog::error("cannot follow {}: {}", addr, r.status().ToString());
        }
      });
      return;
    }
  }
}

void Node::fill_status(v1::NodeStatus* out) const {
  out->set_role(role() == Role::kPrimary ? v1::ROLE_PRIMARY : v1::ROLE_REPLICA);
  out->set_node_id(node_id_);
  out->set_epoch(epoch());
  out->set_listen(options_.listen);
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
    out->set_primary(fenced_.empty() ? "" : "(none: " + fenced_ + ")");
  }
}

}  // namespace ringlog
