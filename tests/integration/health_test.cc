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

// HealthCheckResponse.status of `service` on `client`'s node: 1 SERVING,
// 2 NOT_SERVING; -1 when the call failed (NOT_FOUND: an unknown service).
int health_of(Client& client, const std::string& service) {
  const GenericResult r = generic_call(client.channel(), "/grpc.health.v1.Health/Check",
                                       service.empty() ? "" : bytes_field(1, service));
  if (!r.status.ok() || r.responses.size() != 1) return -1;
  const std::string& m = r.responses[0];
  return m.size() == 2 && m[0] == '\x08' ? m[1] : 0;  // {status: m[1]}; empty: UNKNOWN
}

constexpr int kServing = 1;
constexpr int kNotServing = 2;

// Each service a probe may name answers, and says what the node can do:
// a primary serves them all.
TEST_F(IntegrationHealth, PrimaryServesEveryNamedService) {
  std::unique_ptr<Client> client = connect(start_node());
  for (const char* service : {"", "ringlog.v1.EventLog", "ringlog.v1.EventLog/Append",
                              "ringlog.v1.Replication"}) {
    EXPECT_EQ(health_of(*client, service), kServing) << "service \"" << service << "\"";
  }
}

// A replica serves replays while it streams from its primary, never appends
// or replication; when its primary is gone its replays are stale, and its
// EventLog health says so (the process itself still serves).
TEST_F(IntegrationHealth, ReplicaIsReadyWhileItsPrimaryIs) {
  tools::NodeProcess& primary = start_node({"--role=primary"}, 0);
  const std::string primary_address = primary.address();
  std::unique_ptr<Client> replica = connect(
      start_node({"--role=replica", "--primary=" + primary_address}, 1));
  ASSERT_TRUE(wait_until([&] { return health_of(*replica, "ringlog.v1.EventLog") == kServing; },
                         absl::Seconds(30)))
      << "the replica never said its replays are current";
  EXPECT_EQ(health_of(*replica, ""), kServing);
  EXPECT_EQ(health_of(*replica, "ringlog.v1.EventLog/Append"), kNotServing);
  EXPECT_EQ(health_of(*replica, "ringlog.v1.Replication"), kNotServing);

  ASSERT_TRUE(node(0).stop(SIGKILL).ok());
  ASSERT_TRUE(wait_until([&] { return health_of(*replica, "ringlog.v1.EventLog") == kNotServing; },
                         absl::Seconds(30)))
      << "the replica of a killed primary still says its replays are current";
  EXPECT_EQ(health_of(*replica, ""), kServing);
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
