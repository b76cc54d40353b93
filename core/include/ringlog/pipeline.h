// The pipeline: SPSC rings drained by one storage thread into a SegmentedLog.
//
//   producer thread(s) --write_event--> ring i --storage thread--> log --> durable offset
//
// Each ring has exactly one producer thread. The storage thread moves whole
// contiguous batches from each ring into the active segment with one copy,
// then publishes the durable offset under the fsync policy. The producer's
// write never blocks: when the ring is full it gets kNotEnoughSpace at once.
// When the log cannot store (a full disk), a batch stays out of it whole and
// the storage thread retries until it fits (see error_retry, refuse_after).
//
//   ringlog::PipelineOptions o;
//   o.fsync = ringlog::FsyncPolicy::kInterval;
//   auto p = ringlog::Pipeline::Open("/var/lib/ringlog", o);
//   auto& producer = (*p)->producer();           // one application thread
//   while (!producer.write_event(h, payload)) { /* ring full: retry, shed or count */ }
//   (*p)->close();                               // drains, syncs, stops
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <iterator>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ringlog/ring.h"
#include "ringlog/storage.h"

namespace ringlog {

enum class FsyncPolicy {
  kNone,        // durable once in the mapped file; the kernel writes it back
  kEveryBatch,  // msync after every batch moved from the rings
  kInterval,    // msync at most every fsync_interval
};
// Parses "none", "batch", or an interval such as "10ms" (kInterval).
absl::Status parse_fsync_policy(std::string_view s, FsyncPolicy* policy, absl::Duration* interval);
std::string fsync_policy_name(FsyncPolicy p, absl::Duration interval);

// A batch the storage thread moved from one ring into the log: everything
// the ring held contiguously, so a run of records that a producer published
// at once (write_records) always lands whole in one chunk.
struct AppendedChunk {
  size_t ring = 0;
  uint64_t ring_position = 0;  // the ring's position after it (compare Producer::written())
  LogPosition first;           // where its first record went
  LogPosition end;             // the log's end after it
};

// What ring 0 held up to `ring_position` (compare Producer::written()),
// dropped without being stored after its producer was asked to refuse (see
// PipelineOptions::refuse_after). None of it is in the log.
struct RefusedChunk {
  uint64_t ring_position = 0;
  absl::Status error;  // the storage error that refused it
};

// A stall: a batch waits because the log could not store it (a full disk,
// or another storage error). For status and logs; any thread.
struct StorageStall {
  bool stalled = false;
  absl::Time since;       // when this stall began
  absl::Status error;     // the last storage error (kept after the stall ends)
  uint64_t episodes = 0;  // stalls so far, this one included
  bool refusing = false;  // ring 0's producer is asked to refuse
};

struct PipelineOptions {
  LogOptions log;
  size_t ring_bytes = size_t{64} << 20;  // per ring, a power of two
  size_t rings = 1;                      // producers: ring i gets producer(i)
  FsyncPolicy fsync = FsyncPolicy::kNone;
  absl::Duration fsync_interval = absl::Milliseconds(10);
  // Naps when every ring is empty start at idle_sleep and double while idle,
  // up to idle_sleep_max: the first events after a quiet spell wait at most
  // that long (wake() ends a nap at once), and an idle log costs little CPU.
  absl::Duration idle_sleep = absl::Microseconds(50);
  absl::Duration idle_sleep_max = absl::Milliseconds(1);
  absl::Duration retention_interval = absl::Seconds(10);
  // While the log cannot store (a full disk) it retries this often: applies
  // retention, checks that the next segment's file can be made, then appends
  // what waits. A batch goes into the log whole or not at all.
  absl::Duration error_retry = absl::Milliseconds(100);
  // Refusals, for a ring 0 whose producer can answer its senders (a node's
  // intake). Once the log has been unable to store for this long,
  // refusing() turns true (and on_refusing runs): ring 0's producer stops
  // writing and calls refuse_to(); the storage thread drops what ring 0
  // holds up to there, unstored, and says so through on_refused. Refusing
  // ends when the log stores again. InfiniteDuration: never; an in-process
  // producer's ring keeps its events until the log takes them, and the
  // producer sees a full ring at once, as always.
  absl::Duration refuse_after = absl::InfiniteDuration();

  // Called on the storage thread; must return quickly and never block.
  // After a batch from a ring is in the log (see AppendedChunk).
  std::function<void(const AppendedChunk&)> on_append;
  // After the durable offset moves.
  std::function<void(LogPosition durable)> on_durable;
  // refusing() turned true.
  std::function<void()> on_refusing;
  // Ring 0 was dropped up to a position its producer gave to refuse_to().
  std::function<void(const RefusedChunk&)> on_refused;
};

// When a log writer flushes under an fsync policy. One writer thread: it
// calls wrote() after appending and due() when it may flush.
class SyncSchedule {
 public:
  enum class Action {
    kNothing,  // nothing new, or the interval has not passed
    kPublish,  // durable in the page cache only (fsync none): publish, no flush
    kFlush,    // fdatasync now
  };
  SyncSchedule(FsyncPolicy policy, absl::Duration interval) : policy_(policy), interval_(interval) {}
  void wrote() noexcept { unsynced_ = true; }
  bool unsynced() const noexcept { return unsynced_; }
  // What to do now; `force` (closing) flushes whatever the policy left.
  Action due(bool force, absl::Time now) const noexcept;
  // When due() stops answering kNothing without another write: the end of
  // the interval while something is unsynced, InfinitePast when that is now,
  // InfiniteFuture when nothing is unsynced. A writer that waits for input
  // waits no longer than this (the replica's follower).
  absl::Time next_due() const noexcept;
  // After the action was carried out.
  void done(Action a, absl::Time now) noexcept;

 private:
  FsyncPolicy policy_;
  absl::Duration interval_;
  bool unsynced_ = false;
  absl::Time last_flush_ = absl::InfinitePast();
};

// Upper bounds (seconds) of the fsync latency histogram's buckets; the last
// bucket counts everything slower.
inline constexpr double kFsyncBuckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                           0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
inline constexpr size_t kFsyncBucketCount = std::size(kFsyncBuckets) + 1;

struct PipelineStats {
  uint64_t events = 0;
  uint64_t bytes = 0;
  uint64_t batches = 0;
  uint64_t syncs = 0;
  uint64_t append_errors = 0;
  // fdatasync latencies: counts per bucket of kFsyncBuckets (not cumulative)
  // and their sum.
  std::array<uint64_t, kFsyncBucketCount> fsync_buckets{};
  double fsync_seconds = 0;
};

class Pipeline {
 public:
  // Opens (and recovers) the log in `dir` and starts the storage thread.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Open(const std::string& dir,
                                                        const PipelineOptions& options,
                                                        RecoveryReport* report = nullptr);
  // Starts the storage thread on a log the caller owns, which must outlive
  // the pipeline and take no other writes until close() has returned (a
  // node hands its log from a replica's applier to a pipeline on promotion).
  // options.log is not used.
  // `rings`, when given, are used instead of new ones (options.rings rings
  // of options.ring_bytes, never used before): a replica prepares them ahead
  // so that its promotion does not wait for memory.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Start(SegmentedLog* log,
                                                         const PipelineOptions& options,
                                                         std::vector<SpscRingBuffer> rings = {});
  ~Pipeline();  // close()

  // The producer of ring i; use it from one thread only.
  SpscRingBuffer::Producer& producer(size_t ring = 0) noexcept { return *producers_[ring]; }
  size_t ring_count() const noexcept { return producers_.size(); }

  // Wakes the storage thread if it is napping. Off the hot path only (it may
  // enter the kernel); an in-process producer never needs it: the storage
  // thread naps at most idle_sleep.
  void wake();

  // Stops intake, drains every ring into the log, syncs and joins the storage
  // thread. Idempotent; returns the first storage error, if any.
  absl::Status close();

  const SegmentedLog& log() const noexcept { return *log_; }
  // Bytes in ring i now; any thread.
  size_t ring_used(size_t ring = 0) const noexcept { return producers_[ring]->shared_used(); }
  LogPosition durable() const;
  // OK, or the storage error that is stopping appends now (e.g. a full disk).
  absl::Status error() const;
  StorageStall stall() const;
  PipelineStats stats() const;

  // Refusals (PipelineOptions::refuse_after), for ring 0's producer thread:
  // while refusing() it writes nothing and calls refuse_to() with its
  // written() position once; it writes again only when refusing() is false
  // and refused_to() has reached what it asked (the drop is reported).
  bool refusing() const noexcept {
    // acquire: pairs with the release stores in the storage thread; what it
    // reported before (the refused batches) is seen by the caller.
    return refusing_.load(std::memory_order_acquire);
  }
  void refuse_to(uint64_t ring_position);
  uint64_t refused_to() const noexcept {
    // acquire: pairs with the release store after on_refused.
    return dropped_to_.load(std::memory_order_acquire);
  }

 private:
  Pipeline(SegmentedLog* log, std::unique_ptr<SegmentedLog> owned, const PipelineOptions& options);
  absl::Status start(std::vector<SpscRingBuffer> rings);
  void run();
  bool step();  // one pass over the rings; true when something moved
  bool move_ring(size_t i);  // ring i's next batch (or its carry) into the log
  // Appends a batch whole or not at all (pipeline_stall.cc).
  AppendResult append_whole(ByteSpan batch);
  void make_durable(bool force);
  void nap();
  void set_error(absl::Status s);
  // The stall (pipeline_stall.cc), storage thread.
  void stall(const absl::Status& s, absl::Time now);
  bool retry_stalled(absl::Time now);  // true when the log may store again
  void end_stall();
  void drop_refused();  // ring 0 up to what its producer gave refuse_to()
  void stall_nap();

  const PipelineOptions options_;
  std::unique_ptr<SegmentedLog> owned_log_;  // when opened here
  SegmentedLog* log_;
  std::vector<std::unique_ptr<SpscRingBuffer::Producer>> producers_;
  std::vector<SpscRingBuffer::Consumer> consumers_;  // storage thread only
  // A batch the log could not store yet, per ring; storage thread only.
  std::vector<ByteSpan> carry_;
  // Where it began in the log, when part of it went in (a cut that failed).
  std::vector<std::optional<LogPosition>> carry_first_;

  std::atomic<bool> stop_{false};
  std::atomic<int> parked_{0};  // 1 while the storage thread naps
  int idle_rounds_ = 0;       // storage thread only
  absl::Duration nap_;        // storage thread only: the next nap
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool woken_ = false;  // guarded by wake_mu_: a wake() during a stall's nap
  std::thread thread_;
  bool closed_ = false;

  // Storage thread only.
  SyncSchedule sync_schedule_;
  absl::Time last_retention_;
  absl::Time retry_at_;
  bool stalled_ = false;
  absl::Time stalled_since_;
  uint64_t dropped_ = 0;  // ring 0 dropped up to here

  // Refusals: each written by one thread with release and read with
  // acquire by the other (storage thread <-> ring 0's producer), so what the
  // writer did before (a report, the ring's records) is seen with the value.
  std::atomic<bool> refusing_{false};    // storage thread writes
  std::atomic<uint64_t> drop_to_{0};     // ring 0's producer writes (refuse_to)
  std::atomic<uint64_t> dropped_to_{0};  // storage thread writes, after on_refused

  AtomicPosition durable_;
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> syncs_{0};
  std::array<std::atomic<uint64_t>, kFsyncBucketCount> fsync_buckets_{};
  std::atomic<uint64_t> fsync_nanos_{0};
  std::atomic<uint64_t> append_errors_{0};
  mutable std::mutex error_mu_;
  absl::Status error_;  // guarded by error_mu_
  StorageStall stall_;  // guarded by error_mu_
};

}  // namespace ringlog
