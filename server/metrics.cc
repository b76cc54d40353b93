#include "metrics.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "ringlog/tls_files.h"
#include "absl/strings/strip.h"
#include "ringlog/pipeline.h"

namespace ringlog {
namespace {

std::once_flag g_init;

void gauge(std::string* out, const char* name, const char* help, double v,
           const std::string& labels = "") {
  absl::StrAppendFormat(out, "# HELP %s %s\n# TYPE %s gauge\n%s%s %.17g\n", name, help, name, name,
                        labels, v);
}

void counter(std::string* out, const char* name, const char* help, double v) {
  absl::StrAppendFormat(out, "# HELP %s %s\n# TYPE %s counter\n%s %.17g\n", name, help, name, name, v);
}

std::string escape_label(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

std::string MetricsServer::render(Node& node) {
  v1::NodeStatus st;
  node.fill_status(&st);
  const NodeCounters c = node.counters();
  std::string out;
  absl::StrAppendFormat(&out, "# HELP ringlog_info Node identity.\n# TYPE ringlog_info gauge\n"
                              "ringlog_info{node_id=\"%s\",role=\"%s\"} 1\n",
                        escape_label(st.node_id()), st.role() == v1::ROLE_PRIMARY ? "primary" : "replica");
  gauge(&out, "ringlog_epoch", "Current epoch.", static_cast<double>(st.epoch()));
  gauge(&out, "ringlog_uptime_seconds", "Seconds since start.", st.uptime_seconds());
  counter(&out, "ringlog_events_appended_total", "Events appended by this node as primary.",
          static_cast<double>(c.events_appended));
  counter(&out, "ringlog_bytes_appended_total", "Record bytes appended by this node as primary.",
          static_cast<double>(c.bytes_appended));
  gauge(&out, "ringlog_ring_used_bytes", "Bytes waiting in the ring.", static_cast<double>(st.ring_used_bytes()));
  gauge(&out, "ringlog_ring_capacity_bytes", "Ring capacity.", static_cast<double>(st.ring_capacity_bytes()));
  counter(&out, "ringlog_ring_full_total",
          "Times a remote batch found the ring full and waited (backpressure).",
          static_cast<double>(c.ring_full));
  gauge(&out, "ringlog_log_start_offset", "Offset of the oldest record kept.", static_cast<double>(st.log_start_offset()));
  gauge(&out, "ringlog_log_end_offset", "Offset after the last record.", static_cast<double>(st.log_end_offset()));
  gauge(&out, "ringlog_durable_offset", "Everything before it is durable here.", static_cast<double>(st.durable_offset()));
  gauge(&out, "ringlog_commit_offset", "Everything before it is committed.", static_cast<double>(st.commit_offset()));
  gauge(&out, "ringlog_next_seq", "Seq of the next event.", static_cast<double>(st.next_seq()));
  gauge(&out, "ringlog_segments", "Segment files.", static_cast<double>(st.segment_count()));
  gauge(&out, "ringlog_segment_bytes", "Bytes of all segment files.", static_cast<double>(st.segment_bytes()));
  gauge(&out, "ringlog_append_streams", "Open Append streams.", st.active_append_streams());
  gauge(&out, "ringlog_replay_streams", "Open Replay streams.", st.active_replay_streams());
  gauge(&out, "ringlog_storage_error", "1 while a storage error (e.g. a full disk) stops appends.",
        st.storage_error().empty() ? 0 : 1);
  gauge(&out, "ringlog_lost_bytes",
        "Log bytes this node held once (durable or committed) and lacks now: damaged or deleted "
        "files found at start. A primary takes no appends while it is above 0.",
        static_cast<double>(st.lost_to_offset() - st.lost_from_offset()));
  gauge(&out, "ringlog_disk_full",
        "1 while this node's disk cannot take the log's next segment (appends or replication wait).",
        st.disk_full().empty() ? 0 : 1);
  gauge(&out, "ringlog_disk_free_bytes", "Free bytes on the data directory's filesystem.",
        static_cast<double>(st.disk_free_bytes()));
  gauge(&out, "ringlog_write_ready",
        "1 while appends are taken (the health of ringlog.v1.EventLog/Append).",
        node.write_ready() ? 1 : 0);
  gauge(&out, "ringlog_appends_refusing",
        "1 while appends are refused with RESOURCE_EXHAUSTED (a full disk here or on the replicas).",
        st.append_refusal().empty() ? 0 : 1);
  counter(&out, "ringlog_appends_refused_total",
          "Append batches refused with RESOURCE_EXHAUSTED (a full disk here or on the replicas).",
          static_cast<double>(st.appends_refused()));
  const ProducerStats ps = node.producer_stats();
  gauge(&out, "ringlog_producers",
        "Idempotent producers this node remembers (at most --max_producers; forgotten after "
        "--producer_expiry idle).",
        static_cast<double>(ps.producers));
  counter(&out, "ringlog_producer_duplicates_total",
          "Batches sent again (same producer_id and producer_seq) and answered as duplicates "
          "with the original's range, not appended.",
          static_cast<double>(ps.duplicates));
  counter(&out, "ringlog_producer_out_of_sequence_total",
          "Idempotent batches refused with FAILED_PRECONDITION: producer_seq past the one expected.",
          static_cast<double>(ps.out_of_sequence));
  counter(&out, "ringlog_producer_too_old_total",
          "Idempotent batches refused with ALREADY_EXISTS: sent before, but older than the batches "
          "remembered for their producer.",
          static_cast<double>(ps.too_old));
  counter(&out, "ringlog_producers_evicted_total",
          "Producers forgotten because --max_producers were remembered.",
          static_cast<double>(ps.evicted));
  counter(&out, "ringlog_producers_expired_total",
          "Producers forgotten after --producer_expiry without a batch.",
          static_cast<double>(ps.expired));
  const CallLimits::Stats calls = node.call_limits().stats();
  gauge(&out, "ringlog_calls_open",
        "Open calls of EventLog, Admin and Replication (at most --max_calls).",
        static_cast<double>(calls.open));
  gauge(&out, "ringlog_call_clients", "Client addresses with a call open.",
        static_cast<double>(calls.clients));
  absl::StrAppendFormat(
      &out,
      "# HELP ringlog_calls_refused_total Calls refused with RESOURCE_EXHAUSTED by a call limit: "
      "--max_calls_per_client (limit=\"per_client\") or --max_calls (limit=\"node\").\n"
      "# TYPE ringlog_calls_refused_total counter\n"
      "ringlog_calls_refused_total{limit=\"per_client\"} %d\n"
      "ringlog_calls_refused_total{limit=\"node\"} %d\n",
      calls.refused_per_client, calls.refused_node);
  out += "# HELP ringlog_replica_lag_bytes Log bytes a replica has not acknowledged.\n"
         "# TYPE ringlog_replica_lag_bytes gauge\n";
  for (const v1::ReplicaInfo& r : st.replicas()) {
    absl::StrAppendFormat(&out, "ringlog_replica_lag_bytes{replica=\"%s\"} %d\n",
                          escape_label(r.node_id()), r.lag_bytes());
  }
  out += "# HELP ringlog_replica_lag_seconds How long a replica has been behind (0 when caught up).\n"
         "# TYPE ringlog_replica_lag_seconds gauge\n";
  for (const ReplicaLag& l : node.replica_lag_seconds()) {
    absl::StrAppendFormat(&out, "ringlog_replica_lag_seconds{replica=\"%s\"} %.6f\n",
                          escape_label(l.node_id), l.seconds);
  }
  out += "# HELP ringlog_replica_connected 1 while the replica's stream is open.\n"
         "# TYPE ringlog_replica_connected gauge\n";
  for (const v1::ReplicaInfo& r : st.replicas()) {
    absl::StrAppendFormat(&out, "ringlog_replica_connected{replica=\"%s\"} %d\n",
                          escape_label(r.node_id()), r.connected() ? 1 : 0);
  }
  out += "# HELP ringlog_replica_disk_full 1 while the replica reports that it cannot store.\n"
         "# TYPE ringlog_replica_disk_full gauge\n";
  for (const v1::ReplicaInfo& r : st.replicas()) {
    absl::StrAppendFormat(&out, "ringlog_replica_disk_full{replica=\"%s\"} %d\n",
                          escape_label(r.node_id()), r.storage_error().empty() ? 0 : 1);
  }
  out += "# HELP ringlog_fsync_seconds Latency of fdatasync of the log.\n"
         "# TYPE ringlog_fsync_seconds histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < kFsyncBucketCount; ++i) {
    cum += c.fsync_buckets[i];
    if (i < std::size(kFsyncBuckets)) {
      absl::StrAppendFormat(&out, "ringlog_fsync_seconds_bucket{le=\"%g\"} %d\n", kFsyncBuckets[i], cum);
    } else {
      absl::StrAppendFormat(&out, "ringlog_fsync_seconds_bucket{le=\"+Inf\"} %d\n", cum);
    }
  }
  absl::StrAppendFormat(&out, "ringlog_fsync_seconds_sum %.9f\nringlog_fsync_seconds_count %d\n",
                        c.fsync_seconds, cum);
  return out;
}

namespace {

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest sha256(absl::string_view s) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

// A user of --metrics_auth_file. The name is kept as a digest too, so that
// a request is checked against every user in the same time whatever it sends.
struct Credential {
  Digest user;
  Digest password;
};
using Credentials = std::vector<Credential>;

// The oldest OpenSSL error, for messages (no secret is in them: they name
// what OpenSSL could not parse or match).
std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// A file a flag names; a file that cannot be read is bad usage, named by
// the flag.
absl::StatusOr<std::string> read_whole(const std::string& flag, const std::string& path) {
  absl::StatusOr<std::string> text = read_whole_file(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--%s=%s: %s", flag, path, text.status().message()));
  }
  return text;
}

// "user:<64 hex digits>" lines, the hex being the SHA-256 of the password
// (`printf %s "$PASSWORD" | sha256sum`), so that the file holds no password;
// blank lines and lines starting with # are skipped. An error names the line
// by number, never by content.
absl::StatusOr<Credentials> read_credentials(const std::string& path) {
  absl::StatusOr<std::string> text = read_whole("metrics_auth_file", path);
  if (!text.ok()) return text.status();
  Credentials out;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++n;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.rfind(':');
    if (colon == 0 || colon == absl::string_view::npos || line.size() - colon - 1 != 64 ||
        !absl::c_all_of(line.substr(colon + 1), absl::ascii_isxdigit)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--metrics_auth_file=%s: line %d is not user:<SHA-256 of the password, 64 hex digits>",
          path, n));
    }
    const std::string digest = absl::HexStringToBytes(line.substr(colon + 1));
    Credential c;
    c.user = sha256(line.substr(0, colon));
    std::memcpy(c.password.data(), digest.data(), c.password.size());
    out.push_back(c);
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--metrics_auth_file=%s: no user in it", path));
  }
  return out;
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// A server context with the certificate chain and key, TLS 1.2 at least.
absl::StatusOr<SslCtxPtr> load_tls(const std::string& cert, const std::string& key) {
  for (const auto& [flag, path] : {std::pair{"metrics_tls_cert", cert}, {"metrics_tls_key", key}}) {
    if (absl::StatusOr<std::string> r = read_whole(flag, path); !r.ok()) return r.status();
  }
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return absl::InternalError("cannot make a TLS context: " + openssl_error());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--metrics_tls_cert=%s: not a PEM certificate: %s", cert, openssl_error()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--metrics_tls_key=%s: not a PEM private key (or not the certificate's): %s", key,
        openssl_error()));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--metrics_tls_key=%s is not the key of --metrics_tls_cert=%s", key, cert));
  }
  return ctx;
}

// "HOST:PORT", "PORT" or ":PORT" (127.0.0.1). Debian's civetweb is built
// without IPv6, so HOST is an IPv4 address (or localhost).
absl::Status parse_listen(const std::string& listen, std::string* host, int* port) {
  const size_t colon = listen.rfind(':');
  std::string h = colon == std::string::npos ? "" : listen.substr(0, colon);
  const std::string p = colon == std::string::npos ? listen : listen.substr(colon + 1);
  if (h.empty() || h == "localhost") h = "127.0.0.1";
  in_addr a;
  if (inet_pton(AF_INET, h.c_str(), &a) != 1 || !absl::SimpleAtoi(p, port) || *port < 0 ||
      *port > 65535) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--metrics_listen=%s must be HOST:PORT with an IPv4 HOST (0.0.0.0 for every "
        "interface), or PORT alone for 127.0.0.1",
        listen));
  }
  *host = h;
  return absl::OkStatus();
}

constexpr char kMetricsHeaders[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
    "Content-Length: %zu\r\nConnection: close\r\n\r\n";

}  // namespace

struct MetricsServer::Impl {
  MetricsOptions options;
  std::string host;
  int wanted_port = 0;
  Node* node = nullptr;
  mg_context* civetweb = nullptr;
  int port = 0;

  mutable std::mutex mu;
  std::shared_ptr<const Credentials> credentials;  // null: no auth
  std::shared_ptr<SSL_CTX> tls;                    // null: plain HTTP

  // The TLS front (when tls is set): its listening socket, the pipe that
  // wakes its acceptor to stop, and the sockets of the connections it relays.
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  int backend_port = 0;  // civetweb's, on 127.0.0.1
  std::thread acceptor;
  std::condition_variable relays_done;
  std::set<int> relay_fds;  // under mu
  int relays = 0;           // under mu
  bool stopping = false;    // under mu

  ~Impl();
  bool authorized(const mg_connection* conn) const;
  void accept_loop();
  void relay(int client);
  bool track(int fd);  // false once stopping
};

namespace {

// Prometheus scrapes with HTTP Basic authentication (basic_auth in its scrape
// config); civetweb's own authentication is HTTP Digest, so it is checked here.
int handle_metrics(mg_connection* conn, void* data) {
  auto* impl = static_cast<MetricsServer::Impl*>(data);
  if (!impl->authorized(conn)) {
    static constexpr char kBody[] = "authentication required\n";
    mg_printf(conn,
              "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ringlog\", "
              "charset=\"UTF-8\"\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n%s",
              sizeof kBody - 1, kBody);
    return 401;
  }
  const std::string body = MetricsServer::render(*impl->node);
  mg_printf(conn, kMetricsHeaders, body.size());
  mg_write(conn, body.data(), body.size());
  return 200;
}

// Writes all of `data` to a plain socket.
bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

constexpr int kMaxRelays = 16;        // concurrent TLS connections; more are closed
constexpr int kIdleTimeoutMs = 10000; // a connection quiet this long is closed

}  // namespace

bool MetricsServer::Impl::authorized(const mg_connection* conn) const {
  std::shared_ptr<const Credentials> users;
  {
    std::lock_guard l(mu);
    users = credentials;
  }
  if (users == nullptr) return true;
  const char* header = mg_get_header(conn, "Authorization");
  if (header == nullptr) return false;
  absl::string_view h = absl::StripAsciiWhitespace(header);
  if (h.size() < 6 || !absl::EqualsIgnoreCase(h.substr(0, 6), "basic ")) return false;
  std::string decoded;
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(h.substr(6)), &decoded)) return false;
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return false;
  const Digest user = sha256(absl::string_view(decoded).substr(0, colon));
  const Digest password = sha256(absl::string_view(decoded).substr(colon + 1));
  OPENSSL_cleanse(decoded.data(), decoded.size());
  // Every user is compared, in constant time, so the time taken tells
  // nothing of which user or how much of a password matched.
  bool ok = false;
  for (const Credential& c : *users) {
    const bool match = (CRYPTO_memcmp(c.user.data(), user.data(), user.size()) == 0) &
                       (CRYPTO_memcmp(c.password.data(), password.data(), password.size()) == 0);
    ok = ok | match;
  }
  return ok;
}

// Debian's civetweb 1.15 loads OpenSSL with dlopen("libssl.so") and is built
// for OpenSSL 1.1's names: with OpenSSL 3 it finds no SSL_get_peer_certificate
// (a macro there) and calls a null pointer on every HTTPS connection, ending
// the process; and "libssl.so" exists only where libssl-dev is installed. So
// civetweb serves plain HTTP on 127.0.0.1 only, and this front, with OpenSSL
// linked normally, terminates TLS and relays each connection to it.
void MetricsServer::Impl::accept_loop() {
  for (;;) {
    pollfd p[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR) return;
    if (p[1].revents != 0) return;
    if ((p[0].revents & POLLIN) == 0) continue;
    const int client = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      // Out of descriptors, the pending connection stays and poll() would
      // return at once: give others time to close some (a stop still wakes it).
      if (errno == EMFILE || errno == ENFILE) poll(&p[1], 1, 100);
      continue;
    }
    {
      std::lock_guard l(mu);
      if (stopping || relays >= kMaxRelays) {
        close(client);
        continue;
      }
      ++relays;
      relay_fds.insert(client);
    }
    std::thread([this, client] { relay(client); }).detach();
  }
}

bool MetricsServer::Impl::track(int fd) {
  std::lock_guard l(mu);
  if (stopping) return false;
  relay_fds.insert(fd);
  return true;
}

void MetricsServer::Impl::relay(int client) {
  timeval t{kIdleTimeoutMs / 1000, 0};
  setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
  setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
  std::shared_ptr<SSL_CTX> ctx;
  {
    std::lock_guard l(mu);
    ctx = tls;
  }
  SSL* ssl = SSL_new(ctx.get());
  int backend = -1;
  if (ssl != nullptr && SSL_set_fd(ssl, client) == 1 && SSL_accept(ssl) == 1) {
    backend = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(backend_port));
    if (backend >= 0 && track(backend) &&
        connect(backend, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      char buf[16384];
      for (bool open = true; open;) {
        if (SSL_pending(ssl) == 0) {
          pollfd p[2] = {{client, POLLIN, 0}, {backend, POLLIN, 0}};
          if (poll(p, 2, kIdleTimeoutMs) <= 0) break;
          if (p[1].revents != 0) {
            const ssize_t n = read(backend, buf, sizeof buf);
            open = n > 0 && SSL_write(ssl, buf, static_cast<int>(n)) == n;
            if (!open && n == 0) SSL_shutdown(ssl);  // civetweb closed: the answer is whole
            continue;
          }
          if (p[0].revents == 0) continue;
        }
        const int n = SSL_read(ssl, buf, sizeof buf);
        open = n > 0 && write_all(backend, buf, static_cast<size_t>(n));
      }
    }
  }
  SSL_free(ssl);
  std::lock_guard l(mu);
  for (int fd : {client, backend}) {
    if (fd < 0) continue;
    relay_fds.erase(fd);
    close(fd);
  }
  --relays;
  relays_done.notify_all();  // under mu: the destructor cannot go before this returns
}

MetricsServer::Impl::~Impl() {
  if (acceptor.joinable()) {
    (void)!write(wake[1], "x", 1);
    acceptor.join();
  }
  {
    std::unique_lock l(mu);
    stopping = true;
    // Ends the relays' reads and writes at once.
    for (int fd : relay_fds) shutdown(fd, SHUT_RDWR);
    relays_done.wait(l, [&] { return relays == 0; });
  }
  for (int fd : {listen_fd, wake[0], wake[1]}) {
    if (fd >= 0) close(fd);
  }
  if (civetweb != nullptr) mg_stop(civetweb);
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Create(const MetricsOptions& o) {
  auto impl = std::make_unique<Impl>();
  impl->options = o;
  if (absl::Status s = parse_listen(o.listen, &impl->host, &impl->wanted_port); !s.ok()) return s;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--metrics_tls_cert and --metrics_tls_key go together: give both or neither");
  }
  std::unique_ptr<MetricsServer> m(new MetricsServer(std::move(impl)));
  if (absl::Status s = m->reload(); !s.ok()) return s;
  return m;
}

absl::Status MetricsServer::reload() {
  const MetricsOptions& o = impl_->options;
  std::shared_ptr<const Credentials> users;
  if (!o.auth_file.empty()) {
    absl::StatusOr<Credentials> c = read_credentials(o.auth_file);
    if (!c.ok()) return c.status();
    users = std::make_shared<const Credentials>(std::move(*c));
  }
  std::shared_ptr<SSL_CTX> tls;
  if (!o.tls_cert.empty()) {
    absl::StatusOr<SslCtxPtr> ctx = load_tls(o.tls_cert, o.tls_key);
    if (!ctx.ok()) return ctx.status();
    tls = std::shared_ptr<SSL_CTX>(std::move(*ctx));
  }
  std::lock_guard l(impl_->mu);
  impl_->credentials = std::move(users);
  impl_->tls = std::move(tls);
  return absl::OkStatus();
}

absl::Status MetricsServer::Start(Node* node) {
  Impl& m = *impl_;
  m.node = node;
  std::call_once(g_init, [] { mg_init_library(0); });
  const bool tls = !m.options.tls_cert.empty();
  const std::string civetweb_listen =
      tls ? "127.0.0.1:0" : absl::StrCat(m.host, ":", m.wanted_port);
  const char* options[] = {"listening_ports", civetweb_listen.c_str(), "num_threads", "2", nullptr};
  mg_callbacks cb;
  std::memset(&cb, 0, sizeof cb);
  m.civetweb = mg_start(&cb, nullptr, options);
  const std::string where = absl::StrCat(m.host, ":", m.wanted_port);
  if (m.civetweb == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", tls ? "127.0.0.1:0 (behind TLS)" : where,
        ": the port is in use or the address is not this host's"));
  }
  mg_set_request_handler(m.civetweb, "/metrics", handle_metrics, &m);
  mg_server_port ports[4];
  const int n = mg_get_server_ports(m.civetweb, 4, ports);
  m.port = n > 0 ? ports[0].port : 0;
  if (!tls) return absl::OkStatus();

  m.backend_port = m.port;
  m.port = 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(m.wanted_port));
  inet_pton(AF_INET, m.host.c_str(), &a.sin_addr);
  m.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(m.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  socklen_t len = sizeof a;
  if (m.listen_fd < 0 || bind(m.listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      listen(m.listen_fd, 64) != 0 ||
      getsockname(m.listen_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
      pipe2(m.wake, O_CLOEXEC) != 0) {
    const int e = errno;
    mg_stop(m.civetweb);  // it must not serve the node past this failure
    m.civetweb = nullptr;
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", where, ": ", std::strerror(e)));
  }
  m.port = ntohs(a.sin_port);
  m.acceptor = std::thread([&m] { m.accept_loop(); });
  return absl::OkStatus();
}

int MetricsServer::port() const { return impl_->port; }

std::string MetricsServer::url() const {
  return absl::StrCat(impl_->options.tls_cert.empty() ? "http://" : "https://", impl_->host, ":",
                      impl_->port, "/metrics");
}

}  // namespace ringlog
