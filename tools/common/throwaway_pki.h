// A throwaway PKI for benchmarks that measure TLS: a CA, one certificate for
// every node (127.0.0.1 and localhost, server and client use) and a token
// with every role, made with the openssl command line in a directory the
// caller removes. Not for production: the keys sit unencrypted on disk.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ringlog/security.h"

namespace ringlog::tools {

struct ThrowawayPki {
  std::string ca;          // ca.pem: the CA certificate
  std::string cert;        // node.pem: the certificate of every node and client
  std::string key;         // node.key: its key
  std::string tokens;      // the nodes' --auth_tokens: the token, all roles
  std::string token_file;  // the token itself

  // ringlogd flags for mutual TLS and tokens, on its port and in the calls it
  // makes to other nodes (--tls_ca defaults to --tls_client_ca).
  std::vector<std::string> node_flags() const;
  // The same credentials for a client.
  ClientSecurity client() const;
};

// Makes the files in `dir` (which must exist) with `openssl`, an EC P-256 CA
// and node key, valid for two days.
absl::StatusOr<ThrowawayPki> make_throwaway_pki(const std::string& dir);

// make_throwaway_pki, then makes its client credentials the process's
// default (set_default_channel_security), so every channel the program
// opens afterwards uses them.
absl::StatusOr<ThrowawayPki> use_throwaway_pki(const std::string& dir);

}  // namespace ringlog::tools
