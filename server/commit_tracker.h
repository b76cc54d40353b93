// Commit tracking: the durable and commit offsets, the replicas' acks, and
// waking whoever waits on either offset.
//
//   commit = min(durable here, the min_replica_acks-th highest replica ack)
//
// On a primary the storage thread reports the durable offset (on_durable)
// and Replication.Follow streams report acks (replica_ack); each moves the
// commit offset when the rule allows. On a replica the follower sets the
// commit offset the primary sent (advance_commit). Waiters park on the two
// notifiers (commit_notifier.h), whose threads run their callbacks.
//
// Threads: any; replicas_ and commit updates are serialized by mu_. The
// commit offset only grows.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "commit_notifier.h"
#include "ringlog/storage.h"

namespace ringlog {

// What the primary knows of a replica.
struct ReplicaView {
  std::string node_id;
  std::string peer;
  std::string advertise;
  LogPosition acked;  // durable on the replica
  absl::Time last_ack;
  absl::Time caught_up_at;  // when its ack last covered everything durable here
  bool connected = false;
  // Why it cannot store what it is sent (a full disk), as its last ack said;
  // empty when it can. Kept while it is away, cleared when it connects.
  std::string storage_error;
  absl::Time storage_error_since;
};

struct ReplicaLag {
  std::string node_id;
  double seconds = 0;  // how long it has been behind; 0 when caught up
};

// The commit position that `durable` (here) and the replicas' `acks` allow:
// durable when min_acks is 0; nullopt while fewer than min_acks replicas
// are known.
std::optional<LogPosition> commit_position(LogPosition durable, std::vector<LogPosition> acks,
                                           uint32_t min_acks);

class CommitTracker {
 public:
  explicit CommitTracker(uint32_t min_replica_acks) : min_replica_acks_(min_replica_acks) {}

  CommitNotifier& commit_notifier() { return commit_notifier_; }
  CommitNotifier& durable_notifier() { return durable_notifier_; }
  LogPosition commit() const { return commit_notifier_.commit(); }
  LogPosition durable() const { return durable_.load(); }

  // A primary term starts with `end` durable (everything recovered from
  // disk). With min_replica_acks = 0 it is also committed; otherwise the
  // commit offset waits for the replicas' acks (the tail may never have
  // reached them).
  void start_term(LogPosition end);
  // Storage thread. The commit offset moves first: a replica's sender woken
  // by the durable offset then ships the new records with the commit offset
  // that covers them, and the replica can serve them at once.
  void on_durable(LogPosition durable);
  // A replica: the primary's commit offset, as it was sent.
  void advance_commit(LogPosition c) { commit_notifier_.advance(c); }

  // A replica's stream starts at `from` (what it holds after truncating).
  void replica_connected(const std::string& id, const std::string& peer,
                         const std::string& advertise, LogPosition from);
  void replica_disconnected(const std::string& id);
  void replica_ack(const std::string& id, LogPosition durable);
  // What the replica's ack says about storing ("" when it can); true when
  // it could and now cannot, or the other way round.
  bool replica_storage(const std::string& id, const std::string& error);
  std::vector<ReplicaView> replicas() const;
  std::vector<ReplicaLag> lag_seconds() const;
  void forget_replicas();  // the primary term ended

 private:
  void update_commit();

  const uint32_t min_replica_acks_;
  AtomicPosition durable_;
  CommitNotifier commit_notifier_;
  CommitNotifier durable_notifier_;
  mutable std::mutex mu_;  // serializes commit updates; guards replicas_
  std::map<std::string, ReplicaView> replicas_;
};

}  // namespace ringlog
