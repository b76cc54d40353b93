// CallLimits: open calls counted per client address and per node, a place
// given back when its ticket goes, and refusals that name the limit.
#include "call_limits.h"

#include <vector>

#include "gtest/gtest.h"

namespace ringlog {
namespace {

TEST(CallLimits, ClientIsThePeersAddressWithoutItsPort) {
  EXPECT_EQ(CallLimits::client_of("ipv4:127.0.0.1:5555"), "127.0.0.1");
  EXPECT_EQ(CallLimits::client_of("ipv6:[::1]:5555"), "::1");
  EXPECT_EQ(CallLimits::client_of("ipv6:[2001:db8::7]:80"), "2001:db8::7");
  EXPECT_EQ(CallLimits::client_of("ipv6:[::ffff:10.1.2.3]:4000"), "10.1.2.3");
  EXPECT_EQ(CallLimits::client_of("unix:/run/ringlog.sock"), "unix:/run/ringlog.sock");
}

TEST(CallLimits, RefusesAClientOverItsLimitButNotOthers) {
  CallLimits limits(CallLimitOptions{.max_calls_per_client = 2, .max_calls = 100});
  CallLimits::Ticket a1, a2, a3, b1;
  ASSERT_TRUE(limits.admit("ipv4:10.0.0.1:1000", &a1).ok());
  ASSERT_TRUE(limits.admit("ipv4:10.0.0.1:1001", &a2).ok());  // another connection, same client
  const absl::Status refused = limits.admit("ipv4:10.0.0.1:1002", &a3);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_NE(refused.message().find("client 10.0.0.1"), absl::string_view::npos) << refused;
  EXPECT_NE(refused.message().find("--max_calls_per_client=2"), absl::string_view::npos)
      << refused;
  EXPECT_FALSE(a3.held());
  EXPECT_TRUE(limits.admit("ipv4:10.0.0.2:1000", &b1).ok());
  CallLimits::Stats s = limits.stats();
  EXPECT_EQ(s.open, 3u);
  EXPECT_EQ(s.clients, 2u);
  EXPECT_EQ(s.refused_per_client, 1u);

  a1.reset();  // the call ended: its place is free again
  EXPECT_TRUE(limits.admit("ipv4:10.0.0.1:1003", &a3).ok());
  EXPECT_EQ(limits.stats().open, 3u);
}

TEST(CallLimits, RefusesEveryClientOverTheNodesLimit) {
  CallLimits limits(CallLimitOptions{.max_calls_per_client = 10, .max_calls = 3});
  std::vector<CallLimits::Ticket> t(4);
  ASSERT_TRUE(limits.admit("ipv4:10.0.0.1:1", &t[0]).ok());
  ASSERT_TRUE(limits.admit("ipv4:10.0.0.2:1", &t[1]).ok());
  ASSERT_TRUE(limits.admit("ipv4:10.0.0.3:1", &t[2]).ok());
  const absl::Status refused = limits.admit("ipv4:10.0.0.4:1", &t[3]);
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_NE(refused.message().find("--max_calls=3"), absl::string_view::npos) << refused;
  EXPECT_EQ(limits.stats().refused_node, 1u);
  EXPECT_EQ(limits.stats().clients, 3u);  // a refused client is not kept
}

TEST(CallLimits, TicketsGiveTheirPlaceBackOnceWhenMovedOrDestroyed) {
  CallLimits limits(CallLimitOptions{.max_calls_per_client = 1, .max_calls = 1});
  {
    CallLimits::Ticket t;
    ASSERT_TRUE(limits.admit("ipv6:[::1]:9", &t).ok());
    CallLimits::Ticket moved(std::move(t));
    EXPECT_FALSE(t.held());
    EXPECT_TRUE(moved.held());
    CallLimits::Ticket assigned;
    assigned = std::move(moved);
    EXPECT_EQ(limits.stats().open, 1u);
  }
  EXPECT_EQ(limits.stats().open, 0u);
  EXPECT_EQ(limits.stats().clients, 0u);
  CallLimits::Ticket again;
  EXPECT_TRUE(limits.admit("ipv6:[::1]:10", &again).ok());
}

TEST(CallLimits, ZeroMeansNoLimit) {
  CallLimits limits(CallLimitOptions{.max_calls_per_client = 0, .max_calls = 0});
  std::vector<CallLimits::Ticket> t(1000);
  for (CallLimits::Ticket& x : t) ASSERT_TRUE(limits.admit("ipv4:10.0.0.1:1", &x).ok());
  EXPECT_EQ(limits.stats().open, 1000u);
}

}  // namespace
}  // namespace ringlog
