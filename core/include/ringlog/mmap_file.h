// One segment file with the seed's interface: MmapWriter appends records to
// it, MmapReader maps it read-only and iterates over its valid records. The
// file's layout is in file_header.h; the log over many such files is
// SegmentedLog (segmented_log.h).
//
//   auto w = ringlog::MmapWriter::Create("/tmp/events.evtl", 1 << 20);
//   (void)w->write_event(header, payload);   // the one writer thread
//   (void)w->sync();
//   auto r = ringlog::MmapReader::Open("/tmp/events.evtl");
//   for (const ringlog::EventView& ev : *r) use(ev);
//
// Threads: a writer and a reader each belong to one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ringlog/event.h"
#include "ringlog/file_header.h"
#include "ringlog/ring.h"

namespace ringlog {

class Segment;

class MmapWriter {
 public:
  // Creates (or replaces) `path`, preallocated to `capacity` bytes, header included.
  static absl::StatusOr<MmapWriter> Create(const std::string& path, uint64_t capacity);
  // Opens an existing file, recovers it, and appends after its last valid record.
  static absl::StatusOr<MmapWriter> Open(const std::string& path,
                                         RecoveryReport* report = nullptr);

  MmapWriter(MmapWriter&&) noexcept;
  MmapWriter& operator=(MmapWriter&&) noexcept;
  ~MmapWriter();

  // kNotEnoughSpace when the file is full: nothing is written.
  WriteResult write_event(const EventHeader& header, ByteSpan payload) noexcept;
  // Flushes written records to disk (fdatasync).
  absl::Status sync();

  uint64_t event_count() const noexcept;
  uint64_t write_offset() const noexcept;  // record bytes written
  uint64_t capacity() const noexcept;      // record bytes the file holds

 private:
  explicit MmapWriter(std::unique_ptr<Segment> s);
  std::unique_ptr<Segment> segment_;
};

class MmapReader {
 public:
  // Maps `path` read-only and finds its valid records; does not modify it.
  static absl::StatusOr<MmapReader> Open(const std::string& path);

  MmapReader(MmapReader&&) noexcept;
  MmapReader& operator=(MmapReader&&) noexcept;
  ~MmapReader();

  // Calls `fn` with each valid record in order; returns how many.
  size_t replay(const std::function<void(const EventView&)>& fn) const;

  class Iterator {
   public:
    using value_type = EventView;
    using difference_type = std::ptrdiff_t;
    Iterator() = default;
    Iterator(const std::byte* p, const std::byte* end) : p_(p), end_(end) {}
    EventView operator*() const noexcept {
      const EventHeader* h = header_at(p_);
      return EventView{h, ByteSpan{p_ + kHeaderSize, h->payload_len}};
    }
    Iterator& operator++() noexcept {
      p_ += header_at(p_)->padded_size();
      return *this;
    }
    Iterator operator++(int) noexcept {
      Iterator t = *this;
      ++*this;
      return t;
    }
    bool operator==(const Iterator& o) const noexcept { return p_ == o.p_; }

   private:
    const std::byte* p_ = nullptr;
    const std::byte* end_ = nullptr;
  };
  Iterator begin() const noexcept;
  Iterator end() const noexcept;

  uint64_t event_count() const noexcept;
  uint64_t valid_bytes() const noexcept;
  const FileHeader& header() const noexcept;
  // Empty when the records end cleanly; otherwise what stopped the scan.
  const std::string& problem() const noexcept;

 private:
  MmapReader(std::unique_ptr<Segment> s, std::string problem);
  std::unique_ptr<Segment> segment_;
  std::string problem_;
};

}  // namespace ringlog
