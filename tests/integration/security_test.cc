// TLS, mutual TLS, tokens and roles, against real ringlogd processes with
// certificates made at test time (kit/pki.h): who gets in, with what
// status and message, what a SIGHUP changes and what it must not stop.
// Every client here is given its credentials explicitly, so the
// environment's (RINGLOG_TLS_*, RINGLOG_TOKEN*) play no part.
#include <signal.h>

#include <chrono>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "harness.h"
#include "kit/pki.h"
#include "ringlog/security.h"

namespace ringlog::testing {
namespace {

// Tokens of at least 16 characters, as the node requires.
constexpr char kAdminToken[] = "admin-0123456789abcdef-secret";
constexpr char kReplayToken[] = "replay-0123456789abcdef-secret";
constexpr char kAppendToken[] = "append-0123456789abcdef-secret";
constexpr char kExpiredToken[] = "expired-0123456789abcdef-secret";
constexpr char kReplicaToken[] = "replica-0123456789abcdef-secret";
constexpr char kWeakReplicaToken[] = "weakreplica-0123456789abcdef-secret";
constexpr char kUnknownToken[] = "unknown-0123456789abcdef-secret";

std::string tokens_text() {
  return absl::StrCat(kAdminToken, " all name=ops\n",                          //
                      kReplayToken, " replay name=reader\n",                   //
                      kAppendToken, " append name=writer\n",                   //
                      kExpiredToken, " all name=old expires=2020-01-01T00:00:00Z\n",
                      kReplicaToken, " replicate,replay name=replica\n",       //
                      kWeakReplicaToken, " replay name=weak-replica\n");
}

bool is_code(const grpc::Status& s, grpc::StatusCode c) { return s.error_code() == c; }

std::string show(const grpc::Status& s) {
  return absl::StrCat("code ", s.error_code(), ": ", s.error_message());
}

std::chrono::system_clock::time_point in(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

class IntegrationSecurity : public NodeTest {
 protected:
  testkit::Pki& pki() {
    if (!pki_) pki_ = std::make_unique<testkit::Pki>(dir() + "/pki");
    return *pki_;
  }

  // Credentials for a client; the test fails (throws) if they do not load.
  static std::shared_ptr<const ChannelSecurity> creds(const ClientSecurity& s) {
    absl::StatusOr<std::shared_ptr<const ChannelSecurity>> c = ChannelSecurity::Load(s);
    if (!c.ok()) throw std::runtime_error("client credentials: " + c.status().ToString());
    return *c;
  }
  std::shared_ptr<const ChannelSecurity> tls(const std::string& token = "") {
    return creds({.tls_ca = pki().ca(), .token = token});
  }
  static std::shared_ptr<const ChannelSecurity> plain(const std::string& token = "") {
    return creds({.token = token});
  }

  std::string tokens_file() {
    const std::string path = dir() + "/tokens";
    if (!std::filesystem::exists(path)) testkit::write_file_atomically(path, tokens_text());
    return path;
  }
  std::string token_file(const std::string& name, const std::string& token) {
    const std::string path = dir() + "/" + name;
    testkit::write_file_atomically(path, token + "\n");
    return path;
  }
  static std::vector<std::string> tls_flags(const testkit::CertFiles& c) {
    return {"--tls_cert=" + c.cert, "--tls_key=" + c.key};
  }

  // One call of each kind on a fresh channel to `address`; their statuses.
  static grpc::Status get_status(const std::string& address,
                                 std::shared_ptr<const ChannelSecurity> s) {
    auto stub = v1::Admin::NewStub(make_channel(address, std::move(s)));
    grpc::ClientContext ctx;
    ctx.set_deadline(in(absl::Seconds(10)));
    v1::NodeStatus out;
    return stub->GetStatus(&ctx, v1::GetStatusRequest(), &out);
  }
  static grpc::Status promote(const std::string& address, std::shared_ptr<const ChannelSecurity> s) {
    auto stub = v1::Admin::NewStub(make_channel(address, std::move(s)));
    grpc::ClientContext ctx;
    ctx.set_deadline(in(absl::Seconds(10)));
    v1::PromoteResponse out;
    return stub->Promote(&ctx, v1::PromoteRequest(), &out);
  }
  static grpc::Status admin_follow(const std::string& address,
                                   std::shared_ptr<const ChannelSecurity> s) {
    auto stub = v1::Admin::NewStub(make_channel(address, std::move(s)));
    grpc::ClientContext ctx;
    ctx.set_deadline(in(absl::Seconds(10)));
    v1::FollowCommand req;
    req.set_primary("127.0.0.1:1");
    v1::FollowCommandResponse out;
    return stub->Follow(&ctx, req, &out);
  }
  // An Append stream that sends nothing: refused at once, or ended by the
  // half-close.
  static grpc::Status append_call(const std::string& address,
                                  std::shared_ptr<const ChannelSecurity> s) {
    auto stub = v1::EventLog::NewStub(make_channel(address, std::move(s)));
    grpc::ClientContext ctx;
    ctx.set_deadline(in(absl::Seconds(10)));
    auto rw = stub->Append(&ctx);
    rw->WritesDone();
    v1::AppendResponse r;
    while (rw->Read(&r)) {
    }
    return rw->Finish();
  }
  static grpc::Status replay_call(const std::string& address,
                                  std::shared_ptr<const ChannelSecurity> s) {
    return raw_replay(make_channel(address, std::move(s)), v1::ReplayRequest(), absl::Seconds(10))
        .status;
  }

  std::unique_ptr<Client> connect_with(const tools::NodeProcess& n,
                                       std::shared_ptr<const ChannelSecurity> s) {
    ClientOptions o;
    o.security = std::move(s);
    o.connect_timeout = absl::Seconds(10);
    return connect(n, o);
  }

  // How many times the node's output says `text` so far.
  size_t count_in_output(const std::string& text, int i = 0) const {
    const std::string out = output(i);
    size_t n = 0;
    for (size_t p = out.find(text); p != std::string::npos; p = out.find(text, p + 1)) ++n;
    return n;
  }

 private:
  std::unique_ptr<testkit::Pki> pki_;
};

// ---- TLS ----

TEST_F(IntegrationSecurity, PlaintextClientToTlsNodeFailsAndTlsClientsGoOn) {
  tools::NodeProcess& n = start_node(tls_flags(pki().node("node")));
  const grpc::Status plaintext = get_status(n.address(), plain());
  EXPECT_TRUE(is_code(plaintext, grpc::StatusCode::UNAVAILABLE)) << show(plaintext);
  // The plaintext attempt did not hurt the node: TLS clients get in, before and after.
  std::unique_ptr<Client> c = connect_with(n, tls());
  append_numbered(*c, 0, 0, 100);
  EXPECT_TRUE(is_code(get_status(n.address(), plain()), grpc::StatusCode::UNAVAILABLE));
  EXPECT_TRUE(get_status(n.address(), tls()).ok());
  EXPECT_EQ(replay_all(*c, {}).events.size(), 100u);
}

TEST_F(IntegrationSecurity, ClientTrustingAnotherCaFails) {
  tools::NodeProcess& n = start_node(tls_flags(pki().node("node")));
  const grpc::Status s = get_status(n.address(), creds({.tls_ca = pki().other_ca()}));
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAVAILABLE)) << show(s);
  EXPECT_TRUE(get_status(n.address(), tls()).ok());
}

TEST_F(IntegrationSecurity, ServerNameMustMatchUnlessOverriddenWithOneTheCertificateHas) {
  // A certificate for node.example only: not for the address the client dials.
  testkit::CertSpec spec{.common_name = "node.example", .dns = {"node.example"}};
  tools::NodeProcess& n = start_node(tls_flags(pki().issue(spec)));
  grpc::Status s = get_status(n.address(), tls());
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAVAILABLE)) << show(s);
  s = get_status(n.address(), creds({.tls_ca = pki().ca(), .tls_server_name = "other.example"}));
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAVAILABLE)) << show(s);
  s = get_status(n.address(), creds({.tls_ca = pki().ca(), .tls_server_name = "node.example"}));
  EXPECT_TRUE(s.ok()) << show(s);
}

TEST_F(IntegrationSecurity, MutualTlsNeedsAClientCertificateFromTheCa) {
  const testkit::CertFiles node_cert = pki().node("node");
  std::vector<std::string> flags = tls_flags(node_cert);
  flags.push_back("--tls_client_ca=" + pki().ca());
  tools::NodeProcess& n = start_node(flags);

  grpc::Status s = get_status(n.address(), tls());
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAVAILABLE)) << "no client certificate: " << show(s);
  testkit::CertSpec untrusted{.common_name = "app", .other_ca = true};
  const testkit::CertFiles other = pki().issue(untrusted);
  s = get_status(n.address(), creds({.tls_ca = pki().ca(), .tls_cert = other.cert, .tls_key = other.key}));
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAVAILABLE)) << "another CA's certificate: " << show(s);
  testkit::CertSpec old{.common_name = "app", .expired = true};
  const testkit::CertFiles expired = pki().issue(old);
  s = get_status(n.address(), creds({.tls_ca = pki().ca(), .tls_cert = expired.cert, .tls_key = expired.key}));
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAVAILABLE)) << "an expired certificate: " << show(s);

  const testkit::CertFiles app = pki().client("app");
  const auto good = creds({.tls_ca = pki().ca(), .tls_cert = app.cert, .tls_key = app.key});
  s = get_status(n.address(), good);
  EXPECT_TRUE(s.ok()) << show(s);
  // Without --auth_tokens a certificate the CA signed has every role.
  std::unique_ptr<Client> c = connect_with(n, good);
  append_numbered(*c, 0, 0, 50);
  EXPECT_EQ(replay_all(*c, {}).events.size(), 50u);
}

// ---- Tokens ----

TEST_F(IntegrationSecurity, MissingWrongExpiredAndRevokedTokensAreUnauthenticated) {
  std::vector<std::string> flags = tls_flags(pki().node("node"));
  flags.push_back("--auth_tokens=" + tokens_file());
  tools::NodeProcess& n = start_node(flags);
  const std::string address = n.address();

  grpc::Status s = get_status(address, tls());
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAUTHENTICATED)) << "no token: " << show(s);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "GetStatus")) << show(s);
  s = get_status(address, tls(kUnknownToken));
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAUTHENTICATED)) << "unknown token: " << show(s);
  EXPECT_FALSE(absl::StrContains(s.error_message(), kUnknownToken)) << show(s);
  s = append_call(address, tls(kExpiredToken));
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAUTHENTICATED)) << "expired token: " << show(s);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "expired")) << show(s);
  EXPECT_FALSE(absl::StrContains(s.error_message(), kExpiredToken)) << show(s);
  EXPECT_TRUE(get_status(address, tls(kAdminToken)).ok());
  EXPECT_TRUE(get_status(address, tls(kReplayToken)).ok());

  // Revoked: the admin token's line goes from the file, then SIGHUP.
  std::string text = tokens_text();
  text.erase(0, text.find('\n') + 1);
  ASSERT_TRUE(absl::StrContains(tokens_text(), kAdminToken) && !absl::StrContains(text, kAdminToken));
  testkit::write_file_atomically(tokens_file(), text);
  ASSERT_EQ(::kill(n.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until(
      [&] { return is_code(get_status(address, tls(kAdminToken)), grpc::StatusCode::UNAUTHENTICATED); },
      absl::Seconds(20)))
      << "the revoked token still works: " << show(get_status(address, tls(kAdminToken)));
  s = append_call(address, tls(kAdminToken));
  EXPECT_TRUE(is_code(s, grpc::StatusCode::UNAUTHENTICATED)) << show(s);
  EXPECT_FALSE(absl::StrContains(s.error_message(), kAdminToken)) << show(s);
  EXPECT_TRUE(get_status(address, tls(kReplayToken)).ok()) << "a token still in the file";
  EXPECT_FALSE(absl::StrContains(output(), kAdminToken)) << "the node logged a token";
  EXPECT_FALSE(absl::StrContains(output(), kReplayToken)) << "the node logged a token";
}

TEST_F(IntegrationSecurity, ReplayTokenReadsButCannotAppendPromoteOrFollow) {
  tools::NodeProcess& n = start_node({"--auth_tokens=" + tokens_file()});
  const std::string address = n.address();
  std::unique_ptr<Client> admin = connect_with(n, plain(kAdminToken));
  append_numbered(*admin, 0, 0, 20);

  const auto reader = plain(kReplayToken);
  grpc::Status s = append_call(address, reader);
  EXPECT_TRUE(is_code(s, grpc::StatusCode::PERMISSION_DENIED)) << "Append: " << show(s);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "append")) << show(s);
  s = promote(address, reader);
  EXPECT_TRUE(is_code(s, grpc::StatusCode::PERMISSION_DENIED)) << "Promote: " << show(s);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "admin")) << show(s);
  s = admin_follow(address, reader);
  EXPECT_TRUE(is_code(s, grpc::StatusCode::PERMISSION_DENIED)) << "Admin.Follow: " << show(s);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "admin")) << show(s);
  EXPECT_FALSE(absl::StrContains(s.error_message(), kReplayToken)) << show(s);

  EXPECT_TRUE(get_status(address, reader).ok());
  std::unique_ptr<Client> c = connect_with(n, reader);
  EXPECT_EQ(replay_all(*c, {}).events.size(), 20u);
  EXPECT_EQ(status(*c).role(), v1::ROLE_PRIMARY) << "the refused Promote and Follow changed nothing";
}

TEST_F(IntegrationSecurity, AppendTokenAppendsThroughSeveralEndpointsButCannotReplay) {
  tools::NodeProcess& n = start_node({"--auth_tokens=" + tokens_file()});
  const auto writer = plain(kAppendToken);
  // With several endpoints the appender asks each for its status, which an
  // append token may not read: it must still find where to append.
  ClientOptions o;
  o.endpoints = {n.address(), "127.0.0.1:1"};
  o.security = writer;
  o.connect_timeout = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
  ASSERT_TRUE(c.ok()) << c.status();
  append_numbered(**c, 0, 0, 100);

  const grpc::Status s = replay_call(n.address(), writer);
  EXPECT_TRUE(is_code(s, grpc::StatusCode::PERMISSION_DENIED)) << show(s);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "replay")) << show(s);
  std::unique_ptr<Client> reader = connect_with(n, plain(kReplayToken));
  EXPECT_EQ(replay_all(*reader, {}).events.size(), 100u);
}

TEST_F(IntegrationSecurity, HealthAnswersWithoutCredentials) {
  std::vector<std::string> flags = tls_flags(pki().node("node"));
  flags.push_back("--auth_tokens=" + tokens_file());
  tools::NodeProcess& n = start_node(flags);
  std::shared_ptr<grpc::Channel> ch = make_channel(n.address(), tls());
  const GenericResult r = generic_call(ch, "/grpc.health.v1.Health/Check", "");
  ASSERT_TRUE(r.status.ok()) << show(r.status);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0], std::string("\x08\x01", 2)) << "HealthCheckResponse{status: SERVING}";
  // The same channel, without a token, is refused the node's own services.
  EXPECT_TRUE(is_code(get_status(n.address(), tls()), grpc::StatusCode::UNAUTHENTICATED));
}

// ---- Streams already open ----

TEST_F(IntegrationSecurity, RevokedTokensEndTheirOpenStreamsBeforeTheNextMessage) {
  tools::NodeProcess& n = start_node({"--auth_tokens=" + tokens_file()});
  const std::string address = n.address();
  std::unique_ptr<Client> admin = connect_with(n, plain(kAdminToken));
  append_numbered(*admin, 0, 0, 10);
  std::unique_ptr<Client> reader = connect_with(n, plain(kReplayToken));
  BackgroundReplay follow(*reader, {.follow = true});
  ASSERT_TRUE(wait_until([&] { return follow.count() == 10; }, absl::Seconds(30)));
  RawAppendStream writer(make_channel(address, plain(kAppendToken)), absl::Seconds(60));
  ASSERT_TRUE(writer.send(1, testkit::encode_events(1, 0, 5, kTestPayloadBytes)));
  ASSERT_TRUE(writer.wait_acks(1)) << "the append token could not append before the revocation";
  ASSERT_TRUE(wait_until([&] { return follow.count() == 15; }, absl::Seconds(30)));

  // Both tokens leave the file; the admin token stays.
  std::string text;
  for (absl::string_view line : absl::StrSplit(tokens_text(), '\n')) {
    if (!absl::StartsWith(line, kReplayToken) && !absl::StartsWith(line, kAppendToken)) {
      absl::StrAppend(&text, line, "\n");
    }
  }
  testkit::write_file_atomically(tokens_file(), text);
  ASSERT_EQ(::kill(n.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until(
      [&] { return is_code(get_status(address, plain(kReplayToken)), grpc::StatusCode::UNAUTHENTICATED); },
      absl::Seconds(20)));

  append_numbered(*admin, 0, 10, 10);
  EXPECT_TRUE(wait_until([&] { return follow.ended(); }, absl::Seconds(20)))
      << "the replay of a revoked token goes on; it has " << follow.count() << " events";
  EXPECT_EQ(follow.count(), 15u) << "events appended after the revocation reached the revoked token";
  const absl::Status replay_end = follow.stop();
  EXPECT_TRUE(absl::IsUnauthenticated(replay_end)) << replay_end;
  EXPECT_FALSE(absl::StrContains(replay_end.message(), kReplayToken)) << replay_end;

  ASSERT_TRUE(writer.send(2, testkit::encode_events(1, 5, 5, kTestPayloadBytes)));
  std::optional<grpc::Status> append_end = writer.wait_end(absl::Seconds(20));
  ASSERT_TRUE(append_end.has_value()) << "the append stream of a revoked token goes on";
  EXPECT_TRUE(is_code(*append_end, grpc::StatusCode::UNAUTHENTICATED)) << show(*append_end);
  EXPECT_EQ(writer.acks().size(), 1u) << "a batch sent after the revocation was acknowledged";
  EXPECT_EQ(replay_all(*admin, {}).events.size(), 25u) << "10 + 5 from the writer + 10";
}

TEST_F(IntegrationSecurity, AnExpiringTokenEndsItsOpenStream) {
  // A token that expires a few seconds from now, with no reload in between.
  const absl::Time expires = absl::Now() + absl::Seconds(8);
  const std::string short_lived = "shortlived-0123456789abcdef-secret";
  testkit::write_file_atomically(
      tokens_file(), absl::StrCat(tokens_text(), short_lived, " replay name=short expires=",
                                  absl::FormatTime(absl::RFC3339_sec, expires, absl::UTCTimeZone()),
                                  "\n"));
  tools::NodeProcess& n = start_node({"--auth_tokens=" + tokens_file()});
  std::unique_ptr<Client> admin = connect_with(n, plain(kAdminToken));
  append_numbered(*admin, 0, 0, 10);
  std::unique_ptr<Client> reader = connect_with(n, plain(short_lived));
  BackgroundReplay follow(*reader, {.follow = true});
  ASSERT_TRUE(wait_until([&] { return follow.count() == 10; }, absl::Seconds(6)))
      << "too slow to test before the token expires";
  // Await the expiry as the node sees it: a new call with the token fails.
  ASSERT_TRUE(wait_until(
      [&] { return is_code(get_status(n.address(), plain(short_lived)), grpc::StatusCode::UNAUTHENTICATED); },
      absl::Seconds(20)));
  append_numbered(*admin, 0, 10, 10);
  EXPECT_TRUE(wait_until([&] { return follow.ended(); }, absl::Seconds(10)))
      << "the replay of an expired token goes on; it has " << follow.count() << " events";
  EXPECT_EQ(follow.count(), 10u) << "events appended after the expiry reached the expired token";
}

TEST_F(IntegrationSecurity, ReplicaWhoseTokenIsRevokedStopsFollowing) {
  // The primary has a tokens file of its own, to revoke the replica's token there only.
  const std::string primary_tokens = dir() + "/primary-tokens";
  testkit::write_file_atomically(primary_tokens, tokens_text());
  tools::NodeProcess& p = start_node({"--role=primary", "--auth_tokens=" + primary_tokens}, 0);
  const std::string primary = p.address();
  const auto admin = plain(kAdminToken);
  std::unique_ptr<Client> c = connect_with(p, admin);
  append_numbered(*c, 0, 0, 10);
  const std::string replica =
      start_node({"--role=replica", "--primary=" + primary, "--auth_tokens=" + tokens_file(),
                  "--token_file=" + token_file("replica-token", kReplicaToken)},
                 1)
          .address();
  testkit::Channels channels(admin);
  ASSERT_TRUE(testkit::wait_converged(channels, primary, {replica}, absl::Seconds(60), {}));

  std::string text;
  for (absl::string_view line : absl::StrSplit(tokens_text(), '\n')) {
    if (!absl::StartsWith(line, kReplicaToken) && !line.empty()) absl::StrAppend(&text, line, "\n");
  }
  testkit::write_file_atomically(primary_tokens, text);
  ASSERT_EQ(::kill(p.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return count_in_output("credentials reloaded", 0) == 1; },
                         absl::Seconds(20)));
  // The open stream ends at the replica's next message (its ack of what
  // comes next); the replica's new calls are refused.
  append_numbered(*c, 0, 10, 10);
  std::string error;
  EXPECT_TRUE(wait_until(
      [&] {
        absl::StatusOr<v1::NodeStatus> s = channels.status(replica);
        error = s.ok() ? s->replication_error() : s.status().ToString();
        return absl::StrContains(error, "UNAUTHENTICATED");
      },
      absl::Seconds(30)))
      << "the replica whose token was revoked says: " << error;
  EXPECT_FALSE(absl::StrContains(error, kReplicaToken)) << error;
}

// ---- Replication ----

TEST_F(IntegrationSecurity, ReplicaNeedsTheReplicateRoleToFollow) {
  tools::NodeProcess& p = start_node({"--role=primary", "--auth_tokens=" + tokens_file()}, 0);
  const std::string primary = p.address();
  const auto admin = plain(kAdminToken);
  std::unique_ptr<Client> c = connect_with(p, admin);
  append_numbered(*c, 0, 0, 50);

  const std::vector<std::string> replica_flags = {"--role=replica", "--primary=" + primary,
                                                  "--auth_tokens=" + tokens_file()};
  std::vector<std::string> weak = replica_flags;
  weak.push_back("--token_file=" + token_file("weak-token", kWeakReplicaToken));
  const std::string replica = start_node(weak, 1).address();
  testkit::Channels channels(admin);
  std::string error;
  ASSERT_TRUE(wait_until(
      [&] {
        absl::StatusOr<v1::NodeStatus> s = channels.status(replica);
        error = s.ok() ? s->replication_error() : s.status().ToString();
        return absl::StrContains(error, "PERMISSION_DENIED") && absl::StrContains(error, "replicate");
      },
      absl::Seconds(30)))
      << "the replica without the replicate role says: " << error;
  EXPECT_FALSE(absl::StrContains(error, kWeakReplicaToken)) << error;
  absl::StatusOr<v1::NodeStatus> rs = channels.status(replica);
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->applied_offset(), 0u) << "it copied the log without the role";

  std::vector<std::string> good = replica_flags;
  good.push_back("--token_file=" + token_file("replica-token", kReplicaToken));
  ASSERT_TRUE(node(1).stop(SIGTERM).ok());
  const std::string replica2 = start_node(good, 1).address();
  append_numbered(*c, 0, 50, 50);
  EXPECT_TRUE(testkit::wait_converged(channels, primary, {replica2}, absl::Seconds(60), {}));
}

TEST_F(IntegrationSecurity, ReplicationOverMutualTls) {
  const testkit::CertFiles pc = pki().node("primary");
  const testkit::CertFiles rc = pki().node("replica");
  const std::string ca = "--tls_client_ca=" + pki().ca();
  tools::NodeProcess& p =
      start_node({"--role=primary", "--min_replica_acks=1", "--tls_cert=" + pc.cert,
                  "--tls_key=" + pc.key, ca},
                 0);
  const std::string primary = p.address();
  const std::string replica =
      start_node({"--role=replica", "--primary=" + primary, "--tls_cert=" + rc.cert,
                  "--tls_key=" + rc.key, ca},
                 1)
          .address();
  const testkit::CertFiles app = pki().client("app");
  const auto client = creds({.tls_ca = pki().ca(), .tls_cert = app.cert, .tls_key = app.key});
  testkit::Channels channels(client);
  // Wait for the replica first: with min_replica_acks=1 nothing is
  // acknowledged before a replica streams.
  ASSERT_TRUE(wait_until(
      [&] {
        absl::StatusOr<v1::NodeStatus> s = channels.status(replica);
        return s.ok() && s->replica_state() == v1::REPLICA_STATE_STREAMING;
      },
      absl::Seconds(30)))
      << "the replica never streamed over mutual TLS";
  std::unique_ptr<Client> c = connect_with(p, client);
  append_numbered(*c, 0, 0, 300);
  EXPECT_TRUE(testkit::wait_converged(channels, primary, {replica}, absl::Seconds(60), {}));
  std::unique_ptr<Client> from_replica = connect_with(node(1), client);
  EXPECT_EQ(replay_all(*from_replica, {}).events.size(), 300u);
}

// ---- SIGHUP ----

TEST_F(IntegrationSecurity, CertificateRotationReachesNewConnectionsAndOpenStreamsGoOn) {
  const testkit::CertFiles a = pki().node("node-a");
  const testkit::CertFiles b = pki().node("node-b");
  // The node is given paths whose contents are replaced: how certificates
  // are renewed in place.
  const testkit::CertFiles live{dir() + "/live.pem", dir() + "/live.key"};
  testkit::write_file_atomically(live.cert, testkit::read_file(a.cert));
  testkit::write_file_atomically(live.key, testkit::read_file(a.key));
  tools::NodeProcess& p = start_node({"--role=primary", "--tls_cert=" + live.cert,
                                      "--tls_key=" + live.key}, 0);
  const std::string primary = p.address();
  const int port = p.port();
  const testkit::CertFiles r = pki().node("replica");
  const std::string replica =
      start_node({"--role=replica", "--primary=" + primary, "--tls_cert=" + r.cert,
                  "--tls_key=" + r.key, "--tls_ca=" + pki().ca()},
                 1)
          .address();
  absl::StatusOr<std::string> cn = testkit::peer_certificate_cn(port);
  ASSERT_TRUE(cn.ok()) << cn.status();
  EXPECT_EQ(*cn, "node-a");

  std::unique_ptr<Client> c = connect_with(p, tls());
  testkit::Channels channels(tls());
  append_numbered(*c, 0, 0, 50);
  ASSERT_TRUE(testkit::wait_converged(channels, primary, {replica}, absl::Seconds(60), {}));
  BackgroundReplay follow(*c, {.follow = true});
  ASSERT_TRUE(wait_until([&] { return follow.count() == 50; }, absl::Seconds(30)));

  testkit::write_file_atomically(live.cert, testkit::read_file(b.cert));
  testkit::write_file_atomically(live.key, testkit::read_file(b.key));
  ASSERT_EQ(::kill(p.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until(
      [&] {
        cn = testkit::peer_certificate_cn(port);
        return cn.ok() && *cn == "node-b";
      },
      absl::Seconds(20)))
      << "a new connection still sees " << (cn.ok() ? *cn : cn.status().ToString());
  EXPECT_TRUE(get_status(primary, tls()).ok()) << "a new TLS client does not trust the new certificate";

  append_numbered(*c, 0, 50, 50);
  EXPECT_TRUE(wait_until([&] { return follow.count() == 100; }, absl::Seconds(30)))
      << "the replay opened before the rotation has " << follow.count() << " of 100 events";
  EXPECT_FALSE(follow.ended()) << "the replay opened before the rotation ended";
  EXPECT_TRUE(testkit::wait_converged(channels, primary, {replica}, absl::Seconds(60), {}));
  // On the stream it opened before the rotation: the primary saw it follow once.
  EXPECT_EQ(count_in_output("follows from offset", 0), 1u) << output(0);
  EXPECT_TRUE(absl::StrContains(output(0), "credentials reloaded"));
  (void)follow.stop();
  absl::StatusOr<int> exit = node(0).stop(SIGTERM);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0);
}

TEST_F(IntegrationSecurity, SighupDoesNotStopTheNode) {
  tools::NodeProcess& n = start_node({"--auth_tokens=" + tokens_file()});
  std::unique_ptr<Client> c = connect_with(n, plain(kAdminToken));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(::kill(n.pid(), SIGHUP), 0);
    ASSERT_TRUE(wait_until([&] { return count_in_output("credentials reloaded") == size_t(i + 1); },
                           absl::Seconds(20)));
    append_numbered(*c, 0, i * 10, 10);
  }
  EXPECT_EQ(replay_all(*c, {}).events.size(), 30u);
  absl::StatusOr<int> exit = n.stop(SIGTERM);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0);
}

TEST_F(IntegrationSecurity, BadFilesOnSighupKeepTheOldCredentials) {
  const testkit::CertFiles a = pki().node("node-a");
  const testkit::CertFiles b = pki().node("node-b");
  const testkit::CertFiles live{dir() + "/live.pem", dir() + "/live.key"};
  testkit::write_file_atomically(live.cert, testkit::read_file(a.cert));
  testkit::write_file_atomically(live.key, testkit::read_file(a.key));
  tools::NodeProcess& n = start_node({"--tls_cert=" + live.cert, "--tls_key=" + live.key,
                                      "--auth_tokens=" + tokens_file()});
  const std::string address = n.address();

  // Garbage for tokens.
  testkit::write_file_atomically(tokens_file(), "this is not a tokens file\n");
  ASSERT_EQ(::kill(n.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return count_in_output("credentials not reloaded") == 1; },
                         absl::Seconds(20)))
      << output();
  EXPECT_TRUE(absl::StrContains(output(), "--auth_tokens")) << output();
  grpc::Status s = get_status(address, tls(kAdminToken));
  EXPECT_TRUE(s.ok()) << "the old tokens went with the bad file: " << show(s);

  // Good tokens again, but a key that does not match the certificate.
  testkit::write_file_atomically(tokens_file(), tokens_text());
  testkit::write_file_atomically(live.cert, testkit::read_file(b.cert));
  ASSERT_EQ(::kill(n.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return count_in_output("credentials not reloaded") == 2; },
                         absl::Seconds(20)))
      << output();
  EXPECT_TRUE(absl::StrContains(output(), "--tls_cert")) << output();
  s = get_status(address, tls(kAdminToken));
  EXPECT_TRUE(s.ok()) << show(s);
  absl::StatusOr<std::string> cn = testkit::peer_certificate_cn(n.port());
  ASSERT_TRUE(cn.ok()) << cn.status();
  EXPECT_EQ(*cn, "node-a") << "the node serves a certificate whose key it was not given";
  EXPECT_EQ(count_in_output("credentials reloaded"), 0u);
  EXPECT_FALSE(absl::StrContains(output(), kAdminToken)) << "the node logged a token";
}

// ---- Refusing to start ----

TEST_F(IntegrationSecurity, RefusesToStartWithBadSecurityFlags) {
  const testkit::CertFiles a = pki().node("a");
  const testkit::CertFiles b = pki().node("b");
  const std::string bad_tokens = dir() + "/bad-tokens";
  testkit::write_file_atomically(bad_tokens, absl::StrCat(kAdminToken, " append,superuser\n"));
  struct Case {
    std::vector<std::string> flags;
    std::vector<std::string> said;  // the message names these
  };
  const std::vector<Case> cases = {
      {{"--tls_cert=" + dir() + "/missing.pem", "--tls_key=" + a.key}, {"--tls_cert", "missing.pem"}},
      {{"--tls_cert=" + a.cert, "--tls_key=" + b.key}, {"--tls_cert"}},
      {{"--tls_client_ca=" + pki().ca()}, {"--tls_client_ca", "--tls_cert"}},
      {{"--auth_tokens=" + bad_tokens}, {"--auth_tokens", "superuser", "bad-tokens"}},
  };
  int i = 0;
  for (const Case& c : cases) {
    std::vector<std::string> argv = {kRinglogd, "--data_dir=" + dir() + "/refused" + std::to_string(i++),
                                     "--listen=127.0.0.1:0"};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    const CommandResult r = run_command(argv, {.merge_output = true});
    EXPECT_EQ(r.exit_code, 2) << c.flags[0] << ": " << r.out;
    for (const std::string& w : c.said) {
      EXPECT_TRUE(absl::StrContains(r.out, w)) << "no \"" << w << "\" in: " << r.out;
    }
    EXPECT_FALSE(absl::StrContains(r.out, kAdminToken)) << r.out;
  }
}

}  // namespace
}  // namespace ringlog::testing
