// A ringlog node: the front that ties its parts together. Each promise is
// kept by one part; the node owns them, wires their callbacks and changes
// roles.
//
//   append intake (append_intake.h)      batches into ring 0, matched to the
//                                        log by ring position, acked in order
//   producer table (producer_table.h)    idempotent appends, no batch twice
//   commit tracking (commit_tracker.h)   durable and commit offsets, replica
//                                        acks, waking waiters
//   replication streams                  the primary's Follow streams and the
//     (replication_streams.h)            heartbeat ticker
//   divergence point (divergence.h)      where a replica must cut its log
//   role files (node_files.h)            NODE_ID and ROLE across restarts
//   admin queue (admin_queue.h)          role changes, one at a time
//   roles (node_roles.cc)                promote, follow, step down, peer checks
//   storage watch (node_storage.cc)      a full disk here or on the replicas:
//                                        refusals, logs, write readiness
//
// Append path (primary):
//
//   Append reactors --submit--> intake queue --intake thread--> ring 0 of the pipeline
//        ^                                                         | storage thread
//        |  acks (notifier thread) <-- commit <-- durable <--------+ on_append
//
// Rings 1.. belong to producers embedded in the process
// (NodeOptions::embedded_rings), whose hot path stays lock-free.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admin_queue.h"
#include "append_intake.h"
#include "commit_tracker.h"
#include "follower.h"
#include "call_limits.h"
#include "node_files.h"
#include "producer_table.h"
#include "replication_streams.h"
#include "request_checks.h"
#include "ringlog/epochs.h"
#include "ringlog/pipeline.h"
#include "ringlog/storage.h"
#include "ringlog/v1/ringlog.pb.h"

namespace ringlog {

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
  // Open a log that lacks records it once held (SegmentedLog::lost()) by
  // forgetting them; otherwise a primary with such a log takes no appends.
  bool accept_data_loss = false;
  absl::Duration replica_ack_timeout = absl::Seconds(10);  // for status: "lagging"
  // An append that cannot be stored (this node's disk is full, or the
  // replicas it needs cannot store) is refused with RESOURCE_EXHAUSTED once
  // the condition has lasted this long.
  absl::Duration disk_full_timeout = absl::Seconds(1);
  // Idempotent producers remembered: how many, and for how long idle
  // (--max_producers, --producer_expiry; producer_table.h).
  ProducerTableOptions producers;
  // Open calls per client address and per node (call_limits.h).
  CallLimitOptions calls;
};

// Counters over the node's life (across role changes), for metrics.
struct NodeCounters {
  uint64_t events_appended = 0;
  uint64_t bytes_appended = 0;
  uint64_t ring_full = 0;
  std::array<uint64_t, kFsyncBucketCount> fsync_buckets{};
  double fsync_seconds = 0;
};

enum class StreamKind { kAppend, kReplay };

// What a node can do now, service by service (see kHealthServices).
struct NodeHealth {
  bool append = false;       // takes appends: write_ready()
  bool replay = false;       // serves replays of a current log (the health of EventLog)
  bool replication = false;  // can be followed: a primary with its log whole
  bool operator==(const NodeHealth&) const = default;
};

class Node {
 public:
  static absl::StatusOr<std::unique_ptr<Node>> Open(const NodeOptions& options,
                                                    RecoveryReport* report = nullptr);
  ~Node();

  // ---- Append (primary) ----
  // Queues a validated batch of `count` records; `done` runs when it is
  // committed or has failed. Never blocks.
  // With a producer id and a producer_seq above 0, a batch whose seq this
  // node has already taken is not appended again: `done` gets the original's
  // result, marked duplicate, once that is committed; a seq out of sequence
  // is refused (producer_table.h). `order` is shared by the batches of one
  // stream: once one of them is refused, the later ones are too.
  void submit(std::string records, size_t count, ProducerRef producer, AppendDone done,
              std::shared_ptr<StreamOrder> order = nullptr);
  // Refuses new appends from now on, and ends follow replays (shutdown).
  void stop_intake();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // ---- Replication (primary) ----
  // Where a replica with this epoch history and log end must cut its log.
  absl::StatusOr<uint64_t> divergence_point(const std::vector<EpochEntry>& replica_epochs,
                                            uint64_t replica_end) const;
  std::vector<EpochEntry> epoch_entries() const;
  // A replica's Follow stream, from its directive (reading from `from`)
  // until it ends; the id is for the calls below.
  uint64_t add_replication_stream(ReplicationStream* s, const std::string& replica_id,
                                  const std::string& peer, const std::string& advertise,
                                  LogPosition from);
  void remove_replication_stream(uint64_t id);
  void resume_replication_stream(uint64_t id);
  void replica_ack(const std::string& replica_id, LogPosition durable) {
    commits_.replica_ack(replica_id, durable);
  }
  // What a replica's ack said about storing (node_storage.cc).
  void replica_storage(const std::string& replica_id, const std::string& error);
  std::vector<ReplicaView> replicas() const { return commits_.replicas(); }
  CommitNotifier& durable_notifier() { return commits_.durable_notifier(); }

  // ---- Read ----
  const SegmentedLog& log() const { return *log_; }
  CommitNotifier& notifier() { return commits_.commit_notifier(); }
  LogPosition commit() const { return commits_.commit(); }
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

  // ---- Lost records (node_loss.cc) ----
  // DATA_LOSS while this node's log lacks records it once held (found at
  // open: damaged or deleted files): what is lost, and which node to
  // promote. A primary then takes no appends and serves no replicas; a
  // replica fetches the records after its end again from its primary.
  absl::Status data_loss() const;
  // A replica that asked to follow a primary with lost records: a candidate
  // to promote in its place.
  void note_replica_candidate(const std::string& address, uint64_t log_end);
  // ---- Storage and health (node_storage.cc) ----
  // Whether appends are taken now: the primary, not stopping, its disk
  // storing, and enough replicas able to store.
  bool write_ready() const { return compute_write_ready(); }
  // What the node can do now, as the health service tells it (services.h).
  // `fn` runs now and on each change (on the node's ticker thread, within
  // its 100 ms tick, until close()).
  NodeHealth health() const;
  void set_health_listener(std::function<void(const NodeHealth&)> fn);

  // ---- Status ----
  void fill_status(v1::NodeStatus* out) const;
  NodeCounters counters() const;
  ProducerStats producer_stats() { return producers_.stats(); }
  // Every call of the node's services takes a place here (services.cc).
  CallLimits& call_limits() { return call_limits_; }
  std::vector<ReplicaLag> replica_lag_seconds() const { return commits_.lag_seconds(); }
  // Open client streams, for status (relaxed: gauges).
  void stream_opened(StreamKind k) { gauge(k).fetch_add(1, std::memory_order_relaxed); }
  void stream_closed(StreamKind k) { gauge(k).fetch_sub(1, std::memory_order_relaxed); }

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
  void run_admin(std::function<void()> fn) { admin_->run(std::move(fn)); }

  // Drains what was accepted, syncs, completes every pending append, stops.
  absl::Status close();

 private:
  explicit Node(const NodeOptions& options);
  // Open: the role to start in (ROLE file, flags, peers), then start it.
  absl::Status start_role();
  absl::Status start_primary();
  // Ends the primary term: refuses new appends, drains and syncs the ring,
  // acknowledges what committed and fails the rest with `why`.
  absl::Status stop_primary(const absl::Status& why);
  void start_follower(const std::string& primary, bool force);
  void prepare_rings();
  void peer_watch(absl::Time now);
  // Open: what recovery found missing, accepted (--accept_data_loss) or kept.
  absl::Status open_with_loss(const RecoveryReport& report);
  // The commit offset the log's checkpoint recorded, as a position here.
  void restore_commit();
  // Ticker thread (node_storage.cc): logs a full disk here, refuses what
  // waits on replicas that cannot store, updates write readiness.
  void storage_watch(absl::Time now);
  void watch_own_disk(const std::shared_ptr<Pipeline>& pl);
  void watch_replicas(absl::Time now);
  bool compute_write_ready() const;
  // What a batch the log could not store is told.
  absl::Status storage_refusal(const absl::Status& error) const;
  // Why new batches are refused now for the replicas (OK: taken); intake thread.
  absl::Status replica_refusal() const;
  // Notifier thread: the batches waiting for a commit that the replicas
  // cannot give are refused with `s` (they stay in the log).
  void refuse_waiting(const absl::Status& s);
  // The storage fields of status; a replica's follower says whether its disk is full.
  void fill_storage_status(v1::NodeStatus* out, const absl::Status& replica_disk,
                           absl::Time replica_since) const;
  // Notifier thread: acknowledges the batches the commit offset covers.
  void complete_committed(LogPosition commit);
  void fail_all(const absl::Status& s);
  void post(std::function<void()> fn) { commits_.commit_notifier().post(std::move(fn)); }
  std::shared_ptr<Pipeline> pipeline() const {
    std::lock_guard l(pipeline_mu_);
    return pipeline_;
  }
  std::atomic<uint32_t>& gauge(StreamKind k) {
    return k == StreamKind::kAppend ? append_streams_ : replay_streams_;
  }

  const NodeOptions options_;
  // Right after options_: destroyed last, after whatever may still hold a
  // ticket (the admin queue's pending calls).
  CallLimits call_limits_{options_.calls};
  const absl::Time started_ = absl::Now();
  std::string node_id_;
  std::unique_ptr<SegmentedLog> log_;
  ProducerTable producers_;

  // The epoch history; the follower changes it on a replica (epochs_mu_).
  mutable std::mutex epochs_mu_;
  std::unique_ptr<EpochHistory> epochs_;
  std::atomic<uint64_t> epoch_{0};
  std::atomic<Role> role_{Role::kPrimary};

  CommitTracker commits_;
  AppendIntake intake_;
  mutable std::mutex pipeline_mu_;
  std::shared_ptr<Pipeline> pipeline_;  // a primary term's; set under role_mu_ too

  // Role changes run one at a time on the admin thread, under role_mu_.
  mutable std::mutex role_mu_;
  std::unique_ptr<Follower> follower_;  // a replica's: writes the log
  std::string fenced_;  // why this node stopped being primary without a new one to follow
  std::vector<SpscRingBuffer> spare_rings_;  // made ahead while a replica, for a fast promotion
  absl::Time last_peer_check_;               // ticker thread

  mutable std::mutex advertise_mu_;
  std::string advertise_;  // guarded by advertise_mu_

  // Lost records: what recovery said, and replicas that hold more.
  mutable std::mutex loss_mu_;
  std::string loss_detail_;
  std::map<std::string, uint64_t> loss_candidates_;  // address -> its log end

  std::atomic<bool> stopping_{false};
  std::atomic<uint32_t> append_streams_{0};
  std::atomic<uint32_t> replay_streams_{0};
  // Storage watch (node_storage.cc).
  std::atomic<uint64_t> appends_refused_{0};  // relaxed: a counter
  // acquire/release: replica_refusal_ is set before it turns true.
  std::atomic<bool> replicas_refusing_{false};
  std::atomic<bool> replicas_stalled_{false};  // relaxed: for write readiness
  mutable std::mutex refusal_mu_;
  absl::Status replica_refusal_;  // guarded by refusal_mu_
  // Ticker thread only.
  absl::Time replica_stall_since_ = absl::InfiniteFuture();
  std::weak_ptr<Pipeline> watched_pipeline_;  // the term whose stalls are counted below
  uint64_t stalls_seen_ = 0;
  bool in_stall_ = false;
  std::mutex health_mu_;
  std::function<void(const NodeHealth&)> health_listener_;  // guarded by health_mu_
  NodeHealth health_;  // guarded by health_mu_: what the listener was last told
  // Counters of finished primary terms.
  mutable std::mutex counters_mu_;
  NodeCounters past_;
  bool closed_ = false;

  // Last: their threads call into everything above, so they stop first.
  std::unique_ptr<ReplicationStreams> streams_;
  std::unique_ptr<AdminQueue> admin_;
};

}  // namespace ringlog
