#include "replication_harness.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
#include "ringlog/crc32c.h"
#include "ringlog/storage.h"

namespace ringlog::testing {

using test_support::read_file;

namespace {

// The used part of a segment file: the header and the valid records. For a
// sealed segment it is what the header says, which the records must match.
struct UsedRange {
  size_t bytes = 0;  // header included
  bool sealed = false;
  std::string problem;
};

UsedRange used_range(const std::string& file) {
  UsedRange u;
  if (file.size() < sizeof(FileHeader)) {
    u.problem = "shorter than a header";
    return u;
  }
  FileHeader h;
  std::memcpy(&h, file.data(), sizeof h);
  if (absl::Status s = h.validate("segment"); !s.ok()) {
    u.problem = s.ToString();
    return u;
  }
  size_t pos = sizeof(FileHeader);
  const auto* data = reinterpret_cast<const std::byte*>(file.data());
  while (pos + kHeaderSize <= file.size()) {
    EventView v;
    if (check_record(data + pos, file.size() - pos, &v) != RecordStatus::kOk) break;
    pos += v.header->padded_size();
  }
  u.bytes = pos;
  u.sealed = h.sealed();
  if (h.sealed() && h.write_offset != pos - sizeof(FileHeader)) {
    u.problem = absl::StrFormat("sealed with write_offset %d but %d bytes of valid records",
                                h.write_offset, pos - sizeof(FileHeader));
  }
  return u;
}

}  // namespace

bool wait_until(const std::function<bool()>& pred, absl::Duration timeout) {
  return test_support::poll_until(pred, timeout);
}

std::string event_payload(uint64_t i) {
  std::string p(kPayloadBytes, '\0');
  std::memcpy(p.data(), &i, sizeof i);
  for (size_t k = sizeof i; k < p.size(); ++k) p[k] = static_cast<char>((i * 31 + k * 7) & 0xff);
  return p;
}

uint64_t event_timestamp(uint64_t i) { return uint64_t{1'700'000'000'000'000'000} + i * 1000; }

uint8_t event_type(uint64_t i) { return static_cast<uint8_t>(1 + i % 5); }

// ---- BackgroundAppender ----

BackgroundAppender::BackgroundAppender(const std::string& address, uint64_t first,
                                       uint64_t max_events, uint64_t events_per_second,
                                       absl::Duration failover_timeout)
    : thread_([this, address, first, max_events, events_per_second, failover_timeout] {
        run(address, first, max_events, events_per_second, failover_timeout);
      }) {}

BackgroundAppender::~BackgroundAppender() { (void)stop(); }

void BackgroundAppender::run(std::string address, uint64_t first, uint64_t max_events,
                             uint64_t rate, absl::Duration failover_timeout) {
  absl::StatusOr<Ack> result = absl::UnknownError("not run");
  [&] {
    ClientOptions o;
    o.endpoints = {address};
    o.failover_timeout = failover_timeout;
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
    if (!c.ok()) {
      result = c.status();
      return;
    }
    absl::StatusOr<std::unique_ptr<Appender>> a = (*c)->appender();
    if (!a.ok()) {
      result = a.status();
      return;
    }
    const absl::Time started = absl::Now();
    for (uint64_t n = 0; n < max_events && !stop_.load(std::memory_order_acquire); ++n) {
      if (rate != 0 && n % 1000 == 0) {
        // Pacing (not synchronization): hold back while ahead of the rate.
        const absl::Time due = started + absl::Seconds(1) * (static_cast<double>(n) / rate);
        if (const absl::Duration ahead = due - absl::Now(); ahead > absl::ZeroDuration()) {
          absl::SleepFor(ahead);
        }
        if (absl::Status s = (*a)->flush(); !s.ok()) {
          result = s;
          return;
        }
      }
      const uint64_t i = first + n;
      const std::string p = event_payload(i);
      if (absl::Status s = (*a)->append(event_type(i), event_timestamp(i), as_bytes(p)); !s.ok()) {
        result = s;
        return;
      }
      appended_.store(n + 1, std::memory_order_release);
    }
    result = (*a)->drain();
    if (absl::Status s = (*a)->close(); !s.ok() && result.ok()) result = s;
  }();
  result_ = std::move(result);
  done_.store(true, std::memory_order_release);
}

absl::StatusOr<Ack> BackgroundAppender::stop() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  return result_ ? *result_ : absl::StatusOr<Ack>(absl::UnknownError("not run"));
}

// ---- ReplicationTest ----

ReplicationTest::ReplicationTest() {
  std::string tmpl = "/tmp/ringlog-replication-XXXXXX";
  char* d = mkdtemp(tmpl.data());
  if (d == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
  } else {
    dir_ = d;
  }
}

ReplicationTest::~ReplicationTest() {
  nodes_.clear();  // SIGKILL whatever still runs, before its files go
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void ReplicationTest::TearDown() {
  if (!HasFailure()) return;
  test_support::print_log_tails(dir_, 30);  // each node's last lines, to diagnose the failure
}

tools::NodeProcess& ReplicationTest::start(const std::string& name, std::vector<std::string> args) {
  args.insert(args.begin(), {absl::StrCat("--segment_bytes=", kSegmentBytes),
                             absl::StrCat("--ring_bytes=", kRingBytes)});
  absl::StatusOr<tools::NodeProcess> p = tools::NodeProcess::Start(kRinglogd, data_dir(name), args);
  if (!p.ok()) {
    ADD_FAILURE() << "cannot start " << name << ": " << p.status() << "\n" << node_output(name);
    throw std::runtime_error("node did not start");  // ends the test; gtest reports it
  }
  auto& slot = nodes_[name];
  slot = std::make_unique<tools::NodeProcess>(std::move(*p));
  return *slot;
}

tools::NodeProcess& ReplicationTest::start_primary(const std::string& name,
                                                   std::vector<std::string> extra) {
  extra.insert(extra.begin(), "--role=primary");
  return start(name, std::move(extra));
}

tools::NodeProcess& ReplicationTest::start_replica(const std::string& name,
                                                   const std::string& primary_address,
                                                   std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"--role=replica", "--primary=" + primary_address});
  replicas_.insert(name);
  return start(name, std::move(extra));
}

absl::StatusOr<int> ReplicationTest::stop(const std::string& name, int sig) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return absl::NotFoundError(name);
  return it->second->stop(sig);
}

void ReplicationTest::stop_all() {
  // Replicas first, so that none of them sees its primary go away.
  std::vector<std::string> order;
  for (const auto& [name, n] : nodes_) {
    if (n->pid() > 0 && replicas_.contains(name)) order.push_back(name);
  }
  for (const auto& [name, n] : nodes_) {
    if (n->pid() > 0 && !replicas_.contains(name)) order.push_back(name);
  }
  for (const std::string& name : order) {
    absl::StatusOr<int> rc = nodes_.at(name)->stop(SIGTERM);
    EXPECT_TRUE(rc.ok() && *rc == 0) << name << " did not stop cleanly on SIGTERM: "
                                     << (rc.ok() ? absl::StrCat("exit ", *rc) : rc.status().ToString());
  }
}

std::shared_ptr<grpc::Channel> ReplicationTest::channel(const std::string& address) {
  std::lock_guard l(channels_mu_);
  std::shared_ptr<grpc::Channel>& ch = channels_[address];
  if (!ch) ch = make_channel(address);
  return ch;
}

absl::StatusOr<v1::NodeStatus> ReplicationTest::status(const tools::NodeProcess& n) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(channel(n.address()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::NodeStatus out;
  const grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &out);
  if (!s.ok()) {
    return from_grpc(s);
  }
  return out;
}

v1::NodeStatus ReplicationTest::status_now(const tools::NodeProcess& n) {
  absl::StatusOr<v1::NodeStatus> s = status(n);
  if (!s.ok()) {
    ADD_FAILURE() << "GetStatus on " << n.address() << ": " << s.status();
    return v1::NodeStatus();
  }
  return *s;
}

absl::StatusOr<std::unique_ptr<Client>> ReplicationTest::connect(const tools::NodeProcess& n) {
  ClientOptions o;
  o.endpoints = {n.address()};
  return Client::Connect(o);
}

absl::StatusOr<Ack> ReplicationTest::append_events(const tools::NodeProcess& n, uint64_t first,
                                                   uint64_t count) {
  absl::StatusOr<std::unique_ptr<Client>> c = connect(n);
  if (!c.ok()) return c.status();
  absl::StatusOr<std::unique_ptr<Appender>> a = (*c)->appender();
  if (!a.ok()) return a.status();
  for (uint64_t i = first; i < first + count; ++i) {
    const std::string p = event_payload(i);
    if (absl::Status s = (*a)->append(event_type(i), event_timestamp(i), as_bytes(p)); !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<Ack> ack = (*a)->drain();
  if (absl::Status s = (*a)->close(); !s.ok() && ack.ok()) return s;
  return ack;
}

::testing::AssertionResult ReplicationTest::wait_converged(
    const tools::NodeProcess& primary, const std::vector<const tools::NodeProcess*>& replicas,
    absl::Duration timeout) {
  std::string last;
  const bool ok = wait_until(
      [&] {
        absl::StatusOr<v1::NodeStatus> p = status(primary);
        if (!p.ok()) {
          last = "primary: " + p.status().ToString();
          return false;
        }
        last = absl::StrFormat("primary end=%d durable=%d commit=%d", p->log_end_offset(),
                               p->durable_offset(), p->commit_offset());
        bool all = p->durable_offset() == p->log_end_offset() &&
                   p->commit_offset() == p->log_end_offset();
        for (const tools::NodeProcess* r : replicas) {
          absl::StatusOr<v1::NodeStatus> s = status(*r);
          if (!s.ok()) {
            absl::StrAppend(&last, "; ", r->address(), ": ", s.status().ToString());
            all = false;
            continue;
          }
          absl::StrAppendFormat(&last, "; replica %s end=%d applied=%d state=%s", r->address(),
                                s->log_end_offset(), s->applied_offset(),
                                v1::ReplicaState_Name(s->replica_state()));
          all = all && s->applied_offset() == p->log_end_offset() &&
                s->log_end_offset() == p->log_end_offset() &&
                s->replica_state() == v1::REPLICA_STATE_STREAMING;
        }
        return all;
      },
      timeout);
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "not converged within " << absl::FormatDuration(timeout)
                                       << ": " << last;
}

std::vector<std::string> ReplicationTest::segment_files(const std::string& name) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir(name), ec)) {
    const std::string f = e.path().filename().string();
    if (e.is_regular_file() && f.size() == 20 + 5 && f.ends_with(".evtl")) out.push_back(f);
  }
  std::sort(out.begin(), out.end());
  return out;
}

::testing::AssertionResult ReplicationTest::logs_identical(const std::string& primary,
                                                           const std::string& replica,
                                                           std::optional<uint64_t> end_offset) {
  const std::vector<std::string> pf = segment_files(primary);
  const std::vector<std::string> rf = segment_files(replica);
  if (pf.empty()) return ::testing::AssertionFailure() << primary << " has no segment files";
  if (pf != rf) {
    return ::testing::AssertionFailure()
           << "segment files differ: " << primary << " has [" << absl::StrJoin(pf, ", ") << "], "
           << replica << " has [" << absl::StrJoin(rf, ", ") << "]";
  }
  uint64_t record_bytes = 0;
  for (const std::string& f : pf) {
    const std::string a = read_file(data_dir(primary) + "/" + f);
    const std::string b = read_file(data_dir(replica) + "/" + f);
    const UsedRange ua = used_range(a);
    const UsedRange ub = used_range(b);
    if (!ua.problem.empty() || !ub.problem.empty()) {
      return ::testing::AssertionFailure() << f << ": " << primary << ": " << ua.problem << "; "
                                           << replica << ": " << ub.problem;
    }
    if (ua.bytes != ub.bytes || ua.sealed != ub.sealed) {
      return ::testing::AssertionFailure()
             << f << ": used range " << ua.bytes << " bytes (sealed " << ua.sealed << ") on "
             << primary << " but " << ub.bytes << " (sealed " << ub.sealed << ") on " << replica;
    }
    const uint32_t ca = crc32c::value(a.data(), ua.bytes);
    const uint32_t cb = crc32c::value(b.data(), ub.bytes);
    if (ca != cb) {
      return ::testing::AssertionFailure() << f << ": CRC32C of the used range (" << ua.bytes
                                           << " bytes) is " << ca << " on " << primary << " but "
                                           << cb << " on " << replica;
    }
    if (a != b) {
      size_t at = 0;
      while (at < std::min(a.size(), b.size()) && a[at] == b[at]) ++at;
      return ::testing::AssertionFailure() << f << ": files differ (sizes " << a.size() << " and "
                                           << b.size() << "), first at byte " << at;
    }
    record_bytes += ua.bytes - sizeof(FileHeader);
  }
  if (end_offset && record_bytes != *end_offset) {
    return ::testing::AssertionFailure() << "the segments of " << primary << " hold "
                                         << record_bytes << " record bytes, not " << *end_offset;
  }
  return ::testing::AssertionSuccess() << pf.size() << " segment files identical";
}

std::string ReplicationTest::node_output(const std::string& name) const {
  return read_file(data_dir(name) + ".log");
}

CommandResult ReplicationTest::run_ringlogctl(const std::vector<std::string>& args,
                                              absl::Duration timeout) {
  CommandResult r;
  const std::string out_path = absl::StrCat(dir_, "/ringlogctl-", ++commands_, ".out");
  std::vector<std::string> argv = {kRinglogctl};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid = fork();
  if (pid < 0) return r;
  if (pid == 0) {
    const int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    std::vector<char*> cargv;
    for (std::string& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(kRinglogctl, cargv.data());
    _exit(127);
  }
  int st = 0;
  const bool exited = wait_until([&] { return waitpid(pid, &st, WNOHANG) == pid; }, timeout);
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    r.timed_out = true;
  }
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = read_file(out_path);
  return r;
}

}  // namespace ringlog::testing
