// A fixed-size latency histogram: exact below 1024 units, then 64 sub-buckets
// per power of two (under 1.6% error). Recording never allocates.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace ringlog::tools {

class LatencyHistogram {
 public:
  void record(uint64_t v) noexcept {
    ++counts_[bucket(v)];
    ++total_;
  }
  uint64_t count() const noexcept { return total_; }
  // The value at quantile q (0..1), as the upper edge of its bucket.
  uint64_t quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    const auto rank = static_cast<uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return upper(i);
    }
    return upper(counts_.size() - 1);
  }
  void merge(const LatencyHistogram& o) noexcept {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
  }

 private:
  static constexpr int kExactBits = 10;  // values below 1024 are exact
  static constexpr int kSubBits = 6;     // 64 sub-buckets per power of two above
  static constexpr int kMaxBits = 48;
  static constexpr size_t kBuckets =
      (size_t{1} << kExactBits) + (kMaxBits - kExactBits) * (size_t{1} << kSubBits);

  static size_t bucket(uint64_t v) noexcept {
    if (v < (uint64_t{1} << kExactBits)) return static_cast<size_t>(v);
    const int msb = std::min(63 - std::countl_zero(v), kMaxBits - 1);
    const uint64_t sub = (v >> (msb - kSubBits)) & ((uint64_t{1} << kSubBits) - 1);
    return (size_t{1} << kExactBits) + static_cast<size_t>(msb - kExactBits) * (1u << kSubBits) + sub;
  }
  static uint64_t upper(size_t b) noexcept {
    if (b < (size_t{1} << kExactBits)) return b;
    const size_t k = b - (size_t{1} << kExactBits);
    const int msb = static_cast<int>(k >> kSubBits) + kExactBits;
    const uint64_t sub = k & ((1u << kSubBits) - 1);
    // The top sub-bucket's upper edge is the next power of two, less one.
    return (uint64_t{1} << msb) + ((sub + 1) << (msb - kSubBits)) - 1;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
};

}  // namespace ringlog::tools
