// The Prometheus text endpoint (--metrics_listen): GET /metrics.
//
// Served by civetweb (Debian's libcivetweb), on its own threads; each scrape
// reads the node's counters and positions, which are atomics or short locks.
// With a certificate and key it is served over TLS, terminated here with
// OpenSSL in front of civetweb (metrics.cc says why); with a credentials file
// each request needs HTTP Basic authentication, as Prometheus sends it.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "node.h"

namespace ringlog {

struct MetricsOptions {
  // "HOST:PORT" (HOST an IPv4 address or localhost), or "PORT" / ":PORT" for
  // 127.0.0.1:PORT: the endpoint is reachable from other hosts only when an
  // address such as 0.0.0.0 is given. Port 0 picks one.
  std::string listen;
  std::string tls_cert;   // PEM certificate (chain); with tls_key, HTTPS only
  std::string tls_key;    // PEM private key
  std::string auth_file;  // "user:<sha256 hex of the password>" lines; "": no auth
};

class MetricsServer {
 public:
  // Checks the options and reads the files (nothing listens yet):
  // InvalidArgument naming the flag when one is wrong, so that a node with a
  // bad metrics setting stops before it opens its log.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Create(const MetricsOptions& options);
  ~MetricsServer();

  // Serves `node`'s metrics; Unavailable when the address cannot be bound.
  absl::Status Start(Node* node);
  // Reads the credentials file, certificate and key again (e.g. on SIGHUP).
  // On an error the ones in use stay, and the error says what is wrong.
  absl::Status reload();

  int port() const;        // once started
  std::string url() const; // http(s)://HOST:PORT/metrics, once started

  // The exposition text (also used by tests without HTTP).
  static std::string render(Node& node);

  struct Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringlog
