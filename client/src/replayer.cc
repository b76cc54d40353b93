// ringlog::Replayer: replay that resumes after a lost connection.
#include "ringlog/client.h"

#include <algorithm>
#include <chrono>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

#include "internal.h"

namespace ringlog {

using client_internal::deadline_after;
using client_internal::resumable;
using client_internal::kMaxMessageBytes;

// ---- Replayer ----

Replayer::Replayer(std::vector<std::string> endpoints, size_t first, const ReplayOptions& options,
                   std::shared_ptr<const ChannelSecurity> security)
    : endpoints_(std::move(endpoints)),
      endpoint_(first),
      security_(std::move(security)),
      channel_(make_channel(endpoints_.at(first), security_)),
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
      seq_ = resp_.first_seq();
      skip_ = 0;
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
      status_ = from_grpc(s);
      return false;
    }
    // Reconnect and resume after the last event delivered (if nothing was
    // delivered yet, where we were asked to start), on the next endpoint: any
    // node serves replay.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (endpoints_.size() > 1) {
      endpoint_ = (endpoint_ + 1) % endpoints_.size();
      channel_ = make_channel(endpoints_[endpoint_], security_);
      stub_ = v1::EventLog::NewStub(channel_);
    }
  }
}

std::optional<ReplayEvent> Replayer::next() {
  for (;;) {
    if (options_.limit != 0 && delivered_ >= options_.limit) return std::nullopt;
    const std::string& recs = resp_.records();
    if (pos_ < recs.size()) {
      const auto* p = reinterpret_cast<const std::byte*>(recs.data()) + pos_;
      const EventHeader* h = header_at(p);
      uint64_t seq;
      if (resp_.seqs_size() > 0) {
        seq = resp_.seqs(static_cast<int>(index_));
      } else {
        // Consecutive, but for the seqs of control records left out.
        while (skip_ < resp_.skipped_seqs_size() && resp_.skipped_seqs(skip_) <= seq_) {
          if (resp_.skipped_seqs(skip_) == seq_) ++seq_;
          ++skip_;
        }
        seq = seq_++;
      }
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
