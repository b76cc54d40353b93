#include "failover_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kit/log_files.h"

namespace ringlog::failover_test {

namespace {

std::chrono::system_clock::time_point deadline_after(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

}  // namespace

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

void report_fault(const std::string& scenario, const std::vector<Replayed>& events, uint64_t tag,
                  uint64_t acknowledged) {
  std::vector<uint64_t> counters;
  for (const Replayed& e : events) {
    if (e.tag == tag) counters.push_back(e.counter);
  }
  testkit::report_fault_indices(scenario, counters, acknowledged);
}

size_t count_tag(const std::vector<Replayed>& events, uint64_t tag) {
  return static_cast<size_t>(
      std::count_if(events.begin(), events.end(), [tag](const Replayed& e) { return e.tag == tag; }));
}

// ---- FailoverTest ----

void FailoverTest::TearDown() {
  if (!HasFailure() && getenv("FO_SHOW_LOGS") == nullptr) return;
  testkit::print_log_tails(dir(), 40);  // each node's last lines, to diagnose the failure
}

const std::string& FailoverTest::reserve(const std::string& name) {
  std::string& a = addresses_[name];
  if (a.empty()) a = absl::StrCat("127.0.0.1:", pick_free_port());
  return a;
}

std::string FailoverTest::address(const std::string& name) const {
  if (auto it = addresses_.find(name); it != addresses_.end()) return it->second;
  if (nodes_.contains(name)) return nodes_.at(name).address();
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
  return nodes_.start(name, binary, args);
}

tools::NodeProcess& FailoverTest::restart(const std::string& name) {
  return start(name, args_.at(name), test_sizes_.at(name));
}

absl::StatusOr<int> FailoverTest::stop(const std::string& name, int sig) {
  absl::StatusOr<int> r = nodes_.stop(name, sig);
  nodes_.erase(name);
  return r;
}

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
    }, absl::Seconds(60))) << r << " does not stream from A";
  }
}

grpc::Status FailoverTest::promote(const std::string& name, bool force,
                                   const std::vector<std::string>& peer_names,
                                   v1::PromoteResponse* resp, double* ms) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(channels_.get(address(name)));
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
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(channels_.get(address(name)));
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline_after(absl::Seconds(20)));
  v1::FollowCommand req;
  req.set_primary(primary);
  req.set_force(force);
  req.set_to_be_promoted(true);
  v1::FollowCommandResponse resp;
  return stub->Follow(&ctx, req, &resp);
}

absl::StatusOr<Ack> FailoverTest::append(const std::vector<std::string>& names, uint64_t first,
                                         uint64_t count, uint64_t tag) {
  ClientOptions o;
  for (const std::string& n : names) o.endpoints.push_back(address(n));
  return testkit::append_events(
      o, {.stream = tag, .first = first, .count = count, .payload_bytes = kPayloadBytes});
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
    (void)testkit::parse_event_payload(ev->view.payload, kPayloadBytes, &e.tag, &e.counter);
    out.push_back(e);
  }
  if (!rp->status().ok()) return rp->status();
  return out;
}

::testing::AssertionResult FailoverTest::wait_converged(const std::string& primary,
                                                        const std::vector<std::string>& replicas,
                                                        absl::Duration timeout) {
  std::vector<std::string> addresses;
  for (const std::string& r : replicas) addresses.push_back(address(r));
  return testkit::wait_converged(
      channels_, address(primary), addresses, timeout,
      {.replica_end = false, .roles_and_commit = true, .status_timeout = absl::Seconds(3)});
}

std::vector<std::string> FailoverTest::segment_files(const std::string& name) const {
  return testkit::segment_files(data_dir(name));
}

::testing::AssertionResult FailoverTest::files_identical(const std::string& a, const std::string& b) {
  return testkit::files_identical(data_dir(a), data_dir(b));
}

CommandResult FailoverTest::ringlogctl(const std::vector<std::string>& args,
                                       absl::Duration timeout) {
  std::vector<std::string> argv = {testkit::kRinglogctl};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {.timeout = timeout, .merge_output = true});
}

}  // namespace ringlog::failover_test
