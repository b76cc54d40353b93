#include "node_files.h"

#include <cstdio>
#include <fstream>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ringlog {

absl::StatusOr<std::string> load_node_id(const std::string& dir) {
  const std::string path = dir + "/NODE_ID";
  {
    std::ifstream in(path);
    std::string id;
    if (in && std::getline(in, id) && !id.empty()) return id;
  }
  absl::BitGen gen;
  const std::string id = absl::StrFormat("node-%08x", absl::Uniform<uint32_t>(gen));
  std::ofstream out(path, std::ios::trunc);
  out << id << "\n";
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return id;
}

std::optional<SavedRole> load_role(const std::string& dir) {
  std::ifstream in(dir + "/ROLE");
  std::string word;
  if (!(in >> word)) return std::nullopt;
  SavedRole r;
  if (word == "primary") return r;
  if (word != "replica") return std::nullopt;
  r.role = Role::kReplica;
  in >> r.primary;
  return r;
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
