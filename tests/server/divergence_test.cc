// Where a replica must cut its log to follow a primary (divergence.h).
#include "divergence.h"

#include <gtest/gtest.h>

namespace ringlog {
namespace {

using H = std::vector<EpochEntry>;

TEST(DivergencePoint, SameHistoryKeepsTheShorterLog) {
  const H h{{1, 0}, {2, 500}};
  EXPECT_EQ(*divergence_point(h, 900, h, 700), 700u);  // the replica is behind
  EXPECT_EQ(*divergence_point(h, 900, h, 900), 900u);
  // A replica ahead of the primary in the same epoch (it had records the
  // primary lost) cuts to the primary's end.
  EXPECT_EQ(*divergence_point(h, 600, h, 800), 600u);
}

TEST(DivergencePoint, EmptyReplicaStartsAtZero) {
  EXPECT_EQ(*divergence_point(H{{1, 0}}, 100, H{}, 0), 0u);
}

TEST(DivergencePoint, ReplicaOfAnOldEpochCutsWhereTheNextEpochStarted) {
  // The replica followed epoch 1 past offset 400, where epoch 2 began on the
  // new primary: its records from 400 on are not in the primary's history.
  const H primary{{1, 0}, {2, 400}};
  const H replica{{1, 0}};
  EXPECT_EQ(*divergence_point(primary, 1000, replica, 650), 400u);
  EXPECT_EQ(*divergence_point(primary, 1000, replica, 300), 300u);
}

TEST(DivergencePoint, ReplicaWithAnEpochThePrimaryNeverHadCutsAtItsStart) {
  // The replica was briefly primary of epoch 2 from 450; the primary's
  // epoch 2 started at 400 elsewhere, so only epoch 1 is shared, and it
  // ended at 400 on the primary and at 450 on the replica.
  const H primary{{1, 0}, {2, 400}};
  const H replica{{1, 0}, {2, 450}};
  EXPECT_EQ(*divergence_point(primary, 1000, replica, 900), 400u);
  const H replica_later{{1, 0}, {3, 350}};
  EXPECT_EQ(*divergence_point(primary, 1000, replica_later, 900), 350u);
}

TEST(DivergencePoint, NoSharedEpochIsAnotherLog) {
  const absl::StatusOr<uint64_t> r = divergence_point(H{{1, 0}}, 100, H{{5, 0}}, 80);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("another log"), std::string_view::npos);
}

}  // namespace
}  // namespace ringlog
