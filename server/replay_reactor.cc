#include "replay_reactor.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "ringlog/grpc_status.h"
#include "ringlog/control.h"
#include "request_checks.h"

namespace ringlog {

ReplayReactor::ReplayReactor(Node* node, const grpc::ByteBuffer* request) : node_(node) {
  node_->stream_opened(StreamKind::kReplay);
  std::lock_guard l(mu_);
  v1::ReplayRequest r;
  grpc::ByteBuffer copy = *request;  // Deserialize consumes its buffer
  if (!grpc::SerializationTraits<v1::ReplayRequest>::Deserialize(&copy, &r).ok()) {
    finish_locked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed ReplayRequest"));
    return;
  }
  start_locked(r);
}

void ReplayReactor::start_locked(const v1::ReplayRequest& request) {
  absl::StatusOr<ReplayPlan> plan = plan_replay(request);
  if (!plan.ok()) {
    finish_locked(to_grpc(plan.status()));
    return;
  }
  types_ = plan->types;
  filtered_ = plan->filtered;
  remaining_ = plan->limit;
  follow_ = plan->follow;
  include_control_ = plan->include_control;
  max_bytes_ = plan->max_bytes;
  absl::StatusOr<LogPosition> start = replay_start(node_->log(), node_->commit().offset, request);
  if (!start.ok()) {
    finish_locked(to_grpc(start.status()));
    return;
  }
  reader_.emplace(node_->log(), *start);
  next_locked();
}

void ReplayReactor::add_event(const EventView& ev, uint64_t seq, bool* first) {
  if (*first) resp_.set_first_seq(seq);
  *first = false;
  if (filtered_) resp_.add_seqs(seq);
  const ByteSpan rec = ev.record();
  resp_.mutable_records()->append(reinterpret_cast<const char*>(rec.data()), rec.size());
}

void ReplayReactor::add_slice(const LogSlice& s, bool* first) {
  // Runs of records between control records, which are cut out and their
  // seqs listed.
  const std::byte* base = s.records.bytes.data();
  const size_t n = s.records.bytes.size();
  size_t run = 0;                     // the run of records being gathered
  uint64_t run_seq = s.position.seq;  // the seq of its first record
  uint64_t seq = s.position.seq;
  auto flush = [&](size_t end) {
    if (end == run) return;
    if (*first) resp_.set_first_seq(run_seq);
    *first = false;
    runs_.push_back(MappedRun{s.segment, ByteSpan(base + run, end - run)});
    run_bytes_ += end - run;
  };
  for (size_t pos = 0; pos < n; ++seq) {
    const EventHeader* h = header_at(base + pos);
    const size_t size = h->padded_size();
    if (!include_control_ && is_control(*h)) {
      flush(pos);
      // Before the first record sent, first_seq already skips it.
      if (!*first) resp_.add_skipped_seqs(seq);
      run = pos + size;
      run_seq = seq + 1;
    }
    pos += size;
  }
  flush(n);
}

void ReplayReactor::next_locked() {
  if (finished_) return;
  if (cancelled_) {
    finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    return;
  }
  resp_.Clear();
  runs_.clear();
  run_bytes_ = 0;
  const uint64_t limit = node_->commit().offset;
  const LogPosition from = reader_->position();
  bool first = true;
  // Look at no more than this much log per response, so a filter that
  // matches little does not hold this thread for long.
  const uint64_t scan_budget = 8 * max_bytes_;
  auto bytes = [&] { return resp_.records().size() + run_bytes_; };
  while (bytes() < max_bytes_ && remaining_ > 0 &&
         reader_->position().offset - from.offset < scan_budget) {
    // A response holds at most max_bytes_ of records, unless its first
    // record alone is larger.
    std::optional<EventView> peeked = reader_->peek(limit);
    if (!peeked) break;
    const bool sent = (include_control_ || !is_control(*peeked->header)) &&
                      (!filtered_ || types_.test(peeked->event_type()));
    if (sent && bytes() != 0 && bytes() + peeked->header->padded_size() > max_bytes_) break;
    if (filtered_ || remaining_ != UINT64_MAX) {
      // Event by event: filter and count.
      const uint64_t seq = reader_->position().seq;
      std::optional<EventView> ev = reader_->next(limit);
      if (!ev) break;
      if (!include_control_ && is_control(*ev->header)) {
        if (!first && !filtered_) resp_.add_skipped_seqs(seq);
        continue;
      }
      if (filtered_ && !types_.test(ev->event_type())) continue;
      add_event(*ev, seq, &first);
      --remaining_;
    } else {
      std::optional<LogSlice> s = reader_->next_slice(limit, max_bytes_ - bytes());
      if (!s) break;
      add_slice(*s, &first);
    }
  }
  const LogPosition next = reader_->position();
  if (bytes() != 0 || next.offset != from.offset) {
    if (grpc::Status s = auth_.check(); !s.ok()) {
      finish_locked(s);
      return;
    }
    resp_.set_next_seq(next.seq);
    resp_.set_next_offset(next.offset);
    resp_.set_commit_offset(limit);
    resp_.set_epoch(node_->epoch());
    write_locked();
    return;
  }
  if (!reader_->status().ok()) {
    finish_locked(to_grpc(reader_->status()));
  } else if (remaining_ == 0 || !follow_) {
    finish_locked(grpc::Status::OK);
  } else if (std::optional<CommitNotifier::Token> t =
                 node_->notifier().wait_past(next.offset, [this] { resume(); })) {
    // Caught up: parked until the commit offset passes our position.
    parked_ = true;
    token_ = *t;
  } else {
    finish_locked(grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrFormat("the node is shutting down; resume from seq %d", next.seq)));
  }
}

void ReplayReactor::write_locked() {
  if (runs_.empty()) {
    buf_.Clear();  // Serialize wants an empty buffer; gRPC may not have emptied it
    bool own;
    (void)grpc::SerializationTraits<v1::ReplayResponse>::Serialize(resp_, &buf_, &own);
  } else {
    // resp_ has no records: they follow as its field 1, from the mapping.
    std::string head = resp_.SerializeAsString();
    append_field_header(&head, v1::ReplayResponse::kRecordsFieldNumber, run_bytes_);
    buf_ = head_and_mapped(head, runs_);
  }
  StartWrite(&buf_);
}

void ReplayReactor::resume() {
  std::lock_guard l(mu_);
  parked_ = false;
  token_ = 0;
  if (node_->stopping()) {
    finish_locked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                               absl::StrFormat("the node is shutting down; resume from seq %d",
                                               reader_->position().seq)));
    return;
  }
  next_locked();
}

void ReplayReactor::OnWriteDone(bool ok) {
  std::lock_guard l(mu_);
  if (!ok) {
    finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    return;
  }
  next_locked();
}

void ReplayReactor::OnCancel() {
  std::lock_guard l(mu_);
  cancelled_ = true;
  if (parked_ && node_->notifier().cancel(token_)) {
    parked_ = false;
    finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }
  // Otherwise a write is in flight (OnWriteDone finishes) or resume() is
  // about to run (and finishes).
}

void ReplayReactor::OnDone() {
  node_->stream_closed(StreamKind::kReplay);
  delete this;
}

void ReplayReactor::finish_locked(const grpc::Status& s) {
  if (finished_) return;
  finished_ = true;
  Finish(s);
}

}  // namespace ringlog
