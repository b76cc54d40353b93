// CRC32C (Castagnoli), the checksum of every record and file header.
//
// Uses the SSE4.2 `crc32` instruction when the CPU has it (checked once at
// start-up) and a portable slicing-by-8 table otherwise. Both give the same
// values: the known-answer vectors of RFC 3720 B.4 are in crc32c_test.cc.
//
//   uint32_t c = ringlog::crc32c::value(data, n);
//   c = ringlog::crc32c::extend(c, more, m);   // == value(data ++ more)
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringlog::crc32c {

// Extends `crc` (the CRC32C of some bytes A) to the CRC32C of A followed by
// data[0..n). `extend(0, data, n)` is the CRC32C of data alone.
uint32_t extend(uint32_t crc, const void* data, size_t n) noexcept;

inline uint32_t value(const void* data, size_t n) noexcept { return extend(0, data, n); }

// Four extends at once: crc[i] = extend(crc[i], data[i], n) for i < 4. The
// instruction's latency, not its throughput, bounds one checksum; four
// independent ones overlap, so checking four small records costs little
// more than checking one (record checks on replication and recovery).
void extend4(uint32_t crc[4], const void* const data[4], size_t n) noexcept;

// True when extend() runs on the hardware instruction.
bool hardware_accelerated() noexcept;

// The portable implementation, exposed for tests and benchmarks.
uint32_t extend_portable(uint32_t crc, const void* data, size_t n) noexcept;

}  // namespace ringlog::crc32c
