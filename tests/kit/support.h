// The process tests' basic tools: awaiting a condition, a temporary
// directory per test, reading files, showing the nodes' logs, and running a
// command to completion.
//
//   testkit::TempDir dir("ringlog-it-");        // under $TMPDIR, or /tmp
//   ASSERT_TRUE(testkit::wait_until([&] { return ready(); }, absl::Seconds(10)));
//   testkit::CommandResult r = testkit::run_command({"/bin/echo", "hi"});
//   EXPECT_EQ(r.out, "hi\n");
//
// Nothing here sleeps to synchronize: wait_until() polls a condition with a
// deadline, run_command() waits for the command's output to end.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace ringlog::testkit {

// How long wait_until() waits when not told.
inline constexpr absl::Duration kDefaultWait = absl::Seconds(30);

// Polls `pred` until it holds or `timeout` passes; returns its last value.
// The pause between polls starts at 1 ms and grows to 20 ms: it is a pause
// between looks, not a wait for something to happen.
bool wait_until(const std::function<bool()>& pred, absl::Duration timeout = kDefaultWait);

// A new directory <$TMPDIR, or /tmp when TMPDIR is unset>/<prefix>XXXXXX,
// removed with everything in it when the object goes. Throws
// std::runtime_error when it cannot be made.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The whole file, or "" if it cannot be read.
std::string read_file(const std::string& path);

// Prints the last `lines` lines of every *.log file in `dir` to stderr.
void print_log_tails(const std::string& dir, int lines);

// GET http://127.0.0.1:port/path with curl (a real HTTP client); without
// curl, with a plain HTTP/1.0 request on a socket. The body, or "" on failure.
std::string http_get(int port, const std::string& path);
// Prometheus text format: "name{labels} value" per sample, keyed by what
// precedes the value.
std::map<std::string, double> parse_metrics(const std::string& text);
// The metrics port a node logged ("metrics on http(s)://... (port N)"),
// waiting up to `timeout` for the line to appear in what `output` returns
// (the node's output so far); 0 if it never did.
int logged_metrics_port(const std::function<std::string()>& output, absl::Duration timeout);

// The machine-readable line of a fault scenario, which
// tools/fault_report.sh adds up over runs:
//   FAULT_RESULT scenario=NAME acknowledged=N lost=N duplicated=N
void report_fault(const std::string& scenario, uint64_t acknowledged, uint64_t lost,
                  uint64_t duplicated);
// The same from what a replay returned: `indices` are the event indices
// found in the log, [0, acknowledged) the acknowledged ones.
void report_fault_indices(const std::string& scenario, const std::vector<uint64_t>& indices,
                          uint64_t acknowledged);

struct CommandOptions {
  std::string input{};                         // the command's stdin
  absl::Duration timeout = absl::Seconds(30);  // then SIGKILL
  bool merge_output = false;                   // stderr into `out` as well
};

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;     // stdout (and stderr, with merge_output)
  std::string err;     // stderr, unless merged
  bool timed_out = false;
};

// Runs argv[0] (a path, or a name looked up in PATH) with `argv` until its
// output ends (it and everything it started closed stdout and stderr) or the
// timeout passes, then reaps it.
CommandResult run_command(const std::vector<std::string>& argv,
                          const CommandOptions& options = CommandOptions());

}  // namespace ringlog::testkit
