#include "ringlog/client.h"

#include <algorithm>
#include <chrono>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

#include "internal.h"

namespace ringlog {

using client_internal::deadline_after;
using client_internal::resumable;
using client_internal::kMaxMessageBytes;

std::shared_ptr<grpc::Channel> make_channel(const std::string& endpoint,
                                            std::shared_ptr<const ChannelSecurity> security) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect promptly after a node restarts.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Let a stream have several batches in flight before HTTP/2 flow control
  // waits for the peer (the default window suits small messages).
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
  // A node that freezes or vanishes without closing the connection (a
  // stopped process, a crashed host, a network split) is found by a ping
  // left unanswered: the calls on it fail within about 3 s and the appender
  // looks for the primary again, instead of waiting on a dead connection.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  return make_secure_channel(endpoint, args, std::move(security));
}

absl::StatusOr<v1::NodeStatus> client_internal::status_of(std::shared_ptr<grpc::Channel> channel,
                                                         absl::Duration timeout) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline_after(timeout));
  v1::NodeStatus out;
  const grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &out);
  if (!s.ok()) return from_grpc(s);
  return out;
}

// ---- Client ----

Client::Client(ClientOptions options, std::string endpoint, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)), endpoint_(std::move(endpoint)), channel_(std::move(channel)) {}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no endpoints given");
  if (!options.security) {
    if (absl::Status s = default_channel_security_error(); !s.ok()) return s;
  }
  std::string errors;
  for (const std::string& ep : options.endpoints) {
    std::shared_ptr<grpc::Channel> ch = make_channel(ep, options.security);
    if (ch->WaitForConnected(deadline_after(options.connect_timeout))) {
      return std::unique_ptr<Client>(new Client(options, ep, std::move(ch)));
    }
    absl::StrAppend(&errors, errors.empty() ? "" : ", ", ep);
  }
  return absl::UnavailableError(absl::StrFormat("cannot connect to %s within %s", errors,
                                                absl::FormatDuration(options.connect_timeout)));
}

absl::StatusOr<v1::NodeStatus> Client::status(absl::Duration timeout) {
  return client_internal::status_of(channel_, timeout);
}

absl::StatusOr<std::unique_ptr<Appender>> Client::appender() {
  std::vector<std::string> eps = options_.endpoints;
  // The endpoint this client connected to first.
  std::stable_partition(eps.begin(), eps.end(), [&](const std::string& e) { return e == endpoint_; });
  std::unique_ptr<Appender> a(new Appender(std::move(eps), options_));
  std::unique_lock l(a->mu_);
  if (absl::Status s = a->open_locked(l, ""); !s.ok()) return s;
  l.unlock();
  return a;
}

std::unique_ptr<Replayer> Client::replay(const ReplayOptions& options) {
  return std::unique_ptr<Replayer>(new Replayer(options_.endpoints, endpoint_index(), options, options_.security));
}

size_t Client::endpoint_index() const {
  for (size_t i = 0; i < options_.endpoints.size(); ++i) {
    if (options_.endpoints[i] == endpoint_) return i;
  }
  return 0;
}

}  // namespace ringlog
