// Reading the files of TLS and tokens, with errors that name the file and
// what is wrong, before gRPC sees them (gRPC would only fail the handshake
// later, with a message about neither).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ringlog {

// The whole file; NotFound / PermissionDenied naming `path` and the reason.
absl::StatusOr<std::string> read_whole_file(const std::string& path);

// A PEM file of one or more certificates (a CA bundle, a chain).
absl::StatusOr<std::string> read_certificates(const std::string& path);

// A certificate chain and the private key of its first certificate.
struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
  std::string subject;   // of the first certificate, one line
  absl::Time not_after;  // when it expires
};
absl::StatusOr<KeyPair> read_key_pair(const std::string& cert_path, const std::string& key_path);

// A token file: the token is its first line, without the spaces around it.
absl::StatusOr<std::string> read_token_file(const std::string& path);

}  // namespace ringlog
