// ringlog::Client: the C++ client of a ringlog node.
//
//   auto client = ringlog::Client::Connect({.endpoints = {"127.0.0.1:7400"}});
//   auto appender = (*client)->appender();
//   appender->append(/*type=*/1, now_ns, payload);   // batched, pipelined
//   absl::StatusOr<ringlog::Ack> last = appender->drain();  // all acknowledged
//
//   ringlog::ReplayOptions r;
//   r.from_seq = 0;
//   r.follow = true;
//   auto replayer = (*client)->replay(r);
//   while (auto ev = replayer->next()) use(ev->seq, ev->view);
//   // replayer->status() says why it stopped
//
// A replay that loses its connection reconnects and resumes after the last
// event it delivered. Appends are acknowledged in order, once committed.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "ringlog/event.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

struct ClientOptions {
  std::vector<std::string> endpoints;  // HOST:PORT; the first that answers is used
  absl::Duration connect_timeout = absl::Seconds(5);
  size_t batch_bytes = size_t{1} << 20;          // records per Append request
  size_t max_in_flight_bytes = size_t{32} << 20;  // sent but not yet acknowledged
};

// An acknowledgement: the batch's events are committed.
struct Ack {
  uint64_t batch_id = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t end_offset = 0;
  uint64_t commit_offset = 0;
  uint64_t epoch = 0;
};

class Appender;
class Replayer;

struct ReplayOptions {
  // Where to start; at most one set. None: from the start of the log.
  std::optional<uint64_t> from_seq;
  std::optional<uint64_t> from_offset;
  std::optional<uint64_t> from_timestamp;
  bool from_end = false;
  std::vector<uint8_t> event_types;  // empty: all
  uint64_t limit = 0;                // 0: no limit
  bool follow = false;
  uint32_t max_batch_bytes = 0;      // 0: the server's default
  // Reconnect and resume after a lost connection, for this long in all.
  absl::Duration resume_for = absl::Seconds(30);
};

class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);

  absl::StatusOr<v1::NodeStatus> status(absl::Duration timeout = absl::Seconds(5));
  // A new append stream.
  absl::StatusOr<std::unique_ptr<Appender>> appender();
  std::unique_ptr<Replayer> replay(const ReplayOptions& options);

  const std::string& endpoint() const { return endpoint_; }
  const ClientOptions& options() const { return options_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  Client(ClientOptions options, std::string endpoint, std::shared_ptr<grpc::Channel> channel);
  ClientOptions options_;
  std::string endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Opens a channel to `endpoint` with the message limits ringlog uses.
std::shared_ptr<grpc::Channel> make_channel(const std::string& endpoint);

// A pipelined append stream: events are packed into batches, batches sent
// while earlier ones wait for their acks. One thread at a time.
class Appender {
 public:
  ~Appender();  // close()

  // Adds an event to the current batch (the checksum is computed here) and
  // sends the batch when it is full. Blocks while too much is in flight.
  absl::Status append(uint8_t event_type, uint64_t timestamp, ByteSpan payload,
                      uint8_t flags = 0);
  // Adds records already in the log format (checked by the server).
  absl::Status append_records(ByteSpan records);
  // Sends the current batch now.
  absl::Status flush();
  // Sends what is buffered and waits until every batch is acknowledged.
  absl::StatusOr<Ack> drain();
  // drain(), then ends the stream.
  absl::Status close();

  uint64_t events_acked() const;
  uint64_t batches_sent() const;

 private:
  friend class Client;
  Appender(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options);
  absl::Status start();
  void read_loop();
  absl::Status send_locked(std::unique_lock<std::mutex>& l);
  absl::Status finish_locked(std::unique_lock<std::mutex>& l);

  struct InFlight {
    uint64_t batch_id;
    size_t bytes;
    size_t events;
  };

  const ClientOptions options_;
  std::unique_ptr<v1::EventLog::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>> stream_;
  std::thread reader_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string batch_;      // records being gathered, in batch_[0, batch_used_)
  size_t batch_used_ = 0;
  size_t batch_events_ = 0;
  v1::AppendRequest req_;  // reused for every batch
  uint64_t next_batch_id_ = 1;
  std::deque<InFlight> in_flight_;
  size_t in_flight_bytes_ = 0;
  uint64_t events_acked_ = 0;
  uint64_t batches_sent_ = 0;
  std::optional<Ack> last_ack_;
  bool read_done_ = false;
  bool finished_ = false;
  absl::Status error_;
};

// One event of a replay. The view points into the replayer's buffer and is
// valid until the next call to next().
struct ReplayEvent {
  uint64_t seq = 0;
  EventView view;
};

class Replayer {
 public:
  ~Replayer();
  // The next event, waiting for it if need be; nullopt at the end (or limit)
  // of a replay that does not follow, on cancel(), or on an error (status()).
  std::optional<ReplayEvent> next();
  // OK after a clean end.
  const absl::Status& status() const { return status_; }
  // Ends a replay blocked in next() from another thread.
  void cancel();
  // The seq after the last event delivered (or skipped by a type filter).
  uint64_t next_seq() const { return next_seq_; }

 private:
  friend class Client;
  Replayer(std::shared_ptr<grpc::Channel> channel, const ReplayOptions& options);
  bool open_stream();
  bool fetch();

  std::shared_ptr<grpc::Channel> channel_;
  ReplayOptions options_;
  std::unique_ptr<v1::EventLog::Stub> stub_;
  std::mutex ctx_mu_;  // guards ctx_ against cancel()
  std::unique_ptr<grpc::ClientContext> ctx_;
  bool cancelled_ = false;
  std::unique_ptr<grpc::ClientReader<v1::ReplayResponse>> reader_;
  v1::ReplayResponse resp_;
  size_t pos_ = 0;      // byte position in resp_.records()
  size_t index_ = 0;    // record index in resp_
  bool started_ = false;
  uint64_t next_seq_ = 0;  // resume point
  uint64_t delivered_ = 0;
  absl::Status status_;
};

}  // namespace ringlog
