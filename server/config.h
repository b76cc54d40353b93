// Where ringlogd's settings come from, and the config file format.
//
// A flag gets its value from three places; each later one overrides the
// earlier:
//   1. the config file: --config=FILE on the command line, else the file
//      named by RINGLOG_CONFIG in the environment;
//   2. the environment: RINGLOG_<NAME> for each of ringlogd's own flags
//      (RINGLOG_DATA_DIR, RINGLOG_MIN_REPLICA_ACKS, ...), except --config;
//   3. the command line, parsed by Abseil: the last setting of a flag wins,
//      and the lines of a --flagfile=FILE (Abseil's "--name=value" format)
//      count as if they stood where the --flagfile does.
// --config is read from the command line before Abseil parses it, so it
// cannot come from a --flagfile or from another config file: either is an
// error rather than a file silently left unread.
//
// The config file holds one setting per line:
//
//   # the primary of the first start
//   data_dir = /var/lib/ringlog      # comments may follow a value
//   data-dir = "/srv/ringlog #2"     # dashes or underscores; quotes not kept
//   --fsync: 10ms                    # a leading "--" and ":" work too
//
// Blank lines and lines starting with '#' are skipped. The name is a flag of
// `ringlogd --help` with or without a leading "--", dashes read as
// underscores; then '=' or ':'; then the value, with the spaces around it
// removed. A '#' at the start of the value or after a space or tab starts a
// comment; inside quotes it does not. A value in double or single quotes is
// taken whole without them (no escapes inside); only a comment may follow the
// closing quote. A later line for the same flag overrides an earlier one.
//
// Why a format of our own beside Abseil's --flagfile: operators and the
// shipped deploy/*.conf and Kubernetes ConfigMap write "name = value" with
// comments, which a --flagfile (one "--name=value" per line, whole-line
// comments only, every byte after '=' taken as the value) would misread; and
// a config file sits below the environment, where a --flagfile, being part of
// the command line, sits above it.
//
// Usage, in main() before anything reads a flag:
//
//   if (absl::Status s = ringlog::parse_flags(argc, argv, own_flags()); !s.ok()) ...
#pragma once

#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace ringlog {

// One line of a config file that sets a flag.
struct ConfigSetting {
  std::string name;   // the flag's name: no leading "--", dashes made underscores
  std::string value;  // without quotes and comment
  int line = 0;       // counted from 1

  bool operator==(const ConfigSetting&) const = default;
};

// Reads config text; `source` (the file name) starts each error message, as
// "SOURCE:LINE: what is wrong", one line per bad line of the text.
absl::StatusOr<std::vector<ConfigSetting>> parse_config(absl::string_view text,
                                                        absl::string_view source);

// Reads and parses the config file at `path` (NotFound if it cannot be read).
absl::StatusOr<std::vector<ConfigSetting>> read_config_file(const std::string& path);

// Sets the flag each setting names, in order. Errors, "SOURCE:LINE: ...",
// name the flag that does not exist or the value it refused.
absl::Status apply_config(absl::Span<const ConfigSetting> settings, absl::string_view source);

// Looks up an environment variable (std::getenv, or a map in tests).
using EnvLookup = std::function<const char*(const char* name)>;

// Sets each of `flags` (except --config) from RINGLOG_<NAME> where that is set.
absl::Status apply_environment(absl::Span<absl::CommandLineFlag* const> flags,
                               const EnvLookup& env);

// The config file to read: the last --config on the command line, else
// RINGLOG_CONFIG; "" for none.
std::string config_path(int argc, char** argv, const EnvLookup& env);

// All three steps above, in order: the config file, the environment for
// `env_flags`, then absl::ParseCommandLine (which exits on --help or an
// unknown flag on the command line, as it always does).
absl::Status parse_flags(int argc, char** argv, absl::Span<absl::CommandLineFlag* const> env_flags,
                         const EnvLookup& env = [](const char* name) -> const char* {
                           return std::getenv(name);
                         });

}  // namespace ringlog
