#include "kit/pki.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ringlog::testkit {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
  void operator()(SSL* p) const { SSL_free(p); }
};
template <class T>
using Owned = std::unique_ptr<T, Free>;

[[noreturn]] void fail(const std::string& what) {
  char buf[256] = "";
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  throw std::runtime_error(absl::StrCat("pki: ", what, ": ", buf));
}

Owned<EVP_PKEY> new_key() {
  Owned<EVP_PKEY> k(EVP_EC_gen("P-256"));
  if (!k) fail("EC key");
  return k;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  Owned<BIO> b(BIO_new_file(path.c_str(), "w"));
  if (!b) fail("cannot write " + path);
  const int ok = cert != nullptr ? PEM_write_bio_X509(b.get(), cert)
                                 : PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0,
                                                            nullptr, nullptr);
  if (ok != 1) fail("cannot write " + path);
}

Owned<X509> read_cert(const std::string& path) {
  Owned<BIO> b(BIO_new_file(path.c_str(), "r"));
  if (!b) fail("cannot read " + path);
  Owned<X509> c(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
  if (!c) fail("cannot read " + path);
  return c;
}

Owned<EVP_PKEY> read_key(const std::string& path) {
  Owned<BIO> b(BIO_new_file(path.c_str(), "r"));
  if (!b) fail("cannot read " + path);
  Owned<EVP_PKEY> k(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
  if (!k) fail("cannot read " + path);
  return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Owned<X509_EXTENSION> e(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!e || X509_add_ext(cert, e.get(), -1) != 1) fail("extension " + value);
}

// A certificate for `key` named `cn`, signed by `issuer_key` (self-signed
// when `issuer` is null).
Owned<X509> make_cert(EVP_PKEY* key, const std::string& cn, long serial, X509* issuer,
                      EVP_PKEY* issuer_key, const CertSpec* leaf) {
  Owned<X509> c(X509_new());
  if (!c) fail("X509_new");
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), serial);
  const long day = 24 * 3600;
  if (leaf != nullptr && leaf->expired) {
    X509_gmtime_adj(X509_getm_notBefore(c.get()), -2 * day);
    X509_gmtime_adj(X509_getm_notAfter(c.get()), -day);
  } else {
    X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);  // clocks a little apart
    X509_gmtime_adj(X509_getm_notAfter(c.get()), 30 * day);
  }
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ringlog tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  if (X509_set_pubkey(c.get(), key) != 1) fail("X509_set_pubkey");
  X509* signer = issuer != nullptr ? issuer : c.get();
  add_ext(c.get(), signer, NID_subject_key_identifier, "hash");
  if (leaf == nullptr) {
    add_ext(c.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(c.get(), signer, NID_authority_key_identifier, "keyid");
    add_ext(c.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c.get(), signer, NID_key_usage, "critical,digitalSignature");
    std::vector<std::string> eku;
    if (leaf->server_auth) eku.push_back("serverAuth");
    if (leaf->client_auth) eku.push_back("clientAuth");
    if (!eku.empty()) add_ext(c.get(), signer, NID_ext_key_usage, absl::StrJoin(eku, ","));
    std::vector<std::string> san;
    for (const std::string& d : leaf->dns) san.push_back("DNS:" + d);
    for (const std::string& i : leaf->ips) san.push_back("IP:" + i);
    if (!san.empty()) add_ext(c.get(), signer, NID_subject_alt_name, absl::StrJoin(san, ","));
  }
  if (X509_sign(c.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    fail("X509_sign");
  }
  return c;
}

void make_ca(const std::string& dir, const std::string& name, std::string* cert_path,
             std::string* key_path) {
  *cert_path = dir + "/" + name + ".pem";
  *key_path = dir + "/" + name + ".key";
  Owned<EVP_PKEY> k = new_key();
  Owned<X509> c = make_cert(k.get(), name, 1, nullptr, nullptr, nullptr);
  write_pem(*cert_path, c.get(), nullptr);
  write_pem(*key_path, nullptr, k.get());
}

}  // namespace

Pki::Pki(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("pki: cannot create " + dir_ + ": " + ec.message());
  make_ca(dir_, "ca", &ca_, &ca_key_);
  make_ca(dir_, "other-ca", &other_ca_, &other_ca_key_);
}

CertFiles Pki::node(const std::string& name) {
  CertSpec s;
  s.common_name = name;
  s.dns = {"localhost"};
  s.ips = {"127.0.0.1"};
  return issue(s);
}

CertFiles Pki::client(const std::string& name) {
  CertSpec s;
  s.common_name = name;
  s.dns = {name};
  s.server_auth = false;
  return issue(s);
}

CertFiles Pki::issue(const CertSpec& spec) {
  const long serial = ++serial_;
  CertFiles out{absl::StrCat(dir_, "/", spec.common_name, "-", serial, ".pem"),
                absl::StrCat(dir_, "/", spec.common_name, "-", serial, ".key")};
  Owned<X509> ca = read_cert(spec.other_ca ? other_ca_ : ca_);
  Owned<EVP_PKEY> ca_key = read_key(spec.other_ca ? other_ca_key_ : ca_key_);
  Owned<EVP_PKEY> k = new_key();
  Owned<X509> c = make_cert(k.get(), spec.common_name, serial, ca.get(), ca_key.get(), &spec);
  write_pem(out.cert, c.get(), nullptr);
  write_pem(out.key, nullptr, k.get());
  return out;
}

absl::StatusOr<std::string> peer_certificate_cn(int port) {
  Owned<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return absl::InternalError("SSL_CTX_new");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket");
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  // A bounded handshake: a node that stops answering fails the look, not the test.
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot connect to port ", port));
  }
  Owned<SSL> ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  SSL_set_tlsext_host_name(ssl.get(), "localhost");
  if (SSL_connect(ssl.get()) != 1) {
    ERR_clear_error();
    return absl::UnavailableError(absl::StrCat("no TLS handshake on port ", port));
  }
  X509* peer = SSL_get0_peer_certificate(ssl.get());
  if (peer == nullptr) return absl::NotFoundError("the server showed no certificate");
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
  SSL_shutdown(ssl.get());
  return std::string(cn);
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
  }
}

}  // namespace ringlog::testkit
