#include "common/process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ringlog::tools {

std::string ringlogd_path(const std::string& flag) {
  if (!flag.empty()) return flag;
  const std::filesystem::path exe = std::filesystem::canonical("/proc/self/exe").parent_path();
  return (exe / "../server/ringlogd").lexically_normal().string();
}

absl::StatusOr<std::string> make_temp_dir(const std::string& prefix) {
  const char* tmp = getenv("TMPDIR");
  std::string t = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
  if (mkdtemp(t.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", t, ": ", std::strerror(errno)));
  }
  return t;
}

absl::StatusOr<NodeProcess> NodeProcess::Start(const std::string& binary,
                                               const std::string& data_dir,
                                               std::vector<std::string> args,
                                               absl::Duration timeout) {
  const std::string port_file = data_dir + ".port";
  const std::string log_path = data_dir + ".log";
  unlink(port_file.c_str());
  args.insert(args.begin(), {binary, "--data_dir=" + data_dir, "--listen=127.0.0.1:0",
                             "--port_file=" + port_file});
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    // A node started for a test or benchmark dies with the thread that
    // started it, even when that process is killed.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  NodeProcess p;
  p.pid_ = pid;
  p.log_path_ = log_path;
  const absl::Time deadline = absl::Now() + timeout;
  // Wait for the port file (the node writes it once serving), or the exit.
  while (absl::Now() < deadline) {
    std::ifstream in(port_file);
    if (in >> p.port_ && p.port_ > 0) return p;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p.pid_ = -1;
      return absl::InternalError(absl::StrCat(binary, " exited at start; see ", log_path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrCat(binary, " did not start serving; see ", log_path));
}

NodeProcess::NodeProcess(NodeProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), port_(o.port_), log_path_(std::move(o.log_path_)) {}

NodeProcess& NodeProcess::operator=(NodeProcess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) (void)stop(SIGKILL);
    pid_ = std::exchange(o.pid_, -1);
    port_ = o.port_;
    log_path_ = std::move(o.log_path_);
  }
  return *this;
}

NodeProcess::~NodeProcess() {
  if (pid_ > 0) (void)stop(SIGKILL);
}

absl::StatusOr<int> NodeProcess::stop(int sig, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  kill(pid_, sig);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (absl::Now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return absl::DeadlineExceededError("did not exit in time; killed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

}  // namespace ringlog::tools
