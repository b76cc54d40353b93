#include "common/test_support.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/time/clock.h"

namespace ringlog::test_support {

bool poll_until(const std::function<bool()>& pred, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  for (;;) {
    if (pred()) return true;
    if (absl::Now() >= deadline) return pred();
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(20));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void print_log_tails(const std::string& dir, int lines) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string path = e.path().string();
    if (!path.ends_with(".log")) continue;
    const std::string text = read_file(path);
    size_t from = text.size();
    for (int n = 0; from > 0 && n < lines; --from) {
      if (text[from - 1] == '\n') ++n;
    }
    std::fprintf(stderr, "---- %s (last lines) ----\n%s\n", path.c_str(), text.c_str() + from);
  }
}

}  // namespace ringlog::test_support
