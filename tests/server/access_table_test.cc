// The tokens file (--auth_tokens) as the node reads it: entries, roles,
// options, and errors that name the line but never the token.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "security.h"

namespace ringlog {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(AccessTable, ReadsTokensAndCertificateEntries) {
  absl::StatusOr<AccessTable> t = AccessTable::Parse(
      "# comment\n"
      "\n"
      "0123456789abcdef0123 append,replay name=orders\n"
      "  fedcba9876543210fedc\tall   expires=2030-01-31T00:00:00Z  \n"
      "cert:ops-laptop admin\n",
      "tokens");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->tokens.size(), 2u);
  EXPECT_EQ(t->tokens[0].roles, kRoleAppend | kRoleReplay);
  EXPECT_EQ(t->tokens[0].name, "orders");
  EXPECT_EQ(t->tokens[0].expires, absl::InfiniteFuture());
  EXPECT_EQ(t->tokens[1].roles, kAllRoles);
  EXPECT_EQ(t->tokens[1].name, "on line 4 of tokens");
  EXPECT_EQ(t->tokens[1].expires, absl::FromUnixSeconds(1896048000));
  EXPECT_NE(t->tokens[0].digest, t->tokens[1].digest);
  ASSERT_EQ(t->certs.size(), 1u);
  EXPECT_EQ(t->certs[0].name, "ops-laptop");
  EXPECT_EQ(t->certs[0].roles, kRoleAdmin);
}

TEST(AccessTable, ErrorsNameTheLineAndNeverTheToken) {
  const std::string secret = "s3cr3t-s3cr3t-s3cr3t";
  for (const std::string& line : {
           secret + " appendd",             // unknown role
           secret,                          // no roles
           secret + " replay nmae=x",       // unknown option
           secret + " replay expires=soon", // not a time
           std::string("short replay"),     // too short to be a token
           std::string("cert: replay"),     // a certificate without a name
       }) {
    absl::StatusOr<AccessTable> t = AccessTable::Parse("# first\n" + line + "\n", "tokens");
    ASSERT_FALSE(t.ok()) << line;
    EXPECT_THAT(t.status().message(), HasSubstr("tokens:2: ")) << line;
    EXPECT_THAT(t.status().message(), Not(HasSubstr(secret))) << line;
  }
}

TEST(AccessTable, RolesReadBackInOneOrder) {
  EXPECT_EQ(roles_string(kRoleReplicate | kRoleAppend), "append,replicate");
  EXPECT_EQ(roles_string(kAllRoles), "append,replay,admin,replicate");
  EXPECT_EQ(roles_string(0), "none");
}

}  // namespace
}  // namespace ringlog
