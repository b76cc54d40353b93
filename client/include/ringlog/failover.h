// Failover by hand or by a coordinator: making one node the primary of a new
// epoch in the order that loses nothing acknowledged. `ringlogctl promote
// --nodes` calls it and prints the steps; an automatic coordinator runs the
// same.
//
//   ringlog::FailoverOptions o;
//   o.nodes = {"10.0.0.1:7400", "10.0.0.2:7400", "10.0.0.3:7400"};
//   ringlog::FailoverResult r = ringlog::fail_over_to("10.0.0.2:7400", o);
//   for (const ringlog::FailoverStep& s : r.steps) log(s);  // what was done, in order
//   if (!r.status.ok()) ...  // refused (nothing moved, or moved back) or failed
//
// The order, and why:
//  1. Every node's status is read. The failover is refused before anyone
//     moves when the node is already the primary, or when a replica has a
//     longer log than the node (it may hold acknowledged records the node
//     lacks), unless `force`. A node that does not answer is skipped.
//  2. The other replicas are pointed at the node first, so that the old
//     primary, if it is alive, can no longer commit what the node lacks.
//  3. The node is promoted (Admin.Promote, told the other nodes as peers to
//     check again). If it refuses, the replicas are pointed back at the
//     primary each followed before.
//  4. The old primary, if it answered, is told to follow the node.
//
// Blocking; any thread. Each call to a node has a deadline.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ringlog {

struct FailoverStep {
  enum class Kind {
    kSkipped,            // `node` did not answer its status (`status` says why): left out
    kPointed,            // replica `node` pointed at `primary`, before the promotion
    kPromoted,           // `node` promoted: `epoch` from `start_offset`, in `took`
    kPointedBack,        // the promotion failed: replica `node` pointed back at `primary`
    kOldPrimaryFollows,  // the old primary `node` told to follow `primary`
  };
  Kind kind = Kind::kSkipped;
  std::string node;
  std::string primary;  // whom `node` was pointed at
  absl::Status status;  // how the step went
  uint64_t epoch = 0;   // kPromoted: the new epoch
  uint64_t start_offset = 0;
  absl::Duration took;
};

struct FailoverOptions {
  // The cluster, HOST:PORT (the node to promote may be among them). Empty:
  // only the node itself is checked and promoted.
  std::vector<std::string> nodes;
  // Promote even if a replica has a longer log, or the node is already the
  // primary (it then starts a new epoch).
  bool force = false;
  absl::Duration status_timeout = absl::Seconds(2);
  absl::Duration command_timeout = absl::Seconds(10);  // Admin.Follow, Admin.Promote
  // Called with each step as it is done (before it is added to the result).
  std::function<void(const FailoverStep&)> on_step;
};

struct FailoverResult {
  // OK: `node` is the primary of `epoch`. Otherwise why not; a refusal from
  // the node itself may carry a redirect (ringlog/redirect.h).
  absl::Status status;
  std::vector<FailoverStep> steps;  // in the order done
  uint64_t epoch = 0;
  uint64_t start_offset = 0;
};

FailoverResult fail_over_to(const std::string& node, const FailoverOptions& options);

// Admin.Follow: points `node` at `primary` (a primary steps down first).
// `force` allows cutting records the node knows were committed. `node`
// refuses a `primary` that answers and is not a primary, unless
// `to_be_promoted` (a failover points the replicas at the node it promotes
// next). Returns the node's epoch.
absl::StatusOr<uint64_t> point_at(const std::string& node, const std::string& primary, bool force,
                                  absl::Duration timeout = absl::Seconds(10),
                                  bool to_be_promoted = false);

}  // namespace ringlog
