// ringlogctl end to end: the real binary against a real node, checking the
// output and the exit codes scripts rely on (0 done, 1 refused, 2 usage,
// 3 unreachable, 4 data problem).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_split.h"
#include "harness.h"
#include "ringlog/storage.h"

namespace ringlog::testing {
namespace {

class IntegrationCtl : public NodeTest {};

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
    EXPECT_EQ(lines[i].front(), '{');
    EXPECT_EQ(lines[i].back(), '}');
    for (const std::string& part :
         {"\"seq\":" + std::to_string(i) + ",", std::string("\"type\":7,"),
          "\"payload\":\"" + std::string(payloads[i]) + "\""}) {
      EXPECT_NE(lines[i].find(part), std::string::npos) << lines[i] << " lacks " << part;
    }
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
  // A port bound but not listening: connections to it are refused, and no
  // other process can take it while the socket is open.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string target = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  const CommandResult r = ctl({"status", "--node=" + target});
  close(fd);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find(target), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("down"), std::string::npos) << r.out;
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
