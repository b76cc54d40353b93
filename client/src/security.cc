#include "ringlog/security.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/support/client_interceptor.h"
#include "ringlog/tls_files.h"

namespace ringlog {
namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

// Adds `authorization: Bearer TOKEN` to each call's initial metadata. An
// interceptor rather than gRPC's AccessTokenCredentials, which gRPC sends
// only over TLS: a node may take tokens on a plaintext port (a private
// network, a TLS-terminating proxy), and says so at start.
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      m->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    m->Proceed();
  }

 private:
  const std::string* header_;  // owned by the factory, which the channel keeps
};

class TokenInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(const std::string& token) : header_("Bearer " + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(&header_);
  }

 private:
  const std::string header_;
};

struct DefaultSecurity {
  std::mutex mu;
  bool loaded = false;
  std::shared_ptr<const ChannelSecurity> security;
  absl::Status error;
};

DefaultSecurity& default_security() {
  static auto* d = new DefaultSecurity;  // never destroyed: used by channels until exit
  return *d;
}

}  // namespace

ClientSecurity ClientSecurity::FromEnvironment() {
  ClientSecurity s;
  s.tls_ca = env_or_empty("RINGLOG_TLS_CA");
  s.tls_cert = env_or_empty("RINGLOG_TLS_CERT");
  s.tls_key = env_or_empty("RINGLOG_TLS_KEY");
  s.tls_server_name = env_or_empty("RINGLOG_TLS_SERVER_NAME");
  s.token = env_or_empty("RINGLOG_TOKEN");
  s.token_file = env_or_empty("RINGLOG_TOKEN_FILE");
  return s;
}

absl::StatusOr<std::shared_ptr<const ChannelSecurity>> ChannelSecurity::Load(
    const ClientSecurity& s) {
  auto out = std::make_shared<ChannelSecurity>();
  std::vector<std::string> parts;
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs its key and a key its certificate: give both "
        "tls_cert and tls_key");
  }
  if (s.tls()) {
    out->tls_ = true;
    std::vector<std::string> what;
    if (!s.tls_ca.empty()) {
      absl::StatusOr<std::string> ca = read_certificates(s.tls_ca);
      if (!ca.ok()) return ca.status();
      out->ca_pem_ = *std::move(ca);
      what.push_back("CA " + s.tls_ca);
    } else {
      what.push_back("the system's CAs");
    }
    if (!s.tls_cert.empty()) {
      absl::StatusOr<KeyPair> pair = read_key_pair(s.tls_cert, s.tls_key);
      if (!pair.ok()) return pair.status();
      out->cert_pem_ = std::move(pair->cert_pem);
      out->key_pem_ = std::move(pair->key_pem);
      what.push_back("certificate " + s.tls_cert);
    }
    out->server_name_ = s.tls_server_name;
    if (!s.tls_server_name.empty()) what.push_back("server name " + s.tls_server_name);
    parts.push_back(absl::StrCat("TLS (", absl::StrJoin(what, ", "), ")"));
  } else {
    parts.push_back("plaintext");
  }
  if (!s.token.empty()) {
    out->token_ = std::string(absl::StripAsciiWhitespace(s.token));
    parts.push_back("token");
  } else if (!s.token_file.empty()) {
    absl::StatusOr<std::string> t = read_token_file(s.token_file);
    if (!t.ok()) return t.status();
    out->token_ = *std::move(t);
    parts.push_back("token from " + s.token_file);
  }
  out->description_ = absl::StrJoin(parts, ", ");
  return std::shared_ptr<const ChannelSecurity>(std::move(out));
}

std::shared_ptr<const ChannelSecurity> ChannelSecurity::Insecure() {
  static const auto* insecure = new std::shared_ptr<const ChannelSecurity>(
      std::make_shared<ChannelSecurity>());
  return *insecure;
}

std::shared_ptr<grpc::ChannelCredentials> ChannelSecurity::credentials() const {
  if (!tls_) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ca_pem_;  // empty: gRPC's default roots
  o.pem_cert_chain = cert_pem_;
  o.pem_private_key = key_pem_;
  return grpc::SslCredentials(o);
}

void ChannelSecurity::configure(grpc::ChannelArguments* args) const {
  if (tls_ && !server_name_.empty()) args->SetSslTargetNameOverride(server_name_);
}

std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
ChannelSecurity::interceptors() const {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> out;
  if (!token_.empty()) out.push_back(std::make_unique<TokenInterceptorFactory>(token_));
  return out;
}

std::shared_ptr<const ChannelSecurity> default_channel_security() {
  DefaultSecurity& d = default_security();
  std::lock_guard l(d.mu);
  if (!d.loaded) {
    d.loaded = true;
    absl::StatusOr<std::shared_ptr<const ChannelSecurity>> s =
        ChannelSecurity::Load(ClientSecurity::FromEnvironment());
    if (s.ok()) {
      d.security = *std::move(s);
    } else {
      d.error = absl::Status(s.status().code(),
                             absl::StrCat("the environment's credentials (RINGLOG_TLS_*, "
                                          "RINGLOG_TOKEN*): ", s.status().message()));
      d.security = ChannelSecurity::Insecure();
    }
  }
  return d.security;
}

absl::Status default_channel_security_error() {
  (void)default_channel_security();
  DefaultSecurity& d = default_security();
  std::lock_guard l(d.mu);
  return d.error;
}

void set_default_channel_security(std::shared_ptr<const ChannelSecurity> s) {
  DefaultSecurity& d = default_security();
  std::lock_guard l(d.mu);
  d.loaded = true;
  d.error = absl::OkStatus();
  d.security = std::move(s);
}

std::shared_ptr<grpc::Channel> make_secure_channel(const std::string& endpoint,
                                                   const grpc::ChannelArguments& args,
                                                   std::shared_ptr<const ChannelSecurity> security) {
  if (!security) security = default_channel_security();
  grpc::ChannelArguments a = args;
  security->configure(&a);
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      endpoint, security->credentials(), a, security->interceptors());
}

}  // namespace ringlog
