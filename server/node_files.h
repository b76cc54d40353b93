// The node's own files in its data directory, beside the log:
//
//   NODE_ID  the node's id, made on first start
//   ROLE     "primary", or "replica HOST:PORT" (an empty address: fenced
//            before it knew whom to follow); the role across restarts,
//            which wins over the flags once a promotion or failover set it
//
// ROLE is replaced whole (written aside, then renamed).
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace ringlog {

enum class Role { kPrimary, kReplica };

struct SavedRole {
  Role role = Role::kPrimary;
  std::string primary;
};

// OK when `id` can be a node id (1 to 128 printable characters, no spaces).
absl::Status check_node_id(const std::string& id);
// The id in NODE_ID, made and written there when there is none;
// FAILED_PRECONDITION naming the file and what to do when it holds no id.
absl::StatusOr<std::string> load_node_id(const std::string& dir);
// The role in ROLE, nullopt without one; FAILED_PRECONDITION naming the
// file and what to do when it holds something else.
absl::StatusOr<std::optional<SavedRole>> load_role(const std::string& dir);
void save_role(const std::string& dir, Role role, const std::string& primary);

}  // namespace ringlog
