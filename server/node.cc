#include "node.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace ringlog {
namespace {

// The node id kept in <dir>/NODE_ID, made on first start.
absl::StatusOr<std::string> load_node_id(const std::string& dir) {
  const std::string path = dir + "/NODE_ID";
  {
    std::ifstream in(path);
    std::string id;
    if (in && std::getline(in, id) && !id.empty()) return id;
  }
  absl::BitGen gen;
  const std::string id = absl::StrFormat("node-%08x", absl::Uniform<uint32_t>(gen));
  std::ofstream out(path, std::ios::trunc);
  out << id << "\n";
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return id;
}

}  // namespace

absl::StatusOr<size_t> validate_records(ByteSpan records, size_t max_bytes) {
  if (records.empty()) return absl::InvalidArgumentError("empty batch: no records");
  if (records.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "batch of %d bytes is over the limit of %d bytes (--max_batch_bytes)", records.size(),
        max_bytes));
  }
  if (reinterpret_cast<uintptr_t>(records.data()) % kRecordAlign != 0) {
    return absl::InternalError("batch buffer is not 8-byte aligned");
  }
  size_t pos = 0;
  size_t n = 0;
  while (pos < records.size()) {
    EventView v;
    const RecordStatus st = check_record(records.data() + pos, records.size() - pos, &v);
    if (st != RecordStatus::kOk) {
      std::string why = record_status_name(st);
      if (st == RecordStatus::kTruncated && records.size() - pos >= kHeaderSize) {
        why = absl::StrFormat("truncated record (payload_len %d needs %d bytes, %d left)",
                              header_at(records.data() + pos)->payload_len,
                              header_at(records.data() + pos)->padded_size(), records.size() - pos);
      }
      return absl::InvalidArgumentError(
          absl::StrFormat("record %d at byte %d: %s", n, pos, why));
    }
    pos += v.header->padded_size();
    ++n;
  }
  return n;
}

Node::Node(const NodeOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<Node>> Node::Open(const NodeOptions& options,
                                                 RecoveryReport* report) {
  std::unique_ptr<Node> n(new Node(options));
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log =
      SegmentedLog::Open(options.data_dir, options.pipeline.log, report);
  if (!log.ok()) return log.status();
  n->log_ = std::move(*log);
  if (options.node_id.empty()) {
    absl::StatusOr<std::string> id = load_node_id(options.data_dir);
    if (!id.ok()) return id.status();
    n->node_id_ = *id;
  } else {
    n->node_id_ = options.node_id;
  }
  absl::StatusOr<EpochHistory> epochs = EpochHistory::Load(options.data_dir);
  if (!epochs.ok()) return epochs.status();
  n->epochs_ = std::make_unique<EpochHistory>(std::move(*epochs));
  n->epoch_.store(n->epochs_->current(), std::memory_order_release);
  n->notifier_.on_advance([raw = n.get()](LogPosition c) { raw->complete_committed(c); });
  n->role_.store(options.role, std::memory_order_release);
  if (options.role == Role::kPrimary) {
    if (absl::Status s = n->start_primary(); !s.ok()) return s;
  }
  return n;
}

Node::~Node() { (void)close(); }

absl::Status Node::start_primary() {
  PipelineOptions po = options_.pipeline;
  po.rings = 1 + options_.embedded_rings;
  po.on_append = [this](const AppendedChunk& c) { on_append(c); };
  po.on_durable = [this](LogPosition d) { on_durable(d); };
  // Everything recovered from disk is durable here; with min_replica_acks = 0
  // it is also committed.
  notifier_.advance(log_->end());
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Start(log_.get(), po);
  if (!p.ok()) return p.status();
  pipeline_ = std::move(*p);
  {
    std::lock_guard l(intake_mu_);
    intake_open_ = true;
    intake_done_ = false;
  }
  intake_thread_ = std::thread([this] { intake_loop(); });
  return absl::OkStatus();
}

std::string Node::primary_hint() const { return options_.primary; }

SpscRingBuffer::Producer* Node::embedded_producer(size_t i) {
  if (!pipeline_ || i == 0 || i > options_.embedded_rings) return nullptr;
  return &pipeline_->producer(i);
}

void Node::submit(std::string records, size_t count, AppendDone done) {
  Pending p;
  p.records_bytes = records.size();
  p.records = std::move(records);
  p.count = count;
  p.done = std::move(done);
  absl::Status refuse;
  {
    std::lock_guard l(intake_mu_);
    if (role() != Role::kPrimary) {
      refuse = absl::FailedPreconditionError(
          absl::StrCat("this node is a replica; append to the primary at ", primary_hint()));
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

void Node::intake_loop() {
  SpscRingBuffer::Producer& producer = pipeline_->producer(0);
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
      // The ring is full: the storage thread is behind, or cannot write
      // (a full disk). Wait for room; give up on a storage error.
      if (absl::Status e = pipeline_->error(); !e.ok()) {
        failed = e;
        break;
      }
      pipeline_->wake();
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
      notifier_.post([d = std::move(back.done), failed] { d(failed); });
      continue;
    }
    pipeline_->wake();
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
  // Storage thread. With replicas, the commit offset also waits for their
  // acks (replication); without, durable is committed.
  if (options_.min_replica_acks == 0) notifier_.advance(durable);
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
    p.done(CommitResult{p.first, p.end, p.count, commit.offset, epoch});
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
  for (Pending& p : failed) p.done(s);
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

absl::Status Node::close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  stop_intake();
  if (intake_thread_.joinable()) intake_thread_.join();
  absl::Status s;
  if (pipeline_) s = pipeline_->close();  // drains the ring and syncs
  // Complete what the last sync committed here rather than on the notifier
  // thread, so that nothing committed is reported as failed below.
  complete_committed(commit());
  fail_all(absl::UnavailableError("the node stopped before the append was committed"));
  return s;
}

void Node::fill_status(v1::NodeStatus* out) const {
  out->set_role(role() == Role::kPrimary ? v1::ROLE_PRIMARY : v1::ROLE_REPLICA);
  out->set_node_id(node_id_);
  out->set_epoch(epoch());
  out->set_listen(options_.listen);
  const LogPosition start = log_->start();
  const LogPosition end = log_->end();
  out->set_log_start_offset(start.offset);
  out->set_log_end_offset(end.offset);
  out->set_first_seq(start.seq);
  out->set_next_seq(end.seq);
  out->set_durable_offset(log_->durable_offset());
  out->set_commit_offset(commit().offset);
  uint64_t file_bytes = 0;
  const std::vector<SegmentInfo> segs = log_->segments();
  for (const SegmentInfo& s : segs) file_bytes += s.file_bytes;
  out->set_segment_count(segs.size());
  out->set_segment_bytes(file_bytes);
  if (pipeline_) {
    out->set_ring_used_bytes(pipeline_->ring_used(0));
    out->set_ring_capacity_bytes(options_.pipeline.ring_bytes);
    const PipelineStats st = pipeline_->stats();
    out->set_events_appended(st.events);
    out->set_bytes_appended(st.bytes);
    if (absl::Status e = pipeline_->error(); !e.ok()) out->set_storage_error(std::string(e.message()));
  }
  out->set_active_append_streams(append_streams.load(std::memory_order_relaxed));
  out->set_active_replay_streams(replay_streams.load(std::memory_order_relaxed));
  out->set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - started_));
  out->set_min_replica_acks(options_.min_replica_acks);
  out->set_primary(options_.primary);
}

}  // namespace ringlog
