// How a client (the library, ringlogctl, a node calling another node) proves
// who it is and checks whom it talks to: TLS with an optional client
// certificate, and a bearer token sent as `authorization: Bearer TOKEN` on
// every call.
//
//   ringlog::ClientSecurity s;
//   s.tls_ca = "ca.pem";          // verify the node's certificate (TLS on)
//   s.tls_cert = "app.pem";       // mutual TLS, where the node asks for it
//   s.tls_key = "app.key";
//   s.token_file = "token-app";   // or s.token = "..."
//   auto security = ringlog::ChannelSecurity::Load(s);
//   ringlog::ClientOptions o{.endpoints = {"node1:7400"}, .security = *security};
//
// Left unset, ClientOptions::security is the process's default: read from
// the environment once, like libpq's PGSSL* variables:
//   RINGLOG_TLS_CA, RINGLOG_TLS_CERT, RINGLOG_TLS_KEY, RINGLOG_TLS_SERVER_NAME,
//   RINGLOG_TOKEN (the token itself), RINGLOG_TOKEN_FILE.
// ringlogd sets its own default from its flags (--tls_ca, --tls_cert,
// --tls_key, --token_file) and again on SIGHUP.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace ringlog {

// Where the credentials come from: file names, and the token or its file.
struct ClientSecurity {
  std::string tls_ca;           // PEM: the CA of the nodes' certificates
  std::string tls_cert;         // PEM: this client's certificate chain
  std::string tls_key;          // PEM: its private key
  std::string tls_server_name;  // the name checked in the node's certificate
                                // instead of the host of the address
  std::string token;            // a bearer token
  std::string token_file;       // or the file holding it (its first line)

  // TLS is on when a CA or a client certificate is given.
  bool tls() const { return !tls_ca.empty() || !tls_cert.empty(); }
  // From RINGLOG_TLS_CA, ..., RINGLOG_TOKEN, RINGLOG_TOKEN_FILE.
  static ClientSecurity FromEnvironment();
};

// The credentials read and checked, ready to make channels. Immutable;
// shared between channels and threads.
class ChannelSecurity {
 public:
  // Reads the files. An error names the file and what is wrong with it.
  static absl::StatusOr<std::shared_ptr<const ChannelSecurity>> Load(const ClientSecurity& s);
  // Plaintext, no token.
  static std::shared_ptr<const ChannelSecurity> Insecure();

  bool tls() const { return tls_; }
  bool has_token() const { return !token_.empty(); }
  bool has_client_cert() const { return !cert_pem_.empty(); }
  // What is used, without any secret: "TLS (CA ca.pem, certificate app.pem),
  // token from token-app".
  const std::string& description() const { return description_; }

  std::shared_ptr<grpc::ChannelCredentials> credentials() const;
  // Adds what the channel needs beyond its credentials (the name override).
  void configure(grpc::ChannelArguments* args) const;
  // The interceptors that add the token to each call (none without one).
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
  interceptors() const;

 private:
  bool tls_ = false;
  std::string ca_pem_, cert_pem_, key_pem_, server_name_;
  std::string token_;
  std::string description_ = "plaintext";
};

// The security channels get when none is given: from the environment
// (ClientSecurity::FromEnvironment) on first use, unless set. If the
// environment names files that cannot be read, channels are made without
// them and the error is returned by default_channel_security_error(), which
// Client::Connect reports.
std::shared_ptr<const ChannelSecurity> default_channel_security();
absl::Status default_channel_security_error();
// Replaces the default (ringlogd: from its flags, at start and on SIGHUP).
// Channels made before keep what they had.
void set_default_channel_security(std::shared_ptr<const ChannelSecurity> s);

// A channel to `endpoint` with `security` (null: the default).
std::shared_ptr<grpc::Channel> make_secure_channel(const std::string& endpoint,
                                                   const grpc::ChannelArguments& args,
                                                   std::shared_ptr<const ChannelSecurity> security);

}  // namespace ringlog
