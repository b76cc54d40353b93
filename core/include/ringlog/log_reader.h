// Reads events in order from a position, following a SegmentedLog across its
// segments, either one event at a time or in slices of whole records.
//
//   ringlog::LogReader reader(log, log.start());
//   while (auto ev = reader.next(log.end().offset)) use(*ev);
//
// Threads: one thread per reader; many readers may run beside the log's writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "ringlog/event.h"
#include "ringlog/log_position.h"
#include "ringlog/segmented_log.h"

namespace ringlog {

class LogReader {
 public:
  LogReader(const SegmentedLog& log, LogPosition from) : log_(&log), pos_(from) {}

  // The next record before `limit_offset`, or nullopt (nothing yet, or an
  // error: see status()). The view stays valid while this reader lives.
  std::optional<EventView> next(uint64_t limit_offset);
  // The record next() would return, without moving past it.
  std::optional<EventView> peek(uint64_t limit_offset);
  // Like SegmentedLog::read, from this reader's position, and moves past it.
  std::optional<LogSlice> next_slice(uint64_t limit_offset, size_t max_bytes);

  // After the last record handed out.
  LogPosition position() const noexcept { return pos_; }
  const absl::Status& status() const noexcept { return status_; }

 private:
  const SegmentedLog* log_;
  LogPosition pos_;
  LogSlice slice_;         // fetched, partly handed out by next()
  size_t slice_used_ = 0;  // bytes of slice_ handed out
  absl::Status status_;
};

}  // namespace ringlog
