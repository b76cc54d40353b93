#include "ringlog/ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ringlog {

absl::Status WriteResult::status() const {
  switch (code_) {
    case RingErrorCode::kOk:
      return absl::OkStatus();
    case RingErrorCode::kNotEnoughSpace:
      return absl::ResourceExhaustedError(absl::StrCat(
          "not enough space: required ", required_, " bytes, available ", available_));
    case RingErrorCode::kPayloadTooLarge:
      return absl::InvalidArgumentError(absl::StrCat("payload of ", required_,
                                                     " bytes is over the limit of ", kMaxPayload));
    case RingErrorCode::kLengthMismatch:
      return absl::InvalidArgumentError(absl::StrCat("header payload_len ", available_,
                                                     " differs from the payload size ", required_));
    case RingErrorCode::kIoError:
      return absl::UnavailableError(absl::StrCat("cannot write a record of ", required_,
                                                 " bytes to the file (I/O error or full disk)"));
  }
  return absl::InternalError("unknown ring error");
}

namespace detail {

absl::Status validate_capacity(size_t capacity) {
  const char* reason = nullptr;
  if (capacity < kMinRingCapacity) {
    reason = "must be at least 64";
  } else if ((capacity & (capacity - 1)) != 0) {
    reason = "must be a power of two";
  } else if (capacity > kMaxRingCapacity) {
    reason = "must be at most 2 GiB";
  }
  if (reason == nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid ring capacity ", capacity, ": ", reason));
}

absl::StatusOr<RingMemory> RingMemory::Allocate(size_t capacity) {
  if (absl::Status s = validate_capacity(capacity); !s.ok()) return s;
  void* p = mmap(nullptr, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot map a ring of ", capacity, " bytes: ", std::strerror(errno)));
  }
  // Huge pages cut TLB misses on big rings; advice only, so failure is fine.
  if (capacity >= (size_t{2} << 20)) (void)madvise(p, capacity, MADV_HUGEPAGE);
  // Touch every page now so the producer never takes a page fault later.
  std::memset(p, 0, capacity);
  RingMemory m;
  m.data_ = static_cast<std::byte*>(p);
  m.size_ = capacity;
  return m;
}

RingMemory::RingMemory(RingMemory&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

RingMemory& RingMemory::operator=(RingMemory&& o) noexcept {
  if (this != &o) {
    this->~RingMemory();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

RingMemory::~RingMemory() {
  if (data_ != nullptr) munmap(data_, size_);
}

}  // namespace detail

absl::StatusOr<SpscRingBuffer> SpscRingBuffer::Create(size_t capacity) {
  absl::StatusOr<detail::RingMemory> m = detail::RingMemory::Allocate(capacity);
  if (!m.ok()) return m.status();
  return SpscRingBuffer(std::make_shared<detail::SpscShared>(std::move(*m)));
}

std::pair<SpscRingBuffer::Producer, SpscRingBuffer::Consumer> SpscRingBuffer::split() && {
  std::shared_ptr<detail::SpscShared> s = std::move(shared_);
  return {Producer(s), Consumer(s)};
}

// ---- Producer (producer thread only) ----

std::byte* SpscRingBuffer::Producer::reserve_slow(size_t size) noexcept {
  if (size > capacity_) return nullptr;
  // acquire: pairs with the consumer's release store of tail; the bytes before
  // the tail we see have been read and may be overwritten.
  cached_tail_ = shared_->tail.load(std::memory_order_acquire);
  uint64_t pos = head_ & (capacity_ - 1);
  const uint64_t to_end = capacity_ - pos;
  if (size > to_end) {
    // The record does not fit before the end of the buffer. Skip to the start
    // and publish the skip on its own, so that a record that needs more than
    // the space before `pos` waits for room at the start instead of never fitting.
    if (head_ + to_end - cached_tail_ > capacity_) return nullptr;
    // A zero header marks the skip; under 16 bytes the consumer skips unmarked.
    if (to_end >= kHeaderSize) std::memset(buf_ + pos, 0, kHeaderSize);
    publish(to_end);
    pos = 0;
  }
  if (head_ + size - cached_tail_ > capacity_) return nullptr;
  return buf_ + pos;
}

WriteResult SpscRingBuffer::Producer::full_result(size_t size) const noexcept {
  const uint64_t pos = head_ & (capacity_ - 1);
  const uint64_t to_end = capacity_ - pos;
  // A record that can never fit needs its own size; one that needs a wrap
  // needs the bytes skipped at the end too.
  const uint64_t required = (size <= to_end || size > capacity_) ? size : to_end + size;
  return WriteResult::not_enough_space(required, capacity_ - (head_ - cached_tail_));
}

// ---- Consumer (consumer thread only) ----

bool SpscRingBuffer::Consumer::refresh_head() noexcept {
  // acquire: pairs with the release store in Producer::publish; every byte
  // before the head we see is a complete record or wrap marker.
  cached_head_ = shared_->head.load(std::memory_order_acquire);
  return cached_head_ != tail_;
}

bool SpscRingBuffer::Consumer::seek_record() noexcept {
  if (tail_ == cached_head_ && !refresh_head()) return false;
  const uint64_t pos = tail_ & (capacity_ - 1);
  const uint64_t to_end = capacity_ - pos;
  if (to_end < kHeaderSize || is_zero_header(buf_ + pos)) {
    tail_ += to_end;  // wrap marker: the next record is at the start
    if (tail_ == cached_head_ && !refresh_head()) return false;
  }
  return true;
}

void SpscRingBuffer::Consumer::release() noexcept {
  if (released_ == tail_) return;
  released_ = tail_;
  // release: our reads of the bytes before tail_ happen before the producer
  // may reuse them; pairs with the acquire load of tail in reserve_slow.
  shared_->tail.store(tail_, std::memory_order_release);
}

std::optional<EventView> SpscRingBuffer::Consumer::read_event() noexcept {
  release();
  if (!seek_record()) return std::nullopt;
  const std::byte* p = buf_ + (tail_ & (capacity_ - 1));
  const EventHeader* h = header_at(p);
  tail_ += h->padded_size();
  return EventView{h, ByteSpan{p + kHeaderSize, h->payload_len}};
}

RecordBatch SpscRingBuffer::Consumer::read_batch(size_t max_bytes) noexcept {
  release();
  refresh_head();
  if (!seek_record()) return {};
  const uint64_t pos = tail_ & (capacity_ - 1);
  const std::byte* start = buf_ + pos;
  // Records in [tail, head) are whole; stop at the end of the buffer, where a
  // wrap marker or fewer than 16 bytes may sit.
  const uint64_t limit = std::min<uint64_t>(cached_head_ - tail_, capacity_ - pos);
  size_t bytes = 0;
  size_t count = 0;
  while (bytes + kHeaderSize <= limit) {
    const std::byte* p = start + bytes;
    if (is_zero_header(p)) break;
    const size_t size = header_at(p)->padded_size();
    if (bytes + size > max_bytes && count > 0) break;
    bytes += size;
    ++count;
  }
  tail_ += bytes;
  return RecordBatch{ByteSpan{start, bytes}, count};
}

bool SpscRingBuffer::Consumer::is_empty() noexcept { return !seek_record(); }

// ---- RingBuffer ----

absl::StatusOr<RingBuffer> RingBuffer::Create(size_t capacity) {
  absl::StatusOr<SpscRingBuffer> ring = SpscRingBuffer::Create(capacity);
  if (!ring.ok()) return ring.status();
  auto [producer, consumer] = std::move(*ring).split();
  return RingBuffer(std::move(producer), std::move(consumer));
}

std::optional<EventView> RingBuffer::read_event() noexcept {
  std::optional<EventView> v = consumer_.read_event();
  consumer_.release();
  return v;
}

RecordBatch RingBuffer::read_batch(size_t max_bytes) noexcept {
  RecordBatch b = consumer_.read_batch(max_bytes);
  consumer_.release();
  return b;
}

}  // namespace ringlog
