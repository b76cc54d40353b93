#include "kit/support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "common/process.h"

namespace ringlog::testkit {

bool wait_until(const std::function<bool()>& pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  for (;;) {
    if (pred()) return true;
    if (absl::Now() >= deadline) return pred();
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(20));
  }
}

TempDir::TempDir(const std::string& prefix) {
  absl::StatusOr<std::string> dir = tools::make_temp_dir(prefix);
  if (!dir.ok()) throw std::runtime_error(dir.status().ToString());
  path_ = *std::move(dir);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void print_log_tails(const std::string& dir, int lines) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string path = e.path().string();
    if (!path.ends_with(".log")) continue;
    const std::string text = read_file(path);
    size_t from = text.size();
    for (int n = 0; from > 0 && n < lines; --from) {
      if (text[from - 1] == '\n') ++n;
    }
    std::fprintf(stderr, "---- %s (last lines) ----\n%s\n", path.c_str(), text.c_str() + from);
  }
}

namespace {

// A started command: its pid and the read ends of its output pipes
// (err_fd is -1 when stderr goes to the stdout pipe).
struct Child {
  pid_t pid = -1;
  int out_fd = -1;
  int err_fd = -1;
};

// Forks and execs `argv` with stdin reading `input` (from a memory file, so
// that a command that never reads it cannot block the test) and stdout and
// stderr on pipes.
Child spawn(const std::vector<std::string>& argv, const CommandOptions& options) {
  const int in = memfd_create("stdin", MFD_CLOEXEC);
  int out[2];
  int err[2] = {-1, -1};
  if (in < 0 || pipe2(out, O_CLOEXEC) != 0 || (!options.merge_output && pipe2(err, O_CLOEXEC) != 0)) {
    throw std::runtime_error(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  if (write(in, options.input.data(), options.input.size()) !=
      static_cast<ssize_t>(options.input.size())) {
    throw std::runtime_error(absl::StrCat("writing stdin: ", std::strerror(errno)));
  }
  lseek(in, 0, SEEK_SET);
  Child c;
  c.pid = fork();
  if (c.pid < 0) throw std::runtime_error(absl::StrCat("fork: ", std::strerror(errno)));
  if (c.pid == 0) {
    dup2(in, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(options.merge_output ? out[1] : err[1], STDERR_FILENO);
    std::vector<std::string> args = argv;
    std::vector<char*> cargs;
    for (std::string& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execvp(cargs[0], cargs.data());
    _exit(127);
  }
  close(in);
  close(out[1]);
  if (err[1] >= 0) close(err[1]);
  c.out_fd = out[0];
  c.err_fd = err[0];
  return c;
}

// Reads the child's output until both pipes reach end of file or the
// deadline passes; false on the deadline.
bool collect(Child& c, absl::Time deadline, CommandResult* r) {
  char buf[4096];
  while (c.out_fd >= 0 || c.err_fd >= 0) {
    pollfd p[2] = {{c.out_fd, POLLIN, 0}, {c.err_fd, POLLIN, 0}};
    const int64_t left = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (poll(p, 2, static_cast<int>(std::min<int64_t>(left, 100))) == 0) {
      if (absl::Now() >= deadline) return false;
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || p[i].revents == 0) continue;
      const ssize_t got = read(p[i].fd, buf, sizeof buf);
      if (got <= 0) {  // EOF: the child (and anything it started) closed it
        close(p[i].fd);
        (i == 0 ? c.out_fd : c.err_fd) = -1;
        continue;
      }
      (i == 0 ? r->out : r->err).append(buf, static_cast<size_t>(got));
    }
  }
  return true;
}

}  // namespace

CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& options) {
  CommandResult r;
  Child c = spawn(argv, options);
  if (!collect(c, absl::Now() + options.timeout, &r)) {
    r.timed_out = true;
    kill(c.pid, SIGKILL);
    if (c.out_fd >= 0) close(c.out_fd);
    if (c.err_fd >= 0) close(c.err_fd);
  }
  int status = 0;
  waitpid(c.pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

void report_fault(const std::string& scenario, uint64_t acknowledged, uint64_t lost,
                  uint64_t duplicated) {
  std::printf("FAULT_RESULT scenario=%s acknowledged=%llu lost=%llu duplicated=%llu\n",
              scenario.c_str(), static_cast<unsigned long long>(acknowledged),
              static_cast<unsigned long long>(lost), static_cast<unsigned long long>(duplicated));
  std::fflush(stdout);
}

void report_fault_indices(const std::string& scenario, const std::vector<uint64_t>& indices,
                          uint64_t acknowledged) {
  std::set<uint64_t> seen;
  uint64_t duplicated = 0;
  for (uint64_t i : indices) duplicated += seen.insert(i).second ? 0 : 1;
  uint64_t lost = 0;
  for (uint64_t i = 0; i < acknowledged; ++i) lost += seen.count(i) == 0 ? 1 : 0;
  report_fault(scenario, acknowledged, lost, duplicated);
}

// GET http://127.0.0.1:port/path with curl (a real HTTP client); without
// curl, with a plain HTTP/1.0 request on a socket. The body, or "" on failure.
std::string http_get(int port, const std::string& path) {
  const std::string url = absl::StrCat("http://127.0.0.1:", port, path);
  if (access("/usr/bin/curl", X_OK) == 0) {
    const CommandResult r = run_command(
        {"/usr/bin/curl", "-sS", "--fail", "--max-time", "10", url}, {.merge_output = true});
    return r.exit_code == 0 ? r.out : "";
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  std::string resp;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) resp.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  const size_t body = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.1 200", 0) != 0 && resp.rfind("HTTP/1.0 200", 0) != 0) return "";
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

// Prometheus text format: "name{labels} value" per sample, keyed by what
// precedes the value.
int logged_metrics_port(const std::function<std::string()>& output, absl::Duration timeout) {
  static const std::regex re(R"(metrics on https?://\S+/metrics \(port (\d+)\))");
  int port = 0;
  (void)wait_until([&] {
    std::smatch m;
    const std::string out = output();
    if (!std::regex_search(out, m, re)) return false;
    port = std::stoi(m[1]);
    return port > 0;
  }, timeout);
  return port;
}

std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == absl::string_view::npos) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(sp + 1), &v)) out[std::string(line.substr(0, sp))] = v;
  }
  return out;
}

}  // namespace ringlog::testkit
