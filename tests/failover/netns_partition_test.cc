// A real network partition: each node in its own network namespace, joined
// to the others (and to the test, in the root namespace) by a veth pair on a
// bridge; the primary's link is cut with `ip link set ... down`. Needs root
// and `ip netns`; skipped with a message otherwise.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "failover_harness.h"
#include "gmock/gmock.h"

namespace ringlog::failover_test {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kBefore = 1;
constexpr int kPort = 7400;  // every node has its own namespace: no clash

// Namespaces "rlfo<pid>a".., a bridge "rlfb<pid>", veth pairs, and the
// 10.213.X.0/24 network (X from the pid). Removed in the destructor, also
// after a failed setup.
class NetnsLab {
 public:
  explicit NetnsLab(size_t nodes) : tag_(std::to_string(getpid() % 100000)), nodes_(nodes) {
    subnet_ = absl::StrCat("10.213.", getpid() % 250 + 1);
  }
  ~NetnsLab() { cleanup(); }

  // Builds the lab; false (with the reason) if this machine cannot.
  bool setup(std::string* why) {
    if (geteuid() != 0) {
      *why = "not root";
      return false;
    }
    if (bridged_traffic_dropped()) {
      *why = "bridged traffic goes through iptables (net.bridge.bridge-nf-call-iptables=1) and "
             "the FORWARD policy drops it, as a Docker daemon leaves a host: the lab's bridge "
             "would carry nothing";
      return false;
    }
    const CommandResult probe = ip({"netns", "add", ns(0)});
    created_ns_ = probe.exit_code == 0 ? 1 : 0;
    if (probe.exit_code != 0) {
      *why = "`ip netns add` failed: " + probe.out;
      return false;
    }
    std::vector<std::vector<std::string>> steps = {
        {"link", "add", bridge(), "type", "bridge"},
        {"addr", "add", subnet_ + ".1/24", "dev", bridge()},
        {"link", "set", bridge(), "up"},
    };
    for (const auto& s : steps) {
      if (!run(s, why)) return false;
    }
    for (size_t i = 0; i < nodes_; ++i) {
      if (i > 0) {
        if (!run({"netns", "add", ns(i)}, why)) return false;
        created_ns_ = i + 1;
      }
      const std::vector<std::vector<std::string>> node_steps = {
          {"link", "add", root_side(i), "type", "veth", "peer", "name", ns_side(i)},
          {"link", "set", ns_side(i), "netns", ns(i)},
          {"link", "set", root_side(i), "master", bridge()},
          {"link", "set", root_side(i), "up"},
          {"-n", ns(i), "addr", "add", ip_of(i) + "/24", "dev", ns_side(i)},
          {"-n", ns(i), "link", "set", ns_side(i), "up"},
          {"-n", ns(i), "link", "set", "lo", "up"},
      };
      for (const auto& s : node_steps) {
        if (!run(s, why)) return false;
      }
    }
    return true;
  }

  void cleanup() {
    for (size_t i = 0; i < created_ns_; ++i) (void)ip({"netns", "del", ns(i)});
    created_ns_ = 0;
    for (size_t i = 0; i < nodes_; ++i) (void)ip({"link", "del", root_side(i)});
    (void)ip({"link", "del", bridge()});
  }

  std::string ns(size_t i) const { return absl::StrCat("rlfo", tag_, letter(i)); }
  std::string ip_of(size_t i) const { return absl::StrCat(subnet_, ".", i + 2); }
  std::string address(size_t i) const { return absl::StrCat(ip_of(i), ":", kPort); }
  // Cuts (or restores) node i's only link.
  bool set_link(size_t i, bool up, std::string* why) {
    return run({"link", "set", root_side(i), up ? "up" : "down"}, why);
  }

 private:
  static bool bridged_traffic_dropped() {
    std::ifstream f("/proc/sys/net/bridge/bridge-nf-call-iptables");
    std::string on;
    if (!(f >> on) || on != "1") return false;
    const CommandResult r = run_command({"iptables", "-S", "FORWARD"},
                                        {.timeout = absl::Seconds(10), .merge_output = true});
    return r.exit_code == 0 && r.out.find("-P FORWARD DROP") != std::string::npos;
  }
  static std::string letter(size_t i) { return std::string(1, static_cast<char>('a' + i)); }
  std::string bridge() const { return absl::StrCat("rlfb", tag_); }
  std::string root_side(size_t i) const { return absl::StrCat("rlfv", tag_, letter(i)); }
  std::string ns_side(size_t i) const { return absl::StrCat("rlfn", tag_, letter(i)); }
  static CommandResult ip(std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    return run_command(args, {.timeout = absl::Seconds(10), .merge_output = true});
  }
  static bool run(const std::vector<std::string>& args, std::string* why) {
    const CommandResult r = ip(args);
    if (r.exit_code == 0) return true;
    *why = absl::StrCat("ip ", absl::StrJoin(args, " "), ": ", r.out);
    return false;
  }

  std::string tag_;
  std::string subnet_;
  size_t nodes_;
  size_t created_ns_ = 0;
};

class FailoverNetns : public FailoverTest {
 protected:
  void TearDown() override {
    FailoverTest::TearDown();  // the nodes' logs, on failure
    kill_all();                // before their namespaces go
    lab_.cleanup();
  }

  // A script that runs ringlogd (with its arguments) in namespace `ns`.
  std::string wrapper(const std::string& ns) {
    const std::string path = dir() + "/in-" + ns + ".sh";
    std::ofstream(path) << "#!/bin/sh\nexec ip netns exec " << ns << " " << kRinglogd
                        << " \"$@\"\n";
    chmod(path.c_str(), 0755);
    return path;
  }

  // Runs a shell command line in namespace `ns`.
  CommandResult in_ns(const std::string& ns, const std::string& command,
                      absl::Duration timeout = absl::Seconds(30)) {
    return run_command({"ip", "netns", "exec", ns, "sh", "-c", command},
                       {.timeout = timeout, .merge_output = true});
  }

  NetnsLab lab_{3};
};

uint64_t json_number(const std::string& json, const std::string& field) {
  std::smatch m;
  const std::regex re("\"" + field + "\":\"?(\\d+)");
  if (!std::regex_search(json, m, re)) return 0;
  return std::stoull(m[1]);
}

// Scenario: A (primary), B and C (replicas), each in its own network
// namespace, all with --min_replica_acks=1 and --peers naming the others.
// Events are acknowledged on all three. A's link is cut. The operator, who
// can reach B and C only, runs `ringlogctl promote --node B --nodes A,B,C`
// (A is skipped as unreachable). A client inside A's namespace appends to A:
// A writes the events (its log end moves) but cannot commit or acknowledge
// them (ringlogctl append never completes; A's commit offset stays below its
// log end). The link is restored: A finds B primary in a later epoch among
// its peers, steps down, cuts what it took during the partition, and follows
// B. All three serve the same events, none from the partition, and their
// files are byte-identical.
TEST_F(FailoverNetns, PartitionedPrimaryCannotAcknowledge) {
  std::string why;
  if (!lab_.setup(&why)) {
    GTEST_SKIP() << "the network-namespace lab cannot run here (" << why
                 << "); the partition test needs root, `ip netns` and a bridge that forwards";
  }
  const std::vector<std::string> names = {"A", "B", "C"};
  for (size_t i = 0; i < names.size(); ++i) place(names[i], lab_.address(i), wrapper(lab_.ns(i)));
  auto flags = [&](size_t self, std::vector<std::string> f) {
    f.push_back("--min_replica_acks=1");
    std::vector<std::string> others;
    for (size_t i = 0; i < names.size(); ++i) {
      if (i != self) others.push_back(names[i]);
    }
    f.push_back(peers_flag(others));
    return f;
  };
  start("A", flags(0, {}));
  start("B", flags(1, {"--role=replica", "--primary=" + address("A")}));
  start("C", flags(2, {"--role=replica", "--primary=" + address("A")}));
  ASSERT_TRUE(append({"A"}, 0, 300, kBefore).ok());
  ASSERT_TRUE(wait_converged("A", {"B", "C"}));

  ASSERT_TRUE(lab_.set_link(0, false, &why)) << why;
  const CommandResult promoted = ringlogctl(
      {"promote", "--node=" + address("B"),
       "--nodes=" + address("A") + "," + address("B") + "," + address("C")});
  ASSERT_EQ(promoted.exit_code, 0) << promoted.out;
  std::printf("%s", promoted.out.c_str());
  EXPECT_THAT(promoted.out, HasSubstr(address("A") + ": unreachable"));
  ASSERT_TRUE(wait_until([&] {
    absl::StatusOr<v1::NodeStatus> c = status("C");
    return c.ok() && c->primary() == address("B") &&
           c->replica_state() == v1::REPLICA_STATE_STREAMING;
  }, absl::Seconds(60))) << "C does not stream from B";

  // Inside the partition: an append to A is never acknowledged.
  const CommandResult stale = in_ns(
      lab_.ns(0), absl::StrCat("printf 'partitioned-1\\npartitioned-2\\n' | timeout -s KILL 4 ",
                               kRinglogctl, " append --node=", address("A")));
  EXPECT_EQ(stale.exit_code, 128 + SIGKILL) << "ringlogctl append ended: " << stale.out;
  EXPECT_THAT(stale.out, ::testing::Not(HasSubstr("appended")));
  const CommandResult st = in_ns(lab_.ns(0), absl::StrCat(kRinglogctl, " status --json --node=",
                                                          address("A")));
  ASSERT_EQ(st.exit_code, 0) << st.out;
  EXPECT_THAT(st.out, HasSubstr("ROLE_PRIMARY"));
  EXPECT_GT(json_number(st.out, "logEndOffset"), json_number(st.out, "commitOffset"))
      << "A's log end did not move past its commit: " << st.out;

  ASSERT_TRUE(lab_.set_link(0, true, &why)) << why;
  ASSERT_TRUE(wait_converged("B", {"A", "C"}));
  absl::StatusOr<v1::NodeStatus> a = status("A");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->role(), v1::ROLE_REPLICA);
  EXPECT_EQ(a->primary(), address("B"));
  EXPECT_THAT(output("A"), HasSubstr("stepping down"));
  EXPECT_THAT(output("A"), HasSubstr("truncating the log"));
  for (const std::string& n : names) {
    absl::StatusOr<std::vector<Replayed>> ev = replay_all(n);
    ASSERT_TRUE(ev.ok()) << n << ": " << ev.status();
    EXPECT_TRUE(exactly_once_in_order(*ev, kBefore, 300)) << n;
    EXPECT_EQ(ev->size(), 300u) << n << " serves events taken during the partition";
  }
  ASSERT_EQ(*stop("A", SIGTERM), 0);
  ASSERT_EQ(*stop("C", SIGTERM), 0);
  ASSERT_EQ(*stop("B", SIGTERM), 0);
  EXPECT_TRUE(files_identical("B", "A"));
  EXPECT_TRUE(files_identical("B", "C"));
}

}  // namespace
}  // namespace ringlog::failover_test
