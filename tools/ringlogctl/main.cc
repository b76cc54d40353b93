// ringlogctl: operate a ringlog node and read its log.
//
//   ringlogctl status  [--node HOST:PORT | --nodes a,b,c] [--json]
//   ringlogctl append  [--node ...] [--type N] [--input lines|jsonl]     < events
//   ringlogctl replay  [--node ...] [--from-seq N | --from-time T | --from-start | --from-end]
//                      [--types 1,2] [--limit N] [--follow] [--format text|json|raw]
//   ringlogctl verify  --data-dir DIR      (offline)
//   ringlogctl dump    --data-dir DIR [--from-seq N] [--limit N] [--format text|json]
//   ringlogctl promote [--node ...] [--force]
//   ringlogctl follow  --node HOST:PORT --primary HOST:PORT [--force]
//   ringlogctl load    --nodes a,b,c [--rate N] [--payload N] [--seconds S]
//   ringlogctl health  [--node HOST:PORT] [--service ringlog.v1.EventLog/Append]
//
// Exit codes: 0 done, 1 the node refused or failed, 2 bad usage, 3 node
// unreachable, 4 verify found a problem.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "ctl.h"

ABSL_FLAG(std::string, node, "127.0.0.1:7400", "the node to talk to, HOST:PORT");
ABSL_FLAG(std::string, nodes, "", "status: several nodes, comma-separated");
ABSL_FLAG(std::string, data_dir, "", "verify, dump: the data directory (offline)");
ABSL_FLAG(bool, json, false, "status: print JSON");

namespace {

constexpr char kUsage[] =
    "ringlogctl <command> [flags]\n"
    "  status   one row per node (--node or --nodes a,b,c; --json)\n"
    "  append   appends stdin: one event per line (--type, --input lines|jsonl)\n"
    "  replay   prints events (--from-seq/--from-time/--from-start/--from-end, --types,\n"
    "           --follow, --limit, --format text|json|raw)\n"
    "  verify   checks every segment of --data-dir offline\n"
    "  dump     prints the events of --data-dir offline\n"
    "  promote  makes a replica the primary of a new epoch (--force)\n"
    "  follow   points --node at a new --primary (--force)\n"
    "  health   asks --node's gRPC health service (exit 0 when SERVING; --service\n"
    "           ringlog.v1.EventLog/Append: whether it takes appends now)\n"
    "  load     appends --rate events/s to the primary among --nodes, following failovers\n"
    "Exit codes: 0 done, 1 refused or failed, 2 bad usage, 3 unreachable, 4 data problem.\n"
    "Flags take dashes or underscores (--from-seq or --from_seq).";

}  // namespace

int main(int argc, char** argv) {
  // Flag names are C identifiers; accept the dashed spelling too.
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a.rfind("--", 0) != 0) continue;
    const size_t eq = a.find('=');
    for (size_t j = 2; j < std::min(eq, a.size()); ++j) {
      if (a[j] == '-') a[j] = '_';
    }
  }
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(cargs.size()), cargs.data());
  if (rest.size() != 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return ringlog::ctl::kUsage;
  }
  const std::string cmd = rest[1];
  if (cmd == "status") return ringlog::ctl::cmd_status();
  if (cmd == "append") return ringlog::ctl::cmd_append();
  if (cmd == "replay") return ringlog::ctl::cmd_replay();
  if (cmd == "verify") return ringlog::ctl::cmd_verify();
  if (cmd == "dump") return ringlog::ctl::cmd_dump();
  if (cmd == "promote") return ringlog::ctl::cmd_promote();
  if (cmd == "follow") return ringlog::ctl::cmd_follow();
  if (cmd == "load") return ringlog::ctl::cmd_load();
  if (cmd == "health") return ringlog::ctl::cmd_health();
  std::fprintf(stderr, "ringlogctl: unknown command \"%s\"\n%s\n", cmd.c_str(), kUsage);
  return ringlog::ctl::kUsage;
}
