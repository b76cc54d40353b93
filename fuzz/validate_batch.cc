// An append batch's validation: check_records over arbitrary bytes, as the
// primary runs it on AppendRequest.records and a replica on a chunk, then
// validate_records with the server's byte limit. Whatever is accepted must
// read back as exactly that many well-formed records.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "request_checks.h"
#include "ringlog/event.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Records sit 8-byte aligned in the ring, the log and the server's buffers.
  std::vector<uint64_t> aligned((size + 7) / 8);
  if (size != 0) std::memcpy(aligned.data(), data, size);
  const ringlog::ByteSpan records(reinterpret_cast<const std::byte*>(aligned.data()), size);

  absl::StatusOr<size_t> n = ringlog::check_records(records);
  absl::StatusOr<size_t> v = ringlog::validate_records(records, size_t{1} << 20);
  if (n.ok() != v.ok() && size != 0) std::abort();
  if (!n.ok()) return 0;
  size_t pos = 0;
  size_t count = 0;
  while (pos < size) {
    const ringlog::EventHeader* h = ringlog::header_at(records.data() + pos);
    if (h->padded_size() > size - pos) std::abort();
    if (!h->verify_checksum(records.subspan(pos + ringlog::kHeaderSize, h->payload_len))) {
      std::abort();
    }
    pos += h->padded_size();
    ++count;
  }
  if (count != *n) std::abort();
  return 0;
}
