// File identity of two nodes' logs: after replication, a replica's segment
// files must be the primary's byte for byte (docs/format.md).
//
//   EXPECT_TRUE(testkit::logs_identical(nodes.data_dir("p"), nodes.data_dir("r"), end));
//
// Compare stopped nodes only: a running node may still write.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ringlog::testkit {

// The segment file names (<20 digits>.evtl) in a data directory, sorted.
std::vector<std::string> segment_files(const std::string& data_dir);

// The same segment file names in both directories, each file equal byte for
// byte, and at least one of them.
::testing::AssertionResult files_identical(const std::string& dir_a, const std::string& dir_b);

// files_identical(), and first, for a clearer failure, the used range of
// each file (its header and valid records; for a sealed segment what the
// header says, which the records must match) and that range's CRC32C equal
// on both sides. If `end_offset` is set, the records add up to it.
::testing::AssertionResult logs_identical(const std::string& dir_a, const std::string& dir_b,
                                          std::optional<uint64_t> end_offset = std::nullopt);

}  // namespace ringlog::testkit
