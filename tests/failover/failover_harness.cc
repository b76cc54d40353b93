#include "failover_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "common/test_support.h"
#include "ringlog/grpc_status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace ringlog::failover_test {

using test_support::read_file;

namespace {

std::chrono::system_clock::time_point deadline_after(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

}  // namespace

bool wait_until(const std::function<bool()>& pred, absl::Duration timeout) {
  return test_support::poll_until(pred, timeout);
}

int pick_free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

std::string event_payload(uint64_t counter, uint64_t tag) {
  std::string p(kPayloadBytes, '\0');
  std::memcpy(p.data(), &counter, sizeof counter);
  std::memcpy(p.data() + 8, &tag, sizeof tag);
  for (size_t k = 16; k < p.size(); ++k) p[k] = static_cast<char>((counter * 31 + k * 7) & 0xff);
  return p;
}

std::string encode_events(uint64_t first, uint64_t count, uint64_t tag) {
  std::string out(count * kRecordBytes, '\0');
  for (uint64_t i = 0; i < count; ++i) {
    const std::string p = event_payload(first + i, tag);
    const EventHeader h(uint64_t{1'700'000'000'000'000'000} + first + i, 1,
                        static_cast<uint16_t>(p.size()));
    encode_record(reinterpret_cast<std::byte*>(out.data()) + i * kRecordBytes, h, as_bytes(p));
  }
  return out;
}

::testing::AssertionResult exactly_once_in_order(const std::vector<Replayed>& events, uint64_t tag,
                                                 uint64_t n) {
  uint64_t expect = 0;
  for (const Replayed& e : events) {
    if (e.tag != tag) continue;
    if (e.counter != expect) {
      return ::testing::AssertionFailure()
             << "event with tag " << tag << " at seq " << e.seq << " has counter " << e.counter
             << ", expected " << expect << (e.counter < expect ? " (a duplicate or reordering)" : " (events lost)");
    }
    ++expect;
  }
  if (expect != n) {
    return ::testing::AssertionFailure() << "tag " << tag << ": " << expect
                                         << " events in the log, expected " << n;
  }
  return ::testing::AssertionSuccess();
}

size_t count_tag(const std::vector<Replayed>& events, uint64_t tag) {
  return static_cast<size_t>(
      std::count_if(events.begin(), events.end(), [tag](const Replayed& e) { return e.tag == tag; }));
}

CommandResult run_command(const std::vector<std::string>& argv, absl::Duration timeout) {
  CommandResult r;
  int fds[2];
  if (pipe(fds) != 0) return r;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<std::string> args = argv;
    std::vector<char*> cargs;
    for (std::string& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execvp(cargs[0], cargs.data());
    _exit(127);
  }
  close(fds[1]);
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    const int left = static_cast<int>(std::max<int64_t>(
        0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    const int n = poll(&p, 1, std::min(left, 100));
    if (n > 0) {
      const ssize_t got = read(fds[0], buf, sizeof buf);
      if (got <= 0) break;  // EOF: the child (and anything it started) closed the pipe
      r.out.append(buf, static_cast<size_t>(got));
      continue;
    }
    if (absl::Now() >= deadline) {
      r.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// ---- LoadThread ----

LoadThread::LoadThread(std::vector<std::string> endpoints, uint64_t events_per_second, uint64_t tag)
    : thread_([this, endpoints = std::move(endpoints), events_per_second, tag] {
        run(endpoints, events_per_second, tag);
      }) {}

LoadThread::~LoadThread() { (void)stop(); }

void LoadThread::run(std::vector<std::string> endpoints, uint64_t rate, uint64_t tag) {
  ClientOptions o;
  o.endpoints = std::move(endpoints);
  o.failover_timeout = absl::Seconds(60);
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
  if (!c.ok()) {
    result_ = c.status();
    failed_.store(true);
    return;
  }
  absl::StatusOr<std::unique_ptr<Appender>> a = (*c)->appender();
  if (!a.ok()) {
    result_ = a.status();
    failed_.store(true);
    return;
  }
  const absl::Time t0 = absl::Now();
  uint64_t sent = 0;
  absl::Status s;
  while (!stop_.load(std::memory_order_acquire)) {
    // Pacing (not synchronization): the events due by now.
    const auto due = static_cast<uint64_t>(absl::ToDoubleSeconds(absl::Now() - t0) *
                                           static_cast<double>(rate)) + 1;
    for (; sent < due && s.ok(); ++sent) {
      const std::string p = event_payload(sent, tag);
      s = (*a)->append(1, uint64_t{1'700'000'000'000'000'000} + sent, as_bytes(p));
      if (s.ok()) sent_.store(sent + 1, std::memory_order_release);
    }
    if (!s.ok()) break;
    absl::StatusOr<Ack> ack = (*a)->drain();  // fails over by itself if need be
    if (!ack.ok()) {
      s = ack.status();
      break;
    }
    acked_.store((*a)->events_acked(), std::memory_order_release);
    epoch_.store(ack->epoch, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // pacing
  }
  if (s.ok()) s = (*a)->close();
  acked_.store((*a)->events_acked(), std::memory_order_release);
  failovers_ = (*a)->failovers();
  duplicates_ = (*a)->duplicates();
  result_ = s;
  if (!s.ok()) failed_.store(true);
}

absl::Status LoadThread::stop() {
  if (!stopped_) {
    stopped_ = true;
    stop_.store(true, std::memory_order_release);
    if (thread_.joinable()) thread_.join();
  }
  return result_;
}

// ---- RawAppendStream ----

RawAppendStream::RawAppendStream(const std::string& address, absl::Duration deadline)
    : stub_(v1::EventLog::NewStub(make_channel(address))) {
  ctx_.set_deadline(deadline_after(deadline));
  rw_ = stub_->Append(&ctx_);
  reader_ = std::thread([this] {
    v1::AppendResponse r;
    while (rw_->Read(&r)) {
      std::lock_guard l(mu_);
      acks_.push_back(r);
      cv_.notify_all();
    }
    const grpc::Status s = rw_->Finish();
    std::lock_guard l(mu_);
    end_ = s;
    cv_.notify_all();
  });
}

RawAppendStream::~RawAppendStream() {
  ctx_.TryCancel();
  if (reader_.joinable()) reader_.join();
}

bool RawAppendStream::send(const std::string& records, uint64_t batch_id,
                           const std::string& producer_id, uint64_t producer_seq) {
  v1::AppendRequest req;
  req.set_records(records);
  req.set_batch_id(batch_id);
  req.set_producer_id(producer_id);
  req.set_producer_seq(producer_seq);
  return rw_->Write(req);
}

std::optional<v1::AppendResponse> RawAppendStream::wait_ack(size_t n, absl::Duration timeout) {
  std::unique_lock l(mu_);
  cv_.wait_for(l, absl::ToChronoNanoseconds(timeout), [&] { return acks_.size() >= n || end_; });
  if (acks_.size() >= n) return acks_[n - 1];
  return std::nullopt;
}

size_t RawAppendStream::acks() const {
  std::lock_guard l(mu_);
  return acks_.size();
}

std::optional<grpc::Status> RawAppendStream::wait_end(absl::Duration timeout) {
  std::unique_lock l(mu_);
  cv_.wait_for(l, absl::ToChronoNanoseconds(timeout), [&] { return end_.has_value(); });
  return end_;
}

// ---- FailoverTest ----

FailoverTest::FailoverTest() {
  std::string tmpl = "/tmp/ringlog-failover-XXXXXX";
  if (char* d = mkdtemp(tmpl.data()); d != nullptr) {
    dir_ = d;
  } else {
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
  }
}

FailoverTest::~FailoverTest() {
  nodes_.clear();  // SIGKILL whatever still runs, before its files go
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void FailoverTest::TearDown() {
  if (!HasFailure() && getenv("FO_SHOW_LOGS") == nullptr) return;
  test_support::print_log_tails(dir_, 40);  // each node's last lines, to diagnose the failure
}

const std::string& FailoverTest::reserve(const std::string& name) {
  std::string& a = addresses_[name];
  if (a.empty()) a = absl::StrCat("127.0.0.1:", pick_free_port());
  return a;
}

std::string FailoverTest::address(const std::string& name) const {
  if (auto it = addresses_.find(name); it != addresses_.end()) return it->second;
  if (auto it = nodes_.find(name); it != nodes_.end()) return it->second->address();
  return "";
}

std::string FailoverTest::peers_flag(const std::vector<std::string>& others) const {
  std::vector<std::string> a;
  for (const std::string& o : others) a.push_back(address(o));
  return "--peers=" + absl::StrJoin(a, ",");
}

void FailoverTest::place(const std::string& name, const std::string& address,
                         const std::string& binary) {
  addresses_[name] = address;
  binaries_[name] = binary;
}

tools::NodeProcess& FailoverTest::start(const std::string& name, std::vector<std::string> args,
                                        bool test_sizes) {
  args_[name] = args;
  test_sizes_[name] = test_sizes;
  args.insert(args.begin(), "--node_id=" + name);
  if (test_sizes) {
    args.insert(args.begin(), {absl::StrCat("--segment_bytes=", kSegmentBytes),
                               absl::StrCat("--ring_bytes=", kRingBytes)});
  }
  // After NodeProcess's --listen=127.0.0.1:0: the last one wins.
  if (auto it = addresses_.find(name); it != addresses_.end()) args.push_back("--listen=" + it->second);
  const std::string binary = binaries_.count(name) != 0 ? binaries_.at(name) : kRinglogd;
  absl::StatusOr<tools::NodeProcess> p = tools::NodeProcess::Start(binary, data_dir(name), args);
  if (!p.ok()) {
    ADD_FAILURE() << "cannot start " << name << ": " << p.status() << "\n" << output(name);
    throw std::runtime_error("node did not start");  // ends the test; gtest reports it
  }
  auto& slot = nodes_[name];
  slot = std::make_unique<tools::NodeProcess>(std::move(*p));
  return *slot;
}

tools::NodeProcess& FailoverTest::restart(const std::string& name) {
  return start(name, args_.at(name), test_sizes_.at(name));
}

absl::StatusOr<int> FailoverTest::stop(const std::string& name, int sig) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return absl::NotFoundError("no node " + name);
  absl::StatusOr<int> r = it->second->stop(sig);
  nodes_.erase(it);
  return r;
}

bool FailoverTest::running(const std::string& name) const { return nodes_.count(name) != 0; }

void FailoverTest::start_cluster(std::vector<std::string> extra, bool with_peers) {
  for (const char* n : {"A", "B", "C"}) reserve(n);
  auto flags = [&](const std::string& self, std::vector<std::string> f) {
    f.push_back("--min_replica_acks=1");
    if (with_peers) {
      std::vector<std::string> others;
      for (const char* n : {"A", "B", "C"}) {
        if (self != n) others.push_back(n);
      }
      f.push_back(peers_flag(others));
    }
    for (const std::string& e : extra) f.push_back(e);
    return f;
  };
  start("A", flags("A", {}));
  start("B", flags("B", {"--role=replica", "--primary=" + address("A")}));
  start("C", flags("C", {"--role=replica", "--primary=" + address("A")}));
  for (const char* r : {"B", "C"}) {
    ASSERT_TRUE(wait_until([&] {
      absl::StatusOr<v1::NodeStatus> st = status(r);
      return st.ok() && st->replica_state() == v1::REPLICA_STATE_STREAMING;
    })) << r << " does not stream from A";
  }
}

std::shared_ptr<grpc::Channel> FailoverTest::channel(const std::string& address) {
  std::lock_guard l(channels_mu_);
  std::shared_ptr<grpc::Channel>& c = channels_[address];
  if (!c) c = make_channel(address);
  return c;
}

absl::StatusOr<v1::NodeStatus> FailoverTest::status_at(const std::string& address) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(channel(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline_after(absl::Seconds(3)));
  v1::NodeStatus st;
  const grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &st);
  if (!s.ok()) {
    return from_grpc(s);
  }
  return st;
}

absl::StatusOr<v1::NodeStatus> FailoverTest::status(const std::string& name) {
  return status_at(address(name));
}

grpc::Status FailoverTest::promote(const std::string& name, bool force,
                                   const std::vector<std::string>& peer_names,
                                   v1::PromoteResponse* resp, double* ms) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(channel(address(name)));
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline_after(absl::Seconds(20)));
  v1::PromoteRequest req;
  req.set_force(force);
  for (const std::string& p : peer_names) req.add_peers(address(p));
  v1::PromoteResponse local;
  const auto t0 = std::chrono::steady_clock::now();
  const grpc::Status s = stub->Promote(&ctx, req, resp != nullptr ? resp : &local);
  if (ms != nullptr) {
    *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  return s;
}

grpc::Status FailoverTest::follow(const std::string& name, const std::string& primary, bool force) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(channel(address(name)));
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline_after(absl::Seconds(20)));
  v1::FollowCommand req;
  req.set_primary(primary);
  req.set_force(force);
  v1::FollowCommandResponse resp;
  return stub->Follow(&ctx, req, &resp);
}

absl::StatusOr<Ack> FailoverTest::append(const std::vector<std::string>& names, uint64_t first,
                                         uint64_t count, uint64_t tag) {
  ClientOptions o;
  for (const std::string& n : names) o.endpoints.push_back(address(n));
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
  if (!c.ok()) return c.status();
  absl::StatusOr<std::unique_ptr<Appender>> a = (*c)->appender();
  if (!a.ok()) return a.status();
  for (uint64_t i = first; i < first + count; ++i) {
    const std::string p = event_payload(i, tag);
    if (absl::Status s = (*a)->append(1, uint64_t{1'700'000'000'000'000'000} + i, as_bytes(p));
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<Ack> last = (*a)->drain();
  if (absl::Status s = (*a)->close(); !s.ok() && last.ok()) return s;
  return last;
}

absl::StatusOr<std::vector<Replayed>> FailoverTest::replay_all(const std::string& name) {
  ClientOptions o;
  o.endpoints = {address(name)};
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
  if (!c.ok()) return c.status();
  ReplayOptions r;
  r.resume_for = absl::ZeroDuration();  // this node only
  std::unique_ptr<Replayer> rp = (*c)->replay(r);
  std::vector<Replayed> out;
  while (std::optional<ReplayEvent> ev = rp->next()) {
    Replayed e;
    e.seq = ev->seq;
    if (ev->view.payload.size() >= 16) {
      std::memcpy(&e.counter, ev->view.payload.data(), 8);
      std::memcpy(&e.tag, ev->view.payload.data() + 8, 8);
    }
    out.push_back(e);
  }
  if (!rp->status().ok()) return rp->status();
  return out;
}

::testing::AssertionResult FailoverTest::wait_converged(const std::string& primary,
                                                        const std::vector<std::string>& replicas,
                                                        absl::Duration timeout) {
  std::string why;
  const bool ok = wait_until(
      [&] {
        absl::StatusOr<v1::NodeStatus> p = status(primary);
        if (!p.ok()) {
          why = absl::StrCat(primary, ": ", p.status().ToString());
          return false;
        }
        const uint64_t end = p->log_end_offset();
        if (p->role() != v1::ROLE_PRIMARY || p->durable_offset() != end || p->commit_offset() != end) {
          why = absl::StrFormat("%s: role %d end %d durable %d commit %d", primary, p->role(), end,
                                p->durable_offset(), p->commit_offset());
          return false;
        }
        for (const std::string& r : replicas) {
          absl::StatusOr<v1::NodeStatus> s = status(r);
          if (!s.ok()) {
            why = absl::StrCat(r, ": ", s.status().ToString());
            return false;
          }
          if (s->role() != v1::ROLE_REPLICA || s->primary() != address(primary) ||
              s->replica_state() != v1::REPLICA_STATE_STREAMING || s->applied_offset() != end ||
              s->commit_offset() != end) {
            why = absl::StrFormat(
                "%s: role %d primary \"%s\" state %d applied %d commit %d; primary end %d (%s)", r,
                s->role(), s->primary(), s->replica_state(), s->applied_offset(),
                s->commit_offset(), end, s->replication_error());
            return false;
          }
        }
        return true;
      },
      timeout);
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "not converged on " << primary << ": " << why;
}

std::vector<std::string> FailoverTest::segment_files(const std::string& name) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir(name), ec)) {
    if (e.path().extension() == ".evtl") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

::testing::AssertionResult FailoverTest::files_identical(const std::string& a, const std::string& b) {
  const std::vector<std::string> fa = segment_files(a);
  const std::vector<std::string> fb = segment_files(b);
  if (fa != fb) {
    return ::testing::AssertionFailure() << a << " has segments [" << absl::StrJoin(fa, ", ")
                                         << "], " << b << " has [" << absl::StrJoin(fb, ", ") << "]";
  }
  if (fa.empty()) return ::testing::AssertionFailure() << "no segment files in " << a;
  for (const std::string& f : fa) {
    const std::string x = read_file(data_dir(a) + "/" + f);
    const std::string y = read_file(data_dir(b) + "/" + f);
    if (x == y) continue;
    size_t i = 0;
    while (i < x.size() && i < y.size() && x[i] == y[i]) ++i;
    return ::testing::AssertionFailure()
           << f << " differs between " << a << " (" << x.size() << " bytes) and " << b << " ("
           << y.size() << " bytes), first at byte " << i;
  }
  return ::testing::AssertionSuccess();
}

std::string FailoverTest::output(const std::string& name) const {
  return read_file(data_dir(name) + ".log");
}

CommandResult FailoverTest::ringlogctl(const std::vector<std::string>& args,
                                       absl::Duration timeout) {
  std::vector<std::string> argv = {kRinglogctl};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, timeout);
}

}  // namespace ringlog::failover_test
