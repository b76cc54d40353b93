// ringlogctl end to end: the real binary against a real node, checking the
// output and the exit codes scripts rely on (0 done, 1 refused, 2 usage,
// 3 unreachable, 4 data problem, 5 credentials refused).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "harness.h"
#include "ringlog/storage.h"

namespace ringlog::testing {
namespace {

class IntegrationCtl : public NodeTest {};

// One line of JSON output as a protobuf Struct (a real JSON parser), or a
// test failure naming the line.
google::protobuf::Struct parse_json(const std::string& line) {
  google::protobuf::Struct out;
  const auto s = google::protobuf::util::JsonStringToMessage(line, &out);
  EXPECT_TRUE(s.ok()) << "not JSON: " << line << " (" << s.ToString() << ")";
  return out;
}

// The field's value if it is a JSON string, else a marker that no string
// equals.
std::string string_field(const google::protobuf::Struct& o, const std::string& name) {
  const auto it = o.fields().find(name);
  if (it == o.fields().end()) return "<absent>";
  if (it->second.kind_case() != google::protobuf::Value::kStringValue) return "<not a string>";
  return it->second.string_value();
}

// The field's value if it is a JSON number, else -1.
double number_field(const google::protobuf::Struct& o, const std::string& name) {
  const auto it = o.fields().find(name);
  if (it == o.fields().end() || it->second.kind_case() != google::protobuf::Value::kNumberValue) {
    return -1;
  }
  return it->second.number_value();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A port bound but not listening: connections to it are refused, and no
// other process can take it while the socket is open.
class RefusingPort {
 public:
  RefusingPort() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("cannot bind a loopback port");
    }
    address_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  ~RefusingPort() { close(fd_); }
  const std::string& address() const { return address_; }

 private:
  int fd_;
  std::string address_;
};

TEST_F(IntegrationCtl, AppendFromStdinThenReplayAsJson) {
  const std::string node = "--node=" + start_node().address();
  const CommandResult append = ctl({"append", node, "--type=7"}, "alpha\nbeta\ngamma\n");
  ASSERT_EQ(append.exit_code, 0) << append.out << append.err;
  EXPECT_NE(append.out.find("appended 3 events: seqs 0..2"), std::string::npos) << append.out;

  const CommandResult replay = ctl({"replay", node, "--from-start", "--format=json"});
  ASSERT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  const std::vector<std::string> lines = absl::StrSplit(replay.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << replay.out;
  const char* payloads[] = {"alpha", "beta", "gamma"};
  for (size_t i = 0; i < 3; ++i) {
    const google::protobuf::Struct event = parse_json(lines[i]);
    EXPECT_EQ(string_field(event, "seq"), std::to_string(i)) << lines[i];
    EXPECT_EQ(number_field(event, "type"), 7) << lines[i];
    EXPECT_EQ(string_field(event, "payload"), absl::Base64Escape(payloads[i])) << lines[i];
    EXPECT_EQ(string_field(event, "text"), payloads[i]) << lines[i];
  }
}

TEST_F(IntegrationCtl, StatusShowsTheNode) {
  tools::NodeProcess& n = start_node();
  const v1::NodeStatus st = status(*connect(n));
  const CommandResult r = ctl({"status", "--node=" + n.address()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(n.address()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("primary"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(st.node_id()), std::string::npos) << r.out;

  const CommandResult json = ctl({"status", "--node=" + n.address(), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.out << json.err;
  EXPECT_NE(json.out.find("\"role\":\"ROLE_PRIMARY\""), std::string::npos) << json.out;
}

TEST_F(IntegrationCtl, StatusOfAPortNothingListensOnExits3) {
  const RefusingPort port;
  const CommandResult r = ctl({"status", "--node=" + port.address()});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find(port.address()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("down"), std::string::npos) << r.out;
}

// A refused connection is known at once: each command that talks to a node
// says so and exits 3 in well under a second (gRPC's own retries used to
// keep it waiting for its whole 3 s timeout). Typically 0.1 s here, process
// start included; the bound leaves room for a loaded machine.
TEST_F(IntegrationCtl, RefusedConnectionExits3AtOnce) {
  const RefusingPort port;
  const std::string node = "--node=" + port.address();
  const std::vector<std::vector<std::string>> commands = {
      {"status", node},      {"status", "--json", "--nodes=" + port.address()},
      {"replay", node},      {"append", node},
      {"health", node},      {"load", "--nodes=" + port.address(), "--seconds=1"},
      {"follow", node, "--primary=" + port.address()},
  };
  for (const std::vector<std::string>& args : commands) {
    const absl::Time t0 = absl::Now();
    const CommandResult r = ctl(args, "x\n");
    const absl::Duration took = absl::Now() - t0;
    std::printf("ringlogctl %s: exit %d after %s\n", args[0].c_str(), r.exit_code,
                absl::FormatDuration(took).c_str());
    EXPECT_EQ(r.exit_code, 3) << args[0] << ": " << r.out << r.err;
    EXPECT_LT(took, absl::Seconds(1)) << args[0] << ": " << r.out << r.err;
    EXPECT_TRUE(contains(r.out + r.err, "Connection refused")) << args[0] << ": " << r.out << r.err;
  }
}

TEST_F(IntegrationCtl, HelpListsTheFlagsOfTheProgramOrCommandAndExits0) {
  for (const char* help : {"--help", "-h"}) {
    const CommandResult ctl_help = ctl({help});
    EXPECT_EQ(ctl_help.exit_code, 0) << ctl_help.out << ctl_help.err;
    for (const char* command :
         {"status", "append", "replay", "verify", "dump", "promote", "follow", "load", "health"}) {
      EXPECT_TRUE(contains(ctl_help.out, std::string("  ") + command + " ")) << help << " lacks "
                                                                             << command;
    }
    EXPECT_TRUE(contains(ctl_help.out, "Exit codes: 0 done")) << ctl_help.out;

    const CommandResult d = run_command({kRinglogd, help});
    EXPECT_EQ(d.exit_code, 0) << d.out << d.err;
    for (const char* flag : {"--data_dir", "--listen", "--min_replica_acks", "--config"}) {
      EXPECT_TRUE(contains(d.out, flag)) << "ringlogd " << help << " lacks " << flag << ":\n"
                                         << d.out;
    }
    EXPECT_FALSE(contains(d.out + d.err, "No flags matched")) << d.out << d.err;
  }
  // A command's help: its own flags, and no other command's.
  struct Case {
    std::string command;
    std::vector<std::string> has, lacks;
  };
  const std::vector<Case> cases = {
      {"replay", {"--node", "--from-seq", "--from-time", "--follow", "--format", "--types"},
       {"--json", "--data-dir", "--rate", "--primary"}},
      {"status", {"--node", "--nodes", "--json"}, {"--from-seq", "--format"}},
      {"dump", {"--data-dir", "--from-seq", "--limit", "--format"}, {"--node", "--follow"}},
      {"follow", {"--node", "--primary", "--force"}, {"--nodes", "--json"}},
  };
  for (const Case& c : cases) {
    for (const char* help : {"--help", "-h"}) {
      const CommandResult r = ctl({c.command, help});
      EXPECT_EQ(r.exit_code, 0) << c.command << " " << help << ": " << r.out << r.err;
      EXPECT_EQ(r.out.rfind("ringlogctl " + c.command + " ", 0), 0u) << r.out;
      for (const std::string& flag : c.has) {
        EXPECT_TRUE(contains(r.out, "  " + flag + " ")) << c.command << " lacks " << flag << ":\n"
                                                        << r.out;
      }
      for (const std::string& flag : c.lacks) {
        EXPECT_FALSE(contains(r.out, flag)) << c.command << " shows " << flag << ":\n" << r.out;
      }
    }
  }
}

TEST_F(IntegrationCtl, VersionIsTheProjectsAndStatusCarriesIt) {
  const CommandResult c = ctl({"--version"});
  ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
  const std::string prefix = std::string("ringlogctl ") + RINGLOG_PROJECT_VERSION + " (git ";
  ASSERT_EQ(c.out.rfind(prefix, 0), 0u) << c.out;
  ASSERT_GT(c.out.size(), prefix.size() + 2) << "no git revision: " << c.out;
  EXPECT_EQ(c.out.substr(c.out.size() - 2), ")\n") << c.out;
  const std::string version = c.out.substr(std::strlen("ringlogctl "),
                                           c.out.size() - std::strlen("ringlogctl ") - 1);

  const CommandResult d = run_command({kRinglogd, "--version"});
  EXPECT_EQ(d.exit_code, 0) << d.out << d.err;
  EXPECT_EQ(d.out, "ringlogd " + version + "\n");

  tools::NodeProcess& n = start_node();
  EXPECT_EQ(status(*connect(n)).version(), version);
  const CommandResult json = ctl({"status", "--node=" + n.address(), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.out << json.err;
  const google::protobuf::Struct row = parse_json(json.out);
  const auto st = row.fields().find("status");
  ASSERT_NE(st, row.fields().end()) << json.out;
  EXPECT_EQ(string_field(st->second.struct_value(), "version"), version) << json.out;
}

// Bad usage exits 2, naming what is wrong, before anything is done.
TEST_F(IntegrationCtl, UsageMistakesExit2NamingThem) {
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  const std::vector<Case> cases = {
      {{"status", "--no-such-flag"}, "--no-such-flag"},          // unknown flag
      {{"replay", "--limit=many"}, "--limit"},                   // bad value
      {{"replay", "--types=1", "--node"}, "--node"},             // no value
      {{"status", "--from-seq", "5"}, "--from-seq"},             // another command's flag
      {{"replay", "--json"}, "--json"},                          // another command's flag
      {{"verify", "--node=127.0.0.1:1"}, "--node"},              // another command's flag
      {{"follow", "--node=127.0.0.1:1"}, "--primary"},           // a required flag missing
      {{"dump"}, "--data-dir"},                                  // a required flag missing
      {{"status", "extra"}, "extra"},                            // an argument too many
  };
  for (const Case& c : cases) {
    const CommandResult r = ctl(c.args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(c.args, " ") << ": " << r.out << r.err;
    EXPECT_TRUE(contains(r.err, c.named)) << absl::StrJoin(c.args, " ") << ": " << r.err;
  }
  const std::string data = "--data_dir=" + data_dir();
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--no_such_flag"}, {"--segment_bytes=lots"}, {"--role=leader"}}) {
    std::vector<std::string> argv = {kRinglogd, data, "--listen=127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    const CommandResult r = run_command(argv, {.timeout = absl::Seconds(20)});
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.out << r.err;
    EXPECT_FALSE(std::filesystem::exists(data_dir())) << args[0] << " started a node";
  }
}

// Events with a printable payload, a binary one and one that is not UTF-8,
// with timestamps above 2^53, as JSON: 64-bit integers are strings, the
// payload is base64 in "payload" in each, and only the printable one has
// "text".
TEST_F(IntegrationCtl, ReplayAndDumpJsonFollowTheProtobufMapping) {
  std::unique_ptr<Client> client = connect(start_node());
  std::unique_ptr<Appender> a = *client->appender();
  constexpr uint64_t kTimestamp = 1'764'410'400'123'456'789;  // above 2^53
  const std::string text = "caf\xc3\xa9 au lait";
  const std::string binary("\x00\x01\xff\x80zz", 6);
  const std::string not_utf8 = "caf\xe9 au lait";  // Latin-1: no control byte, yet not text
  ASSERT_TRUE(a->append(9, kTimestamp, as_bytes(text)).ok());
  ASSERT_TRUE(a->append(9, kTimestamp + 1, as_bytes(binary)).ok());
  ASSERT_TRUE(a->append(9, kTimestamp + 2, as_bytes(not_utf8)).ok());
  ASSERT_TRUE(a->close().ok());

  auto check = [&](const std::string& out, const std::string& what) {
    const std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
    ASSERT_GE(lines.size(), 3u) << what << ": " << out;
    const google::protobuf::Struct first = parse_json(lines[0]);
    const google::protobuf::Struct second = parse_json(lines[1]);
    const google::protobuf::Struct third = parse_json(lines[2]);
    EXPECT_EQ(string_field(first, "seq"), "0") << what << ": " << lines[0];
    EXPECT_EQ(string_field(second, "seq"), "1") << what << ": " << lines[1];
    EXPECT_EQ(string_field(first, "timestamp"), std::to_string(kTimestamp)) << lines[0];
    EXPECT_EQ(string_field(second, "timestamp"), std::to_string(kTimestamp + 1)) << lines[1];
    EXPECT_EQ(number_field(first, "type"), 9) << lines[0];
    EXPECT_EQ(string_field(first, "payload"), absl::Base64Escape(text)) << lines[0];
    EXPECT_EQ(string_field(first, "text"), text) << lines[0];
    EXPECT_EQ(string_field(second, "payload"), absl::Base64Escape(binary)) << lines[1];
    EXPECT_EQ(string_field(second, "text"), "<absent>") << lines[1];
    EXPECT_EQ(string_field(third, "payload"), absl::Base64Escape(not_utf8)) << lines[2];
    EXPECT_EQ(string_field(third, "text"), "<absent>") << lines[2];
    EXPECT_FALSE(contains(out, "payload_base64")) << out;
  };
  const CommandResult replay = ctl({"replay", "--node=" + node().address(), "--format=json"});
  ASSERT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  check(replay.out, "replay");
  ASSERT_EQ(node().stop(SIGTERM).value_or(-1), 0);
  const CommandResult dump = ctl({"dump", "--data-dir=" + data_dir(), "--format=json"});
  ASSERT_EQ(dump.exit_code, 0) << dump.out << dump.err;
  check(dump.out, "dump");
}

// Each append is one batch, followed in the log by a control record that
// takes a seq; a replay leaves it out and says so where the seqs jump.
TEST_F(IntegrationCtl, ReplaySaysWhichSeqsItSkipped) {
  const std::string node = "--node=" + start_node().address();
  CommandResult r = ctl({"append", node}, "a\nb\nc\n");
  ASSERT_TRUE(contains(r.out, "seqs 0..2")) << r.out << r.err;
  r = ctl({"append", node}, "d\ne\n");
  ASSERT_TRUE(contains(r.out, "seqs 4..5")) << r.out << r.err;

  r = ctl({"replay", node});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u) << r.out;
  EXPECT_EQ(lines[2].rfind("2\t", 0), 0u) << r.out;
  EXPECT_EQ(lines[3], "# seq 3 skipped: a control record, not an event") << r.out;
  EXPECT_EQ(lines[4].rfind("4\t", 0), 0u) << r.out;

  r = ctl({"replay", node, "--format=json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_FALSE(contains(lines[2], "skippedSeqs")) << lines[2];
  const google::protobuf::Struct fourth = parse_json(lines[3]);
  EXPECT_EQ(string_field(fourth, "seq"), "4") << lines[3];
  const auto skipped = fourth.fields().find("skippedSeqs");
  ASSERT_NE(skipped, fourth.fields().end()) << lines[3];
  ASSERT_EQ(skipped->second.list_value().values_size(), 1) << lines[3];
  EXPECT_EQ(skipped->second.list_value().values(0).string_value(), "3") << lines[3];
}

TEST_F(IntegrationCtl, VerifyPassesACleanLogAndNamesACorruptRecord) {
  std::unique_ptr<Client> client = connect(start_node());
  append_numbered(*client, 0, 0, 400'000);  // 12.8 MB: two 8 MiB segments
  const v1::NodeStatus st = status(*client);
  ASSERT_EQ(node().stop(SIGTERM).value_or(-1), 0);

  CommandResult r = ctl({"verify", "--data-dir=" + data_dir()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Counts every record, control records included.
  EXPECT_NE(r.out.find("events " + std::to_string(st.next_seq()) + " "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("OK"), std::string::npos) << r.out;

  std::vector<std::string> segments;
  for (const auto& e : std::filesystem::directory_iterator(data_dir())) {
    if (e.path().extension() == ".evtl") segments.push_back(e.path().string());
  }
  std::sort(segments.begin(), segments.end());
  ASSERT_GE(segments.size(), 2u);
  // Flip a payload byte of the record at or just before log offset
  // 100,000 * 32 of the first (sealed) segment: events are 32 bytes, but
  // the producer marks between batches are not.
  uint64_t record = 0;
  {
    const std::string file = testkit::read_file(segments[0]);
    const auto* base = reinterpret_cast<const std::byte*>(file.data()) + kFileHeaderSize;
    for (uint64_t next = 0; next <= 100'000 * kTestRecordBytes;) {
      record = next;
      next += header_at(base + next)->padded_size();
    }
  }
  {
    std::fstream f(segments[0], std::ios::in | std::ios::out | std::ios::binary);
    const std::streamoff at = kFileHeaderSize + record + kHeaderSize + 3;
    f.seekg(at);
    char c = 0;
    f.get(c);
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x40));
    ASSERT_TRUE(f.good());
  }
  r = ctl({"verify", "--data-dir=" + data_dir()});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("PROBLEM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::filesystem::path(segments[0]).filename().string()), std::string::npos)
      << r.out;
  EXPECT_NE(
      r.out.find("checksum mismatch at log offset " + std::to_string(record)),
      std::string::npos)
      << r.out;
}

TEST_F(IntegrationCtl, ReplayFromSeqPastTheEndExits1WithOutOfRange) {
  std::unique_ptr<Client> client = connect(start_node());
  append_numbered(*client, 0, 0, 10);
  const CommandResult r = ctl({"replay", "--node=" + node().address(), "--from-seq=999999"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("OUT_OF_RANGE"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(IntegrationCtl, BadUsageExits2) {
  EXPECT_EQ(ctl({"frobnicate"}).exit_code, 2);
  const CommandResult r = ctl({"replay", "--from-start", "--from-end"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("at most one of"), std::string::npos) << r.err;
}

// Credentials: --token-file overrides RINGLOG_TOKEN_FILE and RINGLOG_TOKEN;
// a node that refuses them exits 5 (no token, or a role missing), a
// credentials file that cannot be read exits 2 before anything is sent, and
// the health service stays open. A token-only node (plaintext) is enough:
// the TLS flags go through the same path.
TEST_F(IntegrationCtl, TokenFlagOverridesTheEnvironmentAndRefusalsExit5) {
  const std::string all_token = "ctl-test-token-all-0123456789";
  const std::string replay_token = "ctl-test-token-replay-0123456789";
  const std::string tokens = dir() + "/tokens";
  const std::string all_file = dir() + "/token-all";
  const std::string replay_file = dir() + "/token-replay";
  const auto write = [](const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write);
  };
  write(tokens, all_token + " all name=ops\n" + replay_token + " replay name=reader\n");
  write(all_file, all_token + "\n");
  write(replay_file, replay_token + "\n");
  const std::string node = "--node=" + start_node({"--auth_tokens=" + tokens}).address();
  const auto ctl_env = [&](const std::string& env, std::vector<std::string> args,
                           const std::string& input = "") {
    std::vector<std::string> argv = {"env", env, kRinglogctl};
    argv.insert(argv.end(), args.begin(), args.end());
    return testkit::run_command(argv, {.input = input});
  };

  const CommandResult none = ctl({"status", node});
  EXPECT_EQ(none.exit_code, 5) << none.out << none.err;
  EXPECT_TRUE(contains(none.out, "needs credentials")) << none.out;
  const CommandResult denied = ctl({"append", node, "--token-file=" + replay_file}, "x\n");
  EXPECT_EQ(denied.exit_code, 5) << denied.out << denied.err;
  EXPECT_TRUE(contains(denied.err, "PERMISSION_DENIED")) << denied.err;
  EXPECT_FALSE(contains(denied.err, replay_token)) << denied.err;

  const CommandResult over_file =
      ctl_env("RINGLOG_TOKEN_FILE=" + replay_file, {"append", node, "--token-file=" + all_file}, "x\n");
  EXPECT_EQ(over_file.exit_code, 0) << over_file.out << over_file.err;
  const CommandResult over_token =
      ctl_env("RINGLOG_TOKEN=" + all_token, {"append", node, "--token-file=" + replay_file}, "x\n");
  EXPECT_EQ(over_token.exit_code, 5) << over_token.out << over_token.err;
  const CommandResult from_env = ctl_env("RINGLOG_TOKEN_FILE=" + replay_file, {"replay", node});
  EXPECT_EQ(from_env.exit_code, 0) << from_env.out << from_env.err;
  EXPECT_TRUE(contains(from_env.out, "x")) << from_env.out;

  for (const char* flag : {"--token-file=", "--tls-ca="}) {
    const CommandResult missing = ctl({"status", node, flag + dir() + "/nothing-here"});
    EXPECT_EQ(missing.exit_code, 2) << flag << missing.out << missing.err;
    EXPECT_TRUE(contains(missing.err, dir() + "/nothing-here")) << missing.err;
    EXPECT_TRUE(missing.out.empty()) << missing.out;
  }
  const CommandResult bad_env = ctl_env("RINGLOG_TLS_CA=" + dir() + "/nothing-here", {"status", node});
  EXPECT_EQ(bad_env.exit_code, 2) << bad_env.out << bad_env.err;
  EXPECT_TRUE(contains(bad_env.err, "RINGLOG_TLS_CA")) << bad_env.err;

  const CommandResult health = ctl({"health", node});
  EXPECT_EQ(health.exit_code, 0) << health.out << health.err;
  EXPECT_TRUE(contains(ctl({"append", "--help"}).out, "--token-file FILE"));
  EXPECT_TRUE(contains(ctl({"load", "--help"}).out, "--tls-server-name NAME"));
}

// `ringlogctl load` against a node that freezes (SIGSTOP): its drain can
// never finish, yet SIGINT stops it within seconds, saying that not every
// event was acknowledged.
TEST_F(IntegrationCtl, LoadStopsOnSigintWhileItsNodeIsFrozen) {
  tools::NodeProcess& node = start_node();
  const std::string out_path = dir() + "/load.out";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    const std::string addr = "--node=" + node.address();
    execl(kRinglogctl, kRinglogctl, "load", addr.c_str(), "--rate=2000", nullptr);
    _exit(127);
  }
  // Reaped here or, on a failed assertion, killed.
  struct Reaper {
    pid_t pid;
    bool reaped = false;
    ~Reaper() {
      if (!reaped) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};
  ASSERT_TRUE(wait_until([&] { return testkit::read_file(out_path).find("acked") != std::string::npos; },
                         absl::Seconds(30)))
      << testkit::read_file(out_path);
  ASSERT_EQ(kill(node.pid(), SIGSTOP), 0);
  // Whether the signal finds the load sending or draining, its last drain
  // (at close) cannot finish while the node is frozen.
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int wstatus = 0;
  ASSERT_TRUE(wait_until([&] {
    if (waitpid(pid, &wstatus, WNOHANG) != pid) return false;
    reaper.reaped = true;
    return true;
  }, absl::Seconds(15))) << "ringlogctl load ignored SIGINT:\n" << testkit::read_file(out_path);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0) << wstatus;
  kill(node.pid(), SIGCONT);
}

}  // namespace
}  // namespace ringlog::testing
