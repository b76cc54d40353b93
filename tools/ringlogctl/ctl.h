// ringlogctl: shared pieces of the subcommands.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ringlog/client.h"

ABSL_DECLARE_FLAG(std::string, node);
ABSL_DECLARE_FLAG(std::string, nodes);
ABSL_DECLARE_FLAG(std::string, data_dir);
ABSL_DECLARE_FLAG(bool, json);

namespace ringlog::ctl {

// Exit codes scripts can rely on.
inline constexpr int kOk = 0;
inline constexpr int kFailed = 1;      // the node refused or failed the request
inline constexpr int kUsage = 2;       // bad command line
inline constexpr int kUnavailable = 3; // the node could not be reached
inline constexpr int kDataProblem = 4; // verify or dump found a problem in the files
inline constexpr int kNotAllowed = 5;  // the node wants other credentials: UNAUTHENTICATED
                                       // (none, or an unknown token) or PERMISSION_DENIED
                                       // (a role the token or certificate lacks)

// What to try when the node refused the credentials or TLS did not come up
// (gRPC's words for the latter name neither the flags nor the likely cause);
// "" if nothing to say, else " (...)".
std::string hint(const absl::Status& s);
// The exit code for `s`.
int exit_code(const absl::Status& s);
// Prints "ringlogctl: <message>" to stderr (with a hint for credentials the
// node refused, or a TLS handshake that failed) and returns exit_code(s).
int report(const absl::Status& s);
// Prints "ringlogctl: <message>" for a mistake on the command line and
// returns kUsage.
inline int report_usage(const absl::Status& s) {
  std::fprintf(stderr, "ringlogctl: %s\n", std::string(s.message()).c_str());
  return kUsage;
}

// The node's status, or why it cannot be had: UNAVAILABLE at once when the
// connection is refused, DEADLINE_EXCEEDED when the node does not answer in
// time (both exit kUnavailable).
absl::StatusOr<v1::NodeStatus> node_status(const std::string& node);
// A client of `node`, failing as fast as node_status().
absl::StatusOr<std::unique_ptr<Client>> connect(const std::string& node);

int cmd_status();
int cmd_append();
int cmd_replay();
int cmd_verify();
int cmd_dump();
int cmd_promote();
int cmd_follow();
int cmd_load();
int cmd_health();

// Formats ns since the Unix epoch as RFC 3339 UTC with nanoseconds.
std::string format_time(uint64_t ns);
// Parses RFC 3339 or a number of ns since the Unix epoch.
bool parse_time(const std::string& s, uint64_t* ns);

}  // namespace ringlog::ctl
