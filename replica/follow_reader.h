// Reads a Replication.Follow stream on a thread of its own, so that the
// follower thread can wait for the primary's next message with a deadline.
//
// The follower thread is the log's only writer, and its interval sync must
// happen when it is due, not when the next message happens to arrive (an
// idle primary sends one only every heartbeat, 500 ms). A synchronous Read
// cannot wake on a deadline, so this reader thread does the Reads and hands
// each message over through a few slots; the follower thread waits in
// next() until a message is there or its sync is due. Everything else stays
// on the follower thread: appends, syncs, acks (Writes on the stream, which
// gRPC allows concurrently with the one Read in flight), callbacks.
//
//   FollowReader reader(stream, /*read_ahead=*/true);
//   for (;;) {
//     switch (reader.next(&resp, schedule.next_due())) {
//       case FollowReader::Next::kMessage: apply(resp); ack(); break;
//       case FollowReader::Next::kDue: sync(); ack(); break;
//       case FollowReader::Next::kEnded: return;  // then Finish() the stream
//     }
//   }
//
// Reading ahead by a few messages also lets the next chunk come off the
// wire while the follower applies this one. A follower with no deadlines to
// keep (fsync none or batch: nothing stays unsynced after a message) makes
// it without the thread: next() then Reads on the caller's thread, and a
// message costs no hand-over between threads.
#pragma once

#include <array>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

class FollowReader {
 public:
  using Stream = grpc::ClientReaderWriter<v1::FollowRequest, v1::FollowResponse>;
  enum class Next {
    kMessage,  // *resp holds the next message
    kDue,      // the deadline passed first; *resp is untouched
    kEnded,    // the stream ended (Read returned false): Finish() it
  };

  // Starts the reader thread on `stream`, which must outlive this object;
  // without `read_ahead`, no thread: next() Reads itself, and its deadline
  // must be InfiniteFuture.
  FollowReader(Stream* stream, bool read_ahead);
  // Joins the reader thread. A Read may be in flight: the caller must have
  // seen kEnded, or cancelled the call's context, or had a Write fail (the
  // stream is over), so that the Read returns. Finish() only after this.
  ~FollowReader();
  FollowReader(const FollowReader&) = delete;
  FollowReader& operator=(const FollowReader&) = delete;

  // Follower thread only. Waits until the next message is read (swapped into
  // *resp), the stream ends, or `deadline` passes (InfiniteFuture: no
  // deadline; a deadline already past still takes a message that is there).
  Next next(v1::FollowResponse* resp, absl::Time deadline);

 private:
  // Messages read but not yet taken: a handful, each at most one chunk
  // (1 MiB), so the primary's window, not this, bounds what is in flight.
  static constexpr size_t kSlots = 4;

  void read_loop();  // reader thread

  Stream* stream_;
  // Slot i belongs to the reader thread while it is outside [head_, head_ +
  // count_) (mod kSlots) and to next() inside it; mu_ hands slots over (its
  // release/acquire orders the message's bytes with the count).
  std::array<v1::FollowResponse, kSlots> slots_;
  std::mutex mu_;
  std::condition_variable readable_;  // count_ > 0 or ended_; next() waits
  std::condition_variable writable_;  // count_ < kSlots or closing_; the reader waits
  size_t head_ = 0;         // guarded by mu_
  size_t count_ = 0;        // guarded by mu_
  bool ended_ = false;      // guarded by mu_: Read returned false
  bool closing_ = false;    // guarded by mu_: the destructor runs
  std::thread thread_;      // last: started once the members above exist; none without read-ahead
};

}  // namespace ringlog
