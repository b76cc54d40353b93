#include "ringlog/control.h"

#include <cstring>

namespace ringlog {

void append_producer_batch_mark(std::string* out, const ProducerBatchMark& m, uint64_t ts) {
  const size_t id_len = std::min(m.producer_id.size(), kMaxProducerIdBytes);
  std::string payload(14 + id_len + 4, '\0');
  std::memcpy(payload.data(), &m.producer_seq, 8);
  std::memcpy(payload.data() + 8, &m.events, 4);
  const auto len16 = static_cast<uint16_t>(id_len);
  std::memcpy(payload.data() + 12, &len16, 2);
  std::memcpy(payload.data() + 14, m.producer_id.data(), id_len);
  std::memcpy(payload.data() + 14 + id_len, &m.data_bytes, 4);
  EventHeader h(ts, kControlProducerBatch, static_cast<uint16_t>(payload.size()));
  h.flags = kFlagControl;
  const size_t at = out->size();
  out->resize(at + padded_size(payload.size()));
  encode_record(reinterpret_cast<std::byte*>(out->data()) + at, h, as_bytes(payload));
}

std::optional<ProducerBatchMark> parse_producer_batch_mark(const EventView& ev) {
  if (!is_control(*ev.header) || ev.event_type() != kControlProducerBatch) return std::nullopt;
  if (ev.payload.size() < 14) return std::nullopt;
  ProducerBatchMark m;
  uint16_t id_len = 0;
  std::memcpy(&m.producer_seq, ev.payload.data(), 8);
  std::memcpy(&m.events, ev.payload.data() + 8, 4);
  std::memcpy(&id_len, ev.payload.data() + 12, 2);
  // Without data_bytes (written by an older version), or with it.
  if (ev.payload.size() != 14u + id_len && ev.payload.size() != 18u + id_len) return std::nullopt;
  m.producer_id.assign(reinterpret_cast<const char*>(ev.payload.data()) + 14, id_len);
  if (ev.payload.size() == 18u + id_len) {
    std::memcpy(&m.data_bytes, ev.payload.data() + 14 + id_len, 4);
  }
  return m;
}

}  // namespace ringlog
