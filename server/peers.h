// Asking other nodes of the cluster for their status.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ringlog/v1/ringlog.pb.h"

namespace ringlog {

struct PeerStatus {
  std::string address;
  v1::NodeStatus status;
};

// Queries every address in parallel, each within `timeout`; returns the ones
// that answered, except the node whose id is `self_id`. Blocks: call it from
// a thread of our own, never from a gRPC callback.
std::vector<PeerStatus> query_peers(const std::vector<std::string>& addresses,
                                    const std::string& self_id, absl::Duration timeout);

}  // namespace ringlog
