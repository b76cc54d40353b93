// Starting and stopping ringlogd processes, for benchmarks and tests.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ringlog::tools {

// `flag` if set, else the ringlogd built beside the running program
// (<build>/server/ringlogd for a program in <build>/bench).
std::string ringlogd_path(const std::string& flag);

// A new directory <$TMPDIR or /tmp>/<prefix>XXXXXX.
absl::StatusOr<std::string> make_temp_dir(const std::string& prefix);

// A ringlogd child process listening on a port it picked itself. It is
// killed if the thread that started it ends (so call Start from a thread that
// outlives the node, e.g. the test's own).
class NodeProcess {
 public:
  // Starts `binary` with `args` plus --data_dir, --listen=127.0.0.1:0 and
  // --port_file, and waits until it serves (or `timeout` passes).
  static absl::StatusOr<NodeProcess> Start(const std::string& binary, const std::string& data_dir,
                                           std::vector<std::string> args,
                                           absl::Duration timeout = absl::Seconds(20));
  NodeProcess(NodeProcess&& o) noexcept;
  NodeProcess& operator=(NodeProcess&& o) noexcept;
  ~NodeProcess();  // SIGKILL if still running

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Sends `sig` and waits for the process to exit; returns its exit status
  // (128 + signal when killed by one).
  absl::StatusOr<int> stop(int sig = SIGTERM, absl::Duration timeout = absl::Seconds(30));

 private:
  NodeProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
};

}  // namespace ringlog::tools
