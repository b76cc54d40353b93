// ringlogd's settings from a config file, the environment and the command
// line; config.h has the file format and the order.
#include "config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ringlog {
namespace {

constexpr absl::string_view kConfigFlag = "config";

// One error per line of `errors`, or OK if there are none.
absl::Status invalid_if_any(const std::vector<std::string>& errors) {
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

// Where a comment starts in an unquoted value: at a '#' that begins a word,
// so that "a#b" stays whole.
size_t comment_start(absl::string_view v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '#' && (i == 0 || v[i - 1] == ' ' || v[i - 1] == '\t')) return i;
  }
  return absl::string_view::npos;
}

// The text after the separator, as the value it sets.
absl::StatusOr<std::string> parse_value(absl::string_view v) {
  v = absl::StripLeadingAsciiWhitespace(v);
  if (v.empty() || (v[0] != '"' && v[0] != '\'')) {
    return std::string(absl::StripTrailingAsciiWhitespace(v.substr(0, comment_start(v))));
  }
  const size_t close = v.find(v[0], 1);
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("the value's opening ", v.substr(0, 1),
                                                   " has no closing one"));
  }
  const absl::string_view after = absl::StripLeadingAsciiWhitespace(v.substr(close + 1));
  if (!after.empty() && after[0] != '#') {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", after, "\" follows the closing quote (only a # comment may)"));
  }
  return std::string(v.substr(1, close - 1));
}

// The text before the separator, as a flag name: "--" dropped, dashes read
// as underscores.
absl::StatusOr<std::string> parse_name(absl::string_view n) {
  n = absl::StripAsciiWhitespace(n);
  absl::ConsumePrefix(&n, "--");
  std::string name(n);
  std::replace(name.begin(), name.end(), '-', '_');
  const bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
  if (!word) return absl::InvalidArgumentError(absl::StrCat("\"", n, "\" is not a flag name"));
  return name;
}

// A line that is neither blank nor a comment.
absl::StatusOr<ConfigSetting> parse_setting(absl::string_view line) {
  const size_t sep = line.find_first_of("=:");
  if (sep == absl::string_view::npos) return absl::InvalidArgumentError("expected name = value");
  absl::StatusOr<std::string> name = parse_name(line.substr(0, sep));
  if (!name.ok()) return name.status();
  absl::StatusOr<std::string> value = parse_value(line.substr(sep + 1));
  if (!value.ok()) return value.status();
  return ConfigSetting{*std::move(name), *std::move(value)};
}

// The --config set by the command line after Abseil parsed it, if it is not
// the file that was read: one named in a --flagfile.
absl::Status check_config_was_read(const std::string& read) {
  const absl::CommandLineFlag* f = absl::FindCommandLineFlag(kConfigFlag);
  if (f == nullptr) return absl::OkStatus();
  const std::string named = f->CurrentValue();
  if (named.empty() || named == read) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "--config=%s was not read: name the config file on the command line itself, not in a "
      "--flagfile",
      named));
}

}  // namespace

absl::StatusOr<std::vector<ConfigSetting>> parse_config(absl::string_view text,
                                                        absl::string_view source) {
  std::vector<ConfigSetting> settings;
  std::vector<std::string> errors;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    absl::StatusOr<ConfigSetting> s = parse_setting(line);
    if (!s.ok()) {
      errors.push_back(absl::StrFormat("%s:%d: %s", source, n, s.status().message()));
      continue;
    }
    s->line = n;
    settings.push_back(*std::move(s));
  }
  if (absl::Status s = invalid_if_any(errors); !s.ok()) return s;
  return settings;
}

absl::StatusOr<std::vector<ConfigSetting>> read_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

absl::Status apply_config(absl::Span<const ConfigSetting> settings, absl::string_view source) {
  std::vector<std::string> errors;
  for (const ConfigSetting& s : settings) {
    const std::string where = absl::StrFormat("%s:%d: ", source, s.line);
    absl::CommandLineFlag* f = absl::FindCommandLineFlag(s.name);
    std::string err;
    if (s.name == kConfigFlag) {
      errors.push_back(where + "a config file cannot name another (--config)");
    } else if (f == nullptr) {
      errors.push_back(absl::StrCat(where, "no flag --", s.name));
    } else if (!f->ParseFrom(s.value, &err)) {
      errors.push_back(absl::StrCat(where, "--", s.name, ": ", err));
    }
  }
  return invalid_if_any(errors);
}

absl::Status apply_environment(absl::Span<absl::CommandLineFlag* const> flags,
                               const EnvLookup& env) {
  std::vector<std::string> errors;
  for (absl::CommandLineFlag* f : flags) {
    if (f->Name() == kConfigFlag) continue;
    const std::string var = absl::StrCat("RINGLOG_", absl::AsciiStrToUpper(f->Name()));
    const char* value = env(var.c_str());
    std::string err;
    if (value != nullptr && !f->ParseFrom(value, &err)) errors.push_back(var + ": " + err);
  }
  return invalid_if_any(errors);
}

std::string config_path(int argc, char** argv, const EnvLookup& env) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;  // the rest is positional, for Abseil too
    // Abseil takes a flag after one dash or two.
    if (!absl::ConsumePrefix(&a, "-")) continue;
    absl::ConsumePrefix(&a, "-");
    if (absl::ConsumePrefix(&a, "config=")) {
      path = std::string(a);
    } else if (a == kConfigFlag && i + 1 < argc) {
      path = argv[++i];
    }
  }
  if (const char* e = env("RINGLOG_CONFIG"); path.empty() && e != nullptr) path = e;
  return path;
}

absl::Status parse_flags(int argc, char** argv, absl::Span<absl::CommandLineFlag* const> env_flags,
                         const EnvLookup& env) {
  const std::string path = config_path(argc, argv, env);
  if (!path.empty()) {
    absl::StatusOr<std::vector<ConfigSetting>> settings = read_config_file(path);
    if (!settings.ok()) return settings.status();
    if (absl::Status s = apply_config(*settings, path); !s.ok()) return s;
  }
  if (absl::Status s = apply_environment(env_flags, env); !s.ok()) return s;
  absl::ParseCommandLine(argc, argv);
  return check_config_was_read(path);
}

}  // namespace ringlog
