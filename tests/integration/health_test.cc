// The standard grpc.health.v1 health service and server reflection answer.
// No generated client for either ships here, so the calls go through
// grpc::GenericStub with hand-encoded protobuf messages.
#include "grpcpp/generic/generic_stub.h"
#include "harness.h"

namespace ringlog::testing {
namespace {

struct GenericResult {
  grpc::Status status;
  std::vector<std::string> responses;
};

grpc::ByteBuffer to_buffer(const std::string& s) {
  grpc::Slice slice(s.data(), s.size());
  return grpc::ByteBuffer(&slice, 1);
}

std::string from_buffer(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  (void)b.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// Calls `method` with `request` (serialized), half-closes, and reads every
// response. Works for unary and streaming methods alike: on the wire they
// are the same.
GenericResult generic_call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                           const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&ctx, method, &cq);
  // One operation at a time; the deadline guarantees each completes.
  auto await = [&](intptr_t tag) {
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&got, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(got), tag);
    return ok;
  };
  GenericResult r;
  call->StartCall(reinterpret_cast<void*>(1));
  if (await(1)) {
    call->Write(to_buffer(request), reinterpret_cast<void*>(2));
    if (await(2)) {
      call->WritesDone(reinterpret_cast<void*>(3));
      await(3);
    }
    grpc::ByteBuffer resp;
    for (;;) {
      call->Read(&resp, reinterpret_cast<void*>(4));
      if (!await(4)) break;
      r.responses.push_back(from_buffer(resp));
    }
  }
  call->Finish(&r.status, reinterpret_cast<void*>(5));
  await(5);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return r;
}

// A length-delimited protobuf field.
std::string bytes_field(int number, const std::string& value) {
  return std::string(1, static_cast<char>(number << 3 | 2)) + static_cast<char>(value.size()) +
         value;
}

class IntegrationHealth : public NodeTest {};

TEST_F(IntegrationHealth, CheckAnswersServing) {
  std::unique_ptr<Client> client = connect(start_node());
  // HealthCheckRequest{service: ""}: the server as a whole.
  GenericResult r = generic_call(client->channel(), "/grpc.health.v1.Health/Check", "");
  ASSERT_TRUE(r.status.ok()) << r.status.error_code() << " " << r.status.error_message();
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0], std::string("\x08\x01", 2)) << "HealthCheckResponse{status: SERVING}";

  r = generic_call(client->channel(), "/grpc.health.v1.Health/Check",
                   bytes_field(1, "no.such.Service"));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(IntegrationHealth, ReflectionListsTheServicesAndServesTheirDescriptors) {
  std::unique_ptr<Client> client = connect(start_node());
  const std::string method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  // ServerReflectionRequest{list_services: ""} (field 7).
  GenericResult r = generic_call(client->channel(), method, bytes_field(7, ""));
  ASSERT_TRUE(r.status.ok()) << r.status.error_code() << " " << r.status.error_message();
  ASSERT_EQ(r.responses.size(), 1u);
  for (const char* service : {"ringlog.v1.EventLog", "ringlog.v1.Admin", "grpc.health.v1.Health"}) {
    EXPECT_NE(r.responses[0].find(service), std::string::npos) << service << " is not listed";
  }
  // ServerReflectionRequest{file_containing_symbol: "ringlog.v1.EventLog"} (field 4):
  // the answer carries the FileDescriptorProto of ringlog/v1/ringlog.proto.
  r = generic_call(client->channel(), method, bytes_field(4, "ringlog.v1.EventLog"));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_NE(r.responses[0].find("ringlog/v1/ringlog.proto"), std::string::npos);
  EXPECT_NE(r.responses[0].find("AppendRequest"), std::string::npos);
}

}  // namespace
}  // namespace ringlog::testing
