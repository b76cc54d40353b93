// Replication on loopback: a primary and one replica (real ringlogd processes).
//
//  1. catch-up: the primary holds N events; a replica starts empty and the
//     time until it has applied the whole log gives the rate it keeps up at.
//  2. lag: events appended at a steady pace (default 100k/s) to the primary;
//     a client following the replica measures each event's age (now minus
//     the timestamp the writer put in it) when it arrives: p50/p99/p99.9;
//     and, as replication_lag_from_ack, from the primary's acknowledgement
//     of its batch to its arrival (0, and counted as before_ack, when the
//     replica had it first).
//     With --lag_reader=primary it follows the primary instead, which shows
//     how much of the lag is replication's.
//  3. commit latency: with --min_replica_acks=1, one-event appends, each
//     waiting for its acknowledgement: p50/p99/p99.9.
// With --tls, every node serves mutual TLS and takes tokens, and calls the
// others with them; the bench's own clients too (a throwaway CA made with
// the openssl command line in the temporary directory).
// Prints one JSON line per figure. --runs picks some of them; --primary_args
// and --replica_args add ringlogd flags, e.g. the shipped configs' commit
// latency (the command line overrides the file's data_dir and listen), with
// the flags on one line:
//
//   replication_bench --runs=commit --commits=2000
//     --primary_args=--config=deploy/primary.conf,--metrics_listen=
//     --replica_args=--config=deploy/replica.conf,--metrics_listen=
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "common/latency_histogram.h"
#include "common/process.h"
#include "common/throwaway_pki.h"
#include "grpcpp/grpcpp.h"
#include "ringlog/client.h"
#include "ringlog/event.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

ABSL_FLAG(std::string, ringlogd, "", "ringlogd binary (default: ../server/ringlogd beside this)");
ABSL_FLAG(uint64_t, catchup_events, 10'000'000, "events the replica copies in the catch-up run");
ABSL_FLAG(uint32_t, payload, 64, "payload bytes");
ABSL_FLAG(uint64_t, rate, 100'000, "events per second in the lag run");
ABSL_FLAG(double, lag_seconds, 5, "length of the lag run");
ABSL_FLAG(uint64_t, commits, 5000, "appends timed in the commit-latency run");
ABSL_FLAG(uint64_t, commit_warmup, 100, "appends before the timed ones in the commit-latency run");
ABSL_FLAG(std::vector<std::string>, runs, std::vector<std::string>({"catchup", "lag", "commit"}),
          "which runs: catchup, lag, commit (comma-separated)");
ABSL_FLAG(std::vector<std::string>, primary_args, {},
          "more ringlogd flags for the primaries (comma-separated)");
ABSL_FLAG(std::vector<std::string>, replica_args, {},
          "more ringlogd flags for the replicas (comma-separated)");
ABSL_FLAG(std::string, lag_reader, "replica",
          "where the lag run's follower reads: replica, or primary (to see how much of the "
          "lag replication adds)");
ABSL_FLAG(bool, tls, false,
          "mutual TLS and a token between every node and client (a throwaway CA made with openssl)");

namespace {

using ringlog::tools::LatencyHistogram;
using ringlog::tools::NodeProcess;

[[noreturn]] void die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "replication_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

bool run(const char* name) {
  const std::vector<std::string> runs = absl::GetFlag(FLAGS_runs);
  return std::find(runs.begin(), runs.end(), name) != runs.end();
}

// Flags every node gets: --tls's certificates and tokens.
std::vector<std::string> g_node_flags;

NodeProcess start(const std::string& bin, const std::string& dir, std::vector<std::string> args) {
  args.insert(args.end(), g_node_flags.begin(), g_node_flags.end());
  absl::StatusOr<NodeProcess> p = NodeProcess::Start(bin, dir, std::move(args));
  if (!p.ok()) die("start " + dir, p.status());
  return std::move(*p);
}

NodeProcess start_primary(const std::string& bin, const std::string& dir,
                          std::vector<std::string> args) {
  for (const std::string& a : absl::GetFlag(FLAGS_primary_args)) args.push_back(a);
  return start(bin, dir, std::move(args));
}

NodeProcess start_replica(const std::string& bin, const std::string& dir,
                          const std::string& primary) {
  std::vector<std::string> args = absl::GetFlag(FLAGS_replica_args);
  args.push_back("--role=replica");
  args.push_back("--primary=" + primary);
  return start(bin, dir, std::move(args));
}

std::unique_ptr<ringlog::Client> connect(const std::string& addr) {
  ringlog::ClientOptions o;
  o.endpoints = {addr};
  auto c = ringlog::Client::Connect(o);
  if (!c.ok()) die("connect", c.status());
  return std::move(*c);
}

// Polls the replica at `c` until it has all of [0, target) durable; returns
// the copy rate in bytes per second, timed from the first status that shows
// progress (so the process start does not count) to the end.
double catchup_rate(ringlog::Client& c, uint64_t target, double* seconds) {
  uint64_t first = 0;
  std::chrono::steady_clock::time_point t0;
  for (;;) {
    auto st = c.status(absl::Seconds(2));
    const auto now = std::chrono::steady_clock::now();
    if (st.ok() && first == 0 && st->log_end_offset() > 0) {
      first = st->log_end_offset();
      t0 = now;
    }
    if (st.ok() && st->log_end_offset() >= target && st->durable_offset() >= target) {
      *seconds = std::chrono::duration<double>(now - t0).count();
      return static_cast<double>(target - first) / *seconds;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

void print_latency(const char* name, const LatencyHistogram& h, const char* extra) {
  std::printf(
      "{\"bench\":\"%s\",\"samples\":%llu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
      "\"max_us\":%.1f%s}\n",
      name, static_cast<unsigned long long>(h.count()), h.quantile(0.5) / 1e3,
      h.quantile(0.99) / 1e3, h.quantile(0.999) / 1e3, h.quantile(1.0) / 1e3, extra);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string bin = ringlog::tools::ringlogd_path(absl::GetFlag(FLAGS_ringlogd));
  const uint32_t payload_len = absl::GetFlag(FLAGS_payload);
  const double rec = static_cast<double>(ringlog::padded_size(payload_len));
  absl::StatusOr<std::string> tmp = ringlog::tools::make_temp_dir("ringlog-repl-");
  if (!tmp.ok()) die("temporary directory", tmp.status());
  const std::string dir = *tmp;
  if (absl::GetFlag(FLAGS_tls)) {
    absl::StatusOr<ringlog::tools::ThrowawayPki> pki = ringlog::tools::use_throwaway_pki(dir);
    if (!pki.ok()) die("--tls", pki.status());
    g_node_flags = pki->node_flags();
  }

  // 1. Catch-up.
  if (run("catchup")) {
    NodeProcess primary = start_primary(bin, dir + "/p1", {});
    auto pc = connect(primary.address());
    auto app = pc->appender();
    if (!app.ok()) die("appender", app.status());
    std::vector<std::byte> payload(payload_len, std::byte{7});
    const uint64_t n = absl::GetFlag(FLAGS_catchup_events);
    for (uint64_t i = 0; i < n; ++i) {
      if (auto s = (*app)->append(1, i, payload); !s.ok()) die("append", s);
    }
    auto last = (*app)->drain();
    if (!last.ok()) die("drain", last.status());
    const uint64_t end = last->end_offset;
    NodeProcess replica = start_replica(bin, dir + "/r1", primary.address());
    auto rc = connect(replica.address());
    double s = 0;
    const double bps = catchup_rate(*rc, end, &s);
    std::printf(
        "{\"bench\":\"replica_catchup\",\"events\":%llu,\"bytes\":%llu,\"seconds\":%.3f,"
        "\"events_per_sec\":%.0f,\"mb_per_sec\":%.1f}\n",
        static_cast<unsigned long long>(n), static_cast<unsigned long long>(end), s,
        bps / rec, bps / 1e6);
    std::fflush(stdout);
  }

  // 2. Lag at a steady rate, seen by a client of the replica.
  if (run("lag")) {
    NodeProcess primary = start_primary(bin, dir + "/p2", {});
    NodeProcess replica = start_replica(bin, dir + "/r2", primary.address());
    auto pc = connect(primary.address());
    auto rc = connect(replica.address());
    const bool lag_on_primary = absl::GetFlag(FLAGS_lag_reader) == "primary";
    const uint64_t rate = absl::GetFlag(FLAGS_rate);
    const double secs = absl::GetFlag(FLAGS_lag_seconds);
    const uint64_t total = static_cast<uint64_t>(rate * secs);
    // The writer appends on a raw stream, so that each batch's ack time is
    // known: per event (by seq), when the primary acknowledged it.
    const uint64_t base = pc->status(absl::Seconds(5)).value_or(ringlog::v1::NodeStatus()).next_seq();
    std::unique_ptr<std::atomic<int64_t>[]> acked_at(new std::atomic<int64_t>[total]);
    for (uint64_t i = 0; i < total; ++i) acked_at[i].store(0, std::memory_order_relaxed);
    LatencyHistogram lag, from_ack;
    uint64_t before_ack = 0;
    std::atomic<bool> ready{false};
    std::thread reader([&] {
      ringlog::ReplayOptions ro;
      ro.from_end = true;
      ro.follow = true;
      ro.limit = total;
      auto r = (lag_on_primary ? pc : rc)->replay(ro);
      ready = true;
      while (auto ev = r->next()) {
        const auto now = static_cast<int64_t>(absl::GetCurrentTimeNanos());
        const auto ts = static_cast<int64_t>(ev->view.timestamp());
        lag.record(static_cast<uint64_t>(std::max<int64_t>(0, now - ts)));
        if (ev->seq < base || ev->seq - base >= total) continue;
        // acquire: pairs with the ack reader's release store.
        const int64_t a = acked_at[ev->seq - base].load(std::memory_order_acquire);
        if (a == 0 || a > now) ++before_ack;
        from_ack.record(a == 0 ? 0 : static_cast<uint64_t>(std::max<int64_t>(0, now - a)));
      }
    });
    while (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the replay is open
    auto stub = ringlog::v1::EventLog::NewStub(ringlog::make_channel(primary.address()));
    grpc::ClientContext ctx;
    auto rw = stub->Append(&ctx);
    std::thread acks([&] {
      ringlog::v1::AppendResponse a;
      while (rw->Read(&a)) {
        const auto now = static_cast<int64_t>(absl::GetCurrentTimeNanos());
        for (uint64_t seq = a.first_seq(); seq <= a.last_seq(); ++seq) {
          // release: the reader that sees the time sees it whole.
          if (seq >= base && seq - base < total) {
            acked_at[seq - base].store(now, std::memory_order_release);
          }
        }
      }
    });
    std::vector<std::byte> payload(payload_len, std::byte{9});
    const size_t record = ringlog::padded_size(payload_len);
    ringlog::v1::AppendRequest req;
    // Send a batch every 1 ms with the events due by then.
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t sent = 0;
    uint64_t batch = 0;
    while (sent < total) {
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto due = std::min<uint64_t>(total, static_cast<uint64_t>(el * rate) + 1);
      std::string* records = req.mutable_records();
      records->resize((due - sent) * record);
      for (size_t at = 0; sent < due; ++sent, at += record) {
        const ringlog::EventHeader h(static_cast<uint64_t>(absl::GetCurrentTimeNanos()), 1,
                                     static_cast<uint16_t>(payload_len));
        ringlog::encode_record(reinterpret_cast<std::byte*>(records->data()) + at, h, payload);
      }
      req.set_batch_id(++batch);
      if (!records->empty() && !rw->Write(req)) break;
      std::this_thread::sleep_until(t0 + std::chrono::microseconds(
                                             static_cast<int64_t>((el + 0.001) * 1e6)));
    }
    rw->WritesDone();
    acks.join();
    const grpc::Status st = rw->Finish();
    if (!st.ok()) die("append", absl::Status(static_cast<absl::StatusCode>(st.error_code()),
                                             st.error_message()));
    reader.join();
    char extra[128];
    std::snprintf(extra, sizeof extra, ",\"rate\":%llu,\"seconds\":%.1f,\"read_from\":\"%s\"",
                  static_cast<unsigned long long>(rate), secs, lag_on_primary ? "primary" : "replica");
    print_latency("replication_lag", lag, extra);
    char extra2[200];
    std::snprintf(extra2, sizeof extra2, "%s,\"before_ack\":%llu", extra,
                  static_cast<unsigned long long>(before_ack));
    print_latency("replication_lag_from_ack", from_ack, extra2);
  }

  // 3. Commit latency with one replica ack.
  if (run("commit")) {
    NodeProcess primary = start_primary(bin, dir + "/p3", {"--min_replica_acks=1"});
    NodeProcess replica = start_replica(bin, dir + "/r3", primary.address());
    auto pc = connect(primary.address());
    auto app = pc->appender();
    if (!app.ok()) die("appender", app.status());
    std::vector<std::byte> payload(payload_len, std::byte{3});
    LatencyHistogram h;
    const uint64_t n = absl::GetFlag(FLAGS_commits);
    const uint64_t warmup = absl::GetFlag(FLAGS_commit_warmup);
    for (uint64_t i = 0; i < n + warmup; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      if (auto s = (*app)->append(1, i, payload); !s.ok()) die("append", s);
      auto a = (*app)->drain();
      if (!a.ok()) die("commit", a.status());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
      if (i >= warmup) h.record(static_cast<uint64_t>(ns));
    }
    print_latency("commit_latency_1_ack", h, "");
  }
  std::filesystem::remove_all(dir);
  return 0;
}
