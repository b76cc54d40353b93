// Makes the PKI and tokens that the suites run again over mutual TLS use
// (ctest's TLS.* tests; the fixture TLS.pki runs this first):
//
//   make_test_pki DIR
//
// writes into DIR: ca.pem, other-ca.pem (untrusted), node.pem/node.key
// (CN=node, SAN localhost and 127.0.0.1, server and client use), tokens
// (an --auth_tokens file) and one file per token: token (every role),
// token-replay, token-append.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include "kit/pki.h"

namespace {

// Fixed, since the tests that use them run apart from this program; they
// guard throwaway nodes on loopback for the length of a test.
constexpr char kAllToken[] = "tls-suite-token-all-0123456789abcdef";
constexpr char kReplayToken[] = "tls-suite-token-replay-0123456789abcdef";
constexpr char kAppendToken[] = "tls-suite-token-append-0123456789abcdef";

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_test_pki DIR\n");
    return 2;
  }
  namespace fs = std::filesystem;
  const std::string dir = argv[1];
  try {
    fs::remove_all(dir);  // a run never mixes files of two PKIs
    ringlog::testkit::Pki pki(dir);
    const ringlog::testkit::CertFiles node = pki.node("node");
    fs::rename(node.cert, dir + "/node.pem");
    fs::rename(node.key, dir + "/node.key");
    using ringlog::testkit::write_file_atomically;
    write_file_atomically(dir + "/tokens", std::string(kAllToken) + " all name=tests\n" +
                                               kReplayToken + " replay name=reader\n" +
                                               kAppendToken + " append name=writer\n");
    write_file_atomically(dir + "/token", std::string(kAllToken) + "\n");
    write_file_atomically(dir + "/token-replay", std::string(kReplayToken) + "\n");
    write_file_atomically(dir + "/token-append", std::string(kAppendToken) + "\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_test_pki: %s\n", e.what());
    return 1;
  }
  std::printf("PKI and tokens in %s\n", dir.c_str());
  return 0;
}
