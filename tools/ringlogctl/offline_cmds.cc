// ringlogctl commands that read a data directory directly: verify, dump.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "ctl.h"
#include "format.h"
#include "ringlog/storage.h"

ABSL_DECLARE_FLAG(int64_t, from_seq);
ABSL_DECLARE_FLAG(uint64_t, limit);
ABSL_DECLARE_FLAG(std::string, format);

namespace ringlog::ctl {
namespace {

absl::StatusOr<std::unique_ptr<SegmentedLog>> open_offline(RecoveryReport* report) {
  const std::string dir = absl::GetFlag(FLAGS_data_dir);
  if (dir.empty()) return absl::InvalidArgumentError("give --data-dir DIR");
  LogOptions o;
  o.read_only = true;  // never modifies anything, even a running node's directory
  o.segment_bytes = uint64_t{4} << 30;
  return SegmentedLog::Open(dir, o, report);
}

}  // namespace

int cmd_verify() {
  RecoveryReport recovery;
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = open_offline(&recovery);
  if (!log.ok()) {
    if (absl::IsInvalidArgument(log.status())) return report_usage(log.status());
    std::printf("PROBLEM %s\n", log.status().ToString().c_str());
    return kDataProblem;
  }
  std::printf("%-50s %14s %12s %12s %10s  %s\n", "SEGMENT", "BASE_OFFSET", "BASE_SEQ", "EVENTS",
              "BYTES", "SEALED");
  for (const SegmentInfo& s : (*log)->segments()) {
    std::printf("%-50s %14llu %12llu %12llu %10llu  %s\n", s.path.c_str(),
                static_cast<unsigned long long>(s.base_offset),
                static_cast<unsigned long long>(s.base_seq),
                static_cast<unsigned long long>(s.events), static_cast<unsigned long long>(s.bytes),
                s.sealed ? "yes" : "no");
  }
  const LogPosition start = (*log)->start();
  const LogPosition end = (*log)->end();
  std::printf("events %llu (seqs %llu..%llu), offsets %llu..%llu, %zu segments; every checksum verified\n",
              static_cast<unsigned long long>(end.seq - start.seq),
              static_cast<unsigned long long>(start.seq),
              static_cast<unsigned long long>(end.seq == 0 ? 0 : end.seq - 1),
              static_cast<unsigned long long>(start.offset),
              static_cast<unsigned long long>(end.offset), (*log)->segment_count());
  if (!recovery.problem.empty()) {
    std::printf("PROBLEM %s\n", recovery.problem.c_str());
    return kDataProblem;
  }
  std::printf("OK\n");
  return kOk;
}

int cmd_dump() {
  Format f;
  if (!parse_format(absl::GetFlag(FLAGS_format), &f)) {
    std::fprintf(stderr, "ringlogctl: --format must be text, json or raw\n");
    return kUsage;
  }
  RecoveryReport recovery;
  absl::StatusOr<std::unique_ptr<SegmentedLog>> log = open_offline(&recovery);
  if (!log.ok()) return absl::IsInvalidArgument(log.status()) ? report_usage(log.status())
                                                              : report(log.status());
  LogPosition from = (*log)->start();
  if (const int64_t s = absl::GetFlag(FLAGS_from_seq); s >= 0) {
    absl::StatusOr<LogPosition> p = (*log)->find_seq(static_cast<uint64_t>(s));
    if (!p.ok()) return report(p.status());
    from = *p;
  }
  const uint64_t limit = absl::GetFlag(FLAGS_limit);
  LogReader reader(**log, from);
  const uint64_t end = (*log)->end().offset;
  uint64_t n = 0;
  while (limit == 0 || n < limit) {
    const uint64_t seq = reader.position().seq;
    std::optional<EventView> ev = reader.next(end);
    if (!ev) break;
    print_event(stdout, f, seq, *ev);
    ++n;
  }
  if (!recovery.problem.empty()) std::fprintf(stderr, "ringlogctl: PROBLEM %s\n", recovery.problem.c_str());
  return recovery.problem.empty() ? kOk : kDataProblem;
}

}  // namespace ringlog::ctl
