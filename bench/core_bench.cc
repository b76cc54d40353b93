// Micro-benchmarks of the hot path: checksum, record encoding, both rings.
// Machine-readable output: --benchmark_format=json (or csv).
#include <atomic>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "ringlog/ringlog.h"

namespace {

std::vector<std::byte> make_payload(size_t n) {
  std::vector<std::byte> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>(i * 7);
  return p;
}

void BM_Crc32c(benchmark::State& state) {
  const std::vector<std::byte> data = make_payload(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(ringlog::crc32c::value(data.data(), data.size()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(ringlog::crc32c::hardware_accelerated() ? "sse4.2" : "portable");
}
BENCHMARK(BM_Crc32c)->Arg(76)->Arg(256)->Arg(4096)->Arg(65536);

void BM_Crc32cPortable(benchmark::State& state) {
  const std::vector<std::byte> data = make_payload(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(ringlog::crc32c::extend_portable(0, data.data(), data.size()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Crc32cPortable)->Arg(76)->Arg(256)->Arg(4096)->Arg(65536);

// Checking a 1 MiB replication chunk of records of one payload length
// (four at a time) against records of mixed lengths (one at a time).
std::vector<std::byte> make_records(bool mixed) {
  std::vector<std::byte> out(size_t{1} << 20);
  size_t pos = 0;
  for (uint64_t i = 0;; ++i) {
    const std::vector<std::byte> payload = make_payload(mixed ? 60 + i % 8 : 64);
    if (pos + ringlog::padded_size(payload.size()) > out.size()) break;
    const ringlog::EventHeader h(i, 1, static_cast<uint16_t>(payload.size()));
    pos += ringlog::encode_record(out.data() + pos, h, payload);
  }
  out.resize(pos);
  return out;
}

void BM_CheckRecords(benchmark::State& state) {
  const std::vector<std::byte> records = make_records(state.range(0) != 0);
  for (auto _ : state) {
    benchmark::DoNotOptimize(ringlog::check_records(ringlog::ByteSpan(records.data(), records.size())));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * records.size()));
  state.SetLabel(state.range(0) != 0 ? "mixed lengths" : "one length");
}
BENCHMARK(BM_CheckRecords)->Arg(0)->Arg(1);

void BM_EncodeRecord(benchmark::State& state) {
  const std::vector<std::byte> payload = make_payload(static_cast<size_t>(state.range(0)));
  std::vector<std::byte> dst(ringlog::kMaxRecordSize);
  const ringlog::EventHeader h(1, 2, static_cast<uint16_t>(payload.size()));
  for (auto _ : state) {
    benchmark::DoNotOptimize(ringlog::encode_record(dst.data(), h, payload));
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeRecord)->Arg(0)->Arg(64)->Arg(512);

// One thread writes and reads back: the cost of a write plus a read.
void BM_RingBufferWriteRead(benchmark::State& state) {
  auto ring = ringlog::RingBuffer::Create(size_t{1} << 20);
  const std::vector<std::byte> payload = make_payload(static_cast<size_t>(state.range(0)));
  const ringlog::EventHeader h(1, 2, static_cast<uint16_t>(payload.size()));
  for (auto _ : state) {
    if (!ring->write_event(h, payload)) state.SkipWithError("ring full");
    benchmark::DoNotOptimize(ring->read_event());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RingBufferWriteRead)->Arg(64)->Arg(512);

// Writes until full, then drains with read_batch: the batch path the storage
// thread takes.
void BM_RingBufferBatchDrain(benchmark::State& state) {
  auto ring = ringlog::RingBuffer::Create(size_t{1} << 20);
  const std::vector<std::byte> payload = make_payload(64);
  const ringlog::EventHeader h(1, 2, 64);
  int64_t events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    while (ring->write_event(h, payload)) {
    }
    state.ResumeTiming();
    while (true) {
      ringlog::RecordBatch b = ring->read_batch(size_t{256} << 10);
      if (b.empty()) break;
      events += static_cast<int64_t>(b.count);
      benchmark::DoNotOptimize(b.bytes.data());
    }
  }
  state.SetItemsProcessed(events);
}
BENCHMARK(BM_RingBufferBatchDrain);

// Producer-side write_event on the SPSC ring while a consumer thread drains
// it with read_batch; full-ring retries are counted.
void BM_SpscWrite(benchmark::State& state) {
  auto ring = ringlog::SpscRingBuffer::Create(size_t{16} << 20);
  auto [producer, consumer] = std::move(*ring).split();
  std::atomic<bool> stop{false};
  std::thread drain([&c = consumer, &stop] {
    while (!stop.load(std::memory_order_relaxed)) {
      if (c.read_batch(size_t{1} << 20).empty()) std::this_thread::yield();
    }
  });
  const std::vector<std::byte> payload = make_payload(static_cast<size_t>(state.range(0)));
  const ringlog::EventHeader h(1, 2, static_cast<uint16_t>(payload.size()));
  int64_t retries = 0;
  for (auto _ : state) {
    while (!producer.write_event(h, payload)) ++retries;
  }
  stop.store(true);
  drain.join();
  state.SetItemsProcessed(state.iterations());
  state.counters["retries"] = static_cast<double>(retries);
}
BENCHMARK(BM_SpscWrite)->Arg(64)->Arg(512)->UseRealTime();

// Consumer-side read_event on the SPSC ring while a producer thread fills it.
void BM_SpscRead(benchmark::State& state) {
  auto ring = ringlog::SpscRingBuffer::Create(size_t{16} << 20);
  auto [producer, consumer] = std::move(*ring).split();
  std::atomic<bool> stop{false};
  std::thread fill([&p = producer, &stop] {
    const std::vector<std::byte> payload = make_payload(64);
    const ringlog::EventHeader h(1, 2, 64);
    while (!stop.load(std::memory_order_relaxed)) {
      if (!p.write_event(h, payload)) std::this_thread::yield();
    }
  });
  int64_t empty = 0;
  for (auto _ : state) {
    while (!consumer.read_event()) ++empty;
  }
  stop.store(true);
  fill.join();
  state.SetItemsProcessed(state.iterations());
  state.counters["empty_polls"] = static_cast<double>(empty);
}
BENCHMARK(BM_SpscRead)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
