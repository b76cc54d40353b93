// EventLog.Append: one reactor per stream.
//
// Reads batches, validates each, hands it to the node, and writes the acks
// strictly in the order the batches came, whatever the order the node
// completes them in (on the notifier thread): a duplicate answered at once,
// or a batch answered together with its duplicates, waits until every
// earlier batch of the stream has its ack. At most
// kMaxInFlightBytes of a stream's batches wait for their commit; beyond that
// the reactor stops reading, so gRPC flow control pushes back on the client.
// The first batch that fails ends the stream with its error: the batches
// before it are acknowledged, those after it are refused or, if they were
// stored, not acknowledged on this stream (a resend with the same producer
// id and seq is answered as a duplicate).
//
// The method is served raw (ByteBuffers): a frame that is not an
// AppendRequest, or one over the size limit, is refused here with
// INVALID_ARGUMENT, where a typed read would only see the call end.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "node.h"
#include "security.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

class AppendReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `ctx` is the call's: a "not the primary" answer puts its redirect there.
  AppendReactor(Node* node, grpc::CallbackServerContext* ctx);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // The credentials the call was admitted with (services.cc), set before
  // the reactor is returned to gRPC.
  void set_auth(StreamAuth auth) { auth_ = std::move(auth); }

 private:
  static constexpr size_t kMaxInFlightBytes = size_t{64} << 20;
  static constexpr size_t kMaxInFlightBatches = 1024;
  // Room for an AppendRequest's fields besides its records: a request
  // larger than the records' limit by more is refused unparsed.
  static constexpr size_t kFrameOverhead = size_t{64} << 10;

  void on_result(uint64_t index, uint64_t batch_id, size_t bytes, absl::StatusOr<CommitResult> r);
  // With mu_ held: the results held in held_ from next_ack_ on, in order,
  // into acks_ (or the stream's error).
  void release_in_order_locked();
  // With mu_ held: start the next read or write, or finish, as the state allows.
  void advance_locked();
  void fail_locked(absl::Status s);
  // A batch refused while reading: fail, and finish if nothing is in flight.
  void refuse_locked(absl::Status s);
  // The frame just read: its request in req_, or why it is refused.
  absl::Status parse_frame_locked(uint64_t index);

  Node* node_;
  StreamAuth auth_;
  grpc::CallbackServerContext* ctx_;
  std::mutex mu_;
  grpc::ByteBuffer req_buf_;             // the read in flight
  v1::AppendRequest req_;                // req_buf_, parsed
  grpc::ByteBuffer resp_buf_;            // the write in flight
  std::deque<v1::AppendResponse> acks_;  // waiting to be written
  // Results that came before an earlier batch's, by index; next_ack_ is the
  // index of the first batch without a result yet.
  struct Held {
    uint64_t batch_id = 0;
    absl::StatusOr<CommitResult> result;
  };
  std::map<uint64_t, Held> held_;
  uint64_t next_ack_ = 0;
  bool reading_ = false;
  bool writing_ = false;
  bool read_closed_ = false;  // no more reads: half-close, error or cancel
  bool finished_ = false;
  bool done_ = false;  // OnDone ran
  size_t in_flight_ = 0;
  size_t in_flight_bytes_ = 0;
  uint64_t batches_ = 0;
  uint64_t first_failed_ = UINT64_MAX;  // index of the first batch that failed
  absl::Status error_;
  // Shared with the node: once a batch of this stream is refused, the later
  // ones are too, so the stream's batches are stored in order, none missing.
  const std::shared_ptr<StreamOrder> order_ = std::make_shared<StreamOrder>();
};

}  // namespace ringlog
