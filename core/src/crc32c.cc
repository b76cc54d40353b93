#include "ringlog/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace ringlog::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82f63b78;  // Castagnoli, reflected.

// tables[k][b] is the CRC of byte b followed by k zero bytes: slicing-by-8
// folds eight input bytes per step with eight table lookups.
constexpr std::array<std::array<uint32_t, 256>, 8> make_tables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}
constexpr auto kTables = make_tables();

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t extend_sse42(uint32_t crc, const void* data,
                                                         size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  // Records are 8-byte aligned, so the head loop rarely runs.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    c = _mm_crc32_u32(static_cast<uint32_t>(c), w);
    p += 4;
    n -= 4;
  }
  while (n > 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  return ~static_cast<uint32_t>(c);
}

__attribute__((target("sse4.2"))) void extend4_sse42(uint32_t crc[4],
                                                     const void* const data[4],
                                                     size_t n) noexcept {
  // Four named chains rather than an array, so that they stay in registers.
  const auto* p0 = static_cast<const unsigned char*>(data[0]);
  const auto* p1 = static_cast<const unsigned char*>(data[1]);
  const auto* p2 = static_cast<const unsigned char*>(data[2]);
  const auto* p3 = static_cast<const unsigned char*>(data[3]);
  uint64_t c0 = ~crc[0];
  uint64_t c1 = ~crc[1];
  uint64_t c2 = ~crc[2];
  uint64_t c3 = ~crc[3];
  auto word = [](const unsigned char* p) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  };
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    c0 = _mm_crc32_u64(c0, word(p0 + k));
    c1 = _mm_crc32_u64(c1, word(p1 + k));
    c2 = _mm_crc32_u64(c2, word(p2 + k));
    c3 = _mm_crc32_u64(c3, word(p3 + k));
  }
  auto half = [](const unsigned char* p) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    return w;
  };
  if (k + 4 <= n) {
    c0 = _mm_crc32_u32(static_cast<uint32_t>(c0), half(p0 + k));
    c1 = _mm_crc32_u32(static_cast<uint32_t>(c1), half(p1 + k));
    c2 = _mm_crc32_u32(static_cast<uint32_t>(c2), half(p2 + k));
    c3 = _mm_crc32_u32(static_cast<uint32_t>(c3), half(p3 + k));
    k += 4;
  }
  for (; k < n; ++k) {
    c0 = _mm_crc32_u8(static_cast<uint32_t>(c0), p0[k]);
    c1 = _mm_crc32_u8(static_cast<uint32_t>(c1), p1[k]);
    c2 = _mm_crc32_u8(static_cast<uint32_t>(c2), p2[k]);
    c3 = _mm_crc32_u8(static_cast<uint32_t>(c3), p3[k]);
  }
  crc[0] = ~static_cast<uint32_t>(c0);
  crc[1] = ~static_cast<uint32_t>(c1);
  crc[2] = ~static_cast<uint32_t>(c2);
  crc[3] = ~static_cast<uint32_t>(c3);
}

bool detect_sse42() noexcept { return __builtin_cpu_supports("sse4.2"); }
#else
bool detect_sse42() noexcept { return false; }
#endif

// Read once, before main; the branch on it is perfectly predicted.
const bool kHardware = detect_sse42();

}  // namespace

uint32_t extend_portable(uint32_t crc, const void* data, size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo;
    uint32_t hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^
        kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xff];
    --n;
  }
  return ~c;
}

uint32_t extend(uint32_t crc, const void* data, size_t n) noexcept {
#if defined(__x86_64__)
  if (kHardware) return extend_sse42(crc, data, n);
#endif
  return extend_portable(crc, data, n);
}

void extend4(uint32_t crc[4], const void* const data[4], size_t n) noexcept {
#if defined(__x86_64__)
  if (kHardware) {
    extend4_sse42(crc, data, n);
    return;
  }
#endif
  for (int i = 0; i < 4; ++i) crc[i] = extend_portable(crc[i], data[i], n);
}

bool hardware_accelerated() noexcept { return kHardware; }

}  // namespace ringlog::crc32c
