#include "common/throwaway_pki.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ringlog::tools {
namespace {

// Runs openssl with `args`; its output goes to `log` (kept for a failure's
// message), never to the terminal, which would mix with a benchmark's lines.
absl::Status openssl(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), "openssl");
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp("openssl", argv.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) {
    return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return absl::FailedPreconditionError("the openssl command is not installed");
  }
  return absl::InternalError(
      absl::StrCat("openssl ", args[1], " failed; see ", log));
}

absl::Status write_file(const std::string& path, const std::string& text) {
  // 0600: a token and keys, even throwaway ones.
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat(path, ": short write"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> random_token() {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string raw(24, '\0');
  if (!in.read(raw.data(), static_cast<std::streamsize>(raw.size()))) {
    return absl::InternalError("cannot read /dev/urandom");
  }
  return absl::BytesToHexString(raw);
}

}  // namespace

std::vector<std::string> ThrowawayPki::node_flags() const {
  return {"--tls_cert=" + cert, "--tls_key=" + key, "--tls_client_ca=" + ca,
          "--auth_tokens=" + tokens, "--token_file=" + token_file};
}

ClientSecurity ThrowawayPki::client() const {
  ClientSecurity s;
  s.tls_ca = ca;
  s.tls_cert = cert;
  s.tls_key = key;
  s.token_file = token_file;
  return s;
}

absl::StatusOr<ThrowawayPki> make_throwaway_pki(const std::string& dir) {
  ThrowawayPki p;
  p.ca = dir + "/ca.pem";
  p.cert = dir + "/node.pem";
  p.key = dir + "/node.key";
  p.tokens = dir + "/tokens";
  p.token_file = dir + "/token";
  const std::string ca_key = dir + "/ca.key";
  const std::string csr = dir + "/node.csr";
  const std::string ext = dir + "/node.ext";
  const std::string log = dir + "/openssl.log";
  const std::vector<std::string> ec = {"genpkey", "-algorithm", "EC", "-pkeyopt",
                                       "ec_paramgen_curve:P-256"};
  auto with = [](std::vector<std::string> a, std::initializer_list<std::string> more) {
    a.insert(a.end(), more);
    return a;
  };
  if (auto s = openssl(with(ec, {"-out", ca_key}), log); !s.ok()) return s;
  if (auto s = openssl({"req", "-x509", "-new", "-key", ca_key, "-sha256", "-days", "2", "-subj",
                        "/CN=ringlog throwaway CA", "-addext",
                        "basicConstraints=critical,CA:TRUE", "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign", "-out", p.ca},
                       log);
      !s.ok()) {
    return s;
  }
  if (auto s = openssl(with(ec, {"-out", p.key}), log); !s.ok()) return s;
  if (auto s = openssl({"req", "-new", "-key", p.key, "-subj", "/CN=localhost", "-out", csr}, log);
      !s.ok()) {
    return s;
  }
  if (auto s = write_file(ext,
                          "basicConstraints=CA:FALSE\n"
                          "keyUsage=critical,digitalSignature\n"
                          "extendedKeyUsage=serverAuth,clientAuth\n"
                          "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
      !s.ok()) {
    return s;
  }
  if (auto s = openssl({"x509", "-req", "-in", csr, "-CA", p.ca, "-CAkey", ca_key, "-set_serial",
                        "2", "-days", "2", "-sha256", "-extfile", ext, "-out", p.cert},
                       log);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> token = random_token();
  if (!token.ok()) return token.status();
  if (auto s = write_file(p.token_file, *token + "\n"); !s.ok()) return s;
  if (auto s = write_file(p.tokens, absl::StrCat(*token, " all name=bench\n")); !s.ok()) return s;
  return p;
}

absl::StatusOr<ThrowawayPki> use_throwaway_pki(const std::string& dir) {
  absl::StatusOr<ThrowawayPki> p = make_throwaway_pki(dir);
  if (!p.ok()) return p.status();
  absl::StatusOr<std::shared_ptr<const ChannelSecurity>> s = ChannelSecurity::Load(p->client());
  if (!s.ok()) return s.status();
  set_default_channel_security(*std::move(s));
  return p;
}

}  // namespace ringlog::tools
