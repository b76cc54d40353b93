// The standard grpc.health.v1 health service and server reflection answer.
// No generated client for either ships here, so the calls go through
// generic_call with hand-encoded protobuf messages.
#include "harness.h"

namespace ringlog::testing {
namespace {

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
