#include "append_reactor.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "ringlog/grpc_status.h"
#include "ringlog/control.h"

namespace ringlog {

AppendReactor::AppendReactor(Node* node, grpc::CallbackServerContext* ctx)
    : node_(node), ctx_(ctx) {
  node_->stream_opened(StreamKind::kAppend);
  std::lock_guard l(mu_);
  if (node_->role() != Role::kPrimary) {
    error_ = node_->not_primary("append to");
    read_closed_ = true;
  }
  advance_locked();
}

void AppendReactor::OnReadDone(bool ok) {
  std::lock_guard l(mu_);
  reading_ = false;
  if (!ok) {  // the client half-closed (or the call ended)
    read_closed_ = true;
    advance_locked();
    return;
  }
  if (read_closed_) {  // failed meanwhile: this batch is not taken
    advance_locked();
    return;
  }
  if (grpc::Status s = auth_.check(); !s.ok()) {
    refuse_locked(from_grpc(s));
    return;
  }
  const uint64_t index = batches_++;
  if (absl::Status s = parse_frame_locked(index); !s.ok()) {
    refuse_locked(std::move(s));
    return;
  }
  std::string* records = req_.mutable_records();
  const ByteSpan span(reinterpret_cast<const std::byte*>(records->data()), records->size());
  absl::StatusOr<size_t> count = validate_records(span, node_->options().max_request_bytes);
  if (!count.ok()) {
    refuse_locked(absl::InvalidArgumentError(absl::StrFormat(
        "batch %d (batch_id %d) refused: %s", index, req_.batch_id(), count.status().message())));
    return;
  }
  if (req_.producer_id().size() > kMaxProducerIdBytes) {
    refuse_locked(absl::InvalidArgumentError(absl::StrFormat(
        "producer_id of %d bytes is over the limit of %d", req_.producer_id().size(),
        kMaxProducerIdBytes)));
    return;
  }
  if (req_.has_expected_epoch() && req_.expected_epoch() != node_->epoch()) {
    refuse_locked(absl::FailedPreconditionError(absl::StrFormat(
        "batch %d expects epoch %d but this node is in epoch %d", index, req_.expected_epoch(),
        node_->epoch())));
    return;
  }
  const size_t bytes = records->size();
  const uint64_t batch_id = req_.batch_id();
  ++in_flight_;
  in_flight_bytes_ += bytes;
  node_->submit(
      std::move(*records), *count, ProducerRef{req_.producer_id(), req_.producer_seq()},
      [this, index, batch_id, bytes](absl::StatusOr<CommitResult> r) {
        on_result(index, batch_id, bytes, std::move(r));
      },
      order_);
  records->clear();
  advance_locked();
}

absl::Status AppendReactor::parse_frame_locked(uint64_t index) {
  // A request holds its records and a few small fields; one far larger is
  // refused before it is parsed, with the words validate_records() uses.
  const size_t limit = node_->options().max_request_bytes;
  const size_t frame = req_buf_.Length();
  if (frame > limit + kFrameOverhead) {
    req_buf_.Clear();
    return absl::InvalidArgumentError(absl::StrFormat(
        "batch %d refused: a request of %d bytes is over the limit of %d bytes "
        "(--max_batch_bytes)",
        index, frame, limit));
  }
  if (!grpc::SerializationTraits<v1::AppendRequest>::Deserialize(&req_buf_, &req_).ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "message %d of the stream (%d bytes) is not an AppendRequest", index, frame));
  }
  return absl::OkStatus();
}

void AppendReactor::on_result(uint64_t index, uint64_t batch_id, size_t bytes,
                              absl::StatusOr<CommitResult> r) {
  bool destroy = false;
  {
    std::lock_guard l(mu_);
    --in_flight_;
    in_flight_bytes_ -= bytes;
    // A failure ends the stream: read nothing more (the batches after it are
    // refused anyway). Its error goes out in order, after the earlier acks.
    if (!r.ok()) read_closed_ = true;
    held_.emplace(index, Held{batch_id, std::move(r)});
    release_in_order_locked();
    if (done_) {
      destroy = in_flight_ == 0;
    } else {
      advance_locked();
    }
  }
  if (destroy) delete this;
}

void AppendReactor::release_in_order_locked() {
  for (auto it = held_.begin(); it != held_.end() && it->first == next_ack_;
       it = held_.erase(it), ++next_ack_) {
    const uint64_t index = it->first;
    absl::StatusOr<CommitResult>& r = it->second.result;
    if (index > first_failed_) {
      // A batch before it failed: the stream ends with that error and
      // acknowledges nothing after it (this one may be stored: a resend
      // with its producer id and seq is answered as a duplicate).
    } else if (!r.ok()) {
      first_failed_ = index;
      fail_locked(r.status());
    } else if (r->count == 0) {
      // Never: a batch is never empty. No ack with an empty range.
      first_failed_ = index;
      fail_locked(absl::InternalError(absl::StrFormat(
          "batch %d (batch_id %d): an empty result", index, it->second.batch_id)));
    } else {
      v1::AppendResponse& a = acks_.emplace_back();
      a.set_batch_id(it->second.batch_id);
      a.set_first_seq(r->first.seq);
      a.set_last_seq(r->first.seq + r->count - 1);
      a.set_first_offset(r->first.offset);
      a.set_end_offset(r->end.offset);
      a.set_commit_offset(r->commit_offset);
      a.set_epoch(r->epoch);
      a.set_duplicate(r->duplicate);
    }
  }
}

void AppendReactor::OnWriteDone(bool ok) {
  std::lock_guard l(mu_);
  writing_ = false;
  if (!ok) fail_locked(absl::CancelledError("the client went away"));
  advance_locked();
}

void AppendReactor::OnCancel() {
  std::lock_guard l(mu_);
  fail_locked(absl::CancelledError("the call was cancelled"));
  advance_locked();
}

void AppendReactor::OnDone() {
  node_->stream_closed(StreamKind::kAppend);
  bool destroy;
  {
    std::lock_guard l(mu_);
    done_ = true;
    destroy = in_flight_ == 0;
  }
  // Batches still in flight call back later; the last one deletes us.
  if (destroy) delete this;
}

void AppendReactor::fail_locked(absl::Status s) {
  // The first error wins; acks for batches before it still go out.
  if (error_.ok()) error_ = std::move(s);
  read_closed_ = true;
}

void AppendReactor::refuse_locked(absl::Status s) {
  fail_locked(std::move(s));
  advance_locked();  // finishes now if nothing else is in flight
}

void AppendReactor::advance_locked() {
  if (finished_) return;
  if (!writing_ && !acks_.empty()) {
    resp_buf_.Clear();  // Serialize wants an empty buffer
    bool own;
    (void)grpc::SerializationTraits<v1::AppendResponse>::Serialize(acks_.front(), &resp_buf_,
                                                                 &own);
    acks_.pop_front();
    writing_ = true;
    StartWrite(&resp_buf_);
  }
  if (!reading_ && !read_closed_ && in_flight_bytes_ < kMaxInFlightBytes &&
      in_flight_ + held_.size() < kMaxInFlightBatches) {
    reading_ = true;
    StartRead(&req_buf_);
  }
  if (read_closed_ && in_flight_ == 0 && acks_.empty() && !writing_) {
    finished_ = true;
    Finish(to_grpc(error_, ctx_));
  }
}

}  // namespace ringlog
