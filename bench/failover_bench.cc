// Failover: a primary and two replicas (--min_replica_acks=1), a client
// appending a steady stream with idempotent batches. The primary is killed
// with SIGKILL; the replica with the longest log is promoted (the other is
// pointed at it first) and the client fails over by itself.
//
// Measures the time from the kill to the first append acknowledged by the new
// primary (and the promote call alone), then checks the new primary's log:
// every acknowledged event is there exactly once, in order. Repeats --runs
// times; prints one JSON line per run and one with the medians. With --tls,
// the nodes serve mutual TLS, take tokens and call each other with them, and
// the client too (a throwaway CA made with the openssl command line).
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "common/process.h"
#include "common/throwaway_pki.h"
#include "ringlog/client.h"

ABSL_FLAG(std::string, ringlogd, "", "ringlogd binary (default: ../server/ringlogd beside this)");
ABSL_FLAG(int, runs, 5, "failovers to measure");
ABSL_FLAG(uint64_t, rate, 50000, "events per second from the client");
ABSL_FLAG(double, before_seconds, 1.5, "load before the kill");
ABSL_FLAG(double, after_seconds, 1.0, "load after the failover");
ABSL_FLAG(bool, tls, false,
          "mutual TLS and a token between every node and client (a throwaway CA made with openssl)");

namespace {

using Clock = std::chrono::steady_clock;
using ringlog::tools::NodeProcess;

[[noreturn]] void die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "failover_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

absl::StatusOr<ringlog::v1::NodeStatus> status_of(const std::string& addr) {
  auto stub = ringlog::v1::Admin::NewStub(ringlog::make_channel(addr));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  ringlog::v1::NodeStatus st;
  grpc::Status s = stub->GetStatus(&ctx, ringlog::v1::GetStatusRequest(), &st);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return st;
}

grpc::Status admin_follow(const std::string& node, const std::string& primary) {
  auto stub = ringlog::v1::Admin::NewStub(ringlog::make_channel(node));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ringlog::v1::FollowCommand req;
  req.set_primary(primary);
  // `primary` is still a replica, promoted right after: a node refuses to
  // follow a replica unless told so.
  req.set_to_be_promoted(true);
  ringlog::v1::FollowCommandResponse resp;
  return stub->Follow(&ctx, req, &resp);
}

struct Run {
  double failover_ms = 0;  // kill -> first ack from the new primary
  double promote_ms = 0;   // the Promote call
  uint64_t acked = 0;
  uint64_t lost = 0;        // acknowledged but not in the new primary's log
  uint64_t duplicated = 0;  // acknowledged and in the log more than once
  uint64_t client_duplicates = 0;
  bool out_of_order = false;  // acknowledged events not in the order sent
};

// Flags every node gets: --tls's certificates and tokens.
std::vector<std::string> g_node_flags;

std::vector<std::string> with_node_flags(std::vector<std::string> args) {
  args.insert(args.end(), g_node_flags.begin(), g_node_flags.end());
  return args;
}

Run one_run(const std::string& bin, const std::string& dir) {
  std::vector<NodeProcess> nodes;
  auto p = NodeProcess::Start(bin, dir + "/n0", with_node_flags({"--min_replica_acks=1"}));
  if (!p.ok()) die("start primary", p.status());
  nodes.push_back(std::move(*p));
  for (int i = 1; i <= 2; ++i) {
    auto r = NodeProcess::Start(bin, dir + "/n" + std::to_string(i),
                                with_node_flags({"--role=replica",
                                                 "--primary=" + nodes[0].address(),
                                                 "--min_replica_acks=1"}));
    if (!r.ok()) die("start replica", r.status());
    nodes.push_back(std::move(*r));
  }
  ringlog::ClientOptions co;
  for (const NodeProcess& n : nodes) co.endpoints.push_back(n.address());
  auto client = ringlog::Client::Connect(co);
  if (!client.ok()) die("connect", client.status());
  auto app = (*client)->appender();
  if (!app.ok()) die("appender", app.status());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> new_epoch_ack_ns{0};
  std::atomic<Clock::rep> kill_at{0};
  uint64_t sent = 0;
  std::thread load([&] {
    const uint64_t rate = absl::GetFlag(FLAGS_rate);
    std::vector<std::byte> payload(64, std::byte{1});
    const auto t0 = Clock::now();
    while (!stop.load()) {
      const double el = std::chrono::duration<double>(Clock::now() - t0).count();
      const auto due = static_cast<uint64_t>(el * static_cast<double>(rate)) + 1;
      for (; sent < due; ++sent) {
        std::memcpy(payload.data(), &sent, sizeof sent);
        if (auto s = (*app)->append(1, static_cast<uint64_t>(absl::GetCurrentTimeNanos()), payload);
            !s.ok()) {
          die("append", s);
        }
      }
      auto ack = (*app)->drain();
      if (!ack.ok()) die("drain", ack.status());
      if (ack->epoch > 0 && new_epoch_ack_ns.load() == 0 && kill_at.load() != 0) {
        new_epoch_ack_ns.store(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::this_thread::sleep_for(std::chrono::duration<double>(absl::GetFlag(FLAGS_before_seconds)));

  // The crash.
  const auto t_kill = Clock::now();
  kill_at.store(t_kill.time_since_epoch().count());
  (void)nodes[0].stop(SIGKILL);
  // Promote the replica with the longest log; point the other at it first.
  uint64_t best_end = 0;
  size_t best = 1;
  for (size_t i = 1; i < nodes.size(); ++i) {
    auto st = status_of(nodes[i].address());
    if (st.ok() && st->log_end_offset() >= best_end) {
      best_end = st->log_end_offset();
      best = i;
    }
  }
  const size_t other = best == 1 ? 2 : 1;
  if (const grpc::Status s = admin_follow(nodes[other].address(), nodes[best].address()); !s.ok()) {
    std::fprintf(stderr, "failover_bench: pointing %s at %s: %s\n", nodes[other].address().c_str(),
                 nodes[best].address().c_str(), s.error_message().c_str());
  }
  Run r;
  {
    auto stub = ringlog::v1::Admin::NewStub(ringlog::make_channel(nodes[best].address()));
    grpc::ClientContext ctx;
    ringlog::v1::PromoteRequest req;
    ringlog::v1::PromoteResponse resp;
    const auto t0 = Clock::now();
    grpc::Status s = stub->Promote(&ctx, req, &resp);
    r.promote_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!s.ok()) die("promote", absl::InternalError(s.error_message()));
  }
  while (new_epoch_ack_ns.load() == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  r.failover_ms = (static_cast<double>(new_epoch_ack_ns.load()) -
                   static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           t_kill.time_since_epoch())
                                           .count())) /
                  1e6;
  std::this_thread::sleep_for(std::chrono::duration<double>(absl::GetFlag(FLAGS_after_seconds)));
  stop.store(true);
  load.join();
  if (auto s = (*app)->close(); !s.ok()) die("close", s);
  r.acked = (*app)->events_acked();
  r.client_duplicates = (*app)->duplicates();

  // Every acknowledged event (counters 0..acked-1, all sent in order and all
  // acknowledged) must be in the new primary's log exactly once, in order.
  ringlog::ClientOptions ro;
  ro.endpoints = {nodes[best].address()};
  auto rc = ringlog::Client::Connect(ro);
  if (!rc.ok()) die("connect new primary", rc.status());
  ringlog::ReplayOptions opts;
  auto rp = (*rc)->replay(opts);
  std::vector<uint8_t> seen(r.acked, 0);
  uint64_t expect = 0;
  bool in_order = true;
  while (auto ev = rp->next()) {
    uint64_t k = 0;
    std::memcpy(&k, ev->view.payload.data(), sizeof k);
    if (k < r.acked) {
      if (seen[k]++ != 0) ++r.duplicated;
      if (k != expect) in_order = false;
      expect = k + 1;
    }
  }
  for (uint64_t k = 0; k < r.acked; ++k) r.lost += seen[k] == 0 ? 1 : 0;
  r.out_of_order = !in_order;
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string bin = ringlog::tools::ringlogd_path(absl::GetFlag(FLAGS_ringlogd));
  std::string pki_dir;
  if (absl::GetFlag(FLAGS_tls)) {
    absl::StatusOr<std::string> t = ringlog::tools::make_temp_dir("ringlog-failover-pki-");
    if (!t.ok()) die("temporary directory", t.status());
    pki_dir = *t;
    absl::StatusOr<ringlog::tools::ThrowawayPki> pki = ringlog::tools::use_throwaway_pki(pki_dir);
    if (!pki.ok()) {
      std::filesystem::remove_all(pki_dir);
      die("--tls", pki.status());
    }
    g_node_flags = pki->node_flags();
  }
  std::vector<double> failover, promote;
  uint64_t lost = 0, dup = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_runs); ++i) {
    absl::StatusOr<std::string> t = ringlog::tools::make_temp_dir("ringlog-failover-");
    if (!t.ok()) die("temporary directory", t.status());
    const Run r = one_run(bin, *t);
    std::filesystem::remove_all(*t);
    std::printf(
        "{\"bench\":\"failover_run\",\"run\":%d,\"failover_ms\":%.1f,\"promote_ms\":%.1f,"
        "\"acked\":%llu,\"acked_lost\":%llu,\"acked_duplicated\":%llu,\"resends_deduplicated\":%llu,"
        "\"in_order\":%s}\n",
        i, r.failover_ms, r.promote_ms, static_cast<unsigned long long>(r.acked),
        static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.duplicated),
        static_cast<unsigned long long>(r.client_duplicates), r.out_of_order ? "false" : "true");
    std::fflush(stdout);
    if (r.out_of_order) ++dup;
    failover.push_back(r.failover_ms);
    promote.push_back(r.promote_ms);
    lost += r.lost;
    dup += r.duplicated;
  }
  std::printf(
      "{\"bench\":\"failover\",\"runs\":%zu,\"failover_ms_median\":%.1f,\"promote_ms_median\":%.1f,"
      "\"acked_lost\":%llu,\"acked_duplicated\":%llu}\n",
      failover.size(), median(failover), median(promote), static_cast<unsigned long long>(lost),
      static_cast<unsigned long long>(dup));
  if (!pki_dir.empty()) std::filesystem::remove_all(pki_dir);
  return lost == 0 && dup == 0 ? 0 : 1;
}
