#include "call_limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"

namespace ringlog {

CallLimits::Ticket& CallLimits::Ticket::operator=(Ticket&& o) noexcept {
  if (this != &o) {
    reset();
    owner_ = o.owner_;
    client_ = std::move(o.client_);
    o.owner_ = nullptr;
  }
  return *this;
}

void CallLimits::Ticket::reset() {
  if (owner_ == nullptr) return;
  owner_->release(client_);
  owner_ = nullptr;
}

std::string CallLimits::client_of(absl::string_view peer) {
  absl::string_view addr;
  if (absl::StartsWith(peer, "ipv4:")) {
    addr = peer.substr(5);
    addr = addr.substr(0, addr.rfind(':'));
  } else if (absl::StartsWith(peer, "ipv6:[")) {
    addr = peer.substr(6);
    addr = addr.substr(0, addr.find(']'));
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d: one client
    // either way.
    if (absl::StartsWith(addr, "::ffff:") && addr.find('.') != absl::string_view::npos) {
      addr = addr.substr(7);
    }
  } else {
    addr = peer;
  }
  return std::string(addr);
}

absl::Status CallLimits::admit(absl::string_view peer, Ticket* ticket) {
  ticket->reset();
  std::string client = client_of(peer);
  {
    std::lock_guard l(mu_);
    if (options_.max_calls != 0 && open_ >= options_.max_calls) {
      refused_node_.fetch_add(1, std::memory_order_relaxed);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "this node has %d calls open, its limit (--max_calls=%d); call refused, try again "
          "later",
          open_, options_.max_calls));
    }
    uint32_t& n = open_by_client_[client];
    if (options_.max_calls_per_client != 0 && n >= options_.max_calls_per_client) {
      if (n == 0) open_by_client_.erase(client);
      refused_per_client_.fetch_add(1, std::memory_order_relaxed);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "client %s has %d calls open on this node, its limit (--max_calls_per_client=%d); "
          "call refused: end some of its calls first",
          client, n, options_.max_calls_per_client));
    }
    ++n;
    ++open_;
  }
  ticket->owner_ = this;
  ticket->client_ = std::move(client);
  return absl::OkStatus();
}

void CallLimits::release(const std::string& client) {
  std::lock_guard l(mu_);
  --open_;
  auto it = open_by_client_.find(client);
  if (it != open_by_client_.end() && --it->second == 0) open_by_client_.erase(it);
}

CallLimits::Stats CallLimits::stats() const {
  Stats s;
  {
    std::lock_guard l(mu_);
    s.open = open_;
    s.clients = open_by_client_.size();
  }
  s.refused_per_client = refused_per_client_.load(std::memory_order_relaxed);
  s.refused_node = refused_node_.load(std::memory_order_relaxed);
  return s;
}

namespace {

// gRPC takes milliseconds as an int; INT_MAX is its "never".
int to_ms(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return INT_MAX;
  return static_cast<int>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, INT_MAX));
}

}  // namespace

void apply_transport_limits(grpc::ServerBuilder& builder, const TransportLimits& limits,
                            uint64_t max_batch_bytes) {
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<uint64_t>(max_batch_bytes + kReceiveSlackBytes, INT_MAX)));
  if (limits.max_streams_per_connection != 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                               static_cast<int>(std::min<uint32_t>(
                                   limits.max_streams_per_connection, INT_MAX)));
  }
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, to_ms(limits.max_connection_idle));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, to_ms(limits.max_connection_age));
  // An old connection gets GOAWAY (its client opens a new one for its next
  // calls) but its calls are never cut: a replica's Follow stream or a
  // `replay --follow` may rightly last for weeks.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, INT_MAX);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, to_ms(limits.handshake_timeout));
}

void raise_open_files_limit() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
    spdlog::warn("cannot read the limit of open files: {}", std::strerror(errno));
    return;
  }
  if (r.rlim_cur == r.rlim_max) {
    spdlog::info("open files limit: {}", r.rlim_cur);
    return;
  }
  const rlim_t before = r.rlim_cur;
  r.rlim_cur = r.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
    spdlog::warn("open files limit stays {}: cannot raise it to {}: {}", before, r.rlim_max,
                 std::strerror(errno));
    return;
  }
  spdlog::info("open files limit raised from {} to {}", before, r.rlim_max);
}

}  // namespace ringlog
