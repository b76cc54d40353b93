#include "ringlog/client.h"

#include <chrono>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace ringlog {
namespace {

constexpr int kMaxMessageBytes = 64 << 20;

absl::Status to_absl(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

std::chrono::system_clock::time_point deadline_after(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

// Errors after which a replay reconnects and resumes. CANCELLED here comes
// from the server going away (our own cancel() is checked first).
bool resumable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::ABORTED ||
         s.error_code() == grpc::StatusCode::CANCELLED ||
         s.error_code() == grpc::StatusCode::INTERNAL;
}

}  // namespace

std::shared_ptr<grpc::Channel> make_channel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // Reconnect promptly after a node restarts.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Let a stream have several batches in flight before HTTP/2 flow control
  // waits for the peer (the default window suits small messages).
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 << 20);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

// ---- Client ----

Client::Client(ClientOptions options, std::string endpoint, std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)), endpoint_(std::move(endpoint)), channel_(std::move(channel)) {}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no endpoints given");
  std::string errors;
  for (const std::string& ep : options.endpoints) {
    std::shared_ptr<grpc::Channel> ch = make_channel(ep);
    if (ch->WaitForConnected(deadline_after(options.connect_timeout))) {
      return std::unique_ptr<Client>(new Client(options, ep, std::move(ch)));
    }
    absl::StrAppend(&errors, errors.empty() ? "" : ", ", ep);
  }
  return absl::UnavailableError(absl::StrFormat("cannot connect to %s within %s", errors,
                                                absl::FormatDuration(options.connect_timeout)));
}

absl::StatusOr<v1::NodeStatus> Client::status(absl::Duration timeout) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline_after(timeout));
  v1::NodeStatus out;
  grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &out);
  if (!s.ok()) return to_absl(s);
  return out;
}

absl::StatusOr<std::unique_ptr<Appender>> Client::appender() {
  std::unique_ptr<Appender> a(new Appender(channel_, options_));
  if (absl::Status s = a->start(); !s.ok()) return s;
  return a;
}

std::unique_ptr<Replayer> Client::replay(const ReplayOptions& options) {
  return std::unique_ptr<Replayer>(new Replayer(channel_, options));
}

// ---- Appender ----

Appender::Appender(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options)
    : options_(options), stub_(v1::EventLog::NewStub(std::move(channel))) {}

absl::Status Appender::start() {
  ctx_ = std::make_unique<grpc::ClientContext>();
  stream_ = stub_->Append(ctx_.get());
  if (!stream_) return absl::UnavailableError("cannot open an append stream");
  reader_ = std::thread([this] { read_loop(); });
  return absl::OkStatus();
}

Appender::~Appender() {
  (void)close();
  if (reader_.joinable()) {
    ctx_->TryCancel();
    reader_.join();
  }
}

void Appender::read_loop() {
  v1::AppendResponse r;
  while (stream_->Read(&r)) {
    std::lock_guard l(mu_);
    if (in_flight_.empty() || in_flight_.front().batch_id != r.batch_id()) {
      error_ = absl::InternalError(absl::StrFormat("unexpected ack for batch %d", r.batch_id()));
      break;
    }
    const InFlight f = in_flight_.front();
    in_flight_.pop_front();
    in_flight_bytes_ -= f.bytes;
    events_acked_ += f.events;
    last_ack_ = Ack{r.batch_id(), r.first_seq(), r.last_seq(), r.end_offset(), r.commit_offset(),
                    r.epoch()};
    cv_.notify_all();
  }
  std::lock_guard l(mu_);
  read_done_ = true;
  cv_.notify_all();
}

absl::Status Appender::append(uint8_t event_type, uint64_t timestamp, ByteSpan payload,
                              uint8_t flags) {
  if (payload.size() > kMaxPayload) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "payload of %d bytes is over the limit of %d", payload.size(), kMaxPayload));
  }
  const size_t size = padded_size(payload.size());
  std::unique_lock l(mu_);
  if (!error_.ok()) return error_;
  if (batch_used_ != 0 && batch_used_ + size > options_.batch_bytes) {
    if (absl::Status s = send_locked(l); !s.ok()) return s;
  }
  EventHeader h(timestamp, event_type, static_cast<uint16_t>(payload.size()));
  h.flags = flags;
  // batch_ keeps its full size; batch_used_ is the part holding records.
  if (batch_.size() < options_.batch_bytes + kMaxRecordSize) {
    batch_.resize(options_.batch_bytes + kMaxRecordSize);
  }
  encode_record(reinterpret_cast<std::byte*>(batch_.data()) + batch_used_, h, payload);
  batch_used_ += size;
  ++batch_events_;
  return absl::OkStatus();
}

absl::Status Appender::append_records(ByteSpan records) {
  std::unique_lock l(mu_);
  if (!error_.ok()) return error_;
  if (batch_used_ != 0) {
    if (absl::Status s = send_locked(l); !s.ok()) return s;
  }
  batch_.assign(reinterpret_cast<const char*>(records.data()), records.size());
  batch_used_ = records.size();
  size_t n = 0;
  for (size_t p = 0; p + kHeaderSize <= records.size();
       p += header_at(records.data() + p)->padded_size()) {
    ++n;
  }
  batch_events_ = n;
  return send_locked(l);
}

absl::Status Appender::flush() {
  std::unique_lock l(mu_);
  if (!error_.ok()) return error_;
  if (batch_used_ == 0) return absl::OkStatus();
  return send_locked(l);
}

absl::Status Appender::send_locked(std::unique_lock<std::mutex>& l) {
  // Backpressure: wait while too much is unacknowledged.
  cv_.wait(l, [&] {
    return in_flight_bytes_ == 0 || in_flight_bytes_ + batch_used_ <= options_.max_in_flight_bytes ||
           read_done_ || !error_.ok();
  });
  if (!error_.ok()) return error_;
  if (read_done_) return finish_locked(l);
  const uint64_t id = next_batch_id_++;
  req_.set_batch_id(id);
  in_flight_.push_back(InFlight{id, batch_used_, batch_events_});
  in_flight_bytes_ += batch_used_;
  // Hand the buffer to the request and take it back after the write, so no
  // batch allocates.
  batch_.resize(batch_used_);
  req_.mutable_records()->swap(batch_);
  batch_used_ = 0;
  batch_events_ = 0;
  ++batches_sent_;
  l.unlock();
  const bool ok = stream_->Write(req_);
  l.lock();
  req_.mutable_records()->swap(batch_);
  if (!ok) {
    // The stream broke; the reader learns why.
    cv_.wait(l, [&] { return read_done_; });
    return finish_locked(l);
  }
  return absl::OkStatus();
}

absl::Status Appender::finish_locked(std::unique_lock<std::mutex>& l) {
  if (!finished_) {
    finished_ = true;
    l.unlock();
    reader_.join();
    const grpc::Status s = stream_->Finish();
    l.lock();
    if (error_.ok()) error_ = s.ok() ? absl::UnavailableError("the append stream ended") : to_absl(s);
  }
  return error_;
}

absl::StatusOr<Ack> Appender::drain() {
  std::unique_lock l(mu_);
  if (!error_.ok()) return error_;
  if (batch_used_ != 0) {
    if (absl::Status s = send_locked(l); !s.ok()) return s;
  }
  cv_.wait(l, [&] { return in_flight_.empty() || read_done_ || !error_.ok(); });
  if (!in_flight_.empty()) {
    if (error_.ok()) return finish_locked(l);
    return error_;
  }
  if (!last_ack_) return absl::NotFoundError("nothing was appended");
  return *last_ack_;
}

absl::Status Appender::close() {
  std::unique_lock l(mu_);
  if (finished_) return error_.code() == absl::StatusCode::kUnavailable && in_flight_.empty()
                            ? absl::OkStatus()
                            : error_;
  l.unlock();
  absl::StatusOr<Ack> d = drain();
  l.lock();
  if (finished_) return in_flight_.empty() ? absl::OkStatus() : error_;
  l.unlock();
  stream_->WritesDone();
  l.lock();
  cv_.wait(l, [&] { return read_done_; });
  finished_ = true;
  l.unlock();
  reader_.join();
  const grpc::Status s = stream_->Finish();
  l.lock();
  if (!s.ok() && error_.ok()) error_ = to_absl(s);
  if (!d.ok() && d.status().code() != absl::StatusCode::kNotFound && error_.ok()) {
    error_ = d.status();
  }
  return error_;
}

uint64_t Appender::events_acked() const {
  std::lock_guard l(mu_);
  return events_acked_;
}

uint64_t Appender::batches_sent() const {
  std::lock_guard l(mu_);
  return batches_sent_;
}

// ---- Replayer ----

Replayer::Replayer(std::shared_ptr<grpc::Channel> channel, const ReplayOptions& options)
    : channel_(std::move(channel)),
      options_(options),
      stub_(v1::EventLog::NewStub(channel_)) {}

Replayer::~Replayer() {
  cancel();
  if (reader_) (void)reader_->Finish();
}

void Replayer::cancel() {
  std::lock_guard l(ctx_mu_);
  cancelled_ = true;
  if (ctx_) ctx_->TryCancel();
}

bool Replayer::open_stream() {
  v1::ReplayRequest req;
  if (started_) {
    req.set_from_seq(next_seq_);  // resume after what was delivered
  } else if (options_.from_seq) {
    req.set_from_seq(*options_.from_seq);
  } else if (options_.from_offset) {
    req.set_from_offset(*options_.from_offset);
  } else if (options_.from_timestamp) {
    req.set_from_timestamp(*options_.from_timestamp);
  } else if (options_.from_end) {
    req.set_from_end(true);
  } else {
    req.set_from_start(true);
  }
  for (uint8_t t : options_.event_types) req.add_event_types(t);
  if (options_.limit != 0) req.set_limit(options_.limit - delivered_);
  req.set_follow(options_.follow);
  req.set_max_batch_bytes(options_.max_batch_bytes);
  std::lock_guard l(ctx_mu_);
  if (cancelled_) return false;
  ctx_ = std::make_unique<grpc::ClientContext>();
  ctx_->set_wait_for_ready(started_);  // on a resume, wait for the node to be back
  reader_ = stub_->Replay(ctx_.get(), req);
  return reader_ != nullptr;
}

bool Replayer::fetch() {
  const absl::Time give_up = absl::Now() + options_.resume_for;
  for (;;) {
    if (!reader_ && !open_stream()) {
      status_ = absl::CancelledError("cancelled");
      return false;
    }
    if (reader_->Read(&resp_)) {
      started_ = true;
      pos_ = 0;
      index_ = 0;
      if (resp_.records().empty()) next_seq_ = resp_.next_seq();
      return true;
    }
    const grpc::Status s = reader_->Finish();
    reader_.reset();
    {
      std::lock_guard l(ctx_mu_);
      if (cancelled_) {
        status_ = absl::CancelledError("cancelled");
        return false;
      }
    }
    if (s.ok()) {
      status_ = absl::OkStatus();
      return false;
    }
    if (!resumable(s) || absl::Now() >= give_up) {
      status_ = to_absl(s);
      return false;
    }
    // Reconnect and resume after the last event delivered. If nothing was
    // delivered yet, start where we were asked to.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::optional<ReplayEvent> Replayer::next() {
  for (;;) {
    if (options_.limit != 0 && delivered_ >= options_.limit) return std::nullopt;
    const std::string& recs = resp_.records();
    if (pos_ < recs.size()) {
      const auto* p = reinterpret_cast<const std::byte*>(recs.data()) + pos_;
      const EventHeader* h = header_at(p);
      const uint64_t seq =
          resp_.seqs_size() > 0 ? resp_.seqs(static_cast<int>(index_)) : resp_.first_seq() + index_;
      pos_ += h->padded_size();
      ++index_;
      ++delivered_;
      next_seq_ = pos_ >= recs.size() ? resp_.next_seq() : seq + 1;
      return ReplayEvent{seq, EventView{h, ByteSpan{p + kHeaderSize, h->payload_len}}};
    }
    if (!fetch()) return std::nullopt;
  }
}

}  // namespace ringlog
