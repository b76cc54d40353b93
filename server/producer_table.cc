#include "producer_table.h"

#include <algorithm>
#include <optional>

#include "ringlog/control.h"

namespace ringlog {

bool ProducerTable::admit(const ProducerRef& producer, LogPosition commit, uint64_t epoch,
                          AppendDone& done, const Post& post) {
  std::lock_guard l(mu_);
  State& st = producers_[producer.id];
  auto pending = st.pending.find(producer.seq);
  const bool in_log = st.known && producer.seq <= st.seq;
  if (pending == st.pending.end() && !in_log) {
    st.pending.emplace(producer.seq, std::vector<AppendDone>());
    return true;
  }
  // Sent again (after a failover or a reconnect): never append it twice.
  // Its own result if it is in flight or the latest in the log; for an
  // older one, an empty range at the latest one's end.
  const bool own = pending != st.pending.end() || producer.seq == st.seq;
  AppendDone dup = [done = std::move(done), own](absl::StatusOr<CommitResult> r) {
    if (r.ok()) {
      r->duplicate = true;
      if (!own) {
        r->first = r->end;
        r->count = 0;
      }
    }
    done(std::move(r));
  };
  if (pending != st.pending.end()) {
    pending->second.push_back(std::move(dup));
  } else if (st.end.offset <= commit.offset) {
    CommitResult r{st.first, st.end, st.count, commit.offset, epoch, true};
    post([dup = std::move(dup), r] { dup(r); });
  } else if (!term_ended_.ok()) {
    // The commit offset will not move before the next term: answer now.
    post([dup = std::move(dup), s = term_ended_] { dup(s); });
  } else {
    // In the log but not yet committed (a new primary waits for its
    // replicas' acks): the commit offset answers it, not a completion here.
    commit_waiters_.emplace(st.end.offset,
                            CommitWaiter{st.first, st.end, st.count, std::move(dup)});
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
    term_ended_ = s.ok() ? absl::UnavailableError("the primary term ended") : s;
  }
  for (auto& [end, w] : waiters) w.done(s);
}

void ProducerTable::start_term() {
  std::lock_guard l(mu_);
  term_ended_ = absl::OkStatus();
}

void ProducerTable::completed(const ProducerRef& producer, const absl::StatusOr<CommitResult>& r) {
  std::vector<AppendDone> waiting;
  {
    std::lock_guard l(mu_);
    waiting = complete_locked(producer, r);
  }
  for (AppendDone& d : waiting) d(r);
}

void ProducerTable::refused(const ProducerRef& producer, const absl::Status& s, const Post& post) {
  std::vector<AppendDone> waiting;
  {
    std::lock_guard l(mu_);
    waiting = complete_locked(producer, s);
  }
  if (waiting.empty()) return;
  post([waiting = std::move(waiting), s]() mutable {
    for (AppendDone& d : waiting) d(s);
  });
}

void ProducerTable::refused_in_log(const ProducerRef& producer, const CommitResult& where,
                                   const absl::Status& s) {
  std::vector<AppendDone> waiting;
  {
    std::lock_guard l(mu_);
    waiting = complete_locked(producer, where);  // in the log: known from now on
  }
  for (AppendDone& d : waiting) d(s);
}

std::vector<AppendDone> ProducerTable::complete_locked(const ProducerRef& producer,
                                                       const absl::StatusOr<CommitResult>& r) {
  std::vector<AppendDone> waiting;
  auto it = producers_.find(producer.id);
  if (it == producers_.end()) return waiting;
  State& st = it->second;
  if (auto p = st.pending.find(producer.seq); p != st.pending.end()) {
    waiting.swap(p->second);
    st.pending.erase(p);
  }
  // A failed batch is not in the log: its seq, no longer pending, is taken
  // again when sent again.
  if (r.ok() && (!st.known || producer.seq >= st.seq)) {
    st.known = true;
    st.seq = producer.seq;
    st.first = r->first;
    st.end = r->end;
    st.count = r->count;
  }
  return waiting;
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
        if (!st.known || m->producer_seq >= st.seq) {
          st.seq = m->producer_seq;
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
