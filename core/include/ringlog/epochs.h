// The epoch history of a node: (epoch, start offset) pairs, like Kafka's
// leader-epoch checkpoint. Kept in <data_dir>/EPOCHS, replaced atomically
// (write a temporary file, fsync, rename, fsync the directory).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ringlog {

struct EpochEntry {
  uint64_t epoch = 0;
  uint64_t start_offset = 0;
  friend bool operator==(const EpochEntry&, const EpochEntry&) = default;
};

class EpochHistory {
 public:
  // Loads <dir>/EPOCHS; a missing file is a fresh history: epoch 0 from offset 0.
  static absl::StatusOr<EpochHistory> Load(const std::string& dir);

  const std::vector<EpochEntry>& entries() const { return entries_; }
  uint64_t current() const { return entries_.back().epoch; }

  // Appends (epoch, start_offset) and saves. epoch must be above current().
  absl::Status append(uint64_t epoch, uint64_t start_offset);
  // Replaces the history (a replica adopting its primary's) and saves.
  absl::Status replace(std::vector<EpochEntry> entries);
  // Drops entries that start after `offset` (the log was truncated there) and saves.
  absl::Status truncate_after(uint64_t offset);

  // The end offset of `epoch` in this history given a log that ends at
  // `log_end`: where the next epoch starts, or log_end for the last one.
  // For an epoch this history does not have, the start of the first later
  // epoch (the divergence point), or log_end.
  uint64_t end_of(uint64_t epoch, uint64_t log_end) const;

 private:
  explicit EpochHistory(std::string path) : path_(std::move(path)) {}
  absl::Status save() const;

  std::string path_;
  std::vector<EpochEntry> entries_;
};

}  // namespace ringlog
