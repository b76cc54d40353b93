// Who may call a node, and over what: TLS on the gRPC port (mutual TLS with
// --tls_client_ca), bearer tokens with roles (--auth_tokens), the node's own
// credentials for the calls it makes (--tls_ca, --tls_cert, --token_file),
// all read again on SIGHUP.
//
// The tokens file (--auth_tokens) holds one entry per line:
//
//   # TOKEN                          ROLES                [name=NAME] [expires=TIME]
//   9f86d081884c7d659a2feaa0c55ad015  append,replay        name=orders
//   2c26b46b68ffc68ff99b453c1d304134  replicate,replay     name=node
//   cert:ops-laptop                   admin,replay
//
// ROLES is a comma-separated list of append, replay, admin and replicate,
// or `all`; TIME is RFC 3339 (2027-01-31T00:00:00Z). A `cert:NAME` entry
// gives its roles to a verified client certificate whose common name or a
// DNS name is NAME. Without --auth_tokens, a node with --tls_client_ca
// trusts every certificate its CA signed with every role.
//
// Each call needs a role: Append `append`, Replay `replay`, GetStatus
// `replay` or `admin`, Promote and Admin.Follow `admin`, Replication.Follow
// `replicate`. The health service needs none (probes). A caller's roles are
// those of its token and of its certificate together. No credentials is
// UNAUTHENTICATED, an unknown or expired token too; a missing role is
// PERMISSION_DENIED. Messages name what is missing and never a secret.
//
// Tokens are kept as SHA-256 digests and compared in constant time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/server_credentials.h"

namespace ringlog {

// The roles a caller may hold, as bits of Roles.
using Roles = uint8_t;
inline constexpr Roles kRoleAppend = 1;
inline constexpr Roles kRoleReplay = 2;
inline constexpr Roles kRoleAdmin = 4;
inline constexpr Roles kRoleReplicate = 8;
inline constexpr Roles kAllRoles = 15;

// "append,replay", in that order; "none" for 0.
std::string roles_string(Roles r);

// A parsed --auth_tokens file.
struct AccessTable {
  struct Token {
    std::array<uint8_t, 32> digest{};  // SHA-256 of the token
    Roles roles = 0;
    std::string name;  // name=, or "line N of FILE": what messages and logs say
    absl::Time expires = absl::InfiniteFuture();
  };
  struct Cert {
    std::string name;
    Roles roles = 0;
  };
  std::vector<Token> tokens;
  std::vector<Cert> certs;

  // Errors read "SOURCE:LINE: what is wrong", without the line's token.
  static absl::StatusOr<AccessTable> Parse(absl::string_view text, absl::string_view source);
};

struct SecurityOptions {
  std::string tls_cert, tls_key;  // serve TLS
  std::string tls_client_ca;      // require client certificates from this CA
  std::string tls_ca;             // verify the nodes this one calls
  std::string auth_tokens;        // the tokens file
  std::string token_file;         // this node's own token
  std::string stage_dir;          // where the files gRPC watches are written
};

// What authorize() found: the caller's roles and how it proved them, kept
// by long streams to check again after a reload.
struct Grant {
  Roles roles = kAllRoles;
  std::string who;  // "token orders", "certificate CN=app", "anyone"
  std::array<uint8_t, 32> token_digest{};
  bool has_token = false;
  std::vector<std::string> cert_names;  // of a verified client certificate
  Roles cert_roles = 0;
  uint64_t generation = 0;
};

class Security;

// The credentials a stream was admitted with, checked again before each
// message it takes or sends, so that a token revoked by a reload ends the
// streams that carry it. Default: nothing checked.
struct StreamAuth {
  const Security* security = nullptr;
  Grant grant;
  Roles need = 0;
  const char* method = "";
  grpc::Status check();
};

class Security {
 public:
  // Reads and checks every file; the error names the flag and the file.
  static absl::StatusOr<std::unique_ptr<Security>> Open(const SecurityOptions& o);
  ~Security();

  // Stages the server's certificate for gRPC (in stage_dir, which the node
  // must own: after the data directory is locked). Before server_credentials().
  absl::Status start_tls();

  // The gRPC port's credentials: TLS whose certificates follow reload(), or
  // plaintext.
  std::shared_ptr<grpc::ServerCredentials> server_credentials() const;

  // SIGHUP: reads every file again. On an error the node keeps what it had
  // (and says what is wrong); on success new handshakes and new calls see
  // the new files, and calls already open go on.
  absl::Status reload();

  // OK (with the grant) if the call's credentials carry one of `need`; else
  // UNAUTHENTICATED or PERMISSION_DENIED naming what is missing.
  grpc::Status authorize(grpc::ServerContextBase* ctx, Roles need, absl::string_view method,
                         Grant* grant = nullptr) const;
  // A grant checked again after a reload: its token may be gone or expired,
  // its certificate's entry removed.
  // Cheap while nothing was reloaded (one atomic load).
  grpc::Status still_valid(Grant* grant, Roles need, absl::string_view method) const;

  bool tls() const { return !options_.tls_cert.empty(); }
  bool enforcing() const { return enforcing_; }
  // One line for the start log, without secrets.
  std::string describe() const;

 private:
  explicit Security(SecurityOptions o);
  absl::Status load_all(bool first);
  absl::Status stage_server_files();

  const SecurityOptions options_;
  bool enforcing_ = false;
  mutable std::mutex mu_;
  std::shared_ptr<const AccessTable> table_;  // null without --auth_tokens
  std::string server_subject_;
  absl::Time server_not_after_;
  std::atomic<uint64_t> generation_{1};
  uint64_t stage_serial_ = 0;
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider_;
};

inline grpc::Status StreamAuth::check() {
  return security == nullptr ? grpc::Status::OK : security->still_valid(&grant, need, method);
}

}  // namespace ringlog
