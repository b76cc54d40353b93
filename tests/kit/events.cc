#include "kit/events.h"

#include <cstring>

namespace ringlog::testkit {

std::string event_payload(uint64_t stream, uint64_t index, size_t bytes) {
  std::string p(bytes, '\0');
  std::memcpy(p.data(), &index, 8);
  std::memcpy(p.data() + 8, &stream, 8);
  for (size_t k = 16; k < bytes; ++k) p[k] = static_cast<char>((index * 31 + k * 7) & 0xff);
  return p;
}

bool parse_event_payload(ByteSpan payload, size_t bytes, uint64_t* stream, uint64_t* index) {
  if (payload.size() != bytes || bytes < kMinPayloadBytes) return false;
  std::memcpy(index, payload.data(), 8);
  std::memcpy(stream, payload.data() + 8, 8);
  return true;
}

uint64_t event_timestamp(uint64_t stream, uint64_t index) {
  return uint64_t{1'700'000'000'000'000'000} + index * 1000 + stream;
}

uint8_t event_type(uint64_t stream, uint64_t index) {
  return static_cast<uint8_t>(1 + stream * 8 + index % 3);
}

std::string encode_events(uint64_t stream, uint64_t first, uint64_t count, size_t payload_bytes) {
  const size_t record_bytes = padded_size(payload_bytes);
  std::string out(count * record_bytes, '\0');
  for (uint64_t n = 0; n < count; ++n) {
    const uint64_t i = first + n;
    const std::string p = event_payload(stream, i, payload_bytes);
    const EventHeader h(event_timestamp(stream, i), event_type(stream, i),
                        static_cast<uint16_t>(payload_bytes));
    encode_record(reinterpret_cast<std::byte*>(out.data()) + n * record_bytes, h, as_bytes(p));
  }
  return out;
}

std::string make_record(uint64_t timestamp, uint8_t type, std::string_view payload) {
  std::string out(padded_size(payload.size()), '\0');
  EventHeader h(timestamp, type, static_cast<uint16_t>(payload.size()));
  encode_record(reinterpret_cast<std::byte*>(out.data()), h, as_bytes(payload));
  return out;
}

absl::StatusOr<Ack> append_events(Client& client, const Events& events) {
  absl::StatusOr<std::unique_ptr<Appender>> a = client.appender();
  if (!a.ok()) return a.status();
  for (uint64_t i = events.first; i < events.first + events.count; ++i) {
    const std::string p = event_payload(events.stream, i, events.payload_bytes);
    const absl::Status s = (*a)->append(event_type(events.stream, i),
                                        event_timestamp(events.stream, i), as_bytes(p));
    if (!s.ok()) return s;
  }
  absl::StatusOr<Ack> last = (*a)->drain();
  if (absl::Status s = (*a)->close(); !s.ok() && last.ok()) return s;
  return last;
}

absl::StatusOr<Ack> append_events(const ClientOptions& options, const Events& events) {
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(options);
  if (!c.ok()) return c.status();
  return append_events(**c, events);
}

}  // namespace ringlog::testkit
