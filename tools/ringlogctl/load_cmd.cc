// ringlogctl load: a steady workload for trying a cluster out.
//
// Appends events at --rate per second (timestamps now, payloads that carry a
// counter) to the primary among --nodes, following it through failovers,
// and prints one line per second: events acknowledged, the commit latency of
// the last batch, failovers and duplicates dropped by the primary.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "ctl.h"
#include "ringlog/client.h"

ABSL_FLAG(uint64_t, rate, 10000, "events per second");
ABSL_FLAG(uint32_t, payload, 64, "payload bytes (at least 8)");
ABSL_FLAG(double, seconds, 0, "stop after this many seconds (0: at Ctrl+C)");

namespace ringlog::ctl {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

// SIGINT or SIGTERM: stop sending, drain what was sent, close. A drain that
// cannot finish (every node unreachable) must not keep the command running:
// it ends 5 s after the signal, or at once on a second one. Only
// async-signal-safe calls here.
void on_alarm(int) {
  constexpr char kMsg[] = "load: stopped before every event sent was acknowledged\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  _exit(128 + g_signal.load());
}
void on_signal(int sig) {
  if (g_stop.exchange(true)) _exit(128 + sig);
  g_signal.store(sig);
  alarm(5);
}

}  // namespace

int cmd_load() {
  std::vector<std::string> nodes;
  if (const std::string n = absl::GetFlag(FLAGS_nodes); !n.empty()) {
    nodes = absl::StrSplit(n, ',', absl::SkipEmpty());
  } else {
    nodes.push_back(absl::GetFlag(FLAGS_node));
  }
  const uint64_t rate = std::max<uint64_t>(1, absl::GetFlag(FLAGS_rate));
  const uint32_t payload_len = std::max<uint32_t>(8, absl::GetFlag(FLAGS_payload));
  const double seconds = absl::GetFlag(FLAGS_seconds);
  // Client::Connect waits for each node in turn for its whole timeout, even
  // one that refuses the connection at once: put first those that answer
  // now, and give up at once when none does.
  std::vector<std::string> answering;
  std::vector<std::string> silent;
  absl::Status first_error;
  for (const std::string& n : nodes) {
    if (absl::StatusOr<v1::NodeStatus> st = node_status(n); st.ok()) {
      answering.push_back(n);
    } else {
      silent.push_back(n);
      if (first_error.ok()) {
        first_error = absl::Status(st.status().code(), absl::StrCat(n, ": ", st.status().message()));
      }
    }
  }
  if (answering.empty()) return report(first_error);
  ClientOptions o;
  o.endpoints = answering;
  o.endpoints.insert(o.endpoints.end(), silent.begin(), silent.end());
  o.batch_bytes = std::min<size_t>(size_t{1} << 20, std::max<size_t>(4096, rate * 80 / 100));
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
  if (!c.ok()) return report(c.status());
  absl::StatusOr<std::unique_ptr<Appender>> a = (*c)->appender();
  if (!a.ok()) return report(a.status());
  std::signal(SIGALRM, on_alarm);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::printf("load: %llu events/s of %u bytes to %s (primary %s)\n",
              static_cast<unsigned long long>(rate), payload_len,
              absl::GetFlag(FLAGS_nodes).empty() ? nodes[0].c_str() : absl::GetFlag(FLAGS_nodes).c_str(),
              (*a)->endpoint().c_str());
  std::fflush(stdout);
  std::vector<std::byte> payload(payload_len, std::byte{'x'});
  const auto t0 = std::chrono::steady_clock::now();
  auto next_report = t0 + std::chrono::seconds(1);
  uint64_t sent = 0;
  uint64_t last_acked = 0;
  while (!g_stop.load()) {
    const auto now = std::chrono::steady_clock::now();
    const double el = std::chrono::duration<double>(now - t0).count();
    if (seconds > 0 && el >= seconds) break;
    // Every 10 ms, the events due by now, then wait for their commit.
    const auto due = static_cast<uint64_t>(el * static_cast<double>(rate)) + 1;
    for (; sent < due; ++sent) {
      std::memcpy(payload.data(), &sent, sizeof sent);
      if (absl::Status s = (*a)->append(1, static_cast<uint64_t>(absl::GetCurrentTimeNanos()), payload);
          !s.ok()) {
        return report(s);
      }
    }
    const auto b0 = std::chrono::steady_clock::now();
    absl::StatusOr<Ack> ack = (*a)->drain();
    if (!ack.ok()) return report(ack.status());
    const double commit_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - b0).count();
    if (std::chrono::steady_clock::now() >= next_report) {
      const uint64_t acked = (*a)->events_acked();
      std::printf(
          "%7.1fs  acked %10llu (+%llu/s)  last seq %llu  epoch %llu  commit %.2f ms  primary %s  "
          "failovers %llu  duplicates dropped %llu\n",
          el, static_cast<unsigned long long>(acked),
          static_cast<unsigned long long>(acked - last_acked),
          static_cast<unsigned long long>(ack->last_seq), static_cast<unsigned long long>(ack->epoch),
          commit_ms, (*a)->endpoint().c_str(), static_cast<unsigned long long>((*a)->failovers()),
          static_cast<unsigned long long>((*a)->duplicates()));
      std::fflush(stdout);
      last_acked = acked;
      next_report += std::chrono::seconds(1);
    }
    std::this_thread::sleep_until(b0 + std::chrono::milliseconds(10));
  }
  if (absl::Status s = (*a)->close(); !s.ok()) return report(s);
  std::printf("load: stopped after %llu events, all acknowledged\n",
              static_cast<unsigned long long>((*a)->events_acked()));
  return kOk;
}

}  // namespace ringlog::ctl
