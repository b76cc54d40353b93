// ringlog::Appender: pipelined, idempotent appends that follow the primary.
#include "ringlog/client.h"

#include <algorithm>
#include <chrono>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

#include "internal.h"

namespace ringlog {

using client_internal::status_of;

// ---- Appender ----

namespace {

// Errors after which an appender looks for the primary and sends again.
bool failover_worthy(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:          // node down or shutting down
    case grpc::StatusCode::FAILED_PRECONDITION:  // a replica, or stepped down
    case grpc::StatusCode::ABORTED:              // the primary started a new epoch
    case grpc::StatusCode::CANCELLED:            // the server went away mid-call
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:             // a transport error
      return true;
    default:
      return false;
  }
}

std::string random_producer_id() {
  absl::BitGen gen;
  return absl::StrFormat("p-%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

// The address of the primary among `candidates` (the latest epoch), or "".
std::string find_primary(const std::vector<std::string>& candidates,
                         const std::shared_ptr<const ChannelSecurity>& security) {
  std::string best;
  uint64_t best_epoch = 0;
  std::string unreadable;  // the first node that answered but would not tell its role
  for (const std::string& c : candidates) {
    absl::StatusOr<v1::NodeStatus> st = status_of(make_channel(c, security), absl::Milliseconds(500));
    if (absl::IsPermissionDenied(st.status()) && unreadable.empty()) unreadable = c;
    if (!st.ok()) continue;
    if (st->role() == v1::ROLE_PRIMARY && (best.empty() || st->epoch() > best_epoch)) {
      best = c;
      best_epoch = st->epoch();
    }
  }
  // A token with the append role alone may not read a node's status: try
  // appending to a node that answered; a replica redirects to its primary.
  return best.empty() ? unreadable : best;
}

}  // namespace

Appender::Appender(std::vector<std::string> endpoints, const ClientOptions& options)
    : options_(options),
      endpoints_(std::move(endpoints)),
      producer_id_(options.producer_id.empty() ? random_producer_id() : options.producer_id) {}

Appender::~Appender() {
  (void)close();
  std::unique_lock l(mu_);
  if (stream_ && !stream_->finished) {
    stream_->ctx->TryCancel();
    (void)finish_stream_locked(l);
  }
}

std::string Appender::endpoint() const {
  std::lock_guard l(mu_);
  return stream_ ? stream_->endpoint : "";
}

absl::Status Appender::open_locked(std::unique_lock<std::mutex>& l, const std::string& hint) {
  std::vector<std::string> candidates;
  if (!hint.empty()) candidates.push_back(hint);
  for (const std::string& e : endpoints_) candidates.push_back(e);
  l.unlock();
  std::string primary = endpoints_.size() == 1 && hint.empty() ? endpoints_[0] : find_primary(candidates, options_.security);
  l.lock();
  if (primary.empty()) return absl::UnavailableError("no primary among the endpoints");
  auto s = std::make_unique<Stream>();
  s->endpoint = primary;
  s->ctx = std::make_unique<grpc::ClientContext>();
  std::unique_ptr<v1::EventLog::Stub> stub = v1::EventLog::NewStub(make_channel(primary, options_.security));
  s->rw = stub->Append(s->ctx.get());
  if (!s->rw) return absl::UnavailableError("cannot open an append stream to " + primary);
  Stream* raw = s.get();
  s->reader = std::thread([this, raw] { read_loop(raw); });
  stream_ = std::move(s);
  return absl::OkStatus();
}

void Appender::read_loop(Stream* s) {
  v1::AppendResponse r;
  while (s->rw->Read(&r)) {
    std::lock_guard l(mu_);
    if (in_flight_.empty() || in_flight_.front().batch_id != r.batch_id()) {
      error_ = absl::InternalError(absl::StrFormat("unexpected ack for batch %d", r.batch_id()));
      break;
    }
    Batch& b = in_flight_.front();
    in_flight_bytes_ -= b.records.size();
    events_acked_ += b.events;
    if (r.duplicate()) ++duplicates_;
    if (!b.records.empty()) pool_.push_back(std::move(b.records));
    in_flight_.pop_front();
    last_ack_ = Ack{r.batch_id(), r.first_seq(), r.last_seq(), r.end_offset(), r.commit_offset(),
                    r.epoch()};
    broken_since_ = absl::InfiniteFuture();  // acknowledged: the outage, if any, is over
    cv_.notify_all();
  }
  std::lock_guard l(mu_);
  s->read_done = true;
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
  for (;;) {
    const size_t max_batches =
        std::clamp<size_t>(options_.max_in_flight_batches, 1, kProducerWindow);
    cv_.wait(l, [&] {
      return in_flight_.empty() ||
             (in_flight_bytes_ + batch_used_ <= options_.max_in_flight_bytes &&
              in_flight_.size() < max_batches) ||
             stream_->read_done || !error_.ok();
    });
    if (!error_.ok()) return error_;
    if (!stream_->read_done) break;
    if (absl::Status s = recover_locked(l); !s.ok()) return s;
  }
  Batch b;
  b.batch_id = next_batch_id_++;
  b.producer_seq = next_producer_seq_++;
  b.events = batch_events_;
  batch_.resize(batch_used_);
  b.records.swap(batch_);
  // A buffer of an acknowledged batch for the next one, so no batch allocates.
  if (!pool_.empty()) {
    batch_.swap(pool_.back());
    pool_.pop_back();
  }
  batch_used_ = 0;
  batch_events_ = 0;
  in_flight_bytes_ += b.records.size();
  in_flight_.push_back(std::move(b));
  ++batches_sent_;
  if (!write_locked(l, in_flight_.size() - 1)) return recover_locked(l);
  return absl::OkStatus();
}

bool Appender::write_locked(std::unique_lock<std::mutex>& l, size_t index) {
  Batch& b = in_flight_[index];
  const uint64_t id = b.batch_id;
  req_.set_batch_id(id);
  req_.set_producer_id(producer_id_);
  req_.set_producer_seq(b.producer_seq);
  // Lend the records to the request for the write, without a copy.
  req_.mutable_records()->swap(b.records);
  Stream* s = stream_.get();
  l.unlock();
  const bool ok = s->rw->Write(req_);
  l.lock();
  // The reader may have acknowledged (and dropped) the batch meanwhile.
  auto it = std::find_if(in_flight_.begin(), in_flight_.end(),
                         [id](const Batch& x) { return x.batch_id == id; });
  if (it != in_flight_.end()) {
    it->records.swap(*req_.mutable_records());
  } else {
    pool_.push_back(std::move(*req_.mutable_records()));
  }
  req_.mutable_records()->clear();
  return ok;
}

grpc::Status Appender::finish_stream_locked(std::unique_lock<std::mutex>& l) {
  Stream* s = stream_.get();
  if (s == nullptr || s->finished) return grpc::Status::OK;
  s->finished = true;
  const bool ended = s->read_done;
  l.unlock();
  // Cancel only a stream still running: on one that ended, Finish() must
  // return the server's own status (which may name the primary).
  if (!ended) s->ctx->TryCancel();
  if (s->reader.joinable()) s->reader.join();
  const grpc::Status st = s->rw->Finish();
  l.lock();
  return st;
}

absl::Status Appender::recover_locked(std::unique_lock<std::mutex>& l) {
  // Wait for the reader to see the end, so every ack that came is counted.
  cv_.wait(l, [&] { return stream_->read_done; });
  const grpc::Status st = finish_stream_locked(l);
  if (!error_.ok()) return error_;
  // A node that is not the primary names the one it knows, if any.
  const std::optional<Redirect> redirect = redirect_from(*stream_->ctx);
  // FAILED_PRECONDITION without a redirect is the batch's own fault (its
  // producer_seq is out of sequence): sending it again would not help.
  const bool refused_as_such =
      st.error_code() == grpc::StatusCode::FAILED_PRECONDITION && !redirect.has_value();
  if (!failover_worthy(st) || refused_as_such ||
      options_.failover_timeout <= absl::ZeroDuration()) {
    error_ = st.ok() ? absl::UnavailableError("the append stream ended") : from_grpc(st);
    return error_;
  }
  const std::string old = stream_->endpoint;
  std::string hint = redirect ? redirect->primary : "";
  // One deadline for the whole outage, however many times the stream breaks.
  if (broken_since_ == absl::InfiniteFuture()) broken_since_ = absl::Now();
  const absl::Time give_up = broken_since_ + options_.failover_timeout;
  absl::Status last = from_grpc(st);
  while (absl::Now() < give_up) {
    if (absl::Status s = open_locked(l, hint); s.ok()) {
      // Send again, in order, everything not acknowledged; the producer
      // sequence makes the primary drop what it already has.
      bool ok = true;
      for (size_t i = 0; ok && i < in_flight_.size(); ++i) ok = write_locked(l, i);
      if (ok) {
        if (stream_->endpoint != old) ++failovers_;
        return absl::OkStatus();
      }
      cv_.wait(l, [&] { return stream_->read_done; });
      last = from_grpc(finish_stream_locked(l));
    } else {
      last = s;
    }
    hint.clear();
    l.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    l.lock();
  }
  error_ = absl::UnavailableError(absl::StrFormat("no primary found within %s after: %s",
                                                  absl::FormatDuration(options_.failover_timeout),
                                                  last.ToString()));
  return error_;
}

absl::StatusOr<Ack> Appender::drain() {
  std::unique_lock l(mu_);
  if (!error_.ok()) return error_;
  if (batch_used_ != 0) {
    if (absl::Status s = send_locked(l); !s.ok()) return s;
  }
  for (;;) {
    cv_.wait(l, [&] { return in_flight_.empty() || stream_->read_done || !error_.ok(); });
    if (!error_.ok()) return error_;
    if (in_flight_.empty()) break;
    if (absl::Status s = recover_locked(l); !s.ok()) return s;
  }
  if (!last_ack_) return absl::NotFoundError("nothing was appended");
  return *last_ack_;
}

absl::Status Appender::close() {
  {
    std::lock_guard l(mu_);
    if (closed_) return error_;
  }
  absl::StatusOr<Ack> d = drain();
  std::unique_lock l(mu_);
  closed_ = true;
  if (stream_ && !stream_->finished) {
    Stream* s = stream_.get();
    l.unlock();
    s->rw->WritesDone();
    l.lock();
    cv_.wait(l, [&] { return s->read_done; });
    const grpc::Status st = finish_stream_locked(l);
    if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED && error_.ok()) {
      error_ = from_grpc(st);
    }
  }
  if (!d.ok() && !absl::IsNotFound(d.status()) && error_.ok()) error_ = d.status();
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

uint64_t Appender::duplicates() const {
  std::lock_guard l(mu_);
  return duplicates_;
}

uint64_t Appender::failovers() const {
  std::lock_guard l(mu_);
  return failovers_;
}

}  // namespace ringlog
