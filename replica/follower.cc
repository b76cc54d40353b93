#include "follower.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "ringlog/grpc_status.h"
#include "ringlog/status_macros.h"
#include "spdlog/spdlog.h"

namespace ringlog {
namespace {

std::shared_ptr<grpc::Channel> channel_to(const std::string& primary) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
  // Notice a primary that vanished without closing the connection.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(primary, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

const char* follower_state_name(FollowerState s) {
  switch (s) {
    case FollowerState::kConnecting: return "connecting";
    case FollowerState::kCatchingUp: return "catching up";
    case FollowerState::kStreaming: return "streaming";
    case FollowerState::kStopped: return "stopped";
  }
  return "?";
}

Follower::Follower(SegmentedLog* log, EpochHistory* epochs, std::mutex* epochs_mu,
                   FollowerOptions options)
    : log_(log),
      epochs_(epochs),
      epochs_mu_(epochs_mu),
      options_(std::move(options)),
      primary_(options_.primary),
      sync_schedule_(options_.fsync, options_.fsync_interval) {
  allow_truncate_below_commit_.store(options_.allow_truncate_below_commit);
  commit_floor_.store(options_.commit_floor);
}

void Follower::set_advertise(const std::string& address) {
  std::lock_guard l(mu_);
  options_.advertise = address;
}

void Follower::set_allow_truncate_below_commit(bool allow) {
  allow_truncate_below_commit_.store(allow);
}

Follower::~Follower() { stop(); }

void Follower::start() {
  {
    std::lock_guard l(mu_);
    stop_ = false;
  }
  state_.store(FollowerState::kConnecting, std::memory_order_release);
  thread_ = std::thread([this] { run(); });
}

void Follower::stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  state_.store(FollowerState::kStopped, std::memory_order_release);
}

std::string Follower::primary() const {
  std::lock_guard l(mu_);
  return primary_;
}

void Follower::set_primary(const std::string& primary) {
  std::lock_guard l(mu_);
  primary_ = primary;
  pinned_ = true;
  if (ctx_ != nullptr) ctx_->TryCancel();  // reconnect to the new one now
}

std::string Follower::last_error() const {
  std::lock_guard l(mu_);
  return last_error_;
}

void Follower::set_error(const absl::Status& s) {
  std::lock_guard l(mu_);
  last_error_ = s.ToString();
}

void Follower::run() {
  absl::Duration backoff = options_.min_backoff;
  for (;;) {
    state_.store(FollowerState::kConnecting, std::memory_order_release);
    const uint64_t before = log_->end().offset;
    const absl::Status s = follow_once();
    {
      std::unique_lock l(mu_);
      if (stop_) break;
      last_error_ = s.ToString();
    }
    // A node that is not the primary says whom it follows: go there, unless
    // an operator chose this primary (it is about to be promoted, and the
    // node it names may be the old primary).
    bool pinned;
    {
      std::lock_guard l(mu_);
      pinned = pinned_;
    }
    if (absl::IsFailedPrecondition(s) && !pinned) {
      const std::string key = "follow the primary at ";
      const std::string msg(s.message());
      if (const size_t at = msg.find(key); at != std::string::npos) {
        std::string hint = msg.substr(at + key.size());
        hint = hint.substr(0, hint.find_first_of(" ;,)"));
        if (!hint.empty() && hint[0] != '(' && hint != primary()) {
          spdlog::info("{} is not the primary; following {} instead", primary(), hint);
          std::lock_guard l(mu_);
          primary_ = hint;  // after the backoff below, so two nodes cannot bounce us fast
        }
      }
    }
    // Back off less after a stream that made progress.
    if (log_->end().offset != before) backoff = options_.min_backoff;
    spdlog::warn("replication from {} ended: {}; reconnecting in {}", primary(), s.ToString(),
                 absl::FormatDuration(backoff));
    std::unique_lock l(mu_);
    cv_.wait_for(l, absl::ToChronoNanoseconds(backoff), [&] { return stop_; });
    if (stop_) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  (void)make_durable(true);
}

absl::Status Follower::follow_once() {
  const std::string primary = this->primary();
  std::unique_ptr<v1::Replication::Stub> stub = v1::Replication::NewStub(channel_to(primary));
  grpc::ClientContext ctx;
  {
    std::lock_guard l(mu_);
    if (stop_) return absl::CancelledError("stopped");
    ctx_ = &ctx;
  }
  struct Unregister {
    Follower* f;
    ~Unregister() {
      std::lock_guard l(f->mu_);
      f->ctx_ = nullptr;
    }
  } unregister{this};

  auto stream = stub->Follow(&ctx);
  v1::FollowRequest hello;
  {
    v1::FollowHello* h = hello.mutable_hello();
    const LogPosition end = log_->end();
    h->set_node_id(options_.node_id);
    h->set_log_end_offset(end.offset);
    h->set_log_end_seq(end.seq);
    h->set_window_bytes(options_.window_bytes);
    {
      std::lock_guard l(mu_);
      h->set_advertise(options_.advertise);
    }
    std::lock_guard el(*epochs_mu_);
    for (const EpochEntry& e : epochs_->entries()) {
      v1::EpochEntry* pe = h->add_epochs();
      pe->set_epoch(e.epoch);
      pe->set_start_offset(e.start_offset);
    }
  }
  v1::FollowResponse resp;
  if (!stream->Write(hello) || !stream->Read(&resp)) {
    const absl::Status s = from_grpc(stream->Finish());
    return s.ok() ? absl::UnavailableError("the primary closed the stream") : s;
  }
  auto fail = [&](absl::Status s) {
    ctx.TryCancel();
    (void)stream->Finish();
    return s;
  };
  if (!resp.has_directive()) {
    return fail(absl::InternalError("the primary's first message is not a directive"));
  }
  uint64_t own_epoch;
  {
    std::lock_guard el(*epochs_mu_);
    own_epoch = epochs_->current();
  }
  if (resp.epoch() < own_epoch) {
    return fail(absl::FailedPreconditionError(absl::StrFormat(
        "%s is in epoch %d, behind this node's epoch %d: not following it", primary, resp.epoch(),
        own_epoch)));
  }
  const v1::Directive& d = resp.directive();
  const LogPosition end = log_->end();
  if (d.truncate_to() < end.offset) {
    const uint64_t floor = std::max(commit_floor_.load(), commit_.load().offset);
    if (d.truncate_to() < floor) {
      if (!allow_truncate_below_commit_.load()) {
        return fail(absl::FailedPreconditionError(absl::StrFormat(
            "%s asks to cut the log at offset %d, below offset %d which this node knows was "
            "committed; refusing (follow with --force to cut anyway)",
            primary, d.truncate_to(), floor)));
      }
      spdlog::error("cutting committed records [{}, {}) as forced", d.truncate_to(), floor);
    }
    spdlog::warn("truncating the log from offset {} to {} (records {} to {}): that tail is not in "
                 "the primary's history",
                 end.offset, d.truncate_to(), d.truncate_to(), end.offset);
    if (absl::Status s = log_->truncate(d.truncate_to()); !s.ok()) return fail(s);
  }
  std::vector<EpochEntry> adopted;
  for (const v1::EpochEntry& e : d.epochs()) adopted.push_back({e.epoch(), e.start_offset()});
  {
    std::lock_guard el(*epochs_mu_);
    if (!adopted.empty() && adopted != epochs_->entries()) {
      if (absl::Status s = epochs_->replace(adopted); !s.ok()) return fail(s);
    }
  }
  primary_epoch_.store(resp.epoch(), std::memory_order_release);
  if (options_.on_epoch) options_.on_epoch(resp.epoch());
  state_.store(FollowerState::kCatchingUp, std::memory_order_release);
  spdlog::info("following {} (epoch {}) from offset {}", primary, resp.epoch(), log_->end().offset);

  uint64_t acked = UINT64_MAX;
  for (;;) {
    if (resp.epoch() < primary_epoch_.load(std::memory_order_relaxed)) {
      return fail(absl::FailedPreconditionError("the primary's epoch went backwards"));
    }
    if (resp.epoch() > primary_epoch_.load(std::memory_order_relaxed)) {
      // A new epoch began mid-stream: handshake again to take its history.
      return fail(absl::AbortedError(absl::StrFormat(
          "the primary moved to epoch %d; reconnecting to adopt it", resp.epoch())));
    }
    if (resp.has_chunk()) {
      if (absl::Status s = apply(resp.chunk()); !s.ok()) return fail(s);
    }
    primary_commit_ = resp.commit_offset();
    if (absl::Status s = make_durable(false); !s.ok()) return fail(s);
    const LogPosition applied = log_->end();
    state_.store(applied.offset >= resp.primary_durable_offset() ? FollowerState::kStreaming
                                                                 : FollowerState::kCatchingUp,
                 std::memory_order_release);
    // What we serve: the primary's commit, but never past our own log.
    const uint64_t c = std::min(primary_commit_, log_->durable_offset());
    if (c != commit_.load().offset) {
      absl::StatusOr<LogPosition> cp = log_->find_offset(c);
      if (cp.ok()) {
        commit_.store(*cp);
        if (cp->offset > commit_floor_.load()) commit_floor_.store(cp->offset);
        if (options_.on_commit) options_.on_commit(*cp, resp.epoch());
      }
    }
    const uint64_t durable = log_->durable_offset();
    // Ack new durable data, and answer heartbeats so the primary knows we are here.
    if (durable != acked || resp.has_heartbeat()) {
      v1::FollowRequest ack;
      ack.mutable_ack()->set_durable_offset(durable);
      ack.mutable_ack()->set_applied_offset(applied.offset);
      absl::StatusOr<LogPosition> dp = log_->find_offset(durable);
      ack.mutable_ack()->set_durable_seq(dp.ok() ? dp->seq : 0);
      if (!stream->Write(ack)) break;
      acked = durable;
    }
    if (!stream->Read(&resp)) break;
  }
  const absl::Status s = from_grpc(stream->Finish());
  return s.ok() ? absl::UnavailableError("the primary ended the stream") : s;
}

absl::Status Follower::apply(const v1::Chunk& chunk) {
  const LogPosition end = log_->end();
  // Check the records first: a bad chunk changes nothing, not even a segment.
  const std::string& r = chunk.records();
  const ByteSpan records(reinterpret_cast<const std::byte*>(r.data()), r.size());
  if (!records.empty()) {
    if (absl::StatusOr<size_t> n = check_records(records); !n.ok()) {
      return absl::DataLossError(absl::StrFormat("corrupt chunk at offset %d: %s",
                                                 chunk.start_offset(), n.status().message()));
    }
  }
  if (chunk.has_segment()) {
    const std::string& hb = chunk.segment().header();
    if (hb.size() != sizeof(FileHeader)) {
      return absl::DataLossError(absl::StrFormat("segment header of %d bytes, not 64", hb.size()));
    }
    FileHeader h;
    std::memcpy(&h, hb.data(), sizeof h);
    if (h.base_offset != chunk.start_offset() || h.base_seq != chunk.start_seq()) {
      return absl::DataLossError("segment header does not match the chunk's position");
    }
    RINGLOG_RETURN_IF_ERROR(log_->start_segment(h));
  } else if (chunk.start_offset() != end.offset || chunk.start_seq() != end.seq) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "chunk starts at offset %d seq %d but the log ends at offset %d seq %d",
        chunk.start_offset(), chunk.start_seq(), end.offset, end.seq));
  }
  if (records.empty()) return absl::OkStatus();
  const LogPosition first = log_->end();
  AppendResult a = log_->append(records, /*auto_roll=*/false);
  if (!a.status.ok()) return a.status;
  if (options_.on_applied) options_.on_applied(records, first);
  sync_schedule_.wrote();
  return absl::OkStatus();
}

absl::Status Follower::make_durable(bool force) {
  const SyncSchedule::Action action = sync_schedule_.due(force, absl::Now());
  if (action == SyncSchedule::Action::kNothing) return absl::OkStatus();
  RINGLOG_RETURN_IF_ERROR(log_->sync(action == SyncSchedule::Action::kFlush));
  sync_schedule_.done(action, absl::Now());
  return absl::OkStatus();
}

}  // namespace ringlog
