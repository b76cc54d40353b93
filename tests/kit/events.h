// The events the process tests write: one scheme for every test, so that
// any test can tell from a replayed event who wrote it and which one it is.
//
// An event is (stream, index): `stream` says who wrote it (a producer, or a
// scenario's phase), `index` its place in that stream. Its payload, of a
// size each suite picks (16 bytes or more), is
//
//   +----------------+----------------+---------------------------------+
//   | index (u64 LE) | stream (u64 LE)| byte k = (index * 31 + k * 7)   |
//   +----------------+----------------+---------------------------------+
//   0                8                16                          bytes
//
// and its timestamp and type are derived from (stream, index) too, so a
// content check covers the record header as well.
//
//   std::string records = testkit::encode_events(/*stream=*/0, 0, 100, 16);
//   absl::StatusOr<Ack> ack = testkit::append_events(client, {.count = 100});
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "ringlog/client.h"
#include "ringlog/event.h"

namespace ringlog::testkit {

inline constexpr size_t kMinPayloadBytes = 16;

// The payload of event `index` of `stream`, `bytes` (>= kMinPayloadBytes) long.
std::string event_payload(uint64_t stream, uint64_t index, size_t bytes);
// Decodes the stream and index of a `bytes`-long test payload; false if
// `payload` has another size.
bool parse_event_payload(ByteSpan payload, size_t bytes, uint64_t* stream, uint64_t* index);
// 1.7e18 ns + index µs + stream ns: rising with the index within a stream.
uint64_t event_timestamp(uint64_t stream, uint64_t index);
// 1 + stream * 8 + index % 3: stream 0 cycles through types 1, 2, 3.
uint8_t event_type(uint64_t stream, uint64_t index);

// Whole records for events [first, first + count) of `stream`.
std::string encode_events(uint64_t stream, uint64_t first, uint64_t count, size_t payload_bytes);
// One record with any header fields and payload, checksum computed.
std::string make_record(uint64_t timestamp, uint8_t type, std::string_view payload);

// A range of test events.
struct Events {
  uint64_t stream = 0;
  uint64_t first = 0;
  uint64_t count = 0;
  size_t payload_bytes = kMinPayloadBytes;
};

// Appends `events` through one Appender (each batch idempotent and followed
// by a producer marker), drains and closes; the last batch's ack.
absl::StatusOr<Ack> append_events(Client& client, const Events& events);
// The same through a new Client over `endpoints`.
absl::StatusOr<Ack> append_events(const ClientOptions& options, const Events& events);

}  // namespace ringlog::testkit
