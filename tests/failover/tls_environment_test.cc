// When the suite runs again over mutual TLS with tokens (ctest -L tls), the
// nodes and the tests' clients get their credentials from the environment
// (RINGLOG_TLS_*, RINGLOG_AUTH_TOKENS, RINGLOG_TOKEN_FILE). This checks that
// they really did: a node refuses plaintext and token-less calls, and the
// environment's credentials get in. Skipped when the suite runs in
// plaintext.
#include <chrono>
#include <cstdlib>

#include "failover_harness.h"
#include "ringlog/security.h"

namespace ringlog::failover_test {
namespace {

class FailoverTls : public FailoverTest {};

TEST_F(FailoverTls, NodesRefusePlaintextAndCallsWithoutAToken) {
  if (std::getenv("RINGLOG_TLS_CERT") == nullptr) GTEST_SKIP() << "the suite runs in plaintext";
  start_cluster();
  auto get_status = [&](std::shared_ptr<const ChannelSecurity> s) {
    auto stub = v1::Admin::NewStub(make_channel(address("A"), std::move(s)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::NodeStatus out;
    return stub->GetStatus(&ctx, v1::GetStatusRequest(), &out);
  };
  grpc::Status s = get_status(ChannelSecurity::Insecure());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // The environment's TLS and certificate, without its token.
  ClientSecurity no_token = ClientSecurity::FromEnvironment();
  no_token.token.clear();
  no_token.token_file.clear();
  absl::StatusOr<std::shared_ptr<const ChannelSecurity>> tls = ChannelSecurity::Load(no_token);
  ASSERT_TRUE(tls.ok()) << tls.status();
  s = get_status(*tls);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  ASSERT_TRUE(default_channel_security()->tls() && default_channel_security()->has_token())
      << default_channel_security()->description();
  s = get_status(nullptr);
  EXPECT_TRUE(s.ok()) << s.error_message();
  absl::StatusOr<v1::NodeStatus> b = status("B");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->replica_state(), v1::REPLICA_STATE_STREAMING) << "replication over mutual TLS";
}

}  // namespace
}  // namespace ringlog::failover_test
