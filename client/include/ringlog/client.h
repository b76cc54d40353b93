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
#include "ringlog/control.h"
#include "ringlog/event.h"
#include "ringlog/security.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

struct ClientOptions {
  // HOST:PORT of the nodes. Appends go to the primary among them; a replay
  // reads from the first that answers and moves on when it goes away.
  std::vector<std::string> endpoints;
  absl::Duration connect_timeout = absl::Seconds(5);
  size_t batch_bytes = size_t{1} << 20;          // records per Append request
  size_t max_in_flight_bytes = size_t{32} << 20;  // sent but not yet acknowledged
  // Batches sent but not yet acknowledged, at most; never more than
  // kProducerWindow (ringlog/control.h), the batches of a producer whose
  // range a node remembers: after a failover every unacknowledged batch is
  // sent again, and one older than that window would be refused.
  size_t max_in_flight_batches = kProducerWindow;
  // Appends carry a producer id and a sequence per batch (from 1), so that a
  // batch sent again after a failover is not appended twice. Empty: a random
  // id. A fixed id must not be reused by a new Appender while the nodes
  // remember it (ringlog.proto, AppendRequest.producer_seq): the new one
  // starts again at seq 1, which they refuse.
  std::string producer_id;
  // After losing the primary, look for the new one this long (0: fail at once).
  absl::Duration failover_timeout = absl::Seconds(30);
  // TLS and token (ringlog/security.h); null: default_channel_security(),
  // which comes from the environment (RINGLOG_TLS_*, RINGLOG_TOKEN*).
  std::shared_ptr<const ChannelSecurity> security;
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
  // A new append stream, to the primary among the endpoints.
  absl::StatusOr<std::unique_ptr<Appender>> appender();
  std::unique_ptr<Replayer> replay(const ReplayOptions& options);

  const std::string& endpoint() const { return endpoint_; }
  const ClientOptions& options() const { return options_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  Client(ClientOptions options, std::string endpoint, std::shared_ptr<grpc::Channel> channel);
  size_t endpoint_index() const;
  ClientOptions options_;
  std::string endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Opens a channel to `endpoint` with the message limits ringlog uses, and
// `security` (null: default_channel_security()).
std::shared_ptr<grpc::Channel> make_channel(const std::string& endpoint,
                                            std::shared_ptr<const ChannelSecurity> security = nullptr);

// A pipelined append stream: events are packed into batches, batches sent
// while earlier ones wait for their acks. One thread at a time.
//
// Batches are kept until acknowledged. When the stream breaks (the primary
// crashed, stepped down, or the connection dropped) the appender finds the
// primary among the endpoints and sends them again in order; each carries the
// producer id and its sequence number, so a batch that did reach the log is
// acknowledged as a duplicate instead of being appended twice.
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
  uint64_t duplicates() const;  // batches the primary already had
  uint64_t failovers() const;   // times the appender moved to another primary
  const std::string& producer_id() const { return producer_id_; }
  std::string endpoint() const;

 private:
  friend class Client;
  struct Batch {
    uint64_t batch_id = 0;
    uint64_t producer_seq = 0;
    std::string records;
    size_t events = 0;
  };
  struct Stream {
    std::unique_ptr<grpc::ClientContext> ctx;
    std::unique_ptr<grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>> rw;
    std::thread reader;
    bool read_done = false;
    bool finished = false;
    std::string endpoint;
  };

  Appender(std::vector<std::string> endpoints, const ClientOptions& options);
  // Opens a stream to the primary (searching the endpoints); mu_ held.
  absl::Status open_locked(std::unique_lock<std::mutex>& l, const std::string& hint);
  void read_loop(Stream* s);
  absl::Status send_locked(std::unique_lock<std::mutex>& l);
  // Writes in_flight_[index] on the current stream; false if the stream broke.
  bool write_locked(std::unique_lock<std::mutex>& l, size_t index);
  // The stream broke: finish it, and fail over if the error allows.
  absl::Status recover_locked(std::unique_lock<std::mutex>& l);
  grpc::Status finish_stream_locked(std::unique_lock<std::mutex>& l);

  const ClientOptions options_;
  const std::vector<std::string> endpoints_;
  std::string producer_id_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Stream> stream_;
  std::string batch_;  // records being gathered, in batch_[0, batch_used_)
  size_t batch_used_ = 0;
  size_t batch_events_ = 0;
  v1::AppendRequest req_;  // reused for every write
  uint64_t next_batch_id_ = 1;
  uint64_t next_producer_seq_ = 1;
  std::deque<Batch> in_flight_;  // sent, not yet acknowledged, in order
  size_t in_flight_bytes_ = 0;
  std::vector<std::string> pool_;  // buffers of acknowledged batches, reused
  uint64_t events_acked_ = 0;
  uint64_t batches_sent_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t failovers_ = 0;
  std::optional<Ack> last_ack_;
  absl::Time broken_since_ = absl::InfiniteFuture();  // first break not yet recovered from
  bool closed_ = false;
  absl::Status error_;  // sticky: the appender cannot go on
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
  Replayer(std::vector<std::string> endpoints, size_t first, const ReplayOptions& options,
           std::shared_ptr<const ChannelSecurity> security);
  bool open_stream();
  bool fetch();

  std::vector<std::string> endpoints_;
  size_t endpoint_ = 0;  // the one in use
  std::shared_ptr<const ChannelSecurity> security_;
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
  uint64_t seq_ = 0;    // seq of the next record in resp_ (no filter)
  int skip_ = 0;        // next entry of resp_.skipped_seqs()
  bool started_ = false;
  uint64_t next_seq_ = 0;  // resume point
  uint64_t delivered_ = 0;
  absl::Status status_;
};

}  // namespace ringlog
