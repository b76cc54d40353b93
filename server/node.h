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

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "commit_notifier.h"
#include "follower.h"
#include "ringlog/epochs.h"
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
  // The other nodes of the cluster (HOST:PORT). A primary that finds one of
  // them primary in a later epoch steps down and follows it; promotion
  // refuses when one of them has a longer log.
  std::vector<std::string> peers;
  PipelineOptions pipeline;
  size_t embedded_rings = 0;  // extra rings for in-process producers
  size_t max_request_bytes = size_t{4} << 20;
  uint32_t min_replica_acks = 0;
  absl::Duration replica_ack_timeout = absl::Seconds(10);  // for status: "lagging"
};

struct CommitResult {
  LogPosition first;
  LogPosition end;  // just past the last record (the producer mark, if any)
  uint64_t count = 0;  // data records
  uint64_t commit_offset = 0;
  uint64_t epoch = 0;
  bool duplicate = false;  // this producer_seq was appended before
};

// An append's identity for idempotence: empty id means none.
struct ProducerRef {
  std::string id;
  uint64_t seq = 0;
};
// Called once per submitted batch, on the notifier thread: with the result
// once the batch is committed, or with the error that stopped it.
using AppendDone = std::function<void(absl::StatusOr<CommitResult>)>;

class FollowReactor;

// What the primary knows of a replica.
struct ReplicaView {
  std::string node_id;
  std::string peer;
  std::string advertise;
  LogPosition acked;  // durable on the replica
  absl::Time last_ack;
  absl::Time caught_up_at;  // when its ack last covered everything durable here
  bool connected = false;
};

// Counters over the node's life (across role changes), for metrics.
struct NodeCounters {
  uint64_t events_appended = 0;
  uint64_t bytes_appended = 0;
  uint64_t ring_full = 0;
  std::array<uint64_t, kFsyncBucketCount> fsync_buckets{};
  double fsync_seconds = 0;
};

struct ReplicaLag {
  std::string node_id;
  double seconds = 0;  // how long it has been behind; 0 when caught up
};

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
  // With a producer id, a batch whose producer_seq this node has already
  // taken is not appended again: `done` gets the first one's result, marked
  // duplicate, once that is committed.
  void submit(std::string records, size_t count, ProducerRef producer, AppendDone done);
  // Refuses new appends from now on, and ends follow replays (shutdown).
  void stop_intake();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // ---- Replication (primary) ----
  // Where a replica with this epoch history and log end must cut its log:
  // the end of the last epoch both histories share, as both logs know it.
  absl::StatusOr<uint64_t> divergence_point(const std::vector<EpochEntry>& replica_epochs,
                                            uint64_t replica_end) const;
  std::vector<EpochEntry> epoch_entries() const;
  uint64_t register_follower(FollowReactor* r, const std::string& replica_id,
                             const std::string& peer, const std::string& advertise,
                             LogPosition from);
  void unregister_follower(uint64_t id);
  void resume_follower(uint64_t id);
  void wake_followers();  // resumes every parked Follow stream
  void replica_ack(const std::string& replica_id, LogPosition durable);
  std::vector<ReplicaView> replicas() const;
  CommitNotifier& durable_notifier() { return durable_notifier_; }

  // ---- Read ----
  const SegmentedLog& log() const { return *log_; }
  CommitNotifier& notifier() { return notifier_; }
  LogPosition commit() const { return notifier_.commit(); }
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  Role role() const { return role_.load(std::memory_order_acquire); }
  const NodeOptions& options() const { return options_; }
  const std::string& node_id() const { return node_id_; }
  // The answer of a node that is not the primary to a request to `action`
  // ("append to", "follow"): FAILED_PRECONDITION naming the primary it
  // follows, in the message and as a redirect (ringlog/redirect.h).
  absl::Status not_primary(absl::string_view action) const;
  // The address other nodes and clients reach this node at (once the
  // server knows its port); shown in status and told to the primary.
  void set_advertise(const std::string& address);
  std::string advertise() const;

  // The producer of embedded ring i (1 <= i <= embedded_rings); one thread.
  SpscRingBuffer::Producer* embedded_producer(size_t i);

  // ---- Status ----
  void fill_status(v1::NodeStatus* out) const;
  NodeCounters counters() const;
  std::vector<ReplicaLag> replica_lag_seconds() const;
  std::atomic<uint32_t> append_streams{0};
  std::atomic<uint32_t> replay_streams{0};

  // ---- Role changes (failover) ----
  struct Promoted {
    uint64_t epoch = 0;
    uint64_t start_offset = 0;
  };
  // Turns a replica into the primary of a new epoch, starting at its log end.
  absl::StatusOr<Promoted> promote(bool force, std::vector<std::string> peers);
  // Follows `primary` from now on; a primary steps down first.
  absl::StatusOr<uint64_t> follow(const std::string& primary, bool force);
  // A primary that learned of a later epoch stops taking appends.
  void step_down(uint64_t later_epoch, const std::string& why);
  // Runs `fn` on the node's admin thread (role changes block; gRPC callbacks must not).
  void run_admin(std::function<void()> fn);

  // Drains what was accepted, syncs, completes every pending append, stops.
  absl::Status close();

 private:
  struct Pending {
    std::string records;  // moved out once written to the ring
    uint64_t records_bytes = 0;
    uint64_t count = 0;   // records in the ring write, the producer mark included
    ProducerRef producer;
    AppendDone done;
    LogPosition first;  // in the log, once appended
    LogPosition end;
  };

  explicit Node(const NodeOptions& options);
  absl::Status start_primary();
  // Ends the primary term: refuses new appends, drains and syncs the ring,
  // acknowledges what committed and fails the rest with `why`.
  absl::Status stop_primary(const absl::Status& why);
  void admin_loop();
  void peer_watch(absl::Time now);
  void intake_loop(Pipeline* pipeline);
  void on_append(const AppendedChunk& c);
  void on_durable(LogPosition durable);
  void update_commit();
  void ticker_loop();
  void complete_committed(LogPosition commit);
  void fail_all(const absl::Status& s);
  // Idempotence: what each producer has written, and who waits on it.
  struct ProducerState {
    uint64_t last_seq = 0;  // the highest producer_seq taken
    bool known = false;     // the position of that batch is known
    LogPosition first;      // of its first data record
    LogPosition end;        // after its mark
    uint64_t count = 0;
    std::vector<AppendDone> waiting;  // duplicates of it, until it completes
  };
  void producer_completed(const Pending& p, const absl::StatusOr<CommitResult>& r);
  // Learns producer marks from records that reached the log (replica, restart).
  void learn_producers(ByteSpan records, LogPosition first);
  void rebuild_producers();
  std::mutex producers_mu_;
  std::map<std::string, ProducerState> producers_;

  const NodeOptions options_;
  std::string node_id_;
  std::unique_ptr<SegmentedLog> log_;
  std::shared_ptr<Pipeline> pipeline_;  // replaced under role_mu_; see pipeline()
  std::shared_ptr<Pipeline> pipeline() const {
    std::lock_guard l(role_mu_);
    return pipeline_;
  }
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

  // Primary: the durable position, the replicas, the live Follow streams.
  AtomicPosition durable_;
  CommitNotifier durable_notifier_;
  mutable std::mutex commit_mu_;  // serializes commit updates; guards replicas_
  std::map<std::string, ReplicaView> replicas_;
  std::mutex followers_mu_;
  std::map<uint64_t, std::pair<FollowReactor*, std::string>> followers_;  // id -> stream, replica
  uint64_t next_follower_id_ = 1;
  std::thread ticker_;
  std::condition_variable ticker_cv_;
  bool ticker_stop_ = false;  // guarded by followers_mu_

  // Replica: the follower that writes the log.
  void start_follower(const std::string& primary, bool force);
  std::unique_ptr<Follower> follower_;
  std::string fenced_;  // why this node stopped being primary without a new one to follow

  // Role changes run one at a time on the admin thread, under role_mu_.
  mutable std::mutex role_mu_;
  std::mutex admin_mu_;
  std::condition_variable admin_cv_;
  std::deque<std::function<void()>> admin_queue_;
  bool admin_stop_ = false;
  std::thread admin_thread_;
  absl::Time last_peer_check_;
  // Rings made ahead while a replica, for a fast promotion (role_mu_).
  std::vector<SpscRingBuffer> spare_rings_;
  void prepare_rings();
  // Writes <dir>/ROLE: the role this node has across restarts.
  static void save_role(const std::string& dir, Role role, const std::string& primary);
  mutable std::mutex epochs_mu_;  // guards epochs_ against the follower's changes

  mutable std::mutex advertise_mu_;
  std::string advertise_;  // guarded by advertise_mu_

  std::atomic<bool> stopping_{false};
  // Counters of finished primary terms, and of the current intake.
  mutable std::mutex counters_mu_;
  NodeCounters past_;
  std::atomic<uint64_t> ring_full_{0};

  bool closed_ = false;
};

}  // namespace ringlog
