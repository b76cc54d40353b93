#include "node_files.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ringlog {

namespace {

// The first bytes of a file's unexpected content, printable.
std::string shown(const std::string& text) {
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, 40)), text.size() > 40 ? "..." : "",
                      "\"");
}

std::optional<std::string> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::Status check_node_id(const std::string& id) {
  const bool ok = !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isgraph(static_cast<unsigned char>(c));
  });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s is not a node id: 1 to 128 printable characters without spaces", shown(id)));
}

absl::StatusOr<std::string> load_node_id(const std::string& dir) {
  const std::string path = dir + "/NODE_ID";
  if (std::optional<std::string> text = read_all(path); text && !text->empty()) {
    const std::string id(absl::StripTrailingAsciiWhitespace(*text));
    if (absl::Status s = check_node_id(id); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": ", s.message(), "; write this node's id there, or delete the file to make a "
          "new one (replicas and status then show the new id)"));
    }
    return id;
  }
  absl::BitGen gen;
  const std::string id = absl::StrFormat("node-%08x", absl::Uniform<uint32_t>(gen));
  std::ofstream out(path, std::ios::trunc);
  out << id << "\n";
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return id;
}

absl::StatusOr<std::optional<SavedRole>> load_role(const std::string& dir) {
  const std::string path = dir + "/ROLE";
  const std::optional<std::string> text = read_all(path);
  if (!text) return std::optional<SavedRole>();
  const std::vector<std::string> words =
      absl::StrSplit(*text, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty());
  SavedRole r;
  if (words.size() == 1 && words[0] == "primary") return std::optional<SavedRole>(r);
  if (!words.empty() && words.size() <= 2 && words[0] == "replica") {
    r.role = Role::kReplica;
    if (words.size() == 2) r.primary = words[1];
    return std::optional<SavedRole>(r);
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s holds %s, which is neither \"primary\" nor \"replica HOST:PORT\": write the role this "
      "node had there, or delete the file (it then starts as --role and --primary say)",
      path, shown(*text)));
}

void save_role(const std::string& dir, Role role, const std::string& primary) {
  const std::string path = dir + "/ROLE";
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << (role == Role::kPrimary ? "primary" : "replica " + primary) << "\n";
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
}

}  // namespace ringlog
