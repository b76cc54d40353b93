#include "divergence.h"

#include <algorithm>

namespace ringlog {

absl::StatusOr<uint64_t> divergence_point(const std::vector<EpochEntry>& p, uint64_t primary_end,
                                          const std::vector<EpochEntry>& r, uint64_t replica_end) {
  size_t k = 0;
  while (k < r.size() && k < p.size() && r[k] == p[k]) ++k;
  if (k == 0) {
    if (replica_end == 0) return 0;
    return absl::FailedPreconditionError(
        "the replica's epoch history shares no epoch with this primary's: it holds another log");
  }
  // Both logs hold the same records up to the end of the last shared epoch,
  // as each of them knows it.
  const uint64_t primary_epoch_end = k < p.size() ? p[k].start_offset : primary_end;
  const uint64_t replica_epoch_end = k < r.size() ? r[k].start_offset : replica_end;
  return std::min({replica_end, primary_epoch_end, replica_epoch_end});
}

}  // namespace ringlog
