#include "producer_table.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_format.h"
#include "ringlog/control.h"

namespace ringlog {
namespace {

// At most this many of the least recently seen producers are looked at for
// one eviction (those with batches in flight are skipped).
constexpr int kEvictScan = 8;

}  // namespace

ProducerTable::ProducerTable(ProducerTableOptions options) : options_(std::move(options)) {}

ProducerTable::State& ProducerTable::touch_locked(const std::string& id, absl::Time now) {
  auto [it, made] = producers_.try_emplace(id);
  State& st = it->second;
  if (made) {
    st.lru = lru_.insert(lru_.end(), &it->first);
  } else {
    lru_.splice(lru_.end(), lru_, st.lru);
  }
  st.seen = now;
  return st;
}

void ProducerTable::forget_locked(Map::iterator it) {
  lru_.erase(it->second.lru);
  producers_.erase(it);
}

void ProducerTable::bound_locked(absl::Time now) {
  if (options_.expiry != absl::InfiniteDuration()) {
    // Least recently seen first: the first one seen within `expiry` ends it.
    for (auto l = lru_.begin(); l != lru_.end();) {
      auto it = producers_.find(**l);
      if (now - it->second.seen < options_.expiry) break;
      ++l;
      if (!it->second.pending.empty()) continue;  // a batch in flight: kept
      forget_locked(it);
      ++stats_.expired;
    }
  }
  while (options_.max_producers != 0 && producers_.size() > options_.max_producers) {
    auto victim = producers_.end();
    int looked = 0;
    for (auto l = lru_.begin(); l != lru_.end() && looked < kEvictScan; ++l, ++looked) {
      auto it = producers_.find(**l);
      if (it->second.pending.empty()) {
        victim = it;
        break;
      }
    }
    if (victim == producers_.end()) break;  // all busy: over the bound for now
    forget_locked(victim);
    ++stats_.evicted;
  }
}

void ProducerTable::record(State& st, const Stored& b) {
  st.next = std::max(st.next, b.seq + 1);
  auto by_seq = [](const Stored& s, uint64_t seq) { return s.seq < seq; };
  auto at = std::lower_bound(st.window.begin(), st.window.end(), b.seq, by_seq);
  if (at != st.window.end() && at->seq == b.seq) {
    *at = b;
    return;
  }
  if (st.window.size() >= kProducerWindow) {
    if (at == st.window.begin()) return;  // older than the whole window
    st.window.erase(st.window.begin());   // the oldest makes room (no reallocation)
    at = std::lower_bound(st.window.begin(), st.window.end(), b.seq, by_seq);
  }
  st.window.insert(at, b);
}

absl::StatusOr<bool> ProducerTable::admit(const ProducerRef& producer, LogPosition commit,
                                          uint64_t epoch, AppendDone& done, const Post& post) {
  std::lock_guard l(mu_);
  const absl::Time t = now();
  bound_locked(t);
  const bool known = producers_.contains(producer.id);
  State& st = touch_locked(producer.id, t);
  const uint64_t seq = producer.seq;
  auto pending = st.pending.find(seq);
  auto stored = std::lower_bound(st.window.begin(), st.window.end(), seq,
                                 [](const Stored& s, uint64_t q) { return s.seq < q; });
  if (stored != st.window.end() && stored->seq != seq) stored = st.window.end();
  if (pending == st.pending.end() && stored == st.window.end()) {
    if (!known || seq == st.next) {
      // New: the one expected, or the first this node sees of the producer
      // (new, or forgotten: it may go on from any seq).
      st.pending.emplace(seq, std::vector<AppendDone>());
      st.next = seq + 1;
      bound_locked(t);  // a new producer may take the place of the least recent
      return true;
    }
    uint64_t lowest = st.next;
    if (!st.window.empty()) lowest = std::min(lowest, st.window.front().seq);
    if (!st.pending.empty()) lowest = std::min(lowest, st.pending.begin()->first);
    if (seq < lowest) {
      ++stats_.too_old;
      return absl::AlreadyExistsError(absl::StrFormat(
          "producer_seq %d of producer \"%s\" is older than the batches this node remembers for "
          "it (seqs %d to %d; it keeps the last %d in the log): a batch sent before, whose range "
          "it no longer knows; it is not stored again",
          seq, producer.id, lowest, st.next - 1, kProducerWindow));
    }
    ++stats_.out_of_sequence;
    return absl::FailedPreconditionError(absl::StrFormat(
        "producer_seq %d of producer \"%s\" is out of sequence: expected %d (the seq after its "
        "last batch); nothing of this batch was stored",
        seq, producer.id, st.next));
  }
  if (pending == st.pending.end() && !stored->range_known) {
    ++stats_.too_old;
    return absl::AlreadyExistsError(absl::StrFormat(
        "producer_seq %d of producer \"%s\" was stored before, at a position its mark (written "
        "by an older ringlogd) does not give; it is not stored again",
        seq, producer.id));
  }
  // Sent again (after a failover or a reconnect): never append it twice.
  // The original's result, whether in flight or in the log.
  ++stats_.duplicates;
  AppendDone dup = [done = std::move(done)](absl::StatusOr<CommitResult> r) {
    if (r.ok()) r->duplicate = true;
    done(std::move(r));
  };
  if (pending != st.pending.end()) {
    pending->second.push_back(std::move(dup));
  } else if (stored->end.offset <= commit.offset) {
    CommitResult r{stored->first, stored->end, stored->count, commit.offset, epoch, true};
    post([dup = std::move(dup), r] { dup(r); });
  } else if (!term_ended_.ok()) {
    // The commit offset will not move before the next term: answer now.
    post([dup = std::move(dup), s = term_ended_] { dup(s); });
  } else {
    // In the log but not yet committed (a new primary waits for its
    // replicas' acks): the commit offset answers it, not a completion here.
    commit_waiters_.emplace(stored->end.offset,
                            CommitWaiter{stored->first, stored->end, stored->count, std::move(dup)});
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
  if (it == producers_.end()) return waiting;  // never: one with batches in flight stays
  State& st = touch_locked(producer.id, now());
  auto p = st.pending.find(producer.seq);
  if (p == st.pending.end()) return waiting;
  waiting.swap(p->second);
  st.pending.erase(p);
  if (r.ok()) {
    record(st, Stored{producer.seq, r->first, r->end, r->count, true});
  } else {
    // Not in the log: its seq is expected again (the later ones of the
    // producer, in flight, fail too), though never one at or below a batch
    // in the log.
    const uint64_t floor = st.window.empty() ? 1 : st.window.back().seq + 1;
    st.next = std::max(floor, std::min(st.next, producer.seq));
    if (st.window.empty() && st.pending.empty()) forget_locked(it);  // nothing of it here
  }
  return waiting;
}

void ProducerTable::learn(ByteSpan records, LogPosition first) {
  LogPosition at = first;
  for (size_t pos = 0; pos + kHeaderSize <= records.size();) {
    const EventHeader* h = header_at(records.data() + pos);
    const size_t size = h->padded_size();
    const LogPosition mark_at = at;
    at = LogPosition{at.offset + size, at.seq + 1};
    if (is_control(*h)) {
      const EventView ev{h, ByteSpan{records.data() + pos + kHeaderSize, h->payload_len}};
      if (std::optional<ProducerBatchMark> m = parse_producer_batch_mark(ev);
          m && m->producer_seq != 0 && m->events != 0 && m->events <= mark_at.seq &&
          m->data_bytes <= mark_at.offset) {
        // The batch's data records are the `events` records just before the
        // mark, `data_bytes` long.
        Stored b;
        b.seq = m->producer_seq;
        b.first = LogPosition{mark_at.offset - m->data_bytes, mark_at.seq - m->events};
        b.end = at;
        b.count = m->events;
        b.range_known = m->data_bytes != 0;
        std::lock_guard l(mu_);
        const absl::Time t = now();
        record(touch_locked(m->producer_id, t), b);
        bound_locked(t);
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

void ProducerTable::truncated(uint64_t offset) {
  std::lock_guard l(mu_);
  for (auto it = producers_.begin(); it != producers_.end();) {
    State& st = it->second;
    auto past = [offset](const Stored& s) { return s.end.offset > offset; };
    if (std::none_of(st.window.begin(), st.window.end(), past)) {
      ++it;
      continue;
    }
    st.window.erase(std::remove_if(st.window.begin(), st.window.end(), past), st.window.end());
    if (st.window.empty() && st.pending.empty()) {
      auto gone = it++;
      forget_locked(gone);
      continue;
    }
    uint64_t next = st.window.empty() ? 1 : st.window.back().seq + 1;
    if (!st.pending.empty()) next = std::max(next, st.pending.rbegin()->first + 1);
    st.next = next;
    ++it;
  }
}

ProducerStats ProducerTable::stats() {
  std::lock_guard l(mu_);
  bound_locked(now());
  ProducerStats s = stats_;
  s.producers = producers_.size();
  return s;
}

}  // namespace ringlog
