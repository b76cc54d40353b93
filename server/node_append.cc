// Node: the append path (intake, commit, acknowledgements) and idempotence.
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "node.h"
#include "ringlog/control.h"

namespace ringlog {

void Node::submit(std::string records, size_t count, ProducerRef producer, AppendDone done) {
  if (!producer.id.empty() && role() == Role::kPrimary) {
    std::lock_guard l(producers_mu_);
    ProducerState& st = producers_[producer.id];
    if (producer.seq <= st.last_seq) {
      // Sent again (after a failover or a reconnect): answer with the first
      // one's result once it is committed; never append it twice. For an
      // older batch than the producer's latest, the position is not kept: the
      // answer carries an empty range at the latest one's end.
      const bool latest = producer.seq == st.last_seq;
      AppendDone dup = [done = std::move(done), latest](absl::StatusOr<CommitResult> r) {
        if (r.ok()) {
          r->duplicate = true;
          if (!latest) {
            r->first = r->end;
            r->count = 0;
          }
        }
        done(std::move(r));
      };
      if (st.known && st.end.offset <= commit().offset) {
        CommitResult r{st.first, st.end, st.count, commit().offset, epoch(), true};
        notifier_.post([dup = std::move(dup), r] { dup(r); });
      } else {
        st.waiting.push_back(std::move(dup));
      }
      return;
    }
    st.last_seq = producer.seq;
    st.known = false;
    append_producer_batch_mark(
        &records, ProducerBatchMark{producer.id, producer.seq, static_cast<uint32_t>(count)},
        header_at(reinterpret_cast<const std::byte*>(records.data()))->timestamp);
    ++count;
  }
  Pending p;
  p.records_bytes = records.size();
  p.records = std::move(records);
  p.count = count;
  p.producer = std::move(producer);
  p.done = std::move(done);
  absl::Status refuse;
  {
    std::lock_guard l(intake_mu_);
    if (role() != Role::kPrimary) {
      refuse = not_primary("append to");
    } else if (!intake_open_) {
      refuse = absl::UnavailableError("the node is shutting down");
    } else {
      intake_.push_back(std::move(p));
    }
  }
  if (!refuse.ok()) {
    AppendDone d = std::move(p.done);
    notifier_.post([d = std::move(d), refuse] { d(refuse); });
    return;
  }
  intake_cv_.notify_one();
}

void Node::intake_loop(Pipeline* pipeline) {
  SpscRingBuffer::Producer& producer = pipeline->producer(0);
  for (;;) {
    Pending p;
    {
      std::unique_lock l(intake_mu_);
      intake_cv_.wait(l, [&] { return !intake_.empty() || !intake_open_; });
      if (intake_.empty()) {
        intake_done_ = true;
        intake_cv_.notify_all();
        return;
      }
      p = std::move(intake_.front());
      intake_.pop_front();
    }
    std::string records = std::move(p.records);
    const ByteSpan span(reinterpret_cast<const std::byte*>(records.data()), records.size());
    // Queue it for completion before it can reach the log: the storage thread
    // may append it as soon as it is in the ring.
    {
      std::lock_guard l(acks_mu_);
      in_ring_.push_back(std::move(p));
    }
    int waits = 0;
    absl::Status failed;
    while (!producer.write_records(span)) {
      // relaxed: a statistic.
      if (waits == 0) ring_full_.fetch_add(1, std::memory_order_relaxed);
      // The ring is full: the storage thread is behind, or cannot write
      // (a full disk). Wait for room; give up on a storage error.
      if (absl::Status e = pipeline->error(); !e.ok()) {
        failed = e;
        break;
      }
      pipeline->wake();
      if (++waits < 64) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    if (!failed.ok()) {
      Pending back;
      {
        std::lock_guard l(acks_mu_);
        back = std::move(in_ring_.back());
        in_ring_.pop_back();
      }
      notifier_.post([this, back = std::move(back), failed]() mutable {
        if (!back.producer.id.empty()) producer_completed(back, failed);
        back.done(failed);
      });
      continue;
    }
    pipeline->wake();
  }
}

void Node::on_append(const AppendedChunk& c) {
  // Storage thread: a chunk of ring 0 is in the log. It holds whole batches,
  // in the order the intake wrote them.
  if (c.ring != 0) return;
  std::lock_guard l(acks_mu_);
  LogPosition at = c.first;
  while (at.offset < c.end.offset && !in_ring_.empty()) {
    Pending& p = in_ring_.front();
    p.first = at;
    at = LogPosition{at.offset + p.records_bytes, at.seq + p.count};
    p.end = at;
    appended_.push_back(std::move(p));
    in_ring_.pop_front();
  }
}

void Node::on_durable(LogPosition durable) {
  // Storage thread. The commit offset moves first: a replica's sender woken
  // by the durable offset then ships the new records with the commit offset
  // that covers them (with min_replica_acks = 0), and the replica can serve
  // them at once instead of after a heartbeat.
  durable_.store(durable);
  update_commit();
  durable_notifier_.advance(durable);
}

void Node::update_commit() {
  // commit = min(durable here, the min_replica_acks-th highest replica ack).
  std::lock_guard l(commit_mu_);
  LogPosition c = durable_.load();
  if (const uint32_t n = options_.min_replica_acks; n != 0) {
    std::vector<LogPosition> acked;
    for (const auto& [id, r] : replicas_) acked.push_back(r.acked);
    if (acked.size() < n) return;
    std::sort(acked.begin(), acked.end(),
              [](const LogPosition& a, const LogPosition& b) { return a.offset > b.offset; });
    if (acked[n - 1].offset < c.offset) c = acked[n - 1];
  }
  if (c.offset > notifier_.commit().offset) notifier_.advance(c);
}

void Node::complete_committed(LogPosition commit) {
  // Notifier thread.
  std::deque<Pending> done;
  {
    std::lock_guard l(acks_mu_);
    while (!appended_.empty() && appended_.front().end.offset <= commit.offset) {
      done.push_back(std::move(appended_.front()));
      appended_.pop_front();
    }
  }
  const uint64_t epoch = this->epoch();
  for (Pending& p : done) {
    const uint64_t data = p.producer.id.empty() ? p.count : p.count - 1;
    const CommitResult r{p.first, p.end, data, commit.offset, epoch, false};
    if (!p.producer.id.empty()) producer_completed(p, r);
    p.done(r);
  }
}

void Node::producer_completed(const Pending& p, const absl::StatusOr<CommitResult>& r) {
  std::vector<AppendDone> waiting;
  {
    std::lock_guard l(producers_mu_);
    auto it = producers_.find(p.producer.id);
    if (it == producers_.end() || it->second.last_seq != p.producer.seq) return;
    ProducerState& st = it->second;
    waiting.swap(st.waiting);
    if (r.ok()) {
      st.known = true;
      st.first = r->first;
      st.end = r->end;
      st.count = r->count;
    } else {
      // Not appended here: a retry of this seq must be taken, not dropped.
      st.last_seq = p.producer.seq - 1;
    }
  }
  for (AppendDone& d : waiting) d(r);
}

void Node::learn_producers(ByteSpan records, LogPosition first) {
  LogPosition at = first;
  for (size_t pos = 0; pos + kHeaderSize <= records.size();) {
    const EventHeader* h = header_at(records.data() + pos);
    const size_t size = h->padded_size();
    at = LogPosition{at.offset + size, at.seq + 1};
    if (is_control(*h)) {
      const EventView ev{h, ByteSpan{records.data() + pos + kHeaderSize, h->payload_len}};
      if (std::optional<ProducerBatchMark> m = parse_producer_batch_mark(ev)) {
        std::lock_guard l(producers_mu_);
        ProducerState& st = producers_[m->producer_id];
        if (m->producer_seq >= st.last_seq) {
          st.last_seq = m->producer_seq;
          st.known = true;
          st.end = at;
          st.count = m->events;
          // The batch's data records are the `events` records before the mark.
          st.first = LogPosition{0, at.seq - 1 - m->events};
        }
      }
    }
    pos += size;
  }
}

void Node::rebuild_producers() {
  // Producers that fail over re-send within seconds: the last segments hold
  // every mark that matters.
  constexpr uint64_t kWindow = uint64_t{512} << 20;
  const LogPosition end = log_->end();
  LogPosition from = log_->start();
  for (const SegmentInfo& si : log_->segments()) {
    if (si.base_offset + kWindow >= end.offset) {
      from = LogPosition{si.base_offset, si.base_seq};
      break;
    }
  }
  LogReader reader(*log_, from);
  while (std::optional<LogSlice> s = reader.next_slice(end.offset, size_t{4} << 20)) {
    learn_producers(s->records.bytes, s->position);
  }
}

void Node::fail_all(const absl::Status& s) {
  std::deque<Pending> failed;
  {
    std::lock_guard l(intake_mu_);
    for (Pending& p : intake_) failed.push_back(std::move(p));
    intake_.clear();
  }
  {
    std::lock_guard l(acks_mu_);
    for (Pending& p : in_ring_) failed.push_back(std::move(p));
    for (Pending& p : appended_) failed.push_back(std::move(p));
    in_ring_.clear();
    appended_.clear();
  }
  for (Pending& p : failed) {
    if (!p.producer.id.empty()) producer_completed(p, s);
    p.done(s);
  }
}

void Node::stop_intake() {
  {
    std::lock_guard l(intake_mu_);
    intake_open_ = false;
  }
  intake_cv_.notify_all();
  stopping_.store(true, std::memory_order_release);
  notifier_.release_waiters();
}

}  // namespace ringlog
