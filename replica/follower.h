// The replica side of replication: follows a primary over
// Replication.Follow and keeps a byte-identical copy of its log.
//
// One thread (the follower's) is the only writer of the replica's log. It
// connects, says where its log ends and which epochs it has, truncates when
// the primary's directive says its tail diverges, then applies chunks: every
// record's checksum is checked, segments start exactly where and as the
// primary's did, and the durable offset is acknowledged after each chunk
// and after each interval sync, which happens when it is due whether or not
// a message arrives (a helper thread does the stream's Reads; the follower
// thread waits for them with the sync's deadline: follow_reader.h).
// Any error ends the stream; the follower reconnects with backoff and resumes
// from its own end, except a full disk: the follower keeps the stream, tells
// the primary in its acks, applies retention and retries the chunk until it
// fits (follower_disk.cc).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "ringlog/epochs.h"
#include "ringlog/pipeline.h"
#include "ringlog/storage.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

class FollowReader;

enum class FollowerState { kConnecting, kCatchingUp, kStreaming, kStopped };
const char* follower_state_name(FollowerState s);

struct FollowerOptions {
  std::string primary;  // HOST:PORT
  std::string node_id;
  std::string advertise;
  FsyncPolicy fsync = FsyncPolicy::kNone;
  absl::Duration fsync_interval = absl::Milliseconds(10);
  uint64_t window_bytes = uint64_t{64} << 20;
  // Records below this offset were committed as far as this node knows
  // (served to clients, acknowledged): a directive to cut below it is refused
  // unless allow_truncate_below_commit.
  uint64_t commit_floor = 0;
  bool allow_truncate_below_commit = false;
  absl::Duration min_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(2);
  // While the disk is full: how often to apply retention and try again.
  absl::Duration disk_retry = absl::Milliseconds(200);
  // Retention (the log's retention options) is applied this often anyway.
  absl::Duration retention_interval = absl::Seconds(10);
  // Called on the follower thread: the commit offset learned from the
  // primary (never past what this log holds), and the primary's epoch.
  std::function<void(LogPosition commit, uint64_t epoch)> on_commit;
  // Called on the follower thread with records just appended to the log.
  std::function<void(ByteSpan records, LogPosition first)> on_applied;
  // Called on the follower thread after the log was cut at `offset` (its
  // tail was not in the primary's history).
  std::function<void(uint64_t offset)> on_truncated;
  // Called when the primary's epoch is above ours (we adopt it).
  std::function<void(uint64_t epoch)> on_epoch;
};

class Follower {
 public:
  // `epochs_mu` guards `epochs` against the node's readers.
  Follower(SegmentedLog* log, EpochHistory* epochs, std::mutex* epochs_mu, FollowerOptions options);
  ~Follower();  // stop()

  void start();
  // Ends the stream and joins the thread; the log is the caller's again.
  void stop();

  FollowerState state() const { return state_.load(std::memory_order_acquire); }
  std::string primary() const;
  // Follows `primary` from the next connect on. Set this way (by an
  // operator), the primary is kept even when it names another one.
  void set_primary(const std::string& primary);
  void set_allow_truncate_below_commit(bool allow);
  void set_advertise(const std::string& address);  // told to the primary at the next connect
  uint64_t applied_offset() const { return log_->end().offset; }
  LogPosition commit() const { return commit_.load(); }
  uint64_t primary_epoch() const { return primary_epoch_.load(std::memory_order_acquire); }
  // The last error that ended a stream (empty before the first).
  std::string last_error() const;
  // Why this replica cannot store what its primary sends (a full disk), and
  // since when; OK when it can.
  absl::Status disk_full(absl::Time* since = nullptr) const;

 private:
  using Stream = grpc::ClientReaderWriter<v1::FollowRequest, v1::FollowResponse>;

  // Follower thread only, below.
  void run();
  // One connection: handshake, directive, chunks until an error. The error
  // carries the primary's redirect, if it answered "not the primary".
  absl::Status follow_once();
  // Sends the hello (where the log ends, the epoch history) and reads the
  // primary's first answer; false when the stream ended instead.
  bool handshake(Stream* stream, v1::FollowResponse* first);
  // Takes the directive: refuses a primary behind our epoch, cuts the tail
  // that diverges from its history, adopts its history and epoch.
  absl::Status adopt_directive(const std::string& primary, const v1::FollowResponse& resp);
  // Cuts the log at `truncate_to` when it ends past it, never below what
  // this node knows was committed unless forced.
  absl::Status truncate_as_directed(const std::string& primary, uint64_t truncate_to);
  // Applies chunks and heartbeats starting with *resp, acking what is
  // durable, and syncs when the fsync interval is due even if no message
  // comes (`reader` reads ahead; see follow_reader.h); OK when the stream
  // ends, an error to end it on our side.
  absl::Status stream_chunks(Stream* stream, FollowReader* reader, v1::FollowResponse* resp);
  // Acks the durable offset if it moved since *acked (or `always`); false
  // when the stream is over.
  bool ack_durable(Stream* stream, bool always, uint64_t* acked);
  // apply_chunk() on our log, then tells on_applied and the sync schedule.
  absl::Status apply(const v1::Chunk& chunk);
  // apply(), and while the disk is full: keep the stream, tell the primary
  // (acks carry the error), apply retention and try again every disk_retry,
  // until it fits, the stream ends or stop() (follower_disk.cc).
  absl::Status apply_or_wait(Stream* stream, const v1::Chunk& chunk, uint64_t* acked);
  void note_disk_full(const absl::Status& s);
  void note_disk_ok();
  // Applies the log's retention when configured, at most every
  // retention_interval unless `now_anyway`.
  void maybe_apply_retention(bool now_anyway);
  // Serves the primary's commit offset, never past our own durable log.
  void learn_commit(uint64_t epoch);
  bool send_ack(Stream* stream, uint64_t durable, uint64_t applied);
  absl::Status make_durable(bool force);
  void set_error(const absl::Status& s);

  SegmentedLog* log_;
  EpochHistory* epochs_;
  std::mutex* epochs_mu_;
  FollowerOptions options_;

  std::atomic<FollowerState> state_{FollowerState::kConnecting};
  AtomicPosition commit_;
  std::atomic<uint64_t> primary_epoch_{0};
  uint64_t primary_commit_ = 0;  // follower thread only
  std::atomic<bool> allow_truncate_below_commit_{false};
  std::atomic<uint64_t> commit_floor_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::string primary_;
  bool pinned_ = false;  // primary_ was set by an operator: never redirected
  bool retarget_ = false;  // set_primary() since the last attempt: no backoff
  std::string last_error_;
  absl::Status disk_full_;       // guarded by mu_: OK while the disk can store
  absl::Time disk_full_since_;   // guarded by mu_
  grpc::ClientContext* ctx_ = nullptr;  // the live stream's, for stop()
  std::thread thread_;

  SyncSchedule sync_schedule_;  // follower thread only
  absl::Time last_retention_;   // follower thread only
};

}  // namespace ringlog
