// stress: the seed's stress test, done honestly.
//
// A producer thread writes events with N-byte payloads for S seconds through
// the SPSC ring of a Pipeline into a SegmentedLog in a fresh directory. A full
// ring is retried, and every retry counted. Afterwards the log is opened anew
// (recovery verifies every checksum) and read back; only events that are
// there, valid, in order and with the content that was written are counted.
//
// Prints a human summary and, last, one JSON line with the figures.
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>
#include <x86intrin.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/latency_histogram.h"
#include "ringlog/ringlog.h"

ABSL_FLAG(double, seconds, 5, "how long the producer writes");
ABSL_FLAG(uint32_t, payload, 64, "payload bytes per event (8 to 65535)");
ABSL_FLAG(std::string, dir, "", "data directory (default: a new temporary directory, removed after)");
ABSL_FLAG(bool, keep, false, "keep the data directory");
ABSL_FLAG(uint64_t, ring_bytes, uint64_t{64} << 20, "ring capacity, a power of two");
ABSL_FLAG(uint64_t, segment_bytes, uint64_t{1} << 30, "segment file size");
ABSL_FLAG(uint64_t, warm_bytes, uint64_t{64} << 20, "page cache kept ready ahead of the writer (0: off)");
ABSL_FLAG(std::string, fsync, "none", "fsync policy: none, batch, or an interval such as 10ms");
ABSL_FLAG(uint32_t, sample_every, 8, "time one write_event call in this many");
ABSL_FLAG(bool, pin, false, "pin the producer and the storage thread to different CPUs");
ABSL_FLAG(double, warmup_seconds, 1, "a discarded run of this length first (0: none)");
ABSL_FLAG(bool, ceiling, false,
          "also time a plain pwrite loop writing the same bytes into a fresh file in the "
          "same directory: the most any log could persist on this machine");

namespace {

using ringlog::tools::LatencyHistogram;

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % static_cast<int>(std::thread::hardware_concurrency()), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

inline uint64_t ticks() noexcept {
  _mm_lfence();  // keep rdtsc from running ahead of the timed code
  return __rdtsc();
}

struct ProducerResult {
  uint64_t written = 0;
  uint64_t retries = 0;
  double seconds = 0;
  LatencyHistogram latency_ticks;
};

// Payload of event `seq`: its seq in bytes 0-7, bytes 8-15 derived from it,
// and a fixed pattern after. The producer rewrites only the first 16 bytes.
void fill_payload(std::vector<std::byte>& p, uint64_t seq) {
  std::memcpy(p.data(), &seq, sizeof seq);
  for (size_t i = sizeof seq; i < p.size(); ++i) {
    p[i] = static_cast<std::byte>(i < 16 ? (seq + i) * 131 : i * 131);
  }
}

bool payload_ok(ringlog::ByteSpan p, uint64_t seq, std::vector<std::byte>& expect) {
  fill_payload(expect, seq);
  return p.size() == expect.size() && std::memcmp(p.data(), expect.data(), p.size()) == 0;
}

void run_producer(ringlog::SpscRingBuffer::Producer& producer, uint32_t payload_len,
                  double seconds, uint32_t sample_every, ProducerResult* out) {
  std::vector<std::byte> payload(payload_len);
  fill_payload(payload, 0);
  const ringlog::ByteSpan span(payload);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t seq = 0;
  uint64_t retries = 0;
  uint64_t now_ns = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
  for (;;) {
    if ((seq & 1023) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) break;
      now_ns = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
    }
    // Only the seq and the bytes after it change from event to event.
    std::memcpy(payload.data(), &seq, sizeof seq);
    for (size_t i = sizeof seq; i < payload.size() && i < 16; ++i) {
      payload[i] = static_cast<std::byte>((seq + i) * 131);
    }
    const ringlog::EventHeader h(now_ns, static_cast<uint8_t>(seq & 0x7f),
                                 static_cast<uint16_t>(payload_len));
    for (;;) {
      const bool timed = sample_every != 0 && seq % sample_every == 0;
      const uint64_t a = timed ? ticks() : 0;
      const ringlog::WriteResult r = producer.write_event(h, span);
      if (timed) {
        const uint64_t b = ticks();
        if (r) out->latency_ticks.record(b - a);
      }
      if (r) break;
      // Ring full: the storage thread is behind. Try again; after a while,
      // give the CPU to the threads that drain the ring.
      if ((++retries & 63) == 0) {
        std::this_thread::yield();
      } else {
        _mm_pause();
      }
    }
    ++seq;
  }
  out->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out->written = seq;
  out->retries = retries;
}

// Writes `bytes` (1 GB per second of the run) into a new file in `dir` with 4 MiB pwrite calls from a
// 64 MiB buffer (as cold as a ring), the way the storage thread does but with
// no ring, no producer and no records. Returns bytes per second.
double pwrite_ceiling(const std::string& dir, uint64_t bytes) {
  const std::string path = dir + "/ceiling.tmp";
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return 0;
  constexpr size_t kChunk = size_t{4} << 20;
  std::vector<char> src(size_t{64} << 20, 1);
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t off = 0; off < bytes; off += kChunk) {
    if (pwrite(fd, src.data() + off % src.size(), kChunk, static_cast<off_t>(off)) < 0) break;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  close(fd);
  unlink(path.c_str());
  return static_cast<double>(bytes) / s;
}

struct RunResult {
  ProducerResult producer;
  double elapsed = 0;  // from the first write until the last event is in the log
  double ns_per_tick = 0;
  ringlog::PipelineStats stats;
  absl::Status closed;
  double close_seconds = 0;
};

absl::StatusOr<RunResult> run_pipeline(const std::string& dir, const ringlog::PipelineOptions& o,
                                       uint32_t payload_len, double seconds) {
  auto pipeline = ringlog::Pipeline::Open(dir, o);
  if (!pipeline.ok()) return pipeline.status();
  ringlog::Pipeline& p = **pipeline;
  const bool pin = absl::GetFlag(FLAGS_pin);
  RunResult r;
  const uint64_t tsc0 = __rdtsc();
  const auto t0 = std::chrono::steady_clock::now();
  std::thread producer([&] {
    if (pin) pin_to(0);
    run_producer(p.producer(), payload_len, seconds, absl::GetFlag(FLAGS_sample_every),
                 &r.producer);
  });
  producer.join();
  // The run ends when the last event is in the log file, not when the
  // producer stops: events still in the ring have not been persisted.
  while (p.log().end().seq < r.producer.written) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  const auto t1 = std::chrono::steady_clock::now();
  const uint64_t tsc1 = __rdtsc();
  r.elapsed = std::chrono::duration<double>(t1 - t0).count();
  r.ns_per_tick = r.elapsed * 1e9 / static_cast<double>(tsc1 - tsc0);
  r.stats = p.stats();
  r.closed = p.close();  // syncs everything to disk
  r.close_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  return r;
}

// Opens the directory afresh (recovery checks every checksum), then reads
// every event and checks its seq and content.
struct Verified {
  uint64_t events = 0;
  uint64_t bad = 0;
  double seconds = 0;
  ringlog::RecoveryReport report;
};

absl::StatusOr<Verified> verify_log(const std::string& dir, uint64_t segment_bytes,
                                    uint32_t payload_len) {
  const auto v0 = std::chrono::steady_clock::now();
  ringlog::LogOptions ro;
  ro.read_only = true;
  ro.segment_bytes = segment_bytes;
  Verified v;
  {
    auto log = ringlog::SegmentedLog::Open(dir, ro, &v.report);
    if (!log.ok()) {
      return absl::Status(log.status().code(),
                          absl::StrCat("cannot reopen the log: ", log.status().message()));
    }
    std::vector<std::byte> expect(payload_len);
    ringlog::LogReader reader(**log, (*log)->start());
    const uint64_t end = (*log)->end().offset;
    while (auto ev = reader.next(end)) {
      if (payload_ok(ev->payload, v.events, expect) && ev->header->payload_len == payload_len) {
        ++v.events;
      } else {
        ++v.bad;
        break;
      }
    }
  }
  v.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - v0).count();
  return v;
}

// Prints the run for people, then the machine-readable lines.
void report(const RunResult& run, const Verified& v, uint32_t payload_len, double ceiling_bps) {
  const ProducerResult& pr = run.producer;
  const uint64_t record = ringlog::padded_size(payload_len);
  const double eps = static_cast<double>(v.events) / run.elapsed;
  const double mbps = eps * static_cast<double>(record) / 1e6;
  const auto lat = [&](double q) {
    return static_cast<double>(pr.latency_ticks.quantile(q)) * run.ns_per_tick;
  };
  std::printf("written      %llu events in %.3f s (producer)\n",
              static_cast<unsigned long long>(pr.written), pr.seconds);
  std::printf("persisted    %llu events verified in the log after %.3f s (%s)\n",
              static_cast<unsigned long long>(v.events), run.elapsed,
              v.events == pr.written && v.bad == 0 ? "all of them" : "SOME MISSING OR BAD");
  std::printf("throughput   %.2f M events/s, %.0f MB/s of log (%llu-byte records)\n", eps / 1e6,
              mbps, static_cast<unsigned long long>(record));
  std::printf("write_event  p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns (%llu calls timed)\n",
              lat(0.5), lat(0.99), lat(0.999),
              static_cast<unsigned long long>(pr.latency_ticks.count()));
  std::printf("ring full    %llu retries\n", static_cast<unsigned long long>(pr.retries));
  std::printf("storage      %llu batches, %llu segments, recovery problem: %s\n",
              static_cast<unsigned long long>(run.stats.batches),
              static_cast<unsigned long long>(v.report.segments),
              v.report.problem.empty() ? "none" : v.report.problem.c_str());
  std::printf("close+sync   %.3f s; verify %.3f s\n", run.close_seconds, v.seconds);
  if (ceiling_bps > 0) {
    std::printf("ceiling      plain pwrite of the same bytes: %.0f MB/s; ringlog reached %.0f%%\n",
                ceiling_bps / 1e6, 100.0 * mbps * 1e6 / ceiling_bps);
    std::printf("{\"bench\":\"stress_ceiling\",\"mb_per_sec\":%.1f,\"ringlog_mb_per_sec\":%.1f,"
                "\"ratio\":%.3f}\n",
                ceiling_bps / 1e6, mbps, mbps * 1e6 / ceiling_bps);
  }
  std::printf(
      "{\"bench\":\"stress\",\"payload_bytes\":%u,\"seconds\":%.3f,\"written\":%llu,"
      "\"persisted\":%llu,\"lost\":%lld,\"bad\":%llu,\"events_per_sec\":%.0f,\"mb_per_sec\":%.1f,"
      "\"write_p50_ns\":%.0f,\"write_p99_ns\":%.0f,\"write_p999_ns\":%.0f,\"retries\":%llu,"
      "\"fsync\":\"%s\",\"close_sync_seconds\":%.3f}\n",
      payload_len, run.elapsed, static_cast<unsigned long long>(pr.written),
      static_cast<unsigned long long>(v.events),
      static_cast<long long>(pr.written) - static_cast<long long>(v.events),
      static_cast<unsigned long long>(v.bad), eps, mbps, lat(0.5), lat(0.99), lat(0.999),
      static_cast<unsigned long long>(pr.retries), absl::GetFlag(FLAGS_fsync).c_str(),
      run.close_seconds);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Writes events through the SPSC ring into a segmented log for a while, then verifies "
      "every event in the log and reports persisted throughput and write latency.");
  absl::ParseCommandLine(argc, argv);
  const uint32_t payload_len = absl::GetFlag(FLAGS_payload);
  if (payload_len < 8 || payload_len > ringlog::kMaxPayload) {
    std::fprintf(stderr, "stress: --payload must be between 8 and 65535\n");
    return 2;
  }
  std::string dir = absl::GetFlag(FLAGS_dir);
  const bool temp_dir = dir.empty();
  if (temp_dir) {
    const char* tmp = getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/ringlog-stress-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) {
      std::perror("stress: mkdtemp");
      return 1;
    }
    dir = templ;
  }

  // The ceiling runs first: its file is deleted unsynced, so it leaves no
  // writeback behind to slow the run that follows.
  double ceiling_bps = 0;
  if (absl::GetFlag(FLAGS_ceiling)) {
    ceiling_bps = pwrite_ceiling(dir, static_cast<uint64_t>(absl::GetFlag(FLAGS_seconds) * 1e9));
  }

  ringlog::PipelineOptions o;
  o.ring_bytes = absl::GetFlag(FLAGS_ring_bytes);
  o.log.segment_bytes = absl::GetFlag(FLAGS_segment_bytes);
  o.log.warm_bytes = absl::GetFlag(FLAGS_warm_bytes);
  if (absl::Status s = ringlog::parse_fsync_policy(absl::GetFlag(FLAGS_fsync), &o.fsync,
                                                   &o.fsync_interval);
      !s.ok()) {
    std::fprintf(stderr, "stress: %s\n", std::string(s.message()).c_str());
    return 2;
  }

  // A discarded warm-up run first, as benchmark harnesses do: it brings the
  // memory the page cache will use into play (on a VM the first touch of a
  // page costs a fault in the hypervisor) and warms caches and predictors.
  if (const double w = absl::GetFlag(FLAGS_warmup_seconds); w > 0) {
    const std::string wdir = dir + "/warmup";
    absl::StatusOr<RunResult> r = run_pipeline(wdir, o, payload_len, w);
    std::filesystem::remove_all(wdir);
    if (!r.ok()) {
      std::fprintf(stderr, "stress: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
  }
  absl::StatusOr<RunResult> run = run_pipeline(dir, o, payload_len, absl::GetFlag(FLAGS_seconds));
  if (!run.ok()) {
    std::fprintf(stderr, "stress: %s\n", std::string(run.status().message()).c_str());
    return 1;
  }
  if (!run->closed.ok()) {
    std::fprintf(stderr, "stress: storage error: %s\n", std::string(run->closed.message()).c_str());
  }
  absl::StatusOr<Verified> v = verify_log(dir, o.log.segment_bytes, payload_len);
  if (!v.ok()) {
    std::fprintf(stderr, "stress: %s\n", std::string(v.status().message()).c_str());
    return 1;
  }
  if (temp_dir && !absl::GetFlag(FLAGS_keep)) std::filesystem::remove_all(dir);
  report(*run, *v, payload_len, ceiling_bps);
  return v->events == run->producer.written && v->bad == 0 && run->closed.ok() ? 0 : 1;
}
