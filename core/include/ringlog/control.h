// Control records: log metadata carried in the log itself.
//
// A control record is an ordinary record (same header, checksum, padding)
// with the kFlagControl bit set in its flags; its event_type says what it is.
// Control records take a seq like any event (as Kafka's control batches take
// offsets) and replicate byte for byte; Replay leaves them out unless asked.
//
//   kControlProducerBatch: written by the primary right after an idempotent
//   batch, in the same ring write, so batch and marker land together. Payload:
//     bytes 0-7        producer_seq  u64, the batch's sequence number for its producer
//     bytes 8-11       events        u32, data records in the batch (just before this one)
//     bytes 12-13      id_len        u16
//     bytes 14..       producer_id   id_len bytes
//     then 4 bytes     data_bytes    u32, bytes of those data records, padding
//                                    included: the batch's first record is at
//                                    the mark's offset minus data_bytes
//   data_bytes is absent from the marks of older versions (payload 14 + id_len
//   bytes), which are still read: such a batch's seq is known, its offsets not.
//   A node rebuilds which batches each producer has written, and where, from
//   these records, so a primary answers a batch sent again after a restart or
//   a failover with the original's range instead of appending it twice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ringlog/event.h"

namespace ringlog {

inline constexpr uint8_t kFlagControl = 0x80;
inline constexpr uint8_t kControlProducerBatch = 0x01;
inline constexpr size_t kMaxProducerIdBytes = 256;
// How many of a producer's latest batches a node remembers the range of (as
// Kafka's 5): a resend of one of them is answered with its original seqs and
// offsets; an older one is refused (ALREADY_EXISTS). A client must not have
// more of one producer's batches unacknowledged than this, or a resend after
// a failover may be too old (the C++ client holds ClientOptions::
// max_in_flight_batches to it).
inline constexpr size_t kProducerWindow = 16;

inline bool is_control(const EventHeader& h) noexcept { return (h.flags & kFlagControl) != 0; }

struct ProducerBatchMark {
  std::string producer_id;
  uint64_t producer_seq = 0;
  uint32_t events = 0;
  // Bytes of the batch's data records; 0 when the mark does not say (a mark
  // written by an older version; a batch is never empty).
  uint32_t data_bytes = 0;
};

// Appends the encoded control record for `m` (timestamp `ts`) to `out`.
void append_producer_batch_mark(std::string* out, const ProducerBatchMark& m, uint64_t ts);
// Parses a control record; nullopt when it is not a well-formed producer mark.
std::optional<ProducerBatchMark> parse_producer_batch_mark(const EventView& ev);

}  // namespace ringlog
