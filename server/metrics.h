// The Prometheus text endpoint (--metrics_listen): GET /metrics.
//
// Served by civetweb (Debian's libcivetweb), on its own threads; each scrape
// reads the node's counters and positions, which are atomics or short locks.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "node.h"

struct mg_context;

namespace ringlog {

class MetricsServer {
 public:
  // Listens on `listen` ("HOST:PORT"; port 0 picks one).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(Node* node, const std::string& listen);
  ~MetricsServer();
  int port() const { return port_; }

  // The exposition text (also used by tests without HTTP).
  static std::string render(Node& node);

 private:
  MetricsServer() = default;
  mg_context* ctx_ = nullptr;
  Node* node_ = nullptr;
  int port_ = 0;
};

}  // namespace ringlog
