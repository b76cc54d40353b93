// Rings: a byte ring of records in the log format (event.h).
//
//   RingBuffer      one thread writes and reads.
//   SpscRingBuffer  split() into a Producer and a Consumer for two threads;
//                   lock-free, wait-free on both sides.
//
// Layout: head and tail are 64-bit byte counters that only grow; a position
// in the buffer is counter & (capacity - 1). A record never straddles the end
// of the buffer: when it does not fit before the end, the producer leaves a
// wrap marker (16 zero bytes, or nothing when fewer than 16 bytes are left)
// and writes the record at the start. So every record, and every batch a
// consumer takes, is one contiguous span, and a batch is a valid stretch of log.
//
//   auto ring = ringlog::SpscRingBuffer::Create(64 << 20);
//   auto [producer, consumer] = std::move(*ring).split();
//   // producer thread:
//   ringlog::EventHeader h(now_ns, /*type=*/1, payload.size());
//   if (!producer.write_event(h, payload)) { /* full: retry or drop, never blocks */ }
//   // consumer thread:
//   while (auto ev = consumer.read_event()) use(ev->payload);
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ringlog/event.h"

namespace ringlog {

inline constexpr size_t kCacheLine = 64;
inline constexpr size_t kMinRingCapacity = 64;
inline constexpr size_t kMaxRingCapacity = size_t{1} << 31;

enum class RingErrorCode : uint8_t {
  kOk = 0,
  kNotEnoughSpace,   // the ring (or file) has `available` bytes, the record needs `required`
  kPayloadTooLarge,  // payload over kMaxPayload bytes; `required` is its size (saturated)
  kLengthMismatch,   // header.payload_len differs from the payload's size
  kIoError,          // a file write failed (MmapWriter only; e.g. a full disk)
};

// The result of a hot-path write: a small value, no allocation. Converts to
// absl::Status for callers off the hot path.
class [[nodiscard]] WriteResult {
 public:
  constexpr WriteResult() noexcept = default;
  static constexpr WriteResult error(RingErrorCode code, uint64_t required,
                                     uint64_t available) noexcept {
    return WriteResult(code, saturate(required), saturate(available));
  }
  static constexpr WriteResult not_enough_space(uint64_t required, uint64_t available) noexcept {
    return error(RingErrorCode::kNotEnoughSpace, required, available);
  }

  constexpr bool ok() const noexcept { return code_ == RingErrorCode::kOk; }
  constexpr explicit operator bool() const noexcept { return ok(); }
  constexpr RingErrorCode code() const noexcept { return code_; }
  constexpr uint32_t required() const noexcept { return required_; }
  constexpr uint32_t available() const noexcept { return available_; }
  absl::Status status() const;

 private:
  constexpr WriteResult(RingErrorCode c, uint32_t r, uint32_t a) noexcept
      : required_(r), available_(a), code_(c) {}
  static constexpr uint32_t saturate(uint64_t v) noexcept {
    return v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v);
  }
  uint32_t required_ = 0;
  uint32_t available_ = 0;
  RingErrorCode code_ = RingErrorCode::kOk;
};

// Whole records, contiguous in the buffer they were read from.
struct RecordBatch {
  ByteSpan bytes;
  size_t count = 0;
  bool empty() const noexcept { return count == 0; }
};

namespace detail {

// The ring's memory: anonymous, page-aligned and touched at creation, so the
// hot path never takes a page fault.
class RingMemory {
 public:
  static absl::StatusOr<RingMemory> Allocate(size_t capacity);
  RingMemory() = default;
  RingMemory(RingMemory&& o) noexcept;
  RingMemory& operator=(RingMemory&& o) noexcept;
  ~RingMemory();
  std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

absl::Status validate_capacity(size_t capacity);

// State shared by a producer and a consumer. head and tail each sit on their
// own cache line so that the two threads do not invalidate each other's line
// on every write.
struct SpscShared {
  alignas(kCacheLine) std::atomic<uint64_t> head{0};  // written by the producer only
  alignas(kCacheLine) std::atomic<uint64_t> tail{0};  // written by the consumer only
  alignas(kCacheLine) RingMemory memory;
  explicit SpscShared(RingMemory m) : memory(std::move(m)) {}
};
static_assert(offsetof(SpscShared, tail) - offsetof(SpscShared, head) >= kCacheLine);

}  // namespace detail

class SpscRingBuffer {
 public:
  class Producer;
  class Consumer;

  static absl::StatusOr<SpscRingBuffer> Create(size_t capacity);

  // Hands out the two ends; call once, on an rvalue: std::move(ring).split().
  std::pair<Producer, Consumer> split() &&;
  size_t capacity() const noexcept { return shared_->memory.size(); }

 private:
  explicit SpscRingBuffer(std::shared_ptr<detail::SpscShared> s) : shared_(std::move(s)) {}
  std::shared_ptr<detail::SpscShared> shared_;
};

// The writing end. Producer thread only. Keeps its own copy of head and a
// cached copy of the consumer's tail, so a write that fits touches no shared
// cache line but the one it publishes to.
class alignas(kCacheLine) SpscRingBuffer::Producer {
 public:
  Producer() = default;

  // Copies one record (header with checksum computed here, payload, padding)
  // into the ring and publishes it. Never blocks, allocates or enters the
  // kernel; a full ring returns kNotEnoughSpace and writes nothing.
  WriteResult write_event(const EventHeader& header, ByteSpan payload) noexcept {
    if (payload.size() > kMaxPayload) {
      return WriteResult::error(RingErrorCode::kPayloadTooLarge, payload.size(), kMaxPayload);
    }
    if (header.payload_len != payload.size()) {
      return WriteResult::error(RingErrorCode::kLengthMismatch, payload.size(),
                                header.payload_len);
    }
    const size_t size = padded_size(payload.size());
    std::byte* dst = reserve(size);
    if (dst == nullptr) return full_result(size);
    encode_record(dst, header, payload);
    publish(size);
    return {};
  }

  // Copies `records`, whole valid records in the log format that the caller
  // has checked (e.g. a network batch), as one contiguous stretch published at
  // once: a consumer sees all of them or none. Producer thread only.
  WriteResult write_records(ByteSpan records) noexcept {
    std::byte* dst = reserve(records.size());
    if (dst == nullptr) return full_result(records.size());
    std::memcpy(dst, records.data(), records.size());
    publish(records.size());
    return {};
  }

  size_t capacity() const noexcept { return capacity_; }
  // Bytes in use as of now (reads the consumer's tail).
  size_t used() const noexcept {
    // acquire: pairs with the consumer's release store of tail.
    return head_ - shared_->tail.load(std::memory_order_acquire);
  }
  size_t available() const noexcept { return capacity_ - used(); }
  // Bytes in use, from any thread (reads both shared counters).
  size_t shared_used() const noexcept {
    // Tail first: head only grows and never passes a later-read tail, so the
    // difference cannot go negative. acquire: orders the two loads.
    const uint64_t tail = shared_->tail.load(std::memory_order_acquire);
    return shared_->head.load(std::memory_order_acquire) - tail;
  }
  // Bytes ever written, wrap markers included: a position other threads can
  // compare with the consumer's progress.
  uint64_t written() const noexcept { return head_; }

 private:
  friend class SpscRingBuffer;
  friend class RingBuffer;
  explicit Producer(std::shared_ptr<detail::SpscShared> s)
      : shared_(s.get()),
        buf_(s->memory.data()),
        capacity_(s->memory.size()),
        keep_(std::move(s)) {}

  // Where `size` contiguous bytes may be written, or nullptr when they do not
  // fit. The fast path checks against the cached tail only.
  std::byte* reserve(size_t size) noexcept {
    const uint64_t pos = head_ & (capacity_ - 1);
    if (size <= capacity_ - pos && head_ + size - cached_tail_ <= capacity_) [[likely]] {
      return buf_ + pos;
    }
    return reserve_slow(size);
  }
  std::byte* reserve_slow(size_t size) noexcept;
  WriteResult full_result(size_t size) const noexcept;

  void publish(size_t size) noexcept {
    head_ += size;
    // release: makes the record bytes written above visible before the new
    // head; pairs with the acquire load of head in Consumer::refresh_head.
    shared_->head.store(head_, std::memory_order_release);
  }

  detail::SpscShared* shared_ = nullptr;
  std::byte* buf_ = nullptr;
  size_t capacity_ = 0;
  uint64_t head_ = 0;         // only this thread writes head, so no load is needed
  uint64_t cached_tail_ = 0;  // last tail seen; refreshed only when the ring looks full
  std::shared_ptr<detail::SpscShared> keep_;
};

// The reading end. Consumer thread only. A view or batch it returns stays
// valid until the next read call or release() on this consumer: the space is
// handed back to the producer only then.
class alignas(kCacheLine) SpscRingBuffer::Consumer {
 public:
  Consumer() = default;

  std::optional<EventView> read_event() noexcept;
  // Takes whole records from the tail, contiguous in the buffer, up to
  // `max_bytes` (at least one record when any is there).
  RecordBatch read_batch(size_t max_bytes) noexcept;
  // Hands the space of what was last read back to the producer now.
  void release() noexcept;

  bool is_empty() noexcept;
  size_t capacity() const noexcept { return capacity_; }
  // Bytes read and released so far; compare with Producer::written().
  uint64_t consumed() const noexcept { return tail_; }

 private:
  friend class SpscRingBuffer;
  friend class RingBuffer;
  explicit Consumer(std::shared_ptr<detail::SpscShared> s)
      : shared_(s.get()),
        buf_(s->memory.data()),
        capacity_(s->memory.size()),
        keep_(std::move(s)) {}

  bool refresh_head() noexcept;
  // Positions tail_ at the next record, skipping a wrap marker; false when
  // there is none.
  bool seek_record() noexcept;

  detail::SpscShared* shared_ = nullptr;
  const std::byte* buf_ = nullptr;
  size_t capacity_ = 0;
  uint64_t tail_ = 0;         // start of the unreleased region; only this thread writes tail
  uint64_t released_ = 0;     // the tail last handed back to the producer
  uint64_t cached_head_ = 0;  // last head seen
  std::shared_ptr<detail::SpscShared> keep_;
};

// One-thread ring with the seed's interface. Reading frees the space at once,
// so a view stays valid until the next write_event.
class RingBuffer {
 public:
  static absl::StatusOr<RingBuffer> Create(size_t capacity);

  WriteResult write_event(const EventHeader& header, ByteSpan payload) noexcept {
    return producer_.write_event(header, payload);
  }
  WriteResult write_records(ByteSpan records) noexcept { return producer_.write_records(records); }
  std::optional<EventView> read_event() noexcept;
  RecordBatch read_batch(size_t max_bytes) noexcept;

  bool is_empty() const noexcept { return consumer_.is_empty(); }
  size_t used() const noexcept { return producer_.used(); }
  size_t available() const noexcept { return producer_.available(); }
  size_t capacity() const noexcept { return producer_.capacity(); }

 private:
  RingBuffer(SpscRingBuffer::Producer p, SpscRingBuffer::Consumer c)
      : producer_(std::move(p)), consumer_(std::move(c)) {}
  SpscRingBuffer::Producer producer_;
  mutable SpscRingBuffer::Consumer consumer_;  // is_empty() may step over a wrap marker
};

}  // namespace ringlog
