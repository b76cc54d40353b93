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

absl::StatusOr<std::string> load_node_id(const std::string& dir);
std::optional<SavedRole> load_role(const std::string& dir);
void save_role(const std::string& dir, Role role, const std::string& primary);

}  // namespace ringlog
