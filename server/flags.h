// ringlogd's command-line flags (`ringlogd --help`), and the options of the
// node and of the process read from them once they are set (config.h says
// from where).
#pragma once

#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/status/statusor.h"
#include "metrics.h"
#include "node.h"
#include "security.h"

namespace ringlog {

struct DaemonOptions {
  NodeOptions node;
  SecurityOptions security;
  std::string advertise;       // "": --listen with the port chosen
  MetricsOptions metrics;      // listen "": no metrics endpoint
  std::string port_file;       // "": none written
  std::string log_level;
};

// ringlogd's own flags, not those of the libraries it links, by name. These
// are the ones RINGLOG_<NAME> in the environment sets.
std::vector<absl::CommandLineFlag*> own_flags();

// "name=value ..." for each of own_flags(), for the start-up log line.
std::string describe_own_flags();

// The options the flags set, or InvalidArgument naming the flag when the
// role, the fsync policy or the batch size is not one a node can run with.
absl::StatusOr<DaemonOptions> daemon_options_from_flags();

}  // namespace ringlog
