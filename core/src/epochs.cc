#include "ringlog/epochs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ringlog {
namespace {

absl::Status sys_error(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<EpochHistory> EpochHistory::Load(const std::string& dir) {
  EpochHistory h(dir + "/EPOCHS");
  std::ifstream in(h.path_);
  if (!in) {
    h.entries_.push_back(EpochEntry{0, 0});
    if (absl::Status s = h.save(); !s.ok()) return s;
    return h;
  }
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    EpochEntry e;
    if (!(ls >> e.epoch >> e.start_offset)) {
      // Shown escaped and cut short: the file may hold any bytes at all.
      const std::string shown = absl::CHexEscape(line.substr(0, 60));
      return absl::DataLossError(absl::StrFormat(
          "%s:%d: malformed line \"%s%s\" (each line is \"EPOCH START_OFFSET\"); the epoch "
          "history is damaged: copy EPOCHS from a replica of the same cluster, or empty this "
          "node's data directory and let it copy the log from the primary",
          h.path_, n, shown, line.size() > 60 ? "..." : ""));
    }
    if (!h.entries_.empty() && (e.epoch <= h.entries_.back().epoch ||
                                e.start_offset < h.entries_.back().start_offset)) {
      return absl::DataLossError(
          absl::StrFormat("%s:%d: epochs and offsets must increase", h.path_, n));
    }
    h.entries_.push_back(e);
  }
  if (h.entries_.empty()) h.entries_.push_back(EpochEntry{0, 0});
  return h;
}

absl::Status EpochHistory::save() const {
  const std::string tmp = path_ + ".tmp";
  std::string text = "# epoch start_offset\n";
  for (const EpochEntry& e : entries_) absl::StrAppend(&text, e.epoch, " ", e.start_offset, "\n");
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return sys_error("cannot create " + tmp);
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  fsync(fd) == 0;
  close(fd);
  if (!ok) return sys_error("cannot write " + tmp);
  if (rename(tmp.c_str(), path_.c_str()) != 0) return sys_error("cannot rename to " + path_);
  const std::string dir = path_.substr(0, path_.rfind('/'));
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return absl::OkStatus();
}

absl::Status EpochHistory::append(uint64_t epoch, uint64_t start_offset) {
  if (epoch <= current()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("epoch %d is not above the current epoch %d", epoch, current()));
  }
  // An epoch that starts where the last one started replaces it: the last
  // one never held a record.
  if (entries_.back().start_offset == start_offset && entries_.size() > 1) entries_.pop_back();
  entries_.push_back(EpochEntry{epoch, start_offset});
  return save();
}

absl::Status EpochHistory::replace(std::vector<EpochEntry> entries) {
  if (entries.empty()) return absl::InvalidArgumentError("empty epoch history");
  entries_ = std::move(entries);
  return save();
}

absl::Status EpochHistory::truncate_after(uint64_t offset) {
  size_t keep = entries_.size();
  while (keep > 1 && entries_[keep - 1].start_offset > offset) --keep;
  if (keep == entries_.size()) return absl::OkStatus();
  entries_.resize(keep);
  return save();
}

uint64_t EpochHistory::end_of(uint64_t epoch, uint64_t log_end) const {
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].epoch == epoch) {
      return i + 1 < entries_.size() ? entries_[i + 1].start_offset : log_end;
    }
    if (entries_[i].epoch > epoch) return entries_[i].start_offset;
  }
  return log_end;
}

}  // namespace ringlog
