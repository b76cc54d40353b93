// A ringlog node: its log, its role, the commit offset, and the append path.
//
// Append path (primary):
//
//   Append reactors --submit--> intake queue --intake thread--> ring 0 of the pipeline
//        ^                                                         | storage thread
//        |  acks (notifier thread) <-- commit <-- durable <--------+ on_append: seqs
//
// Remote streams are serialized by the intake thread into the ring's one
// producer, each batch whole. Rings 1.. belong to producers embedded in the
// process (NodeOptions::embedded_rings), whose hot path stays lock-free.
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

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "commit_notifier.h"
#include "epoch_history.h"
#include "ringlog/pipeline.h"
#include "ringlog/storage.h"
#include "ringlog/v1/ringlog.pb.h"

namespace ringlog {

enum class Role { kPrimary, kReplica };

struct NodeOptions {
  std::string data_dir = "./data";
  std::string node_id;  // empty: the one kept in <data_dir>/NODE_ID, made on first start
  std::string listen;   // for status
  Role role = Role::kPrimary;
  std::string primary;  // replica: HOST:PORT to follow
  PipelineOptions pipeline;
  size_t embedded_rings = 0;  // extra rings for in-process producers
  size_t max_request_bytes = size_t{4} << 20;
  uint32_t min_replica_acks = 0;
  absl::Duration replica_ack_timeout = absl::Seconds(10);  // for status: "lagging"
};

struct CommitResult {
  LogPosition first;
  LogPosition end;  // just past the last record
  uint64_t count = 0;
  uint64_t commit_offset = 0;
  uint64_t epoch = 0;
};
// Called once per submitted batch, on the notifier thread: with the result
// once the batch is committed, or with the error that stopped it.
using AppendDone = std::function<void(absl::StatusOr<CommitResult>)>;

// Checks that `records` is a run of whole valid records of at most
// max_bytes; returns how many, or INVALID_ARGUMENT naming the record.
absl::StatusOr<size_t> validate_records(ByteSpan records, size_t max_bytes);

class Node {
 public:
  static absl::StatusOr<std::unique_ptr<Node>> Open(const NodeOptions& options,
                                                    RecoveryReport* report = nullptr);
  ~Node();

  // ---- Append (primary) ----
  // Queues a validated batch of `count` records; `done` runs when it is
  // committed or has failed. Never blocks.
  void submit(std::string records, size_t count, AppendDone done);
  // Refuses new appends from now on, and ends follow replays (shutdown).
  void stop_intake();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // ---- Read ----
  const SegmentedLog& log() const { return *log_; }
  CommitNotifier& notifier() { return notifier_; }
  LogPosition commit() const { return notifier_.commit(); }
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  Role role() const { return role_.load(std::memory_order_acquire); }
  const NodeOptions& options() const { return options_; }
  const std::string& node_id() const { return node_id_; }
  // For FAILED_PRECONDITION answers on a replica.
  std::string primary_hint() const;

  // The producer of embedded ring i (1 <= i <= embedded_rings); one thread.
  SpscRingBuffer::Producer* embedded_producer(size_t i);

  // ---- Status ----
  void fill_status(v1::NodeStatus* out) const;
  std::atomic<uint32_t> append_streams{0};
  std::atomic<uint32_t> replay_streams{0};

  // Drains what was accepted, syncs, completes every pending append, stops.
  absl::Status close();

 private:
  struct Pending {
    std::string records;  // moved out once written to the ring
    uint64_t records_bytes = 0;
    uint64_t count = 0;
    AppendDone done;
    LogPosition first;  // in the log, once appended
    LogPosition end;
  };

  explicit Node(const NodeOptions& options);
  absl::Status start_primary();
  void intake_loop();
  void on_append(const AppendedChunk& c);
  void on_durable(LogPosition durable);
  void complete_committed(LogPosition commit);
  void fail_all(const absl::Status& s);

  const NodeOptions options_;
  std::string node_id_;
  std::unique_ptr<SegmentedLog> log_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<EpochHistory> epochs_;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<Role> role_{Role::kPrimary};
  CommitNotifier notifier_;
  const absl::Time started_ = absl::Now();

  // Intake: batches waiting for room in ring 0.
  std::mutex intake_mu_;
  std::condition_variable intake_cv_;
  std::deque<Pending> intake_;
  bool intake_open_ = true;
  bool intake_done_ = false;  // the thread has written everything and left
  std::thread intake_thread_;

  // Batches in the ring (ring_end known), then in the log (positions known),
  // waiting for the commit offset.
  std::mutex acks_mu_;
  std::deque<Pending> in_ring_;
  std::deque<Pending> appended_;

  std::atomic<bool> stopping_{false};
  bool closed_ = false;
};

}  // namespace ringlog
