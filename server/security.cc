#include "security.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "ringlog/security.h"
#include "ringlog/tls_files.h"
#include "spdlog/spdlog.h"

namespace ringlog {
namespace {

constexpr struct {
  const char* name;
  Roles role;
} kRoleNames[] = {
    {"append", kRoleAppend},
    {"replay", kRoleReplay},
    {"admin", kRoleAdmin},
    {"replicate", kRoleReplicate},
};

std::array<uint8_t, 32> sha256(absl::string_view s) {
  std::array<uint8_t, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

absl::StatusOr<Roles> parse_roles(absl::string_view text) {
  Roles out = 0;
  for (absl::string_view r : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    if (r == "all") {
      out |= kAllRoles;
      continue;
    }
    bool known = false;
    for (const auto& n : kRoleNames) {
      if (r == n.name) {
        out |= n.role;
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown role \"", r, "\" (roles: append, replay, admin, replicate, all)"));
    }
  }
  if (out == 0) return absl::InvalidArgumentError("no roles given");
  return out;
}

// The bearer token of a call, if it has an authorization header.
absl::StatusOr<std::string> bearer_token(grpc::ServerContextBase* ctx, bool* present) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  *present = it != md.end();
  if (!*present) return std::string();
  const absl::string_view v(it->second.data(), it->second.size());
  constexpr absl::string_view kScheme = "bearer ";
  if (v.size() <= kScheme.size() || !absl::StartsWithIgnoreCase(v, kScheme)) {
    return absl::UnauthenticatedError(
        "the authorization header must be \"Bearer TOKEN\"");
  }
  return std::string(absl::StripAsciiWhitespace(v.substr(kScheme.size())));
}

// The names a verified client certificate goes by: its common name and its
// subject alternative names. Empty when the peer showed none (plaintext, or
// TLS without a client certificate).
std::vector<std::string> certificate_names(grpc::ServerContextBase* ctx) {
  std::vector<std::string> out;
  std::shared_ptr<const grpc::AuthContext> ac = ctx->auth_context();
  if (!ac || !ac->IsPeerAuthenticated()) return out;
  for (const char* prop : {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
    for (const grpc::string_ref& v : ac->FindPropertyValues(prop)) {
      out.emplace_back(v.data(), v.size());
    }
  }
  return out;
}

// The roles of a verified certificate going by `names`: those its entries
// in the tokens file give, or every role without a tokens file (mutual TLS
// alone: the CA is the authority).
Roles certificate_roles(const AccessTable* table, const std::vector<std::string>& names) {
  if (names.empty()) return 0;
  if (table == nullptr) return kAllRoles;
  Roles out = 0;
  for (const AccessTable::Cert& c : table->certs) {
    for (const std::string& n : names) {
      if (n == c.name) out |= c.roles;
    }
  }
  return out;
}

absl::Status write_private_file(const std::string& path, const std::string& data) {
  std::FILE* f = std::fopen(path.c_str(), "wbx");
  if (f == nullptr) return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  (void)fchmod(fileno(f), 0600);
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  if (std::fclose(f) != 0 || !ok) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

std::string roles_string(Roles r) {
  std::vector<std::string> names;
  for (const auto& n : kRoleNames) {
    if (r & n.role) names.push_back(n.name);
  }
  return names.empty() ? "none" : absl::StrJoin(names, ",");
}

absl::StatusOr<AccessTable> AccessTable::Parse(absl::string_view text, absl::string_view source) {
  AccessTable t;
  int line_no = 0;
  std::vector<std::string> errors;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto bad = [&](const std::string& why) {
      errors.push_back(absl::StrFormat("%s:%d: %s", source, line_no, why));
    };
    if (f.size() < 2) {
      bad("an entry is \"TOKEN ROLES [name=NAME] [expires=TIME]\" or \"cert:NAME ROLES\"");
      continue;
    }
    absl::StatusOr<Roles> roles = parse_roles(f[1]);
    if (!roles.ok()) {
      bad(std::string(roles.status().message()));
      continue;
    }
    if (absl::StartsWith(f[0], "cert:")) {
      if (f.size() > 2) bad("a cert: entry takes no options");
      if (f[0].size() == 5) bad("cert: needs the certificate's name");
      t.certs.push_back({std::string(f[0].substr(5)), *roles});
      continue;
    }
    Token tok;
    tok.digest = sha256(f[0]);
    tok.roles = *roles;
    tok.name = absl::StrFormat("on line %d of %s", line_no, source);
    for (size_t i = 2; i < f.size(); ++i) {
      if (absl::StartsWith(f[i], "name=")) {
        tok.name = std::string(f[i].substr(5));
      } else if (absl::StartsWith(f[i], "expires=")) {
        std::string err;
        if (!absl::ParseTime(absl::RFC3339_full, f[i].substr(8), &tok.expires, &err)) {
          bad(absl::StrCat("expires= takes an RFC 3339 time such as 2027-01-31T00:00:00Z: ", err));
        }
      } else {
        bad(absl::StrCat("unknown option \"", f[i], "\" (name=, expires=)"));
      }
    }
    if (f[0].size() < 16) bad("a token must have at least 16 characters");
    t.tokens.push_back(std::move(tok));
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return t;
}

Security::Security(SecurityOptions o) : options_(std::move(o)) {
  enforcing_ = !options_.auth_tokens.empty() || !options_.tls_client_ca.empty();
}

Security::~Security() = default;

absl::StatusOr<std::unique_ptr<Security>> Security::Open(const SecurityOptions& o) {
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together: give both");
  }
  if (!o.tls_client_ca.empty() && o.tls_cert.empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca asks clients for certificates over TLS: give --tls_cert and --tls_key too");
  }
  std::unique_ptr<Security> s(new Security(o));
  if (absl::Status st = s->load_all(/*first=*/true); !st.ok()) return st;
  return s;
}

absl::Status Security::start_tls() {
  if (!tls()) return absl::OkStatus();
  if (absl::Status s = stage_server_files(); !s.ok()) return s;
  const std::string dir = options_.stage_dir + "/current";
  provider_ = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      dir + "/key.pem", dir + "/cert.pem", options_.tls_client_ca.empty() ? "" : dir + "/ca.pem",
      /*refresh_interval_sec=*/1);
  return absl::OkStatus();
}

// Everything read into memory and checked first; only then is anything
// swapped in, so a reload with one bad file changes nothing.
absl::Status Security::load_all(bool first) {
  auto flag_error = [](const char* flag, const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("--", flag, ": ", s.message()));
  };
  std::shared_ptr<const AccessTable> table;
  if (!options_.auth_tokens.empty()) {
    absl::StatusOr<std::string> text = read_whole_file(options_.auth_tokens);
    if (!text.ok()) return flag_error("auth_tokens", text.status());
    absl::StatusOr<AccessTable> t = AccessTable::Parse(*text, options_.auth_tokens);
    if (!t.ok()) return flag_error("auth_tokens", t.status());
    table = std::make_shared<const AccessTable>(*std::move(t));
  }
  ClientSecurity outbound;
  outbound.tls_ca = options_.tls_ca;
  outbound.tls_cert = options_.tls_cert;
  outbound.tls_key = options_.tls_key;
  outbound.token_file = options_.token_file;
  // A node that serves TLS calls its peers over TLS: they are configured
  // alike. Without --tls_ca it trusts the CA that signed its clients.
  if (outbound.tls_ca.empty()) outbound.tls_ca = options_.tls_client_ca;
  absl::StatusOr<std::shared_ptr<const ChannelSecurity>> out = ChannelSecurity::Load(outbound);
  if (!out.ok()) {
    return absl::Status(out.status().code(),
                        absl::StrCat("the credentials for calls to other nodes (--tls_ca, "
                                     "--tls_cert, --token_file): ", out.status().message()));
  }
  std::string subject;
  absl::Time not_after;
  if (tls()) {
    absl::StatusOr<KeyPair> pair = read_key_pair(options_.tls_cert, options_.tls_key);
    if (!pair.ok()) return flag_error("tls_cert", pair.status());
    subject = pair->subject;
    not_after = pair->not_after;
    if (!options_.tls_client_ca.empty()) {
      absl::StatusOr<std::string> ca = read_certificates(options_.tls_client_ca);
      if (!ca.ok()) return flag_error("tls_client_ca", ca.status());
    }
    if (!first) {
      if (absl::Status s = stage_server_files(); !s.ok()) return s;
    }
  }
  {
    std::lock_guard l(mu_);
    table_ = std::move(table);
    server_subject_ = subject;
    server_not_after_ = not_after;
  }
  set_default_channel_security(*std::move(out));
  // Release: a stream that sees the new generation must see the new table
  // (taken under mu_ anyway; the counter only tells it to look).
  if (!first) generation_.fetch_add(1, std::memory_order_release);
  return absl::OkStatus();
}

// gRPC's file watcher re-reads the files it is given every second, whenever
// they change. It is given copies, written whole into a new directory and
// switched to by renaming a symlink, so that it only ever sees a checked,
// matching key and certificate, and only after SIGHUP.
absl::Status Security::stage_server_files() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(options_.stage_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", options_.stage_dir, ": ", ec.message()));
  (void)::chmod(options_.stage_dir.c_str(), 0700);
  absl::StatusOr<KeyPair> pair = read_key_pair(options_.tls_cert, options_.tls_key);
  if (!pair.ok()) return pair.status();
  std::string ca;
  if (!options_.tls_client_ca.empty()) {
    absl::StatusOr<std::string> c = read_certificates(options_.tls_client_ca);
    if (!c.ok()) return c.status();
    ca = *std::move(c);
  }
  const uint64_t serial = ++stage_serial_;
  const std::string gen = absl::StrCat("gen-", ::getpid(), "-", serial);
  const std::string dir = options_.stage_dir + "/" + gen;
  fs::remove_all(dir, ec);
  fs::create_directory(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  if (absl::Status s = write_private_file(dir + "/key.pem", pair->key_pem); !s.ok()) return s;
  if (absl::Status s = write_private_file(dir + "/cert.pem", pair->cert_pem); !s.ok()) return s;
  if (!ca.empty()) {
    if (absl::Status s = write_private_file(dir + "/ca.pem", ca); !s.ok()) return s;
  }
  const std::string link = options_.stage_dir + "/current";
  const std::string tmp = link + ".tmp";
  fs::remove(tmp, ec);
  fs::create_directory_symlink(gen, tmp, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot link ", tmp, ": ", ec.message()));
  fs::rename(tmp, link, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  // Older copies go, but the one before stays: the watcher may be reading it.
  for (const fs::directory_entry& e : fs::directory_iterator(options_.stage_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!absl::StartsWith(name, "gen-") || name == gen) continue;
    const std::string prev = absl::StrCat("gen-", ::getpid(), "-", serial - 1);
    if (name != prev) fs::remove_all(e.path(), ec);
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> Security::server_credentials() const {
  if (!tls()) return grpc::InsecureServerCredentials();
  grpc::experimental::TlsServerCredentialsOptions o(provider_);
  o.watch_identity_key_cert_pairs();
  if (!options_.tls_client_ca.empty()) {
    o.watch_root_certs();
    o.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    o.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(o);
}

absl::Status Security::reload() { return load_all(/*first=*/false); }

grpc::Status Security::authorize(grpc::ServerContextBase* ctx, Roles need,
                                 absl::string_view method, Grant* grant) const {
  Grant g;
  g.generation = generation_.load(std::memory_order_acquire);
  if (!enforcing_) {
    g.who = "anyone";
    if (grant != nullptr) *grant = g;
    return grpc::Status::OK;
  }
  std::shared_ptr<const AccessTable> table;
  {
    std::lock_guard l(mu_);
    table = table_;
  }
  bool present = false;
  absl::StatusOr<std::string> token = bearer_token(ctx, &present);
  if (!token.ok()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(token.status().message()));
  }
  std::vector<std::string> who;
  // A node without --auth_tokens checks no token: certificates decide.
  if (present && table) {
    g.has_token = true;
    g.token_digest = sha256(*token);
  }
  g.cert_names = certificate_names(ctx);
  const std::vector<std::string>& names = g.cert_names;
  if (!names.empty()) {
    g.cert_roles = certificate_roles(table.get(), names);
    who.push_back(absl::StrCat("certificate ", names.front()));
  }
  g.roles = g.cert_roles;
  if (g.has_token) {
    // Every entry is compared, whichever matches, so the time taken says
    // nothing about which digest bytes matched.
    const AccessTable::Token* match = nullptr;
    for (const AccessTable::Token& t : table->tokens) {
      const bool eq = CRYPTO_memcmp(t.digest.data(), g.token_digest.data(), t.digest.size()) == 0;
      if (eq && match == nullptr) match = &t;
    }
    if (match == nullptr) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          absl::StrCat(method, ": the token is not one this node knows "
                                               "(mistyped, or revoked from --auth_tokens)"));
    }
    if (match->expires <= absl::Now()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          absl::StrCat(method, ": the token ", match->name, " expired at ",
                                       absl::FormatTime(absl::RFC3339_sec, match->expires,
                                                        absl::UTCTimeZone())));
    }
    g.roles |= match->roles;
    who.insert(who.begin(), absl::StrCat("token ", match->name));
  }
  if (!g.has_token && names.empty()) {
    return grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        absl::StrCat(method, " needs credentials: ",
                     table ? "a bearer token (authorization: Bearer TOKEN)" : "",
                     table && !options_.tls_client_ca.empty() ? " or " : "",
                     options_.tls_client_ca.empty() ? "" : "a client certificate"));
  }
  g.who = absl::StrJoin(who, " and ");
  if ((g.roles & need) == 0) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat(method, " needs the role ",
                                     absl::StrJoin(absl::StrSplit(roles_string(need), ','), " or "),
                                     "; the caller (", g.who, ") has ",
                                     g.roles == 0 ? "no role" : "only " + roles_string(g.roles)));
  }
  if (grant != nullptr) *grant = std::move(g);
  return grpc::Status::OK;
}

grpc::Status Security::still_valid(Grant* grant, Roles need, absl::string_view method) const {
  const uint64_t gen = generation_.load(std::memory_order_acquire);
  if (gen == grant->generation || !enforcing_) return grpc::Status::OK;
  grant->generation = gen;
  std::shared_ptr<const AccessTable> table;
  {
    std::lock_guard l(mu_);
    table = table_;
  }
  Roles roles = certificate_roles(table.get(), grant->cert_names);
  bool known = !grant->has_token;
  if (table && grant->has_token) {
    for (const AccessTable::Token& t : table->tokens) {
      const bool eq = CRYPTO_memcmp(t.digest.data(), grant->token_digest.data(), t.digest.size()) == 0;
      if (eq && t.expires > absl::Now()) {
        roles |= t.roles;
        known = true;
      }
    }
  }
  if (!known) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat(method, ": the token of this call was revoked or expired"));
  }
  if ((roles & need) == 0) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat(method, ": the credentials of this call lost the role ",
                                     roles_string(need)));
  }
  grant->roles = roles;
  return grpc::Status::OK;
}

std::string Security::describe() const {
  std::vector<std::string> parts;
  std::lock_guard l(mu_);
  if (tls()) {
    parts.push_back(absl::StrCat("TLS with ", server_subject_, " (expires ",
                                 absl::FormatTime("%Y-%m-%d", server_not_after_, absl::UTCTimeZone()),
                                 ")"));
    if (!options_.tls_client_ca.empty()) {
      parts.push_back(absl::StrCat("client certificates required (CA ", options_.tls_client_ca, ")"));
    }
  } else {
    parts.push_back("plaintext");
  }
  if (table_) {
    parts.push_back(absl::StrFormat("%d tokens and %d certificate entries from %s",
                                    table_->tokens.size(), table_->certs.size(),
                                    options_.auth_tokens));
  }
  parts.push_back(absl::StrCat("calls to other nodes: ", default_channel_security()->description()));
  return absl::StrJoin(parts, "; ");
}

}  // namespace ringlog
