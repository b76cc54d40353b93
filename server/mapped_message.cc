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

grpc::ByteBuffer head_and_mapped_records(const std::string& head, const LogSlice& slice) {
  const ByteSpan records = slice.records.bytes;
  // The slice's user data: a reference to the segment, dropped by whichever
  // gRPC thread releases the slice last.
  auto* keep = new std::shared_ptr<const Segment>(slice.segment);
  const grpc::Slice parts[2] = {
      grpc::Slice(head),
      grpc::Slice(const_cast<std::byte*>(records.data()), records.size(),
                  [](void* p) { delete static_cast<std::shared_ptr<const Segment>*>(p); }, keep),
  };
  return grpc::ByteBuffer(parts, records.empty() ? 1 : 2);
}

}  // namespace ringlog
