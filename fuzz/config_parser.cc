// The config file parser (server/config.h) on arbitrary text. A setting it
// returns has a name of letters, digits and '_', a value of one line, and
// lines in order.
#include <cstdint>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<ringlog::ConfigSetting>> settings =
      ringlog::parse_config(text, "fuzz.conf");
  if (!settings.ok()) return 0;
  int last_line = 0;
  for (const ringlog::ConfigSetting& s : *settings) {
    if (s.name.empty() || s.line < last_line || s.line < 1) std::abort();
    last_line = s.line;
    for (char c : s.name) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') std::abort();
    }
    if (s.value.find('\n') != std::string::npos) std::abort();
  }
  return 0;
}
