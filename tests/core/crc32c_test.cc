#include "ringlog/crc32c.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "ringlog/event.h"

namespace ringlog {
namespace {

// Known answers from RFC 3720, appendix B.4, plus the common "123456789" check value.
struct Vector {
  const char* name;
  std::vector<uint8_t> data;
  uint32_t crc;
};
void PrintTo(const Vector& v, std::ostream* os) { *os << v.name; }

std::vector<uint8_t> ascending() {
  std::vector<uint8_t> v(32);
  std::iota(v.begin(), v.end(), uint8_t{0});
  return v;
}

std::vector<uint8_t> descending() {
  std::vector<uint8_t> v = ascending();
  std::reverse(v.begin(), v.end());
  return v;
}

std::vector<Vector> known_answers() {
  const std::string digits = "123456789";
  return {
      {"zeros", std::vector<uint8_t>(32, 0x00), 0x8A9136AA},
      {"ones", std::vector<uint8_t>(32, 0xFF), 0x62A8AB43},
      {"ascending", ascending(), 0x46DD794E},
      {"descending", descending(), 0x113FDB5C},
      {"digits", std::vector<uint8_t>(digits.begin(), digits.end()), 0xE3069283},
  };
}

class Crc32cKnownAnswer : public ::testing::TestWithParam<Vector> {};

TEST_P(Crc32cKnownAnswer, ValueMatchesRfc3720) {
  const Vector& v = GetParam();
  EXPECT_EQ(crc32c::value(v.data.data(), v.data.size()), v.crc);
}

TEST_P(Crc32cKnownAnswer, PortableMatchesRfc3720) {
  const Vector& v = GetParam();
  EXPECT_EQ(crc32c::extend_portable(0, v.data.data(), v.data.size()), v.crc);
}

TEST_P(Crc32cKnownAnswer, ExtendSplitAtEveryPointEqualsWhole) {
  const Vector& v = GetParam();
  for (size_t split = 0; split <= v.data.size(); ++split) {
    const uint32_t head = crc32c::extend(0, v.data.data(), split);
    EXPECT_EQ(crc32c::extend(head, v.data.data() + split, v.data.size() - split), v.crc)
        << "split at " << split;
  }
}

TEST_P(Crc32cKnownAnswer, PortableSplitAtEveryPointEqualsWhole) {
  const Vector& v = GetParam();
  for (size_t split = 0; split <= v.data.size(); ++split) {
    const uint32_t head = crc32c::extend_portable(0, v.data.data(), split);
    EXPECT_EQ(crc32c::extend_portable(head, v.data.data() + split, v.data.size() - split), v.crc)
        << "split at " << split;
  }
}

INSTANTIATE_TEST_SUITE_P(Rfc3720, Crc32cKnownAnswer, ::testing::ValuesIn(known_answers()),
                         [](const ::testing::TestParamInfo<Vector>& i) { return i.param.name; });

TEST(Crc32c, EmptyInputIsZero) {
  EXPECT_EQ(crc32c::value(nullptr, 0), 0u);
  EXPECT_EQ(crc32c::extend(0x12345678, nullptr, 0), 0x12345678u);
}

// The hardware path handles an unaligned head, 8-byte words, a 4-byte word and
// a byte tail; compare it with the portable one at every alignment and length.
TEST(Crc32c, HardwareAndPortableAgreeAtEveryAlignmentAndLength) {
  std::vector<uint8_t> buf(300);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 37 + 11);
  for (size_t start = 0; start < 8; ++start) {
    for (size_t n = 0; n + start <= 280; ++n) {
      ASSERT_EQ(crc32c::extend(0xDEADBEEF, buf.data() + start, n),
                crc32c::extend_portable(0xDEADBEEF, buf.data() + start, n))
          << "start " << start << " length " << n;
    }
  }
}

TEST(Crc32c, FourAtOnceEqualsOneAtATime) {
  std::vector<uint8_t> buf(1200);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 131 + 7);
  for (size_t n = 0; n <= 270; ++n) {
    const void* data[4] = {buf.data(), buf.data() + 301, buf.data() + 605, buf.data() + 907};
    uint32_t crc[4] = {0, 1, 0xDEADBEEF, 0xFFFFFFFF};
    uint32_t want[4];
    for (int i = 0; i < 4; ++i) want[i] = crc32c::extend(crc[i], data[i], n);
    crc32c::extend4(crc, data, n);
    for (int i = 0; i < 4; ++i) ASSERT_EQ(crc[i], want[i]) << "lane " << i << " length " << n;
  }
}

// The ring's wrap marker and the log's end marker are 16 zero bytes: that only
// works because no all-zero header can pass its checksum.
TEST(Crc32c, AllZeroHeaderNeverVerifies) {
  const EventHeader zero{};
  EXPECT_NE(zero.compute_checksum({}), 0u);
  EXPECT_FALSE(zero.verify_checksum({}));
  const std::byte bytes[kHeaderSize] = {};
  EXPECT_TRUE(is_zero_header(bytes));
  EXPECT_EQ(check_record(bytes, sizeof bytes, nullptr), RecordStatus::kZero);
}

}  // namespace
}  // namespace ringlog
