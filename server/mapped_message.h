// Messages that carry log records straight from the mapped segments.
//
// A `bytes` field's wire form is its tag, its length and then the bytes, and
// a parser does not care where a sender kept them. So a message with records
// is sent as two slices: a small head (every other field, serialized as
// usual, then the records field's tag and length) and a slice that points
// into the segment's mapping and holds a reference to the segment until
// gRPC has written it to the socket. The records are copied once, by the
// kernel, instead of into a protobuf string and then into gRPC's buffers.
#pragma once

#include <memory>
#include <string>

#include "grpcpp/support/byte_buffer.h"
#include "ringlog/storage.h"

namespace ringlog {

// Appends a length-delimited field's tag and length (its body follows).
void append_field_header(std::string* out, int field, uint64_t length);

// A ByteBuffer of `head` followed by the bytes of `slice.records`, which stay
// in the mapping (and `slice.segment` alive) until gRPC is done with them.
grpc::ByteBuffer head_and_mapped_records(const std::string& head, const LogSlice& slice);

}  // namespace ringlog
