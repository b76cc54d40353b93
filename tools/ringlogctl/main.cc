// ringlogctl: operate a ringlog node and read its log.
//
//   ringlogctl status  [--node HOST:PORT | --nodes a,b,c] [--json]
//   ringlogctl append  [--node ...] [--type N] [--input lines|jsonl]     < events
//   ringlogctl replay  [--node ...] [--from-seq N | --from-time T | --from-start | --from-end]
//                      [--types 1,2] [--limit N] [--follow] [--format text|json|raw]
//   ringlogctl verify  --data-dir DIR      (offline)
//   ringlogctl dump    --data-dir DIR [--from-seq N] [--limit N] [--format text|json|raw]
//   ringlogctl promote [--node ...] [--nodes a,b,c] [--force]
//   ringlogctl follow  --node HOST:PORT --primary HOST:PORT [--to-be-promoted] [--force]
//   ringlogctl load    --nodes a,b,c [--rate N] [--payload N] [--seconds S]
//   ringlogctl health  [--node HOST:PORT] [--service ringlog.v1.EventLog/Append]
//   ringlogctl [COMMAND] --help | -h       ringlogctl --version
//
// Every command that talks to nodes also takes --tls-ca, --tls-cert,
// --tls-key, --tls-server-name and --token-file, over RINGLOG_TLS_* and
// RINGLOG_TOKEN* (ringlog/security.h).
//
// Exit codes: 0 done, 1 the node refused or failed, 2 bad usage, 3 node
// unreachable, 4 verify found a problem, 5 the node refused the credentials.
//
// The command line is read here rather than by absl::ParseCommandLine: each
// command takes only its own flags (a flag of another command is a mistake,
// not something to ignore), names take dashes or underscores, and every
// mistake exits 2, where Abseil's parser exits 1.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "ctl.h"
#include "ringlog/security.h"
#include "ringlog/version.h"

ABSL_FLAG(std::string, node, "127.0.0.1:7400", "the node to talk to");
ABSL_FLAG(std::string, nodes, "", "several nodes, comma-separated (instead of --node)");
ABSL_FLAG(std::string, data_dir, "", "the data directory of a node, read offline");
ABSL_FLAG(bool, json, false, "print one JSON object per node (the protobuf JSON mapping)");
ABSL_FLAG(std::string, tls_ca, "",
          "TLS: verify the nodes' certificates with this PEM CA (over RINGLOG_TLS_CA)");
ABSL_FLAG(std::string, tls_cert, "",
          "TLS: this client's PEM certificate chain, for nodes that require one (with --tls-key; "
          "over RINGLOG_TLS_CERT)");
ABSL_FLAG(std::string, tls_key, "", "the PEM private key of --tls-cert (over RINGLOG_TLS_KEY)");
ABSL_FLAG(std::string, tls_server_name, "",
          "the name to check in the nodes' certificates instead of the host of the address (over "
          "RINGLOG_TLS_SERVER_NAME)");
ABSL_FLAG(std::string, token_file, "",
          "send the token in this file (its first line) with every call (over RINGLOG_TOKEN and "
          "RINGLOG_TOKEN_FILE)");

namespace ringlog::ctl {
namespace {

// A flag a command takes, with what it means there when that says more than
// the flag's own help text.
struct FlagUse {
  const char* name;
  const char* help = nullptr;
};

struct Command {
  const char* name;
  const char* synopsis;
  const char* summary;
  std::vector<FlagUse> flags;
  int (*run)();
};

// The flags of the credentials, which every command that talks to nodes takes.
constexpr const char* kSecurityFlags[] = {"tls_ca", "tls_cert", "tls_key", "tls_server_name",
                                          "token_file"};

std::vector<FlagUse> with_security(std::vector<FlagUse> flags) {
  for (const char* f : kSecurityFlags) flags.push_back({f});
  return flags;
}

bool talks_to_nodes(const Command& c) {
  return std::any_of(c.flags.begin(), c.flags.end(),
                     [](const FlagUse& u) { return std::strcmp(u.name, "tls_ca") == 0; });
}

const std::vector<Command>& commands() {
  static const std::vector<Command> all = {
      {"status", "[--node HOST:PORT | --nodes A,B,C] [--json]",
       "one row per node: role, epoch, offsets, replicas and their lag",
       with_security({{"node"},
                      {"nodes", "the nodes to show, comma-separated (instead of --node)"},
                      {"json"}}),
       cmd_status},
      {"append", "[--node HOST:PORT] [--type N] [--input lines|jsonl] < EVENTS",
       "appends stdin to the primary, one event per line, and prints their seqs",
       with_security({{"node", "the primary"}, {"type"}, {"input"}}),
       cmd_append},
      {"replay",
       "[--node HOST:PORT] [--from-seq N | --from-time T | --from-start | --from-end] "
       "[--types 1,2] [--limit N] [--follow] [--format text|json|raw]",
       "prints the events of the log (any node serves replays)",
       with_security({{"node"},
                      {"from_seq"},
                      {"from_time"},
                      {"from_start"},
                      {"from_end"},
                      {"types"},
                      {"limit"},
                      {"follow"},
                      {"format"}}),
       cmd_replay},
      {"verify", "--data-dir DIR",
       "checks every record's checksum in a node's data directory, offline (exit 4 on a problem)",
       {{"data_dir"}},
       cmd_verify},
      {"dump", "--data-dir DIR [--from-seq N] [--limit N] [--format text|json|raw]",
       "prints the records of a node's data directory, offline, control records included",
       {{"data_dir"}, {"from_seq"}, {"limit"}, {"format"}},
       cmd_dump},
      {"promote", "--node HOST:PORT [--nodes A,B,C] [--force]",
       "makes a replica the primary of a new epoch; with --nodes, the whole failover in the "
       "order that loses nothing acknowledged",
       with_security(
           {{"node", "the replica to promote"},
            {"nodes",
             "the whole cluster, comma-separated: the other replicas are pointed at the new "
             "primary first, and the old primary, if it answers, told to follow it"},
            {"force", "even if another replica has a longer log, or the node is already primary"}}),
       cmd_promote},
      {"follow", "--node HOST:PORT --primary HOST:PORT [--to-be-promoted] [--force]",
       "points a node at a new primary (a replica is refused, unless --to-be-promoted)",
       with_security(
           {{"node", "the node to point (a replica, or a primary that must step down)"},
            {"primary"},
            {"to_be_promoted"},
            {"force", "even if that cuts records this node knows were committed (a last resort)"}}),
       cmd_follow},
      {"load", "[--nodes A,B,C | --node HOST:PORT] [--rate N] [--payload N] [--seconds S]",
       "appends a steady workload to the primary among the nodes, following failovers; one "
       "line per second",
       with_security({{"nodes", "the nodes, comma-separated: appends go to the primary among them"},
                      {"node", "one node (instead of --nodes)"},
                      {"rate"},
                      {"payload"},
                      {"seconds"}}),
       cmd_load},
      {"health", "[--node HOST:PORT] [--service NAME]",
       "asks the node's gRPC health service: exit 0 when SERVING, 1 when not",
       with_security({{"node"}, {"service"}}),
       cmd_health},
  };
  return all;
}

// What a flag's value looks like, for the help.
const char* value_name(absl::string_view flag) {
  static const std::map<absl::string_view, const char*> names = {
      {"node", "HOST:PORT"}, {"nodes", "A,B,C"},        {"data_dir", "DIR"},
      {"type", "N"},         {"input", "lines|jsonl"},  {"from_seq", "N"},
      {"from_time", "T"},    {"types", "N,N"},          {"limit", "N"},
      {"format", "FORMAT"},  {"primary", "HOST:PORT"},  {"service", "NAME"},
      {"rate", "N"},         {"payload", "BYTES"},      {"seconds", "S"},
      {"tls_ca", "FILE"},    {"tls_cert", "FILE"},      {"tls_key", "FILE"},
      {"tls_server_name", "NAME"},                      {"token_file", "FILE"},
  };
  const auto it = names.find(flag);
  return it == names.end() ? "" : it->second;
}

constexpr char kExitCodes[] =
    "Exit codes: 0 done, 1 the node refused or failed the request, 2 bad usage (a credentials "
    "file that cannot be read too), 3 node unreachable, 4 a data problem (verify, dump), 5 the "
    "node refused the credentials (unauthenticated, or a role missing).\n";

// The flag's name as people type it: dashes.
std::string dashed(absl::string_view name) { return absl::StrReplaceAll(name, {{"_", "-"}}); }

const Command* find_command(absl::string_view name) {
  for (const Command& c : commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

void print_help() {
  std::printf("ringlogctl COMMAND [flags]: operate a ringlog node and read its log.\n\n");
  for (const Command& c : commands()) std::printf("  %-8s %s\n", c.name, c.summary);
  std::printf(
      "\n`ringlogctl COMMAND --help` lists a command's flags. Flags take dashes or underscores "
      "(--from-seq or --from_seq), and their value after '=' or as the next argument.\n"
      "  -h, --help  this help\n"
      "  --version   the version and git revision\n\n"
      "Commands that talk to nodes take TLS and a token: --tls-ca FILE, --tls-cert FILE "
      "--tls-key FILE (mutual TLS), --tls-server-name NAME, --token-file FILE; each over its "
      "environment variable RINGLOG_TLS_CA, RINGLOG_TLS_CERT, RINGLOG_TLS_KEY, "
      "RINGLOG_TLS_SERVER_NAME, RINGLOG_TOKEN_FILE (or RINGLOG_TOKEN, the token itself).\n\n%s",
      kExitCodes);
}

void print_command_help(const Command& c) {
  std::printf("ringlogctl %s %s\n  %s\n\nFlags:\n", c.name, c.synopsis, c.summary);
  std::vector<std::pair<std::string, std::string>> rows;
  for (const FlagUse& u : c.flags) {
    const absl::CommandLineFlag* f = absl::FindCommandLineFlag(u.name);
    std::string left = "--" + dashed(u.name);
    if (const char* v = value_name(u.name); *v != '\0') absl::StrAppend(&left, " ", v);
    std::string right = u.help != nullptr ? u.help : f->Help();
    if (const std::string d = f->DefaultValue(); !d.empty() && d != "false" && d != "0" &&
                                                 d != "-1") {
      absl::StrAppend(&right, " (default: ", d, ")");
    }
    rows.emplace_back(std::move(left), std::move(right));
  }
  rows.emplace_back("-h, --help", "this help");
  size_t width = 0;
  for (const auto& [left, right] : rows) width = std::max(width, left.size());
  for (const auto& [left, right] : rows) {
    std::printf("  %-*s  %s\n", static_cast<int>(width), left.c_str(), right.c_str());
  }
  std::printf("\n%s", kExitCodes);
}

// A flag as given on the command line.
struct Given {
  absl::CommandLineFlag* flag;
  std::string spelled;  // as typed, for messages: "--from-seq"
  std::string value;
};

struct CommandLine {
  std::vector<std::string> positional;
  std::vector<Given> flags;
};

bool is_bool(const absl::CommandLineFlag& f) { return f.IsOfType<bool>(); }

// Splits argv into flags and positional arguments. Syntax: --name=value,
// --name value (not for a bool), --name (a bool: true), --noname (a bool:
// false); one dash works as well as two; "--" ends the flags.
absl::StatusOr<CommandLine> split(int argc, char** argv) {
  CommandLine out;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) out.positional.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      out.positional.emplace_back(arg);
      continue;
    }
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    std::string name = absl::StrReplaceAll(body.substr(0, eq), {{"-", "_"}});
    const std::string spelled = std::string(arg.substr(0, arg.size() - body.size())) +
                                dashed(body.substr(0, eq));
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      absl::string_view rest = absl::string_view(name).substr(2);
      if (!rest.empty() && rest[0] == '_') rest.remove_prefix(1);
      absl::CommandLineFlag* f = absl::FindCommandLineFlag(rest);
      if (f != nullptr && is_bool(*f)) {
        flag = f;
        negated = true;
      }
    }
    if (flag == nullptr || flag->IsRetired()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown flag ", spelled, " (ringlogctl COMMAND --help lists a command's flags)"));
    }
    std::string value;
    if (negated) {
      if (eq != absl::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(spelled, " takes no value"));
      }
      value = "false";
    } else if (eq != absl::string_view::npos) {
      value = std::string(body.substr(eq + 1));
    } else if (is_bool(*flag)) {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat(spelled, " needs a value"));
    }
    out.flags.push_back(Given{flag, spelled, std::move(value)});
  }
  return out;
}

// The credentials of every channel the command opens (its own, and those of
// library calls such as fail_over_to): the environment's, each overridden
// by its flag. Read before anything is done, so that a file that cannot be
// read is a mistake on the command line.
absl::Status apply_security() {
  ClientSecurity s = ClientSecurity::FromEnvironment();
  std::vector<std::string> from;
  for (const char* env : {"RINGLOG_TLS_CA", "RINGLOG_TLS_CERT", "RINGLOG_TLS_KEY",
                          "RINGLOG_TLS_SERVER_NAME", "RINGLOG_TOKEN", "RINGLOG_TOKEN_FILE"}) {
    if (const char* v = std::getenv(env); v != nullptr && *v != '\0') from.emplace_back(env);
  }
  const auto take = [&](const absl::Flag<std::string>& flag, const char* name, const char* env,
                        std::string* field) {
    const std::string v = absl::GetFlag(flag);
    if (v.empty()) return;
    *field = v;
    from.erase(std::remove(from.begin(), from.end(), env), from.end());
    from.push_back("--" + dashed(name));
  };
  take(FLAGS_tls_ca, "tls_ca", "RINGLOG_TLS_CA", &s.tls_ca);
  take(FLAGS_tls_cert, "tls_cert", "RINGLOG_TLS_CERT", &s.tls_cert);
  take(FLAGS_tls_key, "tls_key", "RINGLOG_TLS_KEY", &s.tls_key);
  take(FLAGS_tls_server_name, "tls_server_name", "RINGLOG_TLS_SERVER_NAME", &s.tls_server_name);
  if (!absl::GetFlag(FLAGS_token_file).empty()) {
    s.token.clear();  // the flag wins over RINGLOG_TOKEN as well
    from.erase(std::remove(from.begin(), from.end(), "RINGLOG_TOKEN"), from.end());
  }
  take(FLAGS_token_file, "token_file", "RINGLOG_TOKEN_FILE", &s.token_file);
  absl::StatusOr<std::shared_ptr<const ChannelSecurity>> loaded = ChannelSecurity::Load(s);
  if (!loaded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("credentials (", absl::StrJoin(from, ", "),
                                                   "): ", loaded.status().message()));
  }
  set_default_channel_security(*std::move(loaded));
  return absl::OkStatus();
}

bool any_of(int argc, char** argv, std::initializer_list<absl::string_view> wanted) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view a = argv[i];
    if (a == "--") return false;
    if (std::find(wanted.begin(), wanted.end(), a) != wanted.end()) return true;
  }
  return false;
}

int run(int argc, char** argv) {
  // --help and --version first, whatever else the command line holds; the
  // command named, if any, is the first argument that is one.
  if (any_of(argc, argv, {"-h", "--help", "-help"})) {
    for (int i = 1; i < argc; ++i) {
      if (const Command* c = find_command(argv[i])) {
        print_command_help(*c);
        return kOk;
      }
    }
    print_help();
    return kOk;
  }
  if (any_of(argc, argv, {"--version", "-version"})) {
    std::printf("ringlogctl %s\n", version_string().c_str());
    return kOk;
  }
  absl::StatusOr<CommandLine> line = split(argc, argv);
  if (!line.ok()) return report_usage(line.status());
  if (line->positional.empty()) {
    std::fprintf(stderr, "ringlogctl: give a command (ringlogctl --help lists them)\n");
    return kUsage;
  }
  const Command* cmd = find_command(line->positional[0]);
  if (cmd == nullptr) {
    return report_usage(absl::InvalidArgumentError(absl::StrCat(
        "unknown command \"", line->positional[0], "\" (ringlogctl --help lists them)")));
  }
  if (line->positional.size() > 1) {
    return report_usage(absl::InvalidArgumentError(absl::StrCat(
        cmd->name, " takes no argument \"", line->positional[1], "\"")));
  }
  for (const Given& g : line->flags) {
    const bool taken = std::any_of(cmd->flags.begin(), cmd->flags.end(), [&](const FlagUse& u) {
      return g.flag->Name() == u.name;
    });
    if (!taken) {
      std::vector<std::string> names;
      for (const FlagUse& u : cmd->flags) names.push_back("--" + dashed(u.name));
      return report_usage(absl::InvalidArgumentError(
          absl::StrCat(cmd->name, " takes no ", g.spelled, " (its flags: ",
                       absl::StrJoin(names, ", "), ")")));
    }
    std::string err;
    if (!g.flag->ParseFrom(g.value, &err)) {
      return report_usage(absl::InvalidArgumentError(
          absl::StrCat("bad value \"", g.value, "\" for ", g.spelled, ": ", err)));
    }
  }
  if (talks_to_nodes(*cmd)) {
    if (absl::Status s = apply_security(); !s.ok()) return report_usage(s);
  }
  return cmd->run();
}

}  // namespace
}  // namespace ringlog::ctl

int main(int argc, char** argv) {
  // ringlogctl says what failed itself; gRPC's own log lines on stderr (a
  // failed TLS handshake) would only repeat it in other words.
  setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);
  return ringlog::ctl::run(argc, argv);
}
