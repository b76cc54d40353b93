// A position in the log, and a cell that one thread stores it in and any
// thread loads it from whole.
//
//   AtomicPosition end;                   // a member of the log
//   end.store(LogPosition{4096, 17});     // the one thread that moves it
//   LogPosition p = end.load();           // any thread: offset and seq of one moment
#pragma once

#include <atomic>
#include <cstdint>

namespace ringlog {

// A position in the log: byte offset (record bytes only) and event seq.
struct LogPosition {
  uint64_t offset = 0;
  uint64_t seq = 0;
  friend bool operator==(const LogPosition&, const LogPosition&) = default;
};

// A position that one thread stores and any thread loads whole: a seqlock
// keeps the offset and seq of one moment together.
class AtomicPosition {
 public:
  // One thread only (the one that owns the position).
  void store(LogPosition p) noexcept;
  // Any thread.
  LogPosition load() const noexcept;

 private:
  std::atomic<uint64_t> version_{0};
  std::atomic<uint64_t> offset_{0};
  std::atomic<uint64_t> seq_{0};
};

}  // namespace ringlog
