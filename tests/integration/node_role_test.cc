// Roles: a primary without replicas takes appends and serves replays; a
// replica needs a primary to follow, and says so.
#include <filesystem>

#include "harness.h"

namespace ringlog::testing {
namespace {

class IntegrationNodeRole : public NodeTest {};

TEST_F(IntegrationNodeRole, PrimaryWithoutReplicasAcceptsAppendsAndReplays) {
  std::unique_ptr<Client> client = connect(start_node({"--role=primary"}));
  v1::NodeStatus st = status(*client);
  EXPECT_EQ(st.role(), v1::ROLE_PRIMARY);
  EXPECT_EQ(st.min_replica_acks(), 0u);
  EXPECT_EQ(st.replicas_size(), 0);
  EXPECT_FALSE(st.node_id().empty());

  const Ack ack = append_numbered(*client, 0, 0, 100);
  EXPECT_EQ(ack.last_seq, 99u);
  EXPECT_GE(ack.commit_offset, ack.end_offset);
  EXPECT_EQ(ack.epoch, st.epoch());
  ReplayResult r = replay_all(*client, ReplayOptions());
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.events.size(), 100u);

  st = status(*client);
  EXPECT_GT(st.next_seq(), ack.last_seq);
  EXPECT_EQ(st.commit_offset(), st.log_end_offset());
  EXPECT_TRUE(st.storage_error().empty()) << st.storage_error();
}

TEST_F(IntegrationNodeRole, ReplicaWithoutPrimaryExitsWithAClearMessage) {
  const CommandResult r = run_command(
      {kRinglogd, "--role=replica", "--data_dir=" + data_dir(), "--listen=127.0.0.1:0"});
  ASSERT_FALSE(r.timed_out) << "ringlogd --role=replica without --primary kept running";
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("--role=replica needs --primary"), std::string::npos)
      << r.out << r.err;
}

TEST_F(IntegrationNodeRole, UnknownRoleExitsWithAClearMessage) {
  const CommandResult r = run_command(
      {kRinglogd, "--role=leader", "--data_dir=" + data_dir(), "--listen=127.0.0.1:0"});
  ASSERT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("--role must be primary or replica"), std::string::npos)
      << r.out << r.err;
}

// Two nodes on one port: the second must not start (with the socket option
// gRPC sets by default, both did, and calls split between them).
TEST_F(IntegrationNodeRole, SecondNodeOnTheSamePortDoesNotStart) {
  tools::NodeProcess& first = start_node();
  const CommandResult r = run_command(
      {kRinglogd, "--data_dir=" + data_dir() + "-second", "--listen=" + first.address()},
      {.timeout = absl::Seconds(20), .merge_output = true});
  std::filesystem::remove_all(data_dir() + "-second");
  ASSERT_FALSE(r.timed_out) << "a second ringlogd kept running on " << first.address();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("cannot listen on " + first.address()), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ringlog::testing
