// Where a replica's log leaves the primary's history.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "ringlog/epochs.h"

namespace ringlog {

// The offset at which a replica with epoch history `replica` and log end
// `replica_end` must cut its log to follow a primary with history `primary`
// and log end `primary_end`: the end of the last epoch both histories share,
// as both logs know it. FAILED_PRECONDITION when they share none (another
// log), unless the replica's log is empty.
absl::StatusOr<uint64_t> divergence_point(const std::vector<EpochEntry>& primary,
                                          uint64_t primary_end,
                                          const std::vector<EpochEntry>& replica,
                                          uint64_t replica_end);

}  // namespace ringlog
