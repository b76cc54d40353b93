// Append intake on the primary: batches from gRPC streams into ring 0 of the
// pipeline, and the batches between the ring and the commit offset.
//
//   submit (gRPC threads) --> queue --> intake thread --> ring 0 producer
//                                         | records ring position
//   storage thread: on_append(chunk) --> matched by ring position
//   notifier thread: take_committed(commit) --> acks
//
// Remote streams are serialized by the one intake thread, each batch
// written whole, so a chunk the storage thread appends from ring 0 holds
// whole batches in intake order. A batch is matched to the chunk that holds
// it by ring position: its end in the ring (Producer::written() after its
// write) is at or before the chunk's ring_position. The two may arrive in
// either order; whichever comes second matches them.
//
// Threads: queue state under queue_mu_; written and appended batches and
// unmatched chunks under match_mu_. Callbacks run outside both.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "producer_table.h"
#include "ringlog/pipeline.h"

namespace ringlog {

class AppendIntake {
 public:
  struct Batch {
    std::string records;  // moved out once written to the ring
    uint64_t records_bytes = 0;
    uint64_t count = 0;  // records in the ring write, the producer mark included
    ProducerRef producer;
    AppendDone done;
    uint64_t ring_end = 0;  // ring 0's position after it, once written
    LogPosition first;      // in the log, once appended
    LogPosition end;
  };
  // Runs a callback on the notifier thread.
  using Post = std::function<void(std::function<void()>)>;
  // What a batch that could not be written is told (a storage error); the
  // node reports it to its producer too.
  using Failed = std::function<void(Batch, absl::Status)>;

  AppendIntake(Post post, Failed failed) : post_(std::move(post)), failed_(std::move(failed)) {}
  ~AppendIntake() { stop(); }

  // A primary term: opens the queue and starts the thread on `pipeline`.
  // `committed` reads the commit offset (matched batches already covered
  // by it are completed through `complete`).
  void start(Pipeline* pipeline, bool open, std::function<uint64_t()> committed,
             std::function<void()> complete);
  // Closes the queue; the thread writes what it holds and leaves. Joins it.
  void stop();
  // Refuses batches from now on (shutdown); the thread keeps running.
  void close();

  // Queues a batch; false (batch untouched) when the queue is closed.
  bool submit(Batch& b);

  // Storage thread: a chunk of ring 0 reached the log.
  void on_append(const AppendedChunk& c);
  // The batches whose end the commit offset covers, in order.
  std::deque<Batch> take_committed(uint64_t commit);
  // Every batch not yet completed (queued, written or appended), in order.
  std::deque<Batch> take_all();
  // Times a write found ring 0 full (a statistic).
  uint64_t ring_full() const { return ring_full_.load(std::memory_order_relaxed); }

 private:
  void loop(Pipeline* pipeline);
  // match_mu_ held. Pairs written batches with appended chunks; returns the
  // end offset of the last batch it placed (0 when none).
  uint64_t match_locked();

  const Post post_;
  const Failed failed_;
  std::function<uint64_t()> committed_;
  std::function<void()> complete_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Batch> queue_;
  bool open_ = true;
  std::thread thread_;
  std::atomic<uint64_t> ring_full_{0};

  struct Chunk {
    uint64_t ring_position = 0;
    LogPosition next;  // where its next unmatched batch starts
    LogPosition end;
  };
  std::mutex match_mu_;
  std::deque<Batch> written_;   // in the ring, chunk not yet seen
  std::deque<Chunk> chunks_;    // appended, batches not yet seen
  std::deque<Batch> appended_;  // in the log, waiting for the commit offset
};

}  // namespace ringlog
