// The log's checkpoint: what recovery must find again. Kept in
// <dir>/CHECKPOINT, next to the segments, as Kafka keeps its high-watermark
// and log-start checkpoints.
//
// A scan of the segments alone cannot tell a torn tail (records a crash cut
// short, never synced, safe to drop) from records that were synced, served
// and acknowledged and then damaged or deleted. The checkpoint remembers
// where the log started (retention), the newest segment made, how far it was
// durable and how far it was committed; recovery compares the files with it
// (log_recovery.cc).
//
// File: two 64-byte slots, written in turn (one pwrite each), so a write cut
// short leaves the other slot whole. Each slot, little-endian:
//
//   0  magic "RLCK"       4  u16 version (1)   6  u16 reserved (0)
//   8  u64 generation    16  u64 start_offset  24  u64 last_base
//  32  u64 durable_offset 40 u64 committed_offset
//  48  12 bytes reserved (0)                   60  u32 crc32c of bytes 0..59
//
// The slot with the higher generation among the valid ones is the state.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ringlog::internal {

inline constexpr char kCheckpointName[] = "CHECKPOINT";

struct CheckpointState {
  uint64_t start_offset = 0;      // the log's first offset; retention moves it
  uint64_t last_base = 0;         // base offset of the newest segment
  uint64_t durable_offset = 0;    // every record below was durable here
  uint64_t committed_offset = 0;  // every record below was committed (acknowledged)
  // Where the log must reach at open: below it, a missing record was durable
  // or acknowledged, so it is lost, not a torn tail.
  uint64_t owed_offset() const noexcept { return std::max(durable_offset, committed_offset); }
  bool operator==(const CheckpointState&) const = default;
};

class LogCheckpoint {
 public:
  // Opens (creating when `writable`) <dir>/CHECKPOINT. `loaded` is the state
  // found, nullopt when there was none (a new log, or one made before the
  // checkpoint existed) or neither slot is valid (`damaged` then says so).
  static absl::StatusOr<LogCheckpoint> Open(const std::string& dir, bool writable);
  LogCheckpoint(LogCheckpoint&&) noexcept;
  LogCheckpoint& operator=(LogCheckpoint&&) noexcept;
  ~LogCheckpoint();

  const std::optional<CheckpointState>& loaded() const { return loaded_; }
  bool damaged() const { return damaged_; }
  const std::string& path() const { return path_; }

  // Writes `s` to the older slot; fdatasync when `sync`.
  absl::Status write(const CheckpointState& s, bool sync);

 private:
  LogCheckpoint() = default;
  std::string path_;
  int fd_ = -1;
  uint64_t generation_ = 0;
  std::optional<CheckpointState> loaded_;
  bool damaged_ = false;
};

}  // namespace ringlog::internal
