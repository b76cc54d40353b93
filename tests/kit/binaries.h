// The programs under test, as built beside the test: only for targets made
// with ringlog_process_test() (tests/kit/CMakeLists.txt), which defines both.
#pragma once

namespace ringlog::testkit {

inline constexpr char kRinglogd[] = RINGLOGD_PATH;
inline constexpr char kRinglogctl[] = RINGLOGCTL_PATH;

}  // namespace ringlog::testkit
