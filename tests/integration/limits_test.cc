// Resource limits against abuse: a client that floods a node with
// connections and calls gets its excess calls refused, its stalled
// connections closed, and never starves another client; connections that
// sit idle or grow old are closed without cutting a call in progress.
//
// The flood comes from 127.0.0.2 and the good client from 127.0.0.1, so the
// node tells them apart as two clients: raw sockets bind their source
// address, and gRPC calls go through a small TCP relay whose connections to
// the node are bound to 127.0.0.2 (a gRPC channel cannot choose its source).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <optional>

#include "absl/cleanup/cleanup.h"
#include "harness.h"

namespace ringlog::testing {
namespace {

constexpr char kFloodSource[] = "127.0.0.2";

// A TCP connection to 127.0.0.1:port from `source`; -1 when it fails.
int tcp_connect(const std::string& source, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

bool send_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// What an HTTP/2 client sends first: the preface and an empty SETTINGS
// frame. After it the node's handshake is complete and the connection is
// one without calls.
std::string http2_preface() {
  std::string s = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  s += std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  return s;
}

// Reads (and discards) until the peer closes the connection or `timeout`
// passes: how long that took, or nullopt if it stayed open.
std::optional<absl::Duration> await_closed(int fd, absl::Time since, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return absl::Now() - since;
  }
}

// True while the peer has not closed the connection (what it sent is read
// and discarded).
bool still_open(int fd) {
  char buf[4096];
  while (true) {
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
}

// Reads HTTP/2 frames until the node's first SETTINGS frame: its value of
// `id`, or nullopt if the frame lacks it (or none came within `timeout`).
std::optional<uint32_t> read_setting(int fd, uint16_t id, absl::Duration timeout) {
  std::string in;
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < deadline) {
    while (in.size() >= 9) {
      const auto* h = reinterpret_cast<const unsigned char*>(in.data());
      const size_t len = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
      if (in.size() < 9 + len) break;
      if (h[3] == 0x4 && (h[4] & 0x1) == 0) {  // SETTINGS, not an ACK
        for (size_t i = 0; i + 6 <= len; i += 6) {
          const unsigned char* e = h + 9 + i;
          if (((e[0] << 8) | e[1]) == id) {
            return (uint32_t{e[2]} << 24) | (uint32_t{e[3]} << 16) | (uint32_t{e[4]} << 8) | e[5];
          }
        }
        return std::nullopt;
      }
      in.erase(0, 9 + len);
    }
    pollfd p{fd, POLLIN, 0};
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    in.append(buf, static_cast<size_t>(n));
  }
  return std::nullopt;
}

// Relays each TCP connection accepted on 127.0.0.1:port() to the node at
// 127.0.0.1:target, from `source`: what the node sees of a gRPC channel to
// port() is a client at `source`.
class SourceRelay {
 public:
  SourceRelay(std::string source, int target) : source_(std::move(source)), target_(target) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(listen_fd_, 64) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("the relay cannot listen");
    }
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~SourceRelay() {
    shutdown(listen_fd_, SHUT_RDWR);  // ends accept()
    acceptor_.join();
    {
      std::lock_guard l(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);  // ends the pumps
    }
    for (std::thread& t : pumps_) t.join();
    for (int fd : fds_) close(fd);
    close(listen_fd_);
  }
  int port() const { return port_; }

 private:
  void accept_loop() {
    while (true) {
      const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      const int node = tcp_connect(source_, target_);
      std::lock_guard l(mu_);
      fds_.push_back(client);
      if (node < 0) {
        shutdown(client, SHUT_RDWR);
        continue;
      }
      fds_.push_back(node);
      pumps_.emplace_back([client, node] { pump(client, node); });
    }
  }
  // Copies both ways until either side ends, then ends both.
  static void pump(int a, int b) {
    char buf[65536];
    pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    while (poll(p, 2, -1) > 0) {
      for (int i = 0; i < 2; ++i) {
        if (p[i].revents == 0) continue;
        const ssize_t n = recv(p[i].fd, buf, sizeof buf, 0);
        if (n <= 0 || !send_all(p[1 - i].fd, std::string(buf, static_cast<size_t>(n)))) {
          shutdown(a, SHUT_RDWR);
          shutdown(b, SHUT_RDWR);
          return;
        }
      }
    }
  }

  const std::string source_;
  const int target_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

std::shared_ptr<grpc::Channel> own_channel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

template <class Ctx>
void set_deadline(Ctx* ctx, absl::Duration d) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
}

// A refusal by --max_calls_per_client of a call from `client`.
::testing::AssertionResult refused_by_client_limit(const grpc::Status& s, const std::string& client,
                                                   uint32_t limit) {
  const std::string flag = "--max_calls_per_client=" + std::to_string(limit);
  if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
      s.error_message().find(flag) != std::string::npos &&
      s.error_message().find("client " + client) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "code " << s.error_code() << ": " << s.error_message();
}

// A Replay with follow held open, from the start of the log.
struct HeldReplay {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::ReplayResponse>> reader;
};

class IntegrationLimits : public NodeTest {
 protected:
  int metrics_port() {
    return testkit::logged_metrics_port([&] { return output(); }, absl::Seconds(30));
  }
};

uint64_t percentile(std::vector<uint64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Hundreds of connections from 127.0.0.2 (some that never complete their
// handshake, some that complete it and make no call) and a gRPC client
// there holding its limit of calls and trying more: each of its extra calls
// is refused naming the limit, while every call of the client at 127.0.0.1
// (append, replay, status) succeeds within 5 s; the stalled connections are
// closed once --handshake_timeout has passed.
TEST_F(IntegrationLimits, AFloodFromOneClientNeverStarvesAnother) {
  constexpr uint32_t kPerClient = 16;
  constexpr int kStalled = 200;     // never send a byte
  constexpr int kHandshaked = 200;  // send the HTTP/2 preface, then nothing
  constexpr absl::Duration kHandshakeTimeout = absl::Seconds(3);
  constexpr int kGoodRounds = 100;
  const int fd_probe = tcp_connect(kFloodSource, 1);  // refused, but says if we may bind
  if (fd_probe < 0 && errno == EADDRNOTAVAIL) GTEST_SKIP() << "127.0.0.2 is not a local address";
  if (fd_probe >= 0) close(fd_probe);

  tools::NodeProcess& node =
      start_node({"--max_calls_per_client=" + std::to_string(kPerClient),
                  "--handshake_timeout=3s", "--metrics_listen=127.0.0.1:0"});
  std::unique_ptr<Client> good = connect(node);
  append_numbered(*good, 0, 0, 10);
  std::shared_ptr<grpc::Channel> good_channel = own_channel(node.address());

  // The flood's connections.
  std::vector<int> stalled;
  std::vector<int> handshaked;
  const absl::Time flood_start = absl::Now();
  for (int i = 0; i < kStalled; ++i) {
    const int fd = tcp_connect(kFloodSource, node.port());
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    stalled.push_back(fd);
  }
  for (int i = 0; i < kHandshaked; ++i) {
    const int fd = tcp_connect(kFloodSource, node.port());
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    ASSERT_TRUE(send_all(fd, http2_preface()));
    handshaked.push_back(fd);
  }
  // The flood's calls: its limit of follow replays, held open (each has
  // read its first response, so the node has taken it).
  SourceRelay relay(kFloodSource, node.port());
  std::shared_ptr<grpc::Channel> flood_channel = own_channel("127.0.0.1:" + std::to_string(relay.port()));
  std::unique_ptr<v1::EventLog::Stub> flood_log = v1::EventLog::NewStub(flood_channel);
  std::unique_ptr<v1::Admin::Stub> flood_admin = v1::Admin::NewStub(flood_channel);
  std::vector<std::unique_ptr<HeldReplay>> held;
  v1::ReplayRequest follow_all;
  follow_all.set_from_start(true);
  follow_all.set_follow(true);
  for (uint32_t i = 0; i < kPerClient; ++i) {
    auto h = std::make_unique<HeldReplay>();
    set_deadline(&h->ctx, absl::Seconds(60));
    h->reader = flood_log->Replay(&h->ctx, follow_all);
    v1::ReplayResponse first;
    ASSERT_TRUE(h->reader->Read(&first)) << "held replay " << i << ": " << h->reader->Finish().error_message();
    held.push_back(std::move(h));
  }

  // More calls from the flood, over and over from several threads, while
  // the good client works.
  constexpr int kFlooders = 4;
  std::atomic<bool> good_done{false};
  std::atomic<uint64_t> refused{0};
  std::mutex bad_mu;
  std::vector<std::string> bad;  // refusals that were not as expected
  std::vector<std::thread> flooders;
  const absl::Cleanup stop_flooders = [&] {
    good_done = true;
    for (std::thread& t : flooders) t.join();
  };
  for (int f = 0; f < kFlooders; ++f) flooders.emplace_back([&, f] {
    for (uint64_t n = 0; !good_done.load() || n < 10; ++n) {
      const uint64_t i = n * kFlooders + f;  // which kind of call: all three from each thread
      grpc::ClientContext ctx;
      set_deadline(&ctx, absl::Seconds(10));
      grpc::Status s;
      if (i % 3 == 0) {
        std::unique_ptr<grpc::ClientReader<v1::ReplayResponse>> r = flood_log->Replay(&ctx, follow_all);
        v1::ReplayResponse resp;
        while (r->Read(&resp)) {
        }
        s = r->Finish();
      } else if (i % 3 == 1) {
        v1::NodeStatus st;
        s = flood_admin->GetStatus(&ctx, v1::GetStatusRequest(), &st);
      } else {
        auto stream = flood_log->Append(&ctx);
        stream->WritesDone();
        v1::AppendResponse resp;
        while (stream->Read(&resp)) {
        }
        s = stream->Finish();
      }
      if (::testing::AssertionResult r = refused_by_client_limit(s, kFloodSource, kPerClient); !r) {
        std::lock_guard l(bad_mu);
        bad.push_back("call " + std::to_string(i) + ": " + r.message());
      }
      refused.fetch_add(1);
    }
  });

  // The good client: status, an append on a new stream, and a replay of
  // what it appended, each a call of its own.
  std::vector<uint64_t> latencies_us;
  std::unique_ptr<v1::Admin::Stub> admin = v1::Admin::NewStub(good_channel);
  const absl::Time good_start = absl::Now();
  for (int round = 0; round < kGoodRounds; ++round) {
    absl::Time t0 = absl::Now();
    {
      grpc::ClientContext ctx;
      set_deadline(&ctx, absl::Seconds(5));
      v1::NodeStatus st;
      const grpc::Status s = admin->GetStatus(&ctx, v1::GetStatusRequest(), &st);
      ASSERT_TRUE(s.ok()) << "round " << round << ": " << s.error_message();
    }
    absl::Time t1 = absl::Now();
    latencies_us.push_back(absl::ToInt64Microseconds(t1 - t0));
    v1::AppendResponse ack;
    {
      testkit::RawAppendStream append(good_channel, absl::Seconds(5));
      std::string records;
      add_test_records(&records, 1, 5 * round, 5);
      ASSERT_TRUE(append.send(1, records));
      std::optional<v1::AppendResponse> a = append.wait_ack(1, absl::Seconds(5));
      ASSERT_TRUE(a.has_value()) << "round " << round << ": " << append.finish().error_message();
      ack = *a;
      const grpc::Status end = append.finish();
      ASSERT_TRUE(end.ok()) << "round " << round << ": " << end.error_message();
    }
    absl::Time t2 = absl::Now();
    latencies_us.push_back(absl::ToInt64Microseconds(t2 - t1));
    v1::ReplayRequest req;
    req.set_from_seq(ack.first_seq());
    req.set_limit(5);
    const RawReplay r = raw_replay(good_channel, req, absl::Seconds(5));
    ASSERT_TRUE(r.status.ok()) << "round " << round << ": " << r.status.error_message();
    size_t bytes = 0;
    for (const v1::ReplayResponse& resp : r.responses) bytes += resp.records().size();
    EXPECT_EQ(bytes, 5 * kTestRecordBytes) << "round " << round;
    latencies_us.push_back(absl::ToInt64Microseconds(absl::Now() - t2));
  }
  const absl::Duration good_time = absl::Now() - good_start;
  good_done = true;
  for (std::thread& t : flooders) t.join();
  flooders.clear();

  // The flood's handshaked connections were open all along (their idle
  // limit is the default 10 minutes), so the good calls ran beside them.
  int handshaked_open = 0;
  for (int fd : handshaked) handshaked_open += still_open(fd) ? 1 : 0;
  EXPECT_EQ(handshaked_open, kHandshaked);
  {
    std::lock_guard l(bad_mu);
    EXPECT_TRUE(bad.empty()) << bad.size() << " flood calls not refused as expected; first: "
                             << bad.front();
  }
  // The held replays were not disturbed: each still gets new events.
  append_numbered(*good, 2, 0, 1);
  for (size_t i = 0; i < held.size(); ++i) {
    v1::ReplayResponse resp;
    EXPECT_TRUE(held[i]->reader->Read(&resp)) << "held replay " << i;
    held[i]->ctx.TryCancel();
    (void)held[i]->reader->Finish();
  }
  const std::map<std::string, double> m =
      testkit::parse_metrics(testkit::http_get(metrics_port(), "/metrics"));
  EXPECT_EQ(m.at("ringlog_calls_refused_total{limit=\"per_client\"}"),
            static_cast<double>(refused.load()));
  EXPECT_EQ(m.at("ringlog_calls_refused_total{limit=\"node\"}"), 0);

  // Stalled connections: closed by the node once the handshake timeout has
  // passed, not before (the timer is the node's only reason to close them).
  absl::Duration first_close = absl::InfiniteDuration();
  absl::Duration last_close = absl::ZeroDuration();
  for (size_t i = 0; i < stalled.size(); ++i) {
    std::optional<absl::Duration> after =
        await_closed(stalled[i], flood_start, kHandshakeTimeout + absl::Seconds(15));
    ASSERT_TRUE(after.has_value()) << "stalled connection " << i << " still open";
    first_close = std::min(first_close, *after);
    last_close = std::max(last_close, *after);
  }
  EXPECT_GE(first_close, kHandshakeTimeout - absl::Milliseconds(500));
  for (int fd : stalled) close(fd);
  for (int fd : handshaked) close(fd);

  std::printf(
      "LIMITS_RESULT flood_connections=%d flood_calls_held=%u flood_calls_refused=%llu "
      "good_calls=%zu good_seconds=%.3f good_p50_us=%llu good_p99_us=%llu good_max_us=%llu "
      "stalled_closed_after_ms=%lld..%lld\n",
      kStalled + kHandshaked + 1, kPerClient, static_cast<unsigned long long>(refused.load()),
      latencies_us.size(), absl::ToDoubleSeconds(good_time),
      static_cast<unsigned long long>(percentile(latencies_us, 0.5)),
      static_cast<unsigned long long>(percentile(latencies_us, 0.99)),
      static_cast<unsigned long long>(percentile(latencies_us, 1.0)),
      static_cast<long long>(absl::ToInt64Milliseconds(first_close)),
      static_cast<long long>(absl::ToInt64Milliseconds(last_close)));
}

// --max_connection_idle closes a connection without calls, and
// --max_connection_age tells an old one to go; neither cuts a call in
// progress: a follow replay opened before keeps receiving. The node
// announces --max_streams_per_connection in its HTTP/2 settings.
TEST_F(IntegrationLimits, IdleAndOldConnectionsCloseWithoutCuttingCalls) {
  constexpr absl::Duration kIdle = absl::Seconds(1);
  tools::NodeProcess& node = start_node({"--max_connection_idle=1s", "--max_connection_age=2s",
                                         "--max_streams_per_connection=50"});
  std::unique_ptr<Client> client = connect(node);
  append_numbered(*client, 0, 0, 10);

  // A follow replay on a connection of its own, caught up.
  std::shared_ptr<grpc::Channel> channel = own_channel(node.address());
  std::unique_ptr<v1::EventLog::Stub> stub = v1::EventLog::NewStub(channel);
  HeldReplay replay;
  set_deadline(&replay.ctx, absl::Seconds(60));
  v1::ReplayRequest req;
  req.set_from_start(true);
  req.set_follow(true);
  replay.reader = stub->Replay(&replay.ctx, req);
  v1::ReplayResponse resp;
  ASSERT_TRUE(replay.reader->Read(&resp));

  // A connection that completes its handshake and makes no call.
  const int fd = tcp_connect("127.0.0.1", node.port());
  ASSERT_GE(fd, 0);
  const absl::Time opened = absl::Now();
  ASSERT_TRUE(send_all(fd, http2_preface()));
  EXPECT_EQ(read_setting(fd, 0x3, absl::Seconds(10)), std::optional<uint32_t>(50))
      << "SETTINGS_MAX_CONCURRENT_STREAMS";
  std::optional<absl::Duration> closed = await_closed(fd, opened, absl::Seconds(15));
  close(fd);
  ASSERT_TRUE(closed.has_value()) << "an idle connection stayed open";
  EXPECT_GE(*closed, kIdle - absl::Milliseconds(200));

  // The replay's connection is past its age (2 s, give or take gRPC's 10%
  // jitter): the node has told it to go, so the channel no longer has a
  // connection ready for new calls.
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  ASSERT_TRUE(channel->WaitForStateChange(GRPC_CHANNEL_READY,
                                          absl::ToChronoTime(absl::Now() + absl::Seconds(15))))
      << "the connection was not told to go";
  const absl::Duration goaway_after = absl::Now() - opened;
  // Yet the call goes on: an event appended now reaches it.
  const Ack ack = append_numbered(*client, 1, 0, 1);
  bool seen = false;
  while (!seen && replay.reader->Read(&resp)) {
    seen = resp.next_seq() > ack.last_seq;
  }
  EXPECT_TRUE(seen) << "the follow replay ended: " << replay.reader->Finish().error_message();
  replay.ctx.TryCancel();
  (void)replay.reader->Finish();
  std::printf("LIMITS_RESULT idle_closed_after_ms=%lld aged_after_ms=%lld append_after_age_ms=%lld\n",
              static_cast<long long>(absl::ToInt64Milliseconds(*closed)),
              static_cast<long long>(absl::ToInt64Milliseconds(goaway_after)),
              static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - opened - goaway_after)));
}

}  // namespace
}  // namespace ringlog::testing
