// Messages that carry log records straight from the mapped segments.
//
// A `bytes` field's wire form is its tag, its length and then the bytes, and
// a parser does not care where a sender kept them. So a message with records
// is sent as slices: a small head (every other field, serialized as usual,
// then the records field's tag and length) and slices that point into the
// segments' mappings, each holding a reference to its segment until gRPC
// has written it to the socket. The records are copied once, by the
// kernel, instead of into a protobuf string and then into gRPC's buffers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/support/byte_buffer.h"
#include "ringlog/storage.h"

namespace ringlog {

// Appends a length-delimited field's tag and length (its body follows).
void append_field_header(std::string* out, int field, uint64_t length);

// Bytes in a mapped segment.
struct MappedRun {
  std::shared_ptr<const Segment> segment;
  ByteSpan bytes;
};

// A ByteBuffer of `head` followed by the bytes of each run, which stay in
// the mapping (and their segments alive) until gRPC is done with them.
grpc::ByteBuffer head_and_mapped(const std::string& head, const std::vector<MappedRun>& runs);

}  // namespace ringlog
