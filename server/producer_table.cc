#include "producer_table.h"

#include <algorithm>
#include <optional>

#include "ringlog/control.h"

namespace ringlog {

ProducerTable::CommitWaiter ProducerTable::placed_answer(const State& st, uint64_t seq,
                                                       AppendDone done) {
  // Older than the latest placed batch: its own position is not kept.
  if (seq != st.placed_seq) return CommitWaiter{st.end, st.end, 0, std::move(done)};
  return CommitWaiter{st.first, st.end, st.count, std::move(done)};
}

bool ProducerTable::admit(const ProducerRef& producer, LogPosition commit, uint64_t epoch,
                          AppendDone& done, const Post& post) {
  std::lock_guard l(mu_);
  State& st = producers_[producer.id];
  if (producer.seq > st.last_seq) {
    st.last_seq = producer.seq;
    return true;
  }
  // Sent again (after a failover or a reconnect): never append it twice.
  AppendDone dup = [done = std::move(done)](absl::StatusOr<CommitResult> r) {
    if (r.ok()) r->duplicate = true;
    done(std::move(r));
  };
  if (st.placed_seq == 0 || producer.seq > st.placed_seq) {
    st.waiting[producer.seq].push_back(std::move(dup));  // on its way to the log
    return false;
  }
  CommitWaiter w = placed_answer(st, producer.seq, std::move(dup));
  if (w.end.offset <= commit.offset) {
    CommitResult r{w.first, w.end, w.count, commit.offset, epoch, true};
    post([d = std::move(w.done), r] { d(r); });
  } else {
    // In the log but not yet committed (a new primary waits for its
    // replicas' acks): the commit offset answers it, not a completion here.
    commit_waiters_.emplace(w.end.offset, std::move(w));
  }
  return false;
}

void ProducerTable::on_commit(LogPosition commit, uint64_t epoch) {
  std::vector<CommitWaiter> ready;
  {
    std::lock_guard l(mu_);
    auto last = commit_waiters_.upper_bound(commit.offset);
    for (auto it = commit_waiters_.begin(); it != last; ++it) ready.push_back(std::move(it->second));
    commit_waiters_.erase(commit_waiters_.begin(), last);
  }
  for (CommitWaiter& w : ready) {
    w.done(CommitResult{w.first, w.end, w.count, commit.offset, epoch, true});
  }
}

void ProducerTable::fail_waiting(const absl::Status& s) {
  std::multimap<uint64_t, CommitWaiter> waiters;
  {
    std::lock_guard l(mu_);
    waiters.swap(commit_waiters_);
  }
  for (auto& [end, w] : waiters) w.done(s);
}

void ProducerTable::completed(const ProducerRef& producer, const absl::StatusOr<CommitResult>& r) {
  std::vector<AppendDone> waiting;
  {
    std::lock_guard l(mu_);
    auto it = producers_.find(producer.id);
    if (it == producers_.end()) return;
    State& st = it->second;
    const uint64_t seq = producer.seq;
    if (r.ok()) {
      if (seq > st.placed_seq) {
        st.placed_seq = seq;
        st.first = r->first;
        st.end = r->end;
        st.count = r->count;
      }
      if (auto w = st.waiting.find(seq); w != st.waiting.end()) {
        waiting = std::move(w->second);
        st.waiting.erase(w);
      }
    } else {
      // Not stored: a retry of this seq (and of the later ones, which fail
      // after it) must be taken, not dropped.
      if (seq > st.placed_seq && seq <= st.last_seq) st.last_seq = seq - 1;
      for (auto w = st.waiting.lower_bound(seq); w != st.waiting.end(); w = st.waiting.erase(w)) {
        for (AppendDone& d : w->second) waiting.push_back(std::move(d));
      }
    }
  }
  for (AppendDone& d : waiting) d(r);
}

void ProducerTable::refused_in_log(const ProducerRef& producer, const CommitResult& where,
                                   const absl::Status& s) {
  std::vector<AppendDone> waiting;
  {
    std::lock_guard l(mu_);
    auto it = producers_.find(producer.id);
    if (it == producers_.end()) return;
    State& st = it->second;
    if (producer.seq > st.placed_seq) {
      st.placed_seq = producer.seq;
      st.first = where.first;
      st.end = where.end;
      st.count = where.count;
    }
    if (auto w = st.waiting.find(producer.seq); w != st.waiting.end()) {
      waiting = std::move(w->second);
      st.waiting.erase(w);
    }
  }
  for (AppendDone& d : waiting) d(s);
}

void ProducerTable::learn(ByteSpan records, LogPosition first) {
  LogPosition at = first;
  for (size_t pos = 0; pos + kHeaderSize <= records.size();) {
    const EventHeader* h = header_at(records.data() + pos);
    const size_t size = h->padded_size();
    at = LogPosition{at.offset + size, at.seq + 1};
    if (is_control(*h)) {
      const EventView ev{h, ByteSpan{records.data() + pos + kHeaderSize, h->payload_len}};
      if (std::optional<ProducerBatchMark> m = parse_producer_batch_mark(ev)) {
        std::lock_guard l(mu_);
        State& st = producers_[m->producer_id];
        st.last_seq = std::max(st.last_seq, m->producer_seq);
        if (m->producer_seq >= st.placed_seq) {
          st.placed_seq = m->producer_seq;
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

void ProducerTable::rebuild(const SegmentedLog& log) {
  constexpr uint64_t kWindow = uint64_t{512} << 20;
  const LogPosition end = log.end();
  LogPosition from = log.start();
  for (const SegmentInfo& si : log.segments()) {
    if (si.base_offset + kWindow >= end.offset) {
      from = LogPosition{si.base_offset, si.base_seq};
      break;
    }
  }
  LogReader reader(log, from);
  while (std::optional<LogSlice> s = reader.next_slice(end.offset, size_t{4} << 20)) {
    learn(s->records.bytes, s->position);
  }
}

}  // namespace ringlog
