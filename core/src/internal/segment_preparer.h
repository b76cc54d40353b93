// SegmentPreparer: the segmented log's background thread, which creates and
// preallocates the next segment file before the writer needs it, and asks
// the kernel to bring the pages the writer is about to fill into the page
// cache.
//
// Threads: the log's writer thread calls every method; the preparer's own
// thread runs loop(). mu_ guards the fields from wanted_ to warmed_.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "internal/segment.h"

namespace ringlog {

class SegmentPreparer {
 public:
  // Starts the thread, preparing files of `segment_bytes` in `dir` and
  // warming `active` (the log's active segment).
  SegmentPreparer(std::string dir, uint64_t segment_bytes, uint32_t index_interval,
                  std::shared_ptr<Segment> active);
  // Stops the thread and deletes a prepared file that was never taken.
  ~SegmentPreparer();
  SegmentPreparer(const SegmentPreparer&) = delete;
  SegmentPreparer& operator=(const SegmentPreparer&) = delete;

  // ---- Writer thread only ----

  // The prepared file when one is ready and `file_size` bytes long (the
  // capacities agree to within a record's alignment); otherwise null.
  std::unique_ptr<Segment> take(uint64_t file_size);
  // Asks for the next file to be prepared (after one was taken).
  void want_prepared();
  // Warms `active` from its start from now on (the writer moved to it).
  void warm_from_start(std::shared_ptr<Segment> active);
  // Asks for `active`'s record bytes up to `to` to be warmed.
  void want_warm(uint64_t to);

 private:
  void loop();

  const std::string dir_;
  const uint64_t segment_bytes_;
  const uint32_t index_interval_;

  std::mutex mu_;
  std::condition_variable cv_;  // the writer's requests and stop, for loop()
  bool wanted_ = false;
  bool stop_ = false;
  std::unique_ptr<Segment> prepared_;
  std::shared_ptr<Segment> warm_segment_;  // the active one
  uint64_t warm_wanted_ = 0;  // warm up to here (relative)
  uint64_t warmed_ = 0;
  std::thread thread_;  // last: starts after the fields above exist
};

}  // namespace ringlog
