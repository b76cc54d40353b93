// The metrics endpoint's security: where it listens, TLS, and HTTP Basic
// authentication, against a real ringlogd. The HTTP client is a socket (and
// OpenSSL for HTTPS, verifying the node's certificate), so that the tests see
// status lines and headers exactly as sent; the certificate is made here, a
// throwaway self-signed one for 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "harness.h"

namespace ringlog::testing {
namespace {

struct HttpReply {
  int status = 0;  // 0: no HTTP answer (connection refused, closed, or TLS failed)
  std::string head;
  std::string body;
};

// GET `path` from 127.0.0.1:port, with `authorization` as that header unless
// empty; over TLS when `tls` is set (it verifies the server's certificate).
HttpReply http_request(int port, const std::string& path, const std::string& authorization,
                       SSL_CTX* tls = nullptr) {
  HttpReply reply;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval t{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &t, sizeof t);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return reply;
  }
  SSL* ssl = nullptr;
  if (tls != nullptr) {
    ssl = SSL_new(tls);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
      SSL_free(ssl);
      close(fd);
      return reply;
    }
  }
  std::string req = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  if (!authorization.empty()) absl::StrAppend(&req, "Authorization: ", authorization, "\r\n");
  req += "Connection: close\r\n\r\n";
  std::string resp;
  const bool sent = ssl != nullptr ? SSL_write(ssl, req.data(), static_cast<int>(req.size())) ==
                                         static_cast<int>(req.size())
                                   : write(fd, req.data(), req.size()) ==
                                         static_cast<ssize_t>(req.size());
  if (sent) {
    char buf[16384];
    for (;;) {
      const long n = ssl != nullptr ? SSL_read(ssl, buf, sizeof buf) : read(fd, buf, sizeof buf);
      if (n <= 0) break;
      resp.append(buf, static_cast<size_t>(n));
    }
  }
  if (ssl != nullptr) SSL_free(ssl);
  close(fd);
  const size_t end = resp.find("\r\n\r\n");
  int status = 0;
  if (end == std::string::npos || std::sscanf(resp.c_str(), "HTTP/1.%*d %d", &status) != 1) {
    return reply;
  }
  reply.status = status;
  reply.head = resp.substr(0, end);
  reply.body = resp.substr(end + 4);
  return reply;
}

std::string basic(const std::string& user, const std::string& password) {
  return "Basic " + absl::Base64Escape(user + ":" + password);
}

std::string sha256_hex(const std::string& s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(d), sizeof d));
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A P-256 key and a self-signed certificate for IP 127.0.0.1, as PEM files.
void make_certificate(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509* x = X509_new();
  ASSERT_NE(x, nullptr);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ringlog test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "IP:127.0.0.1");
  ASSERT_NE(san, nullptr);
  X509_add_ext(x, san, -1);
  X509_EXTENSION_free(san);
  ASSERT_GT(X509_sign(x, key, EVP_sha256()), 0);
  FILE* c = std::fopen(cert_path.c_str(), "w");
  FILE* k = std::fopen(key_path.c_str(), "w");
  ASSERT_TRUE(c != nullptr && k != nullptr);
  EXPECT_EQ(PEM_write_X509(c, x), 1);
  EXPECT_EQ(PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  std::fclose(c);
  std::fclose(k);
  X509_free(x);
  EVP_PKEY_free(key);
}

// A client context that trusts only `cert_path` and checks that the server
// is 127.0.0.1.
SSL_CTX* client_context(const std::string& cert_path) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_load_verify_locations(ctx, cert_path.c_str(), nullptr) != 1) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), "127.0.0.1");
  return ctx;
}

// The IPv4 address (in /proc/net/tcp's hex: 0100007F is 127.0.0.1) of the
// socket listening on `port`; "" when none is.
std::string listening_address(int port) {
  const std::string text = testkit::read_file("/proc/net/tcp");
  const std::string suffix = absl::StrFormat(":%04X", port);
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    // sl, local_address, rem_address, st (0A: LISTEN), ...
    if (f.size() > 3 && f[3] == "0A" && absl::EndsWith(f[1], suffix)) {
      return std::string(f[1].substr(0, f[1].size() - suffix.size()));
    }
  }
  return "";
}

class IntegrationMetrics : public NodeTest {
 protected:
  // The metrics port node `i` logged ("metrics on http(s)://... (port N)").
  int metrics_port(int i = 0) {
    return testkit::logged_metrics_port([&] { return output(i); }, absl::Seconds(30));
  }
  std::string path(const std::string& name) const { return dir() + "/" + name; }
};

constexpr char kLoopback[] = "0100007F";
constexpr char kAnyAddress[] = "00000000";

// A bare port (PORT or :PORT) listens on 127.0.0.1 only; every interface
// only when 0.0.0.0 is given.
TEST_F(IntegrationMetrics, BarePortListensOnLoopbackOnly) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"0", kLoopback}, {":0", kLoopback}, {"0.0.0.0:0", kAnyAddress}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& [listen, address] = cases[i];
    start_node({"--metrics_listen=" + listen}, static_cast<int>(i));
    const int port = metrics_port(static_cast<int>(i));
    ASSERT_GT(port, 0) << "no metrics port logged for --metrics_listen=" << listen;
    EXPECT_EQ(listening_address(port), address) << "--metrics_listen=" << listen;
    const HttpReply r = http_request(port, "/metrics", "");
    EXPECT_EQ(r.status, 200) << "--metrics_listen=" << listen;
    EXPECT_NE(r.body.find("ringlog_info{"), std::string::npos) << r.body;
  }
}

// With --metrics_auth_file: no credentials, a wrong password or an unknown
// user get 401 with the challenge Prometheus answers; the right ones the
// metrics.
TEST_F(IntegrationMetrics, BasicAuthenticationGuardsTheMetrics) {
  write_file(path("users"), absl::StrCat("# scrapers\n\nprometheus:", sha256_hex("s3cret pass"),
                                         "\nother:", sha256_hex("another"), "\n"));
  start_node({"--metrics_listen=127.0.0.1:0", "--metrics_auth_file=" + path("users")});
  const int port = metrics_port();
  ASSERT_GT(port, 0);

  for (const std::string& auth :
       {std::string(), basic("prometheus", "wrong"), basic("nobody", "s3cret pass"),
        basic("prometheus", "another"), std::string("Bearer s3cret pass")}) {
    const HttpReply r = http_request(port, "/metrics", auth);
    EXPECT_EQ(r.status, 401) << "Authorization: " << auth;
    EXPECT_NE(r.head.find("WWW-Authenticate: Basic realm=\"ringlog\""), std::string::npos)
        << r.head;
    EXPECT_EQ(r.body.find("ringlog_"), std::string::npos) << r.body;
  }
  for (const std::string& auth : {basic("prometheus", "s3cret pass"), basic("other", "another")}) {
    const HttpReply r = http_request(port, "/metrics", auth);
    EXPECT_EQ(r.status, 200) << "Authorization: " << auth;
    EXPECT_NE(r.body.find("ringlog_info{"), std::string::npos) << r.body;
  }
}

// With a certificate and key the endpoint speaks HTTPS only: a plain HTTP
// request gets no HTTP answer, and the node goes on serving HTTPS after it;
// the client verifies the certificate. Authentication works over TLS too.
TEST_F(IntegrationMetrics, TlsServesHttpsOnly) {
  make_certificate(path("cert.pem"), path("key.pem"));
  write_file(path("users"), absl::StrCat("prometheus:", sha256_hex("pw"), "\n"));
  start_node({"--metrics_listen=0", "--metrics_tls_cert=" + path("cert.pem"),
              "--metrics_tls_key=" + path("key.pem"), "--metrics_auth_file=" + path("users")});
  const int port = metrics_port();
  ASSERT_GT(port, 0);
  EXPECT_NE(output().find("metrics on https://127.0.0.1:"), std::string::npos) << output();
  EXPECT_EQ(listening_address(port), kLoopback);
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls(client_context(path("cert.pem")),
                                                        SSL_CTX_free);
  ASSERT_NE(tls, nullptr);

  for (int round = 0; round < 2; ++round) {
    const HttpReply plain = http_request(port, "/metrics", basic("prometheus", "pw"));
    EXPECT_EQ(plain.status, 0) << "plain HTTP answered: " << plain.head;
    EXPECT_EQ(plain.body.find("ringlog_"), std::string::npos);

    const HttpReply ok = http_request(port, "/metrics", basic("prometheus", "pw"), tls.get());
    EXPECT_EQ(ok.status, 200) << "round " << round;
    EXPECT_NE(ok.body.find("ringlog_info{"), std::string::npos) << ok.body;
    EXPECT_EQ(http_request(port, "/metrics", "", tls.get()).status, 401);
  }
  // A client that does not trust the certificate gets nowhere.
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> other(SSL_CTX_new(TLS_client_method()),
                                                          SSL_CTX_free);
  SSL_CTX_set_verify(other.get(), SSL_VERIFY_PEER, nullptr);
  EXPECT_EQ(http_request(port, "/metrics", basic("prometheus", "pw"), other.get()).status, 0);
  // Still running through all of it, and it stops cleanly.
  const absl::StatusOr<int> code = node().stop(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << output();
}

// A metrics file that cannot be used stops the node at start with exit
// status 2 (bad usage) and a message naming the flag, before the log is
// opened.
TEST_F(IntegrationMetrics, UnusableFilesAreBadUsage) {
  make_certificate(path("cert.pem"), path("key.pem"));
  make_certificate(path("other_cert.pem"), path("other_key.pem"));
  write_file(path("garbage"), "not PEM\n");
  write_file(path("plain_users"), "prometheus:s3cret\n");
  const std::string cert = "--metrics_tls_cert=" + path("cert.pem");
  const std::string key = "--metrics_tls_key=" + path("key.pem");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{cert}, "--metrics_tls_key"},
      {{"--metrics_tls_cert=" + path("missing.pem"), key}, "--metrics_tls_cert="},
      {{"--metrics_tls_cert=" + path("garbage"), key}, "--metrics_tls_cert="},
      {{cert, "--metrics_tls_key=" + path("garbage")}, "--metrics_tls_key="},
      {{cert, "--metrics_tls_key=" + path("other_key.pem")}, "--metrics_tls_key="},
      {{"--metrics_auth_file=" + path("plain_users")}, "--metrics_auth_file="},
      {{"--metrics_auth_file=" + path("missing")}, "--metrics_auth_file="},
      {{}, "--metrics_listen="},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<std::string> argv = {kRinglogd, "--data_dir=" + path("data" + std::to_string(i)),
                                     "--listen=127.0.0.1:0",
                                     i + 1 == cases.size() ? "--metrics_listen=example.com:9400"
                                                           : "--metrics_listen=0"};
    argv.insert(argv.end(), cases[i].first.begin(), cases[i].first.end());
    const CommandResult r = run_command(argv, {.merge_output = true});
    EXPECT_EQ(r.exit_code, 2) << "case " << i << ":\n" << r.out;
    EXPECT_NE(r.out.find(cases[i].second), std::string::npos) << "case " << i << ":\n" << r.out;
    EXPECT_EQ(r.out.find("s3cret"), std::string::npos) << "a password in the message:\n" << r.out;
    EXPECT_EQ(access(path("data" + std::to_string(i)).c_str(), F_OK), -1)
        << "case " << i << ": the log was opened";
  }
}

}  // namespace
}  // namespace ringlog::testing
