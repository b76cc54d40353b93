#include "follower.h"

#include <optional>

#include "apply_chunk.h"
#include "follow_reader.h"

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "ringlog/epochs_wire.h"
#include "ringlog/grpc_status.h"
#include "ringlog/redirect.h"
#include "ringlog/security.h"
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
  // The node's own credentials (--tls_*, --token_file), as of this
  // connection: a reload on SIGHUP reaches the next one.
  return make_secure_channel(primary, args, default_channel_security());
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
  retarget_ = true;
  if (ctx_ != nullptr) ctx_->TryCancel();  // reconnect to the new one now,
  cv_.notify_all();                        // even from the backoff between attempts
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
    // For people: the redirect, if any, is acted on below, not printed.
    const std::string why = s.ToString(absl::StatusToStringMode::kWithNoExtraData);
    {
      std::unique_lock l(mu_);
      if (stop_) break;
      last_error_ = why;
    }
    // A node that is not the primary says whom it follows: go there, unless
    // an operator chose this primary (it is about to be promoted, and the
    // node it names may be the old primary).
    bool pinned;
    {
      std::lock_guard l(mu_);
      pinned = pinned_;
    }
    if (std::optional<Redirect> r = redirect_of(s);
        r && !pinned && !r->primary.empty() && r->primary != primary()) {
      spdlog::info("{} is not the primary; following {} instead", primary(), r->primary);
      std::lock_guard l(mu_);
      primary_ = r->primary;  // after the backoff below, so two nodes cannot bounce us fast
    }
    // Back off less after a stream that made progress.
    if (log_->end().offset != before) backoff = options_.min_backoff;
    spdlog::warn("replication from {} ended: {}; reconnecting in {}", primary(), why,
                 absl::FormatDuration(backoff));
    std::unique_lock l(mu_);
    cv_.wait_for(l, absl::ToChronoNanoseconds(backoff), [&] { return stop_ || retarget_; });
    if (stop_) break;
    backoff = retarget_ ? options_.min_backoff : std::min(backoff * 2, options_.max_backoff);
    retarget_ = false;
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

  std::unique_ptr<Stream> stream = stub->Follow(&ctx);
  // The call's end as the primary told it (with its redirect, if any).
  auto ended = [&](const char* cleanly) {
    const absl::Status s = from_grpc(stream->Finish(), ctx);
    return s.ok() ? absl::UnavailableError(cleanly) : s;
  };
  // The call ended on our side, for `s`.
  auto fail = [&](absl::Status s) {
    ctx.TryCancel();
    (void)stream->Finish();
    return s;
  };
  v1::FollowResponse resp;
  if (!handshake(stream.get(), &resp)) return ended("the primary closed the stream");
  if (absl::Status s = adopt_directive(primary, resp); !s.ok()) return fail(s);
  absl::Status s;
  {
    // Only an interval sync waits for a deadline; otherwise the follower
    // thread Reads itself, without a hand-over per message.
    FollowReader reader(stream.get(), options_.fsync == FsyncPolicy::kInterval);
    s = stream_chunks(stream.get(), &reader, &resp);
    // The reader's Read must return before it is joined: on our error,
    // cancel the call; otherwise the stream is over already.
    if (!s.ok()) ctx.TryCancel();
  }  // joined: Finish() must not run beside a Read
  if (!s.ok()) return fail(s);
  return ended("the primary ended the stream");
}

bool Follower::handshake(Stream* stream, v1::FollowResponse* first) {
  v1::FollowRequest hello;
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
  {
    std::lock_guard el(*epochs_mu_);
    epochs_to_wire(epochs_->entries(), h->mutable_epochs());
  }
  return stream->Write(hello) && stream->Read(first);
}

absl::Status Follower::adopt_directive(const std::string& primary, const v1::FollowResponse& resp) {
  if (!resp.has_directive()) {
    return absl::InternalError("the primary's first message is not a directive");
  }
  uint64_t own_epoch;
  {
    std::lock_guard el(*epochs_mu_);
    own_epoch = epochs_->current();
  }
  if (resp.epoch() < own_epoch) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is in epoch %d, behind this node's epoch %d: not following it", primary, resp.epoch(),
        own_epoch));
  }
  const v1::Directive& d = resp.directive();
  RINGLOG_RETURN_IF_ERROR(truncate_as_directed(primary, d.truncate_to()));
  const std::vector<EpochEntry> adopted = epochs_from_wire(d.epochs());
  {
    std::lock_guard el(*epochs_mu_);
    if (!adopted.empty() && adopted != epochs_->entries()) {
      RINGLOG_RETURN_IF_ERROR(epochs_->replace(adopted));
    }
  }
  primary_epoch_.store(resp.epoch(), std::memory_order_release);
  if (options_.on_epoch) options_.on_epoch(resp.epoch());
  state_.store(FollowerState::kCatchingUp, std::memory_order_release);
  spdlog::info("following {} (epoch {}) from offset {}", primary, resp.epoch(), log_->end().offset);
  return absl::OkStatus();
}

absl::Status Follower::truncate_as_directed(const std::string& primary, uint64_t truncate_to) {
  const LogPosition end = log_->end();
  if (truncate_to >= end.offset) return absl::OkStatus();
  const uint64_t floor = std::max(commit_floor_.load(), commit_.load().offset);
  if (truncate_to < floor) {
    if (!allow_truncate_below_commit_.load()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s asks to cut the log at offset %d, below offset %d which this node knows was "
          "committed; refusing (follow with --force to cut anyway)",
          primary, truncate_to, floor));
    }
    spdlog::error("cutting committed records [{}, {}) as forced", truncate_to, floor);
  }
  spdlog::warn("truncating the log from offset {} to {} (records {} to {}): that tail is not in "
               "the primary's history",
               end.offset, truncate_to, truncate_to, end.offset);
  RINGLOG_RETURN_IF_ERROR(log_->truncate(truncate_to));
  if (options_.on_truncated) options_.on_truncated(truncate_to);
  return absl::OkStatus();
}

absl::Status Follower::stream_chunks(Stream* stream, FollowReader* reader,
                                     v1::FollowResponse* resp) {
  uint64_t acked = UINT64_MAX;
  for (;;) {
    if (resp->epoch() < primary_epoch_.load(std::memory_order_relaxed)) {
      return absl::FailedPreconditionError("the primary's epoch went backwards");
    }
    if (resp->epoch() > primary_epoch_.load(std::memory_order_relaxed)) {
      // A new epoch began mid-stream: handshake again to take its history.
      return absl::AbortedError(absl::StrFormat(
          "the primary moved to epoch %d; reconnecting to adopt it", resp->epoch()));
    }
    if (resp->has_chunk()) RINGLOG_RETURN_IF_ERROR(apply_or_wait(stream, resp->chunk(), &acked));
    maybe_apply_retention(false);
    primary_commit_ = resp->commit_offset();
    RINGLOG_RETURN_IF_ERROR(make_durable(false));
    const LogPosition applied = log_->end();
    state_.store(applied.offset >= resp->primary_durable_offset() ? FollowerState::kStreaming
                                                                  : FollowerState::kCatchingUp,
                 std::memory_order_release);
    learn_commit(resp->epoch());
    // Ack new durable data, and answer heartbeats so the primary knows we are here.
    if (!ack_durable(stream, resp->has_heartbeat(), &acked)) return absl::OkStatus();
    // The next message, or the interval sync when it falls due first: the
    // primary's commit waits for that ack, and an idle primary sends nothing
    // until its next heartbeat.
    for (;;) {
      const FollowReader::Next next = reader->next(resp, sync_schedule_.next_due());
      if (next == FollowReader::Next::kEnded) return absl::OkStatus();
      if (next == FollowReader::Next::kMessage) break;
      RINGLOG_RETURN_IF_ERROR(make_durable(false));
      learn_commit(resp->epoch());  // *resp is still the last message
      if (!ack_durable(stream, false, &acked)) return absl::OkStatus();
    }
  }
}

bool Follower::ack_durable(Stream* stream, bool always, uint64_t* acked) {
  const uint64_t durable = log_->durable_offset();
  if (durable == *acked && !always) return true;
  if (!send_ack(stream, durable, log_->end().offset)) return false;
  *acked = durable;
  return true;
}

void Follower::learn_commit(uint64_t epoch) {
  // What we serve: the primary's commit, but never past our own log.
  const uint64_t c = std::min(primary_commit_, log_->durable_offset());
  if (c == commit_.load().offset) return;
  absl::StatusOr<LogPosition> cp = log_->find_offset(c);
  if (!cp.ok()) return;
  commit_.store(*cp);
  if (cp->offset > commit_floor_.load()) commit_floor_.store(cp->offset);
  if (options_.on_commit) options_.on_commit(*cp, epoch);
}

bool Follower::send_ack(Stream* stream, uint64_t durable, uint64_t applied) {
  v1::FollowRequest ack;
  ack.mutable_ack()->set_durable_offset(durable);
  ack.mutable_ack()->set_applied_offset(applied);
  absl::StatusOr<LogPosition> dp = log_->find_offset(durable);
  ack.mutable_ack()->set_durable_seq(dp.ok() ? dp->seq : 0);
  {
    std::lock_guard l(mu_);
    if (!disk_full_.ok()) ack.mutable_ack()->set_storage_error(std::string(disk_full_.message()));
  }
  return stream->Write(ack);
}

absl::Status Follower::apply(const v1::Chunk& chunk) {
  absl::StatusOr<LogPosition> first = apply_chunk(*log_, chunk);
  if (!first.ok()) return first.status();
  const std::string& r = chunk.records();
  if (r.empty()) return absl::OkStatus();
  if (options_.on_applied) {
    options_.on_applied(ByteSpan(reinterpret_cast<const std::byte*>(r.data()), r.size()), *first);
  }
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
