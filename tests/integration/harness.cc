#include "harness.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "grpcpp/generic/generic_stub.h"

namespace ringlog::testing {

// ---- Replay ----

ReplayResult replay_each(Client& client, const ReplayOptions& options,
                         const std::function<bool(const ReplayEvent&)>& fn,
                         absl::Duration timeout) {
  ReplayResult result;
  std::unique_ptr<Replayer> rp = client.replay(options);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  // Cancels a replay that runs past the deadline, so a test fails rather than hangs.
  std::thread watchdog([&] {
    std::unique_lock l(mu);
    if (!cv.wait_for(l, absl::ToChronoNanoseconds(timeout), [&] { return done; })) {
      result.timed_out = true;
      rp->cancel();
    }
  });
  while (std::optional<ReplayEvent> ev = rp->next()) {
    if (!fn(*ev)) break;
  }
  {
    std::lock_guard l(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  result.status = rp->status();
  return result;
}

ReplayResult replay_all(Client& client, const ReplayOptions& options, absl::Duration timeout) {
  std::vector<ReplayedEvent> events;
  ReplayResult r = replay_each(
      client, options,
      [&](const ReplayEvent& ev) {
        events.push_back(
            ReplayedEvent{ev.seq, ev.view.timestamp(), ev.view.event_type(),
                          std::string(reinterpret_cast<const char*>(ev.view.payload.data()),
                                      ev.view.payload.size())});
        return true;
      },
      timeout);
  r.events = std::move(events);
  return r;
}

RawReplay raw_replay(const std::shared_ptr<grpc::Channel>& channel, const v1::ReplayRequest& req,
                     absl::Duration timeout) {
  std::unique_ptr<v1::EventLog::Stub> stub = v1::EventLog::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
  std::unique_ptr<grpc::ClientReader<v1::ReplayResponse>> reader = stub->Replay(&ctx, req);
  RawReplay out;
  v1::ReplayResponse r;
  while (reader->Read(&r)) out.responses.push_back(r);
  out.status = reader->Finish();
  return out;
}

std::vector<std::string> small_node_flags() {
  return {"--ring_bytes=8388608", "--segment_bytes=8388608"};
}

// ---- NodeTest ----

void NodeTest::TearDown() {
  if (HasFailure()) testkit::print_log_tails(dir(), 60);  // each node's last lines
}

tools::NodeProcess& NodeTest::start_node(std::vector<std::string> extra, int i) {
  std::vector<std::string> args = small_node_flags();
  args.insert(args.end(), extra.begin(), extra.end());
  return nodes_.start(name(i), kRinglogd, args);
}

tools::NodeProcess& NodeTest::node(int i) { return nodes_.at(name(i)); }

std::unique_ptr<Client> NodeTest::connect(const tools::NodeProcess& node, ClientOptions options) {
  options.endpoints = {node.address()};
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
  if (!c.ok()) throw std::runtime_error("cannot connect: " + c.status().ToString());
  return std::move(*c);
}

v1::NodeStatus NodeTest::status(Client& client) {
  absl::StatusOr<v1::NodeStatus> s = client.status();
  if (!s.ok()) throw std::runtime_error("GetStatus: " + s.status().ToString());
  return *s;
}

Ack NodeTest::append_numbered(Client& client, uint64_t stream, uint64_t first, uint64_t count) {
  absl::StatusOr<Ack> last = testkit::append_events(
      client, {.stream = stream, .first = first, .count = count, .payload_bytes = kTestPayloadBytes});
  if (!last.ok()) throw std::runtime_error("append: " + last.status().ToString());
  return *last;
}

CommandResult NodeTest::ctl(const std::vector<std::string>& args, const std::string& input) {
  std::vector<std::string> argv = {kRinglogctl};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {.input = input});
}

// ---- Checking acknowledgements against the log ----

::testing::AssertionResult acks_tile_seqs(std::vector<AckedBatch> batches, uint64_t total_events,
                                          uint64_t control_per_batch) {
  std::sort(batches.begin(), batches.end(),
            [](const AckedBatch& a, const AckedBatch& b) { return a.first_seq < b.first_seq; });
  uint64_t next = 0;
  uint64_t events = 0;
  for (const AckedBatch& b : batches) {
    if (b.first_seq != next) {
      return ::testing::AssertionFailure()
             << "a batch of stream " << b.stream << " was acked with seqs " << b.first_seq << ".."
             << b.last_seq << " but the seqs before end before " << next;
    }
    if (b.last_seq + 1 - b.first_seq != b.count) {
      return ::testing::AssertionFailure()
             << "a batch of " << b.count << " events was acked with seqs " << b.first_seq << ".."
             << b.last_seq;
    }
    next = b.last_seq + 1 + control_per_batch;
    events += b.count;
  }
  if (events != total_events) {
    return ::testing::AssertionFailure()
           << "the acks hold " << events << " events, not " << total_events;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult log_matches_acks(Client& client, std::vector<AckedBatch> batches,
                                            uint64_t* replayed) {
  std::sort(batches.begin(), batches.end(),
            [](const AckedBatch& a, const AckedBatch& b) { return a.first_seq < b.first_seq; });
  std::vector<uint64_t> found(batches.size(), 0);  // events of each batch seen at their seq
  size_t cursor = 0;  // the first batch that does not end before the current seq
  std::map<uint64_t, uint64_t> next_index;  // per stream
  std::optional<uint64_t> last_seq;
  uint64_t count = 0;
  std::string problem;
  auto passed = [&](size_t i) {
    if (found[i] != batches[i].count && problem.empty()) {
      problem = absl::StrCat("seqs ", batches[i].first_seq, "..", batches[i].last_seq,
                             " were acked but only ", found[i], " of them are in the log");
    }
  };
  ReplayResult r = replay_each(client, ReplayOptions(), [&](const ReplayEvent& ev) {
    uint64_t stream = 0;
    uint64_t index = 0;
    if (last_seq && ev.seq <= *last_seq) {
      problem = absl::StrCat("seq ", ev.seq, " came after seq ", *last_seq);
    } else if (!parse_test_payload(ev.view.payload, &stream, &index)) {
      problem =
          absl::StrCat("seq ", ev.seq, " has a payload of ", ev.view.payload.size(), " bytes");
    } else if (index != next_index[stream]) {
      problem = absl::StrCat("seq ", ev.seq, " is event ", index, " of stream ", stream,
                             ", expected event ", next_index[stream]);
    } else if (ev.view.timestamp() != test_timestamp(stream, index) ||
               ev.view.event_type() != test_type(stream, index)) {
      problem = absl::StrCat("seq ", ev.seq, " has the wrong timestamp or type");
    }
    while (problem.empty() && cursor < batches.size() && batches[cursor].last_seq < ev.seq) {
      passed(cursor++);
    }
    if (problem.empty() && cursor < batches.size() && batches[cursor].first_seq <= ev.seq) {
      const AckedBatch& b = batches[cursor];
      const uint64_t want = b.first_index + (ev.seq - b.first_seq);
      if (stream != b.stream || index != want) {
        problem = absl::StrCat("seq ", ev.seq, " holds event ", index, " of stream ", stream,
                               " but was acked for event ", want, " of stream ", b.stream);
      }
      ++found[cursor];
    }
    if (!problem.empty()) return false;
    ++next_index[stream];
    last_seq = ev.seq;
    ++count;
    return true;
  });
  *replayed = count;
  if (problem.empty() && !r.timed_out && r.status.ok()) {
    while (cursor < batches.size()) passed(cursor++);
  }
  if (!problem.empty()) return ::testing::AssertionFailure() << problem;
  if (r.timed_out)
    return ::testing::AssertionFailure() << "the replay timed out after " << count << " events";
  if (!r.status.ok()) return ::testing::AssertionFailure() << "the replay failed: " << r.status;
  return ::testing::AssertionSuccess();
}

// ---- BackgroundReplay ----

BackgroundReplay::BackgroundReplay(Client& client, const ReplayOptions& options)
    : replayer_(client.replay(options)) {
  thread_ = std::thread([this] {
    while (std::optional<ReplayEvent> ev = replayer_->next()) {
      std::lock_guard l(mu_);
      events_.push_back(
          ReplayedEvent{ev->seq, ev->view.timestamp(), ev->view.event_type(),
                        std::string(reinterpret_cast<const char*>(ev->view.payload.data()),
                                    ev->view.payload.size())});
    }
    std::lock_guard l(mu_);
    ended_ = true;
  });
}

BackgroundReplay::~BackgroundReplay() { (void)stop(); }

size_t BackgroundReplay::count() const {
  std::lock_guard l(mu_);
  return events_.size();
}

std::vector<ReplayedEvent> BackgroundReplay::events() const {
  std::lock_guard l(mu_);
  return events_;
}

bool BackgroundReplay::ended() const {
  std::lock_guard l(mu_);
  return ended_;
}

absl::Status BackgroundReplay::stop() {
  if (thread_.joinable()) {
    replayer_->cancel();
    thread_.join();
  }
  return replayer_->status();
}

namespace {

grpc::ByteBuffer to_buffer(const std::string& s) {
  grpc::Slice slice(s.data(), s.size());
  return grpc::ByteBuffer(&slice, 1);
}

std::string from_buffer(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  (void)b.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

}  // namespace

GenericResult generic_call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                           const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&ctx, method, &cq);
  // One operation at a time; the deadline guarantees each completes.
  auto await = [&](intptr_t tag) {
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&got, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(got), tag);
    return ok;
  };
  GenericResult r;
  call->StartCall(reinterpret_cast<void*>(1));
  if (await(1)) {
    call->Write(to_buffer(request), reinterpret_cast<void*>(2));
    if (await(2)) {
      call->WritesDone(reinterpret_cast<void*>(3));
      await(3);
    }
    grpc::ByteBuffer resp;
    for (;;) {
      call->Read(&resp, reinterpret_cast<void*>(4));
      if (!await(4)) break;
      r.responses.push_back(from_buffer(resp));
    }
  }
  call->Finish(&r.status, reinterpret_cast<void*>(5));
  await(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return r;
}

std::string bytes_field(int number, const std::string& value) {
  return std::string(1, static_cast<char>(number << 3 | 2)) + static_cast<char>(value.size()) +
         value;
}

}  // namespace ringlog::testing
