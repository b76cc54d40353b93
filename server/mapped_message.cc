#include "mapped_message.h"

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "grpcpp/support/slice.h"

namespace ringlog {

void append_field_header(std::string* out, int field, uint64_t length) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::StringOutputStream s(out);
  google::protobuf::io::CodedOutputStream c(&s);
  c.WriteTag(WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  c.WriteVarint64(length);
}

grpc::ByteBuffer head_and_mapped(const std::string& head, const std::vector<MappedRun>& runs) {
  std::vector<grpc::Slice> parts;
  parts.reserve(1 + runs.size());
  parts.emplace_back(head);
  for (const MappedRun& r : runs) {
    if (r.bytes.empty()) continue;
    // The slice's user data: a reference to the segment, dropped by
    // whichever gRPC thread releases the slice last.
    parts.emplace_back(const_cast<std::byte*>(r.bytes.data()), r.bytes.size(),
                       [](void* p) { delete static_cast<std::shared_ptr<const Segment>*>(p); },
                       new std::shared_ptr<const Segment>(r.segment));
  }
  return grpc::ByteBuffer(parts.data(), parts.size());
}

}  // namespace ringlog
