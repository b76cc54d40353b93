// A throwaway PKI made at test time in a test's own directory: a CA, node
// and client certificates it signed, an unrelated CA whose certificates no
// node trusts, expired certificates. EC P-256 keys, made with OpenSSL's
// library in a few milliseconds each.
//
//   testkit::Pki pki(dir.path() + "/pki");
//   testkit::CertFiles n = pki.node("node1");     // SAN localhost, 127.0.0.1
//   testkit::CertFiles c = pki.client("app");     // CN=app, clientAuth
//   nodes.start("p", kRinglogd, {"--tls_cert=" + n.cert, "--tls_key=" + n.key,
//                                "--tls_client_ca=" + pki.ca()});
//
// Also: the certificate a TLS port shows to a new connection, read by a
// small OpenSSL client (to see a rotated certificate).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ringlog::testkit {

// A certificate and its private key, as PEM file paths.
struct CertFiles {
  std::string cert;
  std::string key;
};

struct CertSpec {
  std::string common_name;
  std::vector<std::string> dns;  // subjectAltName DNS entries
  std::vector<std::string> ips;  // subjectAltName IP entries
  bool server_auth = true;       // extendedKeyUsage serverAuth
  bool client_auth = true;       // extendedKeyUsage clientAuth
  bool other_ca = false;         // signed by other_ca(), which nodes do not trust
  bool expired = false;          // valid for a day that ended yesterday
};

class Pki {
 public:
  // Makes `dir` (and missing parents) and both CAs in it. Throws
  // std::runtime_error on failure.
  explicit Pki(std::string dir);

  const std::string& ca() const { return ca_; }              // the trusted CA's certificate
  const std::string& other_ca() const { return other_ca_; }  // an unrelated CA's

  // A node's certificate: CN=name, SAN DNS:localhost and IP:127.0.0.1, for
  // both serving and calling other nodes.
  CertFiles node(const std::string& name);
  // A client certificate: CN=name (and SAN DNS:name), clientAuth only.
  CertFiles client(const std::string& name);
  // Anything else; files <dir>/<common_name>-<serial>.{pem,key}.
  CertFiles issue(const CertSpec& spec);

 private:
  std::string dir_;
  std::string ca_, ca_key_, other_ca_, other_ca_key_;
  long serial_ = 1;
};

// The subject common name of the certificate the TLS server at
// 127.0.0.1:`port` shows a new connection (not verified; ALPN h2, as gRPC
// clients offer).
absl::StatusOr<std::string> peer_certificate_cn(int port);

// Writes `text` to `path` whole (a new file under a temporary name, then
// renamed over it), so a node reading it never sees half of it. Throws
// std::runtime_error on failure.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace ringlog::testkit
