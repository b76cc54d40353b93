// The library example of README.md as a program: a log in DIR, events
// appended from this thread through the ring, replayed zero-copy from seq
// 1000 while the pipeline runs, then closed. The lines between the README
// markers are the README's example, word for word (tools/check_package.sh
// compares them).
//
//   embed_core DIR      (DIR: a new directory)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <thread>

#include "ringlog/ringlog.h"

namespace {

constexpr uint64_t kEvents = 100000;

uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Each payload is the index of its event: a replay sees them in order.
uint64_t replayed = 0;
uint64_t last_index = 0;
bool in_order = true;

void handle(const ringlog::EventHeader* header, ringlog::ByteSpan payload) {
  uint64_t index = 0;
  if (header->event_type != 7 || payload.size() != sizeof(index)) {
    in_order = false;
    return;
  }
  std::memcpy(&index, payload.data(), sizeof(index));
  if (replayed > 0 && index <= last_index) in_order = false;
  last_index = index;
  ++replayed;
}

int fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "embed_core: %s: %s\n", what, status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: embed_core DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  uint64_t written = 0;

  // README begin
  ringlog::PipelineOptions options;               // 64 MiB ring, 256 MiB segments, fsync none
  auto pipeline = ringlog::Pipeline::Open(dir, options);
  if (!pipeline.ok()) return fail("open", pipeline.status());
  ringlog::SpscRingBuffer::Producer& producer = (*pipeline)->producer();

  // Hot path: no allocation, lock, syscall or wait. A full ring returns at once.
  for (uint64_t i = 0; i < kEvents; ++i) {
    const ringlog::ByteSpan payload = std::as_bytes(std::span(&i, 1));
    ringlog::EventHeader header(now_ns(), /*event_type=*/7, payload.size());
    if (ringlog::WriteResult r = producer.write_event(header, payload); !r) {
      // r.code() == kNotEnoughSpace, with r.required() and r.available(): retry, shed or count
      continue;
    }
    ++written;
  }

  // Replay, zero-copy, from any thread while the writer runs, up to what is durable.
  while ((*pipeline)->durable().seq < written) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const ringlog::SegmentedLog& log = (*pipeline)->log();
  ringlog::LogReader reader(log, *log.find_seq(1000));
  while (auto ev = reader.next((*pipeline)->durable().offset)) handle(ev->header, ev->payload);

  // Drains the ring, fdatasyncs, stops the storage thread.
  if (absl::Status s = (*pipeline)->close(); !s.ok()) return fail("close", s);
  // README end

  std::printf("embed_core: wrote %llu events, replayed %llu from seq 1000\n",
              static_cast<unsigned long long>(written), static_cast<unsigned long long>(replayed));
  if (!reader.status().ok()) return fail("replay", reader.status());
  if (!in_order || replayed != written - 1000) {
    std::fprintf(stderr, "embed_core: the replay does not match what was written\n");
    return 1;
  }
  return 0;
}
