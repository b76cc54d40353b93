// A raw Append stream on the generated stub: batches go out as written and a
// reader thread collects every acknowledgement. No failover, no retry: what
// a test sends here reaches exactly one node, malformed or not.
//
//   testkit::RawAppendStream s(node.address());
//   ASSERT_TRUE(s.send(/*batch_id=*/1, testkit::encode_events(0, 0, 10, 16)));
//   std::optional<v1::AppendResponse> ack = s.wait_ack(1, absl::Seconds(30));
//   grpc::Status end = s.finish();
//
// One sending thread; the waits may be called from it or any other.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog::testkit {

class RawAppendStream {
 public:
  // The call ends with DEADLINE_EXCEEDED after `deadline`, so a server that
  // never ends it fails the test instead of hanging it.
  explicit RawAppendStream(const std::shared_ptr<grpc::Channel>& channel,
                           absl::Duration deadline = absl::Seconds(120));
  explicit RawAppendStream(const std::string& address,
                           absl::Duration deadline = absl::Seconds(120));
  ~RawAppendStream();  // cancels the call if it has not ended

  // Writes a batch; false once the stream is broken.
  bool send(uint64_t batch_id, const std::string& records, const std::string& producer_id = "",
            uint64_t producer_seq = 0);
  bool send(const v1::AppendRequest& req);

  // Blocks while `max` or more batches are unacknowledged; false if the
  // stream ended.
  bool wait_in_flight_below(size_t max);
  // Waits for the n-th ack (from 1); nullopt if the stream ended or the
  // time passed first.
  std::optional<v1::AppendResponse> wait_ack(size_t n, absl::Duration timeout);
  // Waits for `n` acks; false on timeout or if the stream ended first.
  bool wait_acks(size_t n, absl::Duration timeout = absl::Seconds(30)) {
    return n == 0 || wait_ack(n, timeout).has_value();
  }
  // Waits until the server ends the call (or `timeout`); its status, or
  // nullopt when it did not end in time.
  std::optional<grpc::Status> wait_end(absl::Duration timeout);
  // Half-closes (if not yet), waits for the server to end the call, and
  // returns its status.
  grpc::Status finish();

  std::vector<v1::AppendResponse> acks() const;
  size_t sent() const;

 private:
  void read_loop();

  std::unique_ptr<v1::EventLog::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>> stream_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::AppendResponse> acks_;
  size_t sent_ = 0;
  bool writes_done_ = false;
  std::optional<grpc::Status> end_;  // set by the reader once the call ended
  std::thread reader_;               // last: starts once the rest is ready
};

}  // namespace ringlog::testkit
