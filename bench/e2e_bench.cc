// End-to-end throughput through gRPC: one client appends N events in
// pipelined batches (timed until the last acknowledgement), then replays them
// all (timed until the last event is in hand). Starts its own ringlogd in a
// temporary directory unless --node is given (whose TLS and token come from
// RINGLOG_TLS_* and RINGLOG_TOKEN*); with --tls, the node started serves
// mutual TLS and takes a token, which the client shows (a throwaway CA made
// with the openssl command line). Prints one JSON line per figure.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "common/process.h"
#include "common/throwaway_pki.h"
#include "ringlog/client.h"

ABSL_FLAG(std::string, node, "", "an existing node (default: start one)");
ABSL_FLAG(std::string, ringlogd, "", "ringlogd binary (default: ../server/ringlogd beside this)");
ABSL_FLAG(uint64_t, events, 5'000'000, "events to append and replay");
ABSL_FLAG(uint32_t, payload, 64, "payload bytes");
ABSL_FLAG(uint64_t, batch_bytes, uint64_t{1} << 20, "bytes per Append request");
ABSL_FLAG(uint32_t, replay_batch_bytes, 4u << 20, "bytes per Replay response");
ABSL_FLAG(std::vector<std::string>, node_args, {}, "extra flags for the node started");
ABSL_FLAG(bool, tls, false,
          "the node started serves mutual TLS and takes a token; the client uses them (a "
          "throwaway CA made with openssl)");

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const uint64_t events = absl::GetFlag(FLAGS_events);
  const uint32_t payload_len = absl::GetFlag(FLAGS_payload);
  std::string node = absl::GetFlag(FLAGS_node);
  std::optional<ringlog::tools::NodeProcess> proc;
  std::string dir;
  if (node.empty()) {
    const std::string bin = ringlog::tools::ringlogd_path(absl::GetFlag(FLAGS_ringlogd));
    absl::StatusOr<std::string> tmp = ringlog::tools::make_temp_dir("ringlog-e2e-");
    if (!tmp.ok()) {
      std::fprintf(stderr, "e2e_bench: %s\n", tmp.status().ToString().c_str());
      return 1;
    }
    dir = *tmp;
    std::vector<std::string> args = absl::GetFlag(FLAGS_node_args);
    if (absl::GetFlag(FLAGS_tls)) {
      absl::StatusOr<ringlog::tools::ThrowawayPki> pki = ringlog::tools::use_throwaway_pki(dir);
      if (!pki.ok()) {
        std::fprintf(stderr, "e2e_bench: --tls: %s\n", pki.status().ToString().c_str());
        std::filesystem::remove_all(dir);
        return 1;
      }
      for (std::string& f : pki->node_flags()) args.push_back(std::move(f));
    }
    auto p = ringlog::tools::NodeProcess::Start(bin, dir + "/data", std::move(args));
    if (!p.ok()) {
      std::fprintf(stderr, "e2e_bench: %s\n", p.status().ToString().c_str());
      return 1;
    }
    proc.emplace(std::move(*p));
    node = proc->address();
  } else if (absl::GetFlag(FLAGS_tls)) {
    std::fprintf(stderr, "e2e_bench: --tls is for the node it starts; for --node, give "
                         "RINGLOG_TLS_* and RINGLOG_TOKEN_FILE\n");
    return 2;
  }
  ringlog::ClientOptions co;
  co.endpoints = {node};
  co.batch_bytes = absl::GetFlag(FLAGS_batch_bytes);
  auto client = ringlog::Client::Connect(co);
  if (!client.ok()) {
    std::fprintf(stderr, "e2e_bench: %s\n", client.status().ToString().c_str());
    return 1;
  }
  auto start_status = (*client)->status();
  const uint64_t first_seq = start_status.ok() ? start_status->next_seq() : 0;

  // Append.
  std::vector<std::byte> payload(payload_len, std::byte{0x5a});
  auto appender = (*client)->appender();
  if (!appender.ok()) return 1;
  const auto t0 = std::chrono::steady_clock::now();
  const auto ts = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
  for (uint64_t i = 0; i < events; ++i) {
    std::memcpy(payload.data(), &i, std::min<size_t>(8, payload.size()));
    if (absl::Status s = (*appender)->append(1, ts + i, payload); !s.ok()) {
      std::fprintf(stderr, "e2e_bench: append: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  absl::StatusOr<ringlog::Ack> last = (*appender)->drain();
  const double append_s = seconds_since(t0);
  if (!last.ok() || (*appender)->events_acked() != events) {
    std::fprintf(stderr, "e2e_bench: append did not complete: %s\n",
                 last.ok() ? "wrong count" : last.status().ToString().c_str());
    return 1;
  }
  (void)(*appender)->close();
  const double rec = static_cast<double>(ringlog::padded_size(payload_len));
  std::printf(
      "{\"bench\":\"e2e_append\",\"events\":%llu,\"payload_bytes\":%u,\"seconds\":%.3f,"
      "\"events_per_sec\":%.0f,\"mb_per_sec\":%.1f,\"batches\":%llu}\n",
      static_cast<unsigned long long>(events), payload_len, append_s, events / append_s,
      events * rec / append_s / 1e6, static_cast<unsigned long long>((*appender)->batches_sent()));

  // Replay what was appended.
  ringlog::ReplayOptions ro;
  ro.from_seq = first_seq;
  // A node of our own holds just these events: the replay ends at its commit
  // offset, unlimited (whole runs of records, sent from the mapping). An
  // existing node may hold more, so stop after ours (records picked one by one).
  if (!absl::GetFlag(FLAGS_node).empty()) ro.limit = events;
  ro.max_batch_bytes = absl::GetFlag(FLAGS_replay_batch_bytes);
  const auto t1 = std::chrono::steady_clock::now();
  auto replayer = (*client)->replay(ro);
  uint64_t n = 0;
  uint64_t prev = 0;
  while (auto ev = replayer->next()) {
    // Seqs increase; the producer marks after each batch take seqs too.
    uint64_t index = 0;
    std::memcpy(&index, ev->view.payload.data(), std::min<size_t>(8, payload_len));
    if ((n > 0 && ev->seq <= prev) || ev->view.payload.size() != payload_len ||
        (payload_len >= 8 && index != n)) {
      std::fprintf(stderr, "e2e_bench: replay out of order at seq %llu\n",
                   static_cast<unsigned long long>(ev->seq));
      return 1;
    }
    prev = ev->seq;
    ++n;
  }
  const double replay_s = seconds_since(t1);
  if (n != events) {
    std::fprintf(stderr, "e2e_bench: replayed %llu of %llu: %s\n", static_cast<unsigned long long>(n),
                 static_cast<unsigned long long>(events), replayer->status().ToString().c_str());
    return 1;
  }
  std::printf(
      "{\"bench\":\"e2e_replay\",\"events\":%llu,\"payload_bytes\":%u,\"seconds\":%.3f,"
      "\"events_per_sec\":%.0f,\"mb_per_sec\":%.1f}\n",
      static_cast<unsigned long long>(n), payload_len, replay_s, n / replay_s,
      n * rec / replay_s / 1e6);
  if (proc) {
    (void)proc->stop(SIGTERM);
    std::filesystem::remove_all(dir);
  }
  return 0;
}
