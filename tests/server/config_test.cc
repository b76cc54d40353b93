// The config file format, and the order in which the config file, the
// environment and the command line set ringlogd's flags (server/config.h).
// The flags are ringlogd's own; each test leaves them as it found them.
#include "config.h"

#include <fstream>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/test_util.h"
#include "flags.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ringlog {
inline void PrintTo(const ConfigSetting& s, std::ostream* os) {
  *os << "{" << s.name << " = \"" << s.value << "\", line " << s.line << "}";
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// The settings of `text`, which must parse.
std::vector<ConfigSetting> settings_of(absl::string_view text) {
  absl::StatusOr<std::vector<ConfigSetting>> s = parse_config(text, "test.conf");
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : std::vector<ConfigSetting>{};
}

// The error message for `text`, which must not parse.
std::string error_of(absl::string_view text) {
  absl::StatusOr<std::vector<ConfigSetting>> s = parse_config(text, "test.conf");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(s.status().message());
}

std::string flag(absl::string_view name) {
  return absl::FindCommandLineFlag(name)->CurrentValue();
}

// ---- The file format ----

TEST(ConfigFile, TrailingCommentIsNotPartOfTheValue) {
  EXPECT_THAT(settings_of("fsync = 10ms   # flush often\n"),
              ElementsAre(ConfigSetting{"fsync", "10ms", 1}));
}

TEST(ConfigFile, HashInsideAWordIsKept) {
  EXPECT_THAT(settings_of("node_id = a#b\n"), ElementsAre(ConfigSetting{"node_id", "a#b", 1}));
}

TEST(ConfigFile, DoubleAndSingleQuotesAreRemoved) {
  EXPECT_THAT(settings_of("data_dir = \"/tmp/x\"\nnode_id = 'n1'\n"),
              ElementsAre(ConfigSetting{"data_dir", "/tmp/x", 1},
                          ConfigSetting{"node_id", "n1", 2}));
}

TEST(ConfigFile, QuotedValueKeepsHashAndSpacesAndTakesAComment) {
  EXPECT_THAT(settings_of("data_dir = \" /srv/log #2 \"  # the second disk\n"),
              ElementsAre(ConfigSetting{"data_dir", " /srv/log #2 ", 1}));
}

TEST(ConfigFile, DashedNamesReadAsUnderscores) {
  EXPECT_THAT(settings_of("data-dir = /d\n--min-replica-acks: 2\n"),
              ElementsAre(ConfigSetting{"data_dir", "/d", 1},
                          ConfigSetting{"min_replica_acks", "2", 2}));
}

// What the shipped files and the ops test rely on: comments and blank
// lines skipped, "--name: value", ':' inside a value, CRLF line ends.
TEST(ConfigFile, EarlierFormsStillRead) {
  EXPECT_THAT(settings_of("# a comment\n\n  min_replica_acks = 2\n--ring_bytes: 8388608\n"
                          "listen = 0.0.0.0:7400\r\nadvertise =\n"),
              ElementsAre(ConfigSetting{"min_replica_acks", "2", 3},
                          ConfigSetting{"ring_bytes", "8388608", 4},
                          ConfigSetting{"listen", "0.0.0.0:7400", 5},
                          ConfigSetting{"advertise", "", 6}));
}

TEST(ConfigFile, EveryMalformedLineIsReportedWithItsNumber) {
  const std::string err = error_of("listen\nrole = primary\ndata dir = x\n");
  EXPECT_THAT(err, HasSubstr("test.conf:1: expected name = value"));
  EXPECT_THAT(err, Not(HasSubstr("test.conf:2")));
  EXPECT_THAT(err, HasSubstr("test.conf:3: \"data dir\" is not a flag name"));
}

TEST(ConfigFile, UnclosedQuoteIsRefused) {
  EXPECT_THAT(error_of("data_dir = \"/tmp/x\n"), HasSubstr("test.conf:1: the value's opening \""));
}

TEST(ConfigFile, TextAfterTheClosingQuoteIsRefused) {
  EXPECT_THAT(error_of("\n\ndata_dir = '/a' /b\n"), HasSubstr("test.conf:3: \"/b\" follows"));
}

// ---- Setting the flags ----

class ConfigFlagsTest : public ringlog_test::TempDirTest {
 protected:
  // Writes `text` to a file of the test's directory and returns its path.
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(path(name)) << text;
    return path(name);
  }
  // A config file that sets min_replica_acks = 2 and segment_bytes = 4 MiB.
  std::string example_config() {
    return write("r.conf", "min_replica_acks = 2\nsegment_bytes = 4194304\n");
  }
  absl::Status apply(absl::string_view text) {
    absl::StatusOr<std::vector<ConfigSetting>> s = parse_config(text, "test.conf");
    return s.ok() ? apply_config(*s, "test.conf") : s.status();
  }
  // parse_flags over `args` (after the program name), with env_ as the
  // environment.
  absl::Status parse(std::vector<std::string> args) {
    args.insert(args.begin(), "ringlogd");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    return parse_flags(static_cast<int>(argv.size()), argv.data(), own_flags(), env());
  }
  EnvLookup env() {
    return [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
  }

  std::map<std::string, std::string> env_;

 private:
  absl::FlagSaver saver_;
};

TEST_F(ConfigFlagsTest, QuotedDataDirSetsThePathWithoutQuotes) {
  ASSERT_TRUE(apply("data-dir = \"/tmp/x\"  # scratch\n").ok());
  EXPECT_EQ(flag("data_dir"), "/tmp/x");
}

TEST_F(ConfigFlagsTest, UnknownFlagIsRefusedNamingFileAndLine) {
  const absl::Status s = apply("min_replica_acks = 1\nno_such_flag = 3\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("test.conf:2: no flag --no_such_flag"));
}

TEST_F(ConfigFlagsTest, BadValueIsRefusedNamingTheFlag) {
  EXPECT_THAT(apply("\nmin_replica_acks = many\n").message(),
              HasSubstr("test.conf:2: --min_replica_acks: "));
}

TEST_F(ConfigFlagsTest, ConfigFileCannotNameAnother) {
  EXPECT_THAT(apply("config = other.conf\n").message(),
              HasSubstr("test.conf:1: a config file cannot name another"));
}

TEST_F(ConfigFlagsTest, MissingFileIsNotFound) {
  EXPECT_EQ(read_config_file(path("absent.conf")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ConfigFlagsTest, ConfigPathIsTheLastOnTheCommandLineElseTheEnvironment) {
  std::string a0 = "ringlogd", a1 = "--config=a.conf", a2 = "-config", a3 = "b.conf";
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data()};
  env_["RINGLOG_CONFIG"] = "env.conf";
  EXPECT_EQ(config_path(4, argv, env()), "b.conf");
  EXPECT_EQ(config_path(2, argv, env()), "a.conf");
  EXPECT_EQ(config_path(1, argv, env()), "env.conf");
}

// ---- Precedence: file, then environment, then command line ----

TEST_F(ConfigFlagsTest, FileSetsFlags) {
  ASSERT_TRUE(parse({"--config=" + example_config()}).ok());
  EXPECT_EQ(flag("min_replica_acks"), "2");
  EXPECT_EQ(flag("segment_bytes"), "4194304");
}

TEST_F(ConfigFlagsTest, EnvironmentOverridesFile) {
  env_["RINGLOG_MIN_REPLICA_ACKS"] = "3";
  ASSERT_TRUE(parse({"--config=" + example_config()}).ok());
  EXPECT_EQ(flag("min_replica_acks"), "3");
  EXPECT_EQ(flag("segment_bytes"), "4194304") << "the file's, where the environment is silent";
}

TEST_F(ConfigFlagsTest, CommandLineOverridesEnvironmentAndFile) {
  env_["RINGLOG_MIN_REPLICA_ACKS"] = "3";
  ASSERT_TRUE(parse({"--config", example_config(), "--min_replica_acks=4"}).ok());
  EXPECT_EQ(flag("min_replica_acks"), "4");
}

TEST_F(ConfigFlagsTest, RinglogConfigInTheEnvironmentNamesTheFile) {
  env_["RINGLOG_CONFIG"] = example_config();
  ASSERT_TRUE(parse({}).ok());
  EXPECT_EQ(flag("min_replica_acks"), "2");
}

TEST_F(ConfigFlagsTest, EnvironmentValueIsRefusedNamingTheVariable) {
  env_["RINGLOG_MIN_REPLICA_ACKS"] = "many";
  EXPECT_THAT(parse({}).message(), HasSubstr("RINGLOG_MIN_REPLICA_ACKS: "));
}

// Abseil's --flagfile is part of the command line: it overrides the
// environment, and a later flag overrides it.
TEST_F(ConfigFlagsTest, FlagfileCountsAsTheCommandLine) {
  const std::string flagfile = write("r.flags", "--min_replica_acks=5\n--fsync=batch\n");
  env_["RINGLOG_MIN_REPLICA_ACKS"] = "3";
  ASSERT_TRUE(parse({"--flagfile=" + flagfile, "--fsync=5ms"}).ok());
  EXPECT_EQ(flag("min_replica_acks"), "5");
  EXPECT_EQ(flag("fsync"), "5ms");
}

TEST_F(ConfigFlagsTest, ConfigNamedInAFlagfileIsRefusedRatherThanIgnored) {
  const std::string flagfile = write("r.flags", "--config=" + example_config() + "\n");
  EXPECT_THAT(parse({"--flagfile=" + flagfile}).message(), HasSubstr("was not read"));
}

// ---- The shipped configs ----

// Each setting line of the shipped files, read as the earlier parser read
// it: the name and the whole text after '=', trimmed.
void expect_read_as_before(const std::string& text, const std::vector<ConfigSetting>& got) {
  std::vector<ConfigSetting> want;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    want.push_back({std::string(absl::StripAsciiWhitespace(kv.first)),
                    std::string(absl::StripAsciiWhitespace(kv.second)), n});
  }
  EXPECT_EQ(got, want);
}

TEST_F(ConfigFlagsTest, DeployConfigsReadAsBeforeAndSetRinglogdFlags) {
  for (const char* name : {"primary.conf", "replica.conf"}) {
    const std::string file = std::string(RINGLOG_SOURCE_DIR) + "/deploy/" + name;
    absl::StatusOr<std::vector<ConfigSetting>> settings = read_config_file(file);
    ASSERT_TRUE(settings.ok()) << settings.status();
    expect_read_as_before(ringlog_test::read_file(file), *settings);
    EXPECT_TRUE(apply_config(*settings, file).ok()) << name;
  }
  EXPECT_EQ(flag("role"), "replica");
  EXPECT_EQ(flag("fsync"), "10ms");
}

// The ringlog.conf of the Kubernetes ConfigMap: the block under
// "ringlog.conf: |", indented four spaces.
TEST_F(ConfigFlagsTest, KubernetesConfigMapSetsRinglogdFlags) {
  const std::string yaml = ringlog_test::read_file(std::string(RINGLOG_SOURCE_DIR) +
                                                   "/deploy/k8s/ringlog.yaml");
  std::string conf;
  bool in_block = false;
  for (absl::string_view line : absl::StrSplit(yaml, '\n')) {
    if (in_block && !absl::ConsumePrefix(&line, "    ")) break;
    if (in_block) absl::StrAppend(&conf, line, "\n");
    if (absl::StripAsciiWhitespace(line) == "ringlog.conf: |") in_block = true;
  }
  ASSERT_THAT(conf, HasSubstr("peers = "));
  absl::StatusOr<std::vector<ConfigSetting>> settings = parse_config(conf, "ringlog.conf");
  ASSERT_TRUE(settings.ok()) << settings.status();
  expect_read_as_before(conf, *settings);
  EXPECT_TRUE(apply_config(*settings, "ringlog.conf").ok());
  EXPECT_EQ(flag("peers"), "ringlog-0.ringlog:7400,ringlog-1.ringlog:7400,ringlog-2.ringlog:7400");
}

}  // namespace
}  // namespace ringlog
