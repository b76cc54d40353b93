// Node: the append path's front (submit, acknowledgements, shutdown).
#include "absl/strings/str_cat.h"
#include "node.h"
#include "ringlog/control.h"

namespace ringlog {

void Node::submit(std::string records, size_t count, ProducerRef producer, AppendDone done,
                  std::shared_ptr<StreamOrder> order) {
  if (absl::Status lost = data_loss(); !lost.ok() && role() == Role::kPrimary) {
    // Nothing is appended where acknowledged records are missing: the new
    // ones would take their offsets.
    post([d = std::move(done), lost] { d(lost); });
    return;
  }
  // producer_seq 0 is not idempotent: appended as it comes, without a mark.
  if (!producer.idempotent()) producer = ProducerRef{};
  if (producer.idempotent() && role() == Role::kPrimary) {
    absl::StatusOr<bool> fresh = producers_.admit(
        producer, commit(), epoch(), done, [this](std::function<void()> fn) { post(std::move(fn)); });
    if (!fresh.ok()) {
      // Out of sequence, or too old to answer: nothing is stored, and the
      // stream's later batches are refused too (they would follow a gap).
      // release: pairs with the acquire in the intake.
      if (order) order->broken.store(true, std::memory_order_release);
      post([d = std::move(done), s = fresh.status()] { d(s); });
      return;
    }
    if (!*fresh) {
      // A batch sent again: answered from the original. The commit offset
      // may have passed it since admit() looked.
      post([this] { producers_.on_commit(commit(), epoch()); });
      return;
    }
    append_producer_batch_mark(
        &records,
        ProducerBatchMark{producer.id, producer.seq, static_cast<uint32_t>(count),
                          static_cast<uint32_t>(records.size())},
        header_at(reinterpret_cast<const std::byte*>(records.data()))->timestamp);
    ++count;
  }
  AppendIntake::Batch b;
  b.records_bytes = records.size();
  b.records = std::move(records);
  b.count = count;
  b.producer = std::move(producer);
  b.done = std::move(done);
  b.order = std::move(order);
  absl::Status refuse;
  if (role() != Role::kPrimary) {
    refuse = not_primary("append to");
  } else if (!intake_.submit(b)) {
    refuse = absl::UnavailableError("the node is shutting down");
  }
  if (refuse.ok()) return;
  // Not taken: its producer_seq may be sent again. Its answer and those of
  // the duplicates that waited for it run on the notifier thread: each takes
  // its stream's lock, and the caller holds one, maybe the same (streams
  // resending while the node stopped deadlocked here, and gRPC shutdown
  // waited for them forever).
  auto post_fn = [this](std::function<void()> fn) { post(std::move(fn)); };
  if (b.producer.idempotent()) producers_.refused(b.producer, refuse, post_fn);
  post([d = std::move(b.done), refuse] { d(refuse); });
}

void Node::complete_committed(LogPosition commit) {
  // Notifier thread.
  std::deque<AppendIntake::Batch> done = intake_.take_committed(commit.offset);
  const uint64_t epoch = this->epoch();
  for (AppendIntake::Batch& b : done) {
    const CommitResult r = b.stored(commit.offset, epoch);
    if (!b.producer.id.empty()) producers_.completed(b.producer, r);
    b.done(r);
  }
  producers_.on_commit(commit, epoch);
  log_->note_committed(commit.offset);
}

void Node::fail_all(const absl::Status& s) {
  for (AppendIntake::Batch& b : intake_.take_all()) {
    if (!b.producer.id.empty()) producers_.completed(b.producer, s);
    b.done(s);
  }
  producers_.fail_waiting(s);
}

void Node::stop_intake() {
  intake_.close();
  stopping_.store(true, std::memory_order_release);
  notifier().release_waiters();
}

}  // namespace ringlog
