// The fixture of the SegmentedLog and LogReader tests: a log in a temp
// directory with small segments, appends that remember the offset and
// timestamp of every event, and a reader that checks every event against
// them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "ringlog/log_reader.h"
#include "ringlog/segmented_log.h"
#include "test_util.h"

namespace ringlog_test {

namespace fs = std::filesystem;

inline constexpr uint64_t kSegmentBytes = 128 << 10;
inline constexpr uint64_t kT0 = 1'700'000'000'000'000'000;  // ns, late 2023

class SegmentedLogTest : public TempDirTest {
 protected:
  ringlog::LogOptions options() const {
    ringlog::LogOptions o;
    o.segment_bytes = kSegmentBytes;
    o.index_interval_bytes = 1024;
    return o;
  }

  std::unique_ptr<ringlog::SegmentedLog> open(const ringlog::LogOptions& o,
                                              ringlog::RecoveryReport* report = nullptr) {
    absl::StatusOr<std::unique_ptr<ringlog::SegmentedLog>> log =
        ringlog::SegmentedLog::Open(dir(), o, report);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }
  std::unique_ptr<ringlog::SegmentedLog> open(ringlog::RecoveryReport* report = nullptr) {
    return open(options(), report);
  }

  static size_t len_of(uint64_t seq) { return 8 + (seq * 37) % 200; }

  // Appends `n` events with the next seqs; `ts(seq)` gives each timestamp.
  void append(ringlog::SegmentedLog& log, uint64_t n,
              const std::function<uint64_t(uint64_t)>& ts = [](uint64_t s) { return kT0 + s; }) {
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t seq = offsets_.size();
      ASSERT_EQ(log.end().seq, seq);
      const std::string p = payload_for(seq, len_of(seq));
      offsets_.push_back(log.end().offset);
      ts_.push_back(ts(seq));
      ASSERT_TRUE(log.append_event(header_for(ts_.back(), 1, p), ringlog::as_bytes(p)).ok()) << seq;
    }
  }
  // The next `n` events (timestamps kT0 + seq) as one batch of records, to
  // append in one call; notes them as append() does.
  std::vector<std::byte> batch_of(uint64_t n) {
    const uint64_t base = offsets_.empty() ? 0 : end_offset(offsets_.size() - 1);
    BatchBuilder batch;
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t seq = offsets_.size();
      const std::string p = payload_for(seq, len_of(seq));
      ts_.push_back(kT0 + seq);
      offsets_.push_back(base + batch.add(header_for(ts_.back(), 1, p), p));
    }
    return batch.bytes();
  }
  // Appends until the log has at least `segments` segments.
  void append_segments(ringlog::SegmentedLog& log, size_t segments) {
    while (log.segment_count() < segments) append(log, 100);
  }
  // Forgets events from `seq` on (after a truncation).
  void forget_from(uint64_t seq) {
    offsets_.resize(seq);
    ts_.resize(seq);
  }
  uint64_t end_offset(uint64_t seq) const {
    return offsets_[seq] + ringlog::padded_size(len_of(seq));
  }

  // Reads from `from_seq` to the end and checks each event against what was appended.
  void expect_events(const ringlog::SegmentedLog& log, uint64_t from_seq, uint64_t to_seq) {
    absl::StatusOr<ringlog::LogPosition> start = log.find_seq(from_seq);
    ASSERT_TRUE(start.ok()) << start.status();
    ringlog::LogReader reader(log, *start);
    uint64_t seq = from_seq;
    while (std::optional<ringlog::EventView> ev = reader.next(log.end().offset)) {
      ASSERT_LT(seq, to_seq);
      ASSERT_EQ(ev->timestamp(), ts_[seq]) << "seq " << seq;
      ASSERT_EQ(ev->payload.size(), len_of(seq)) << "seq " << seq;
      ASSERT_TRUE(payload_matches(seq, ev->payload)) << "seq " << seq;
      ++seq;
    }
    EXPECT_TRUE(reader.status().ok()) << reader.status();
    EXPECT_EQ(seq, to_seq);
    EXPECT_EQ(reader.position(), log.end());
  }

  // The segment file holding event `seq`, and the record's offset in that file.
  std::pair<std::string, uint64_t> file_offset_of(const ringlog::SegmentedLog& log,
                                                  uint64_t seq) const {
    for (const ringlog::SegmentInfo& s : log.segments()) {
      if (seq >= s.base_seq && seq < s.base_seq + s.events) {
        return {s.path, ringlog::kFileHeaderSize + offsets_[seq] - s.base_offset};
      }
    }
    ADD_FAILURE() << "no segment holds seq " << seq;
    return {"", 0};
  }

  // Names of the segment files in the data directory, sorted.
  std::vector<std::string> segment_files() const {
    std::vector<std::string> names;
    for (const fs::directory_entry& e : fs::directory_iterator(dir())) {
      const std::string name = e.path().filename().string();
      if (name.ends_with(".evtl")) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  // Every file under the data directory and its bytes.
  std::map<std::string, std::string> snapshot() const {
    std::map<std::string, std::string> out;
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir())) {
      if (e.is_regular_file()) out[e.path().string()] = read_file(e.path().string());
    }
    return out;
  }

  std::vector<uint64_t> offsets_;  // log offset of each seq appended
  std::vector<uint64_t> ts_;       // timestamp of each seq appended
};

}  // namespace ringlog_test
