#include "follow_reactor.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "mapped_message.h"
#include "ringlog/epochs_wire.h"
#include "ringlog/grpc_status.h"
#include "spdlog/spdlog.h"

namespace ringlog {

FollowReactor::FollowReactor(Node* node, grpc::CallbackServerContext* ctx)
    : node_(node), ctx_(ctx), peer_(ctx->peer()) {
  std::lock_guard l(mu_);
  if (node_->role() != Role::kPrimary) {
    finish_locked(to_grpc(node_->not_primary("follow"), ctx_));
    return;
  }
  StartRead(&req_buf_);
}

void FollowReactor::OnReadDone(bool ok) {
  std::lock_guard l(mu_);
  if (!ok) {  // the replica went away
    finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "the replica ended the stream"));
    return;
  }
  if (grpc::Status s = auth_.check(); !s.ok()) {
    finish_locked(s);
    return;
  }
  if (!grpc::SerializationTraits<v1::FollowRequest>::Deserialize(&req_buf_, &req_).ok()) {
    finish_locked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed FollowRequest"));
    return;
  }
  if (!hello_done_) {
    if (!req_.has_hello()) {
      finish_locked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first message must be a hello"));
      return;
    }
    on_hello(req_.hello());
    return;
  }
  if (req_.has_ack()) {
    const v1::FollowAck& a = req_.ack();
    // A replica holds nothing of this log past what this stream sent it
    // (the directive cut it there): an ack beyond that is a lie, and
    // counting it could commit what no replica has.
    if (a.durable_offset() > sent_offset_ || a.applied_offset() > sent_offset_) {
      finish_locked(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrFormat("ack of offset %d (applied %d) is beyond what this stream sent (up to "
                          "offset %d); not counted",
                          a.durable_offset(), a.applied_offset(), sent_offset_)));
      return;
    }
    // The seq comes from this log, not from the replica.
    absl::StatusOr<LogPosition> at = node_->log().find_offset(a.durable_offset());
    if (absl::IsInvalidArgument(at.status())) {  // inside a record: no replica acks that
      finish_locked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 absl::StrCat("ack: ", at.status().message(), "; not counted")));
      return;
    }
    acked_offset_ = std::max(acked_offset_, a.applied_offset());
    node_->replica_ack(replica_id_,
                       at.ok() ? *at : LogPosition{a.durable_offset(), a.durable_seq()});
    node_->replica_storage(replica_id_, a.storage_error());
  }
  StartRead(&req_buf_);
  next_locked();  // the window may have opened
}

void FollowReactor::on_hello(const v1::FollowHello& hello) {
  hello_done_ = true;
  replica_id_ = hello.node_id().empty() ? peer_ : hello.node_id();
  if (absl::Status lost = node_->data_loss(); !lost.ok()) {
    // No directive from a log with a gap: it could make the replica cut
    // the very records this node lost.
    node_->note_replica_candidate(hello.advertise(), hello.log_end_offset());
    finish_locked(to_grpc(lost));
    return;
  }
  if (hello.window_bytes() != 0) window_ = std::max<uint64_t>(hello.window_bytes(), 2 * kChunkBytes);
  const std::vector<EpochEntry> replica_epochs = epochs_from_wire(hello.epochs());
  if (!replica_epochs.empty() && replica_epochs.back().epoch > node_->epoch()) {
    // The replica has seen a later epoch than ours: we are not the primary
    // any more.
    node_->step_down(replica_epochs.back().epoch,
                     absl::StrFormat("replica %s has seen epoch %d", replica_id_,
                                     replica_epochs.back().epoch));
    finish_locked(to_grpc(
        NotPrimary("", replica_epochs.back().epoch,
                   absl::StrFormat("this node's epoch %d is behind yours (%d): it has stepped down",
                                   node_->epoch(), replica_epochs.back().epoch)),
        ctx_));
    return;
  }
  absl::StatusOr<uint64_t> truncate_to =
      node_->divergence_point(replica_epochs, hello.log_end_offset());
  if (!truncate_to.ok()) {
    finish_locked(to_grpc(truncate_to.status()));
    return;
  }
  const LogPosition start = node_->log().start();
  absl::StatusOr<LogPosition> from = *truncate_to < start.offset && hello.log_end_offset() == 0
                                         ? absl::StatusOr<LogPosition>(start)
                                         : node_->log().find_offset(*truncate_to);
  if (!from.ok()) {
    finish_locked(to_grpc(absl::OutOfRangeError(absl::StrFormat(
        "replica %s needs the log from offset %d, but this primary holds offsets %d to %d; "
        "start the replica with an empty data directory to copy the log anew: %s",
        replica_id_, *truncate_to, start.offset, node_->log().end().offset,
        from.status().message()))));
    return;
  }
  reader_.emplace(node_->log(), *from);
  sent_offset_ = from->offset;
  acked_offset_ = from->offset;
  registry_id_ = node_->add_replication_stream(this, replica_id_, peer_, hello.advertise(), *from);
  spdlog::info("replica {} ({}) follows from offset {} (its log ended at {})", replica_id_, peer_,
               from->offset, hello.log_end_offset());
  epoch_ = node_->epoch();
  v1::FollowResponse resp;
  v1::Directive* d = resp.mutable_directive();
  d->set_truncate_to(std::min(*truncate_to, hello.log_end_offset()));
  epochs_to_wire(node_->epoch_entries(), d->mutable_epochs());
  d->set_log_start_offset(start.offset);
  d->set_log_start_seq(start.seq);
  write_locked(resp);
  StartRead(&req_buf_);
}

void FollowReactor::write_locked(v1::FollowResponse& resp, const LogSlice* slice) {
  resp.set_epoch(node_->epoch());
  const uint64_t commit = node_->commit().offset;
  resp.set_commit_offset(commit);
  resp.set_primary_durable_offset(node_->log().durable_offset());
  if (slice == nullptr) {
    resp_buf_.Clear();  // Serialize wants an empty buffer; gRPC may not have emptied it
    bool own;
    (void)grpc::SerializationTraits<v1::FollowResponse>::Serialize(resp, &resp_buf_, &own);
  } else {
    // resp holds a chunk without its records; they follow as the chunk's
    // last field, from the mapping.
    const size_t n = slice->records.bytes.size();
    const std::string chunk = resp.chunk().SerializeAsString();
    resp.clear_chunk();
    std::string head = resp.SerializeAsString();
    std::string records_header;
    append_field_header(&records_header, v1::Chunk::kRecordsFieldNumber, n);
    append_field_header(&head, v1::FollowResponse::kChunkFieldNumber,
                        chunk.size() + records_header.size() + n);
    head += chunk;
    head += records_header;
    resp_buf_ = head_and_mapped(head, {MappedRun{slice->segment, slice->records.bytes}});
  }
  sent_commit_ = commit;
  last_write_ = absl::Now();
  writing_ = true;
  StartWrite(&resp_buf_);
}

void FollowReactor::next_locked() {
  if (finished_ || writing_ || !reader_ || parked_) return;
  if (node_->role() != Role::kPrimary) {
    // Not not_primary(): this may run under the node's role lock. The
    // replica asks again and is then told whom this node follows.
    finish_locked(to_grpc(
        NotPrimary("", node_->epoch(), "this node stepped down; follow the new primary"), ctx_));
    return;
  }
  if (node_->epoch() != epoch_) {
    // A new epoch (a forced re-promotion): the replica must take its history.
    finish_locked(grpc::Status(grpc::StatusCode::ABORTED,
                               "the primary started a new epoch; follow it again"));
    return;
  }
  if (sent_offset_ - acked_offset_ >= window_) return;  // the next ack resumes us
  const uint64_t limit = node_->log().durable_offset();
  const size_t room = std::min<uint64_t>(kChunkBytes, window_ - (sent_offset_ - acked_offset_));
  if (std::optional<LogSlice> s = reader_->next_slice(limit, std::max<size_t>(room, kMaxRecordSize))) {
    v1::FollowResponse resp;
    v1::Chunk* c = resp.mutable_chunk();
    c->set_start_offset(s->position.offset);
    c->set_start_seq(s->position.seq);
    if (s->starts_segment) {
      c->mutable_segment()->set_header(reinterpret_cast<const char*>(s->segment_header),
                                       sizeof(FileHeader));
    }
    sent_offset_ = s->position.offset + s->records.bytes.size();
    write_locked(resp, &*s);
    return;
  }
  if (!reader_->status().ok()) {
    finish_locked(to_grpc(reader_->status()));
    return;
  }
  if (node_->commit().offset != sent_commit_) {
    v1::FollowResponse resp;
    resp.set_heartbeat(true);
    write_locked(resp);
    return;
  }
  // Caught up: wait for new durable records or a new commit offset.
  parked_ = true;
  durable_token_ = node_->durable_notifier().wait_past(sent_offset_, [n = node_, id = registry_id_] {
    n->resume_replication_stream(id);
  });
  commit_token_ = node_->notifier().wait_past(sent_commit_, [n = node_, id = registry_id_] {
    n->resume_replication_stream(id);
  });
  if (!durable_token_ || !commit_token_) {
    finish_locked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the primary is shutting down"));
  }
}

void FollowReactor::resume() {
  std::lock_guard l(mu_);
  if (!parked_) return;
  parked_ = false;
  if (durable_token_) node_->durable_notifier().cancel(*durable_token_);
  if (commit_token_) node_->notifier().cancel(*commit_token_);
  durable_token_.reset();
  commit_token_.reset();
  if (node_->stopping()) {
    finish_locked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the primary is shutting down"));
    return;
  }
  next_locked();
}

void FollowReactor::tick(absl::Time now, absl::Duration heartbeat) {
  std::lock_guard l(mu_);
  if (finished_ || writing_ || !parked_ || now - last_write_ < heartbeat) return;
  parked_ = false;
  if (durable_token_) node_->durable_notifier().cancel(*durable_token_);
  if (commit_token_) node_->notifier().cancel(*commit_token_);
  durable_token_.reset();
  commit_token_.reset();
  v1::FollowResponse resp;
  resp.set_heartbeat(true);
  write_locked(resp);
}

void FollowReactor::OnWriteDone(bool ok) {
  std::lock_guard l(mu_);
  writing_ = false;
  if (!ok) {
    finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "the replica went away"));
    return;
  }
  next_locked();
}

void FollowReactor::OnCancel() {
  std::lock_guard l(mu_);
  finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
}

void FollowReactor::finish_locked(const grpc::Status& s) {
  if (finished_) return;
  finished_ = true;
  // Waiters only reach us through the node's stream registry, which OnDone leaves.
  if (durable_token_) node_->durable_notifier().cancel(*durable_token_);
  if (commit_token_) node_->notifier().cancel(*commit_token_);
  Finish(s);
}

void FollowReactor::OnDone() {
  if (registry_id_ != 0) {
    node_->remove_replication_stream(registry_id_);
    spdlog::info("replica {} ({}) disconnected", replica_id_, peer_);
  }
  delete this;
}

}  // namespace ringlog
