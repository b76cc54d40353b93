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
// Refusals keep each stream's batches in order with none missing in
// between: once a batch of a stream is refused, the intake refuses that
// stream's later batches too (StreamOrder). When the log cannot store (a
// full disk) and the pipeline says refusing(), the intake writes nothing
// more, asks the pipeline to drop what ring 0 holds (refuse_to), and
// refuses every batch it takes until the log stores again; the dropped
// batches come back as a refused chunk and are refused in turn. None of
// them is in the log. The node may refuse new batches for its own reasons
// too (Hooks::refusal: the replicas it needs cannot store).
//
// Threads: queue state under queue_mu_; written and appended batches and
// unmatched chunks under match_mu_. Callbacks run outside both.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "producer_table.h"
#include "ringlog/pipeline.h"

namespace ringlog {

// Shared by the batches of one Append stream.
struct StreamOrder {
  // A batch of the stream was refused: refuse the later ones. release/acquire.
  std::atomic<bool> broken{false};
};

class AppendIntake {
 public:
  struct Batch {
    std::string records;  // moved out once written to the ring
    uint64_t records_bytes = 0;
    uint64_t count = 0;  // records in the ring write, the producer mark included
    ProducerRef producer;
    AppendDone done;
    std::shared_ptr<StreamOrder> order;  // its stream's; may be null
    uint64_t ring_end = 0;  // ring 0's position after it, once written
    LogPosition first;      // in the log, once appended
    LogPosition end;
    // Where it is in the log, as its producer is told (its data records:
    // the producer mark is not counted).
    CommitResult stored(uint64_t commit_offset, uint64_t epoch) const {
      const uint64_t data = producer.id.empty() ? count : count - 1;
      return CommitResult{first, end, data, commit_offset, epoch, false};
    }
  };
  // Runs a callback on the notifier thread.
  using Post = std::function<void(std::function<void()>)>;
  // What a batch that could not be written is told (a storage error); the
  // node reports it to its producer too.
  using Failed = std::function<void(Batch, absl::Status)>;

  struct Hooks {
    // Reads the commit offset; matched batches already covered by it are
    // completed through `complete` (which runs on the notifier thread).
    std::function<uint64_t()> committed;
    std::function<void()> complete;
    // Why new batches are refused now, besides the log's own refusals; OK
    // while they are taken. Intake thread, once per batch; may be empty.
    std::function<absl::Status()> refusal;
    // What a batch the log refused is told, from the storage error; empty:
    // the error itself.
    std::function<absl::Status(const absl::Status&)> storage_refusal;
  };

  AppendIntake(Post post, Failed failed) : post_(std::move(post)), failed_(std::move(failed)) {}
  ~AppendIntake() { stop(); }

  // A primary term: opens the queue and starts the thread on `pipeline`.
  void start(Pipeline* pipeline, bool open, Hooks hooks);
  // Closes the queue; the thread writes what it holds and leaves. Joins it.
  void stop();
  // Refuses batches from now on (shutdown); the thread keeps running.
  void close();

  // Queues a batch; false (batch untouched) when the queue is closed.
  bool submit(Batch& b);
  // Wakes the thread to look at the pipeline's refusals (on_refusing).
  void wake();

  // Storage thread: a chunk of ring 0 reached the log.
  void on_append(const AppendedChunk& c);
  // Storage thread: ring 0 was dropped up to `ring_position` (refuse_to);
  // the batches in it are refused with `why`.
  void on_refused(uint64_t ring_position, const absl::Status& why);
  // The batches whose end the commit offset covers, in order.
  std::deque<Batch> take_committed(uint64_t commit);
  // The batches in the log and not yet completed, in order.
  std::deque<Batch> take_appended();
  // Every batch not yet completed (queued, written or appended), in order.
  std::deque<Batch> take_all();
  // Times a write found ring 0 full (a statistic).
  uint64_t ring_full() const { return ring_full_.load(std::memory_order_relaxed); }

 private:
  enum class Next { kBatch, kWake, kClosed };
  using Refused = std::vector<std::pair<Batch, absl::Status>>;

  void loop(Pipeline* pipeline);
  Next take(Batch* b);
  // Whether the log refuses ring 0 now (or a drop this thread asked for is
  // not reported yet); asks for the drop once per refusal.
  bool storage_blocked(Pipeline* pipeline, uint64_t* asked);
  // Why `b` is refused without being written (OK: write it).
  absl::Status refusal_for(const Batch& b, bool storage_blocked, Pipeline* pipeline);
  // Writes `b` to ring 0 and hands it to matching; false when it was
  // refused instead (the log refused while the ring was full).
  bool write(Pipeline* pipeline, Batch& b, uint64_t* asked);
  void refuse(Batch b, absl::Status why);
  void refuse_all(Refused refused);
  // match_mu_ held. Pairs written batches with appended chunks (and moves
  // those in refused chunks to *refused); returns the end offset of the
  // last batch it placed (0 when none).
  uint64_t match_locked(Refused* refused);

  const Post post_;
  const Failed failed_;
  Hooks hooks_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Batch> queue_;
  bool open_ = true;
  bool woken_ = false;
  std::thread thread_;
  std::atomic<uint64_t> ring_full_{0};

  struct Chunk {
    uint64_t ring_position = 0;
    LogPosition next;  // where its next unmatched batch starts
    LogPosition end;
    absl::Status refused;  // not OK: dropped unstored
  };
  std::mutex match_mu_;
  std::deque<Batch> written_;   // in the ring, chunk not yet seen
  std::deque<Chunk> chunks_;    // appended, batches not yet seen
  std::deque<Batch> appended_;  // in the log, waiting for the commit offset
};

}  // namespace ringlog
