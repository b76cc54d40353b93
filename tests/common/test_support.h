// What the process-level test harnesses (integration, replication,
// failover) share: polling for a condition, reading a file, and showing the
// nodes' logs when a test fails.
#pragma once

#include <functional>
#include <string>

#include "absl/time/time.h"

namespace ringlog::test_support {

// Polls `pred` until it holds or `timeout` passes; returns its last value.
// The pause between polls starts at 1 ms and grows to 20 ms: it is a pause
// between looks, not a wait for something to happen.
bool poll_until(const std::function<bool()>& pred, absl::Duration timeout);

// The whole file, or "" if it cannot be read.
std::string read_file(const std::string& path);

// Prints the last `lines` lines of every *.log file in `dir` to stderr.
void print_log_tails(const std::string& dir, int lines);

}  // namespace ringlog::test_support
