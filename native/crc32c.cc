#include "crc32c.h"

#include <array>
#include <cstring>
#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

namespace ptpvts {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;

struct Table {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Table() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};

constexpr Table kTable{};

// Slicing-by-8: the portable path.
uint32_t Software(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= crc;
    crc = kTable.t[7][lo & 0xFF] ^ kTable.t[6][(lo >> 8) & 0xFF] ^ kTable.t[5][(lo >> 16) & 0xFF] ^
          kTable.t[4][lo >> 24] ^ kTable.t[3][hi & 0xFF] ^ kTable.t[2][(hi >> 8) & 0xFF] ^
          kTable.t[1][(hi >> 16) & 0xFF] ^ kTable.t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ kTable.t[0][(crc ^ *p++) & 0xFF];
  return crc;
}

#if defined(__x86_64__)
bool HaveSse42() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_SSE4_2) != 0;
}

__attribute__((target("sse4.2"))) uint64_t HardwareLane(uint64_t c, const uint8_t* p, size_t n) {
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
  }
  return c;
}

// The crc32 instruction has a latency of three cycles but a throughput of one, so one
// dependency chain uses a third of it. Long buffers run as three independent lanes of
// kLane bytes whose registers are then combined: the register update is linear, so
// crc(A|B|C) = Z(|B|+|C|)·rA ^ Z(|C|)·rB ^ rC, where Z(k) is the effect of k zero bytes.
constexpr size_t kLane = 4096;

// Z(k) as four byte tables: applying it to a register is four lookups.
struct Shift {
  std::array<std::array<uint32_t, 256>, 4> t{};
  uint32_t Apply(uint32_t r) const {
    return t[0][r & 0xFF] ^ t[1][(r >> 8) & 0xFF] ^ t[2][(r >> 16) & 0xFF] ^ t[3][r >> 24];
  }
};

__attribute__((target("sse4.2"))) Shift MakeShift(size_t zeros) {
  static const std::array<uint8_t, 2 * kLane> kZeros{};
  Shift s;
  std::array<uint32_t, 32> column{};
  for (int bit = 0; bit < 32; ++bit) {
    column[bit] = static_cast<uint32_t>(HardwareLane(uint64_t{1} << bit, kZeros.data(), zeros));
  }
  for (int byte = 0; byte < 4; ++byte) {
    for (uint32_t v = 0; v < 256; ++v) {
      uint32_t out = 0;
      for (int b = 0; b < 8; ++b)
        if (v & (1u << b)) out ^= column[byte * 8 + b];
      s.t[byte][v] = out;
    }
  }
  return s;
}

__attribute__((target("sse4.2"))) uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) {
  static const Shift kShift1 = MakeShift(kLane);
  static const Shift kShift2 = MakeShift(2 * kLane);
  uint64_t c = crc;
  while (n >= 3 * kLane) {
    uint64_t a = c, b = 0, d = 0;
    const uint8_t* pa = p;
    const uint8_t* pb = p + kLane;
    const uint8_t* pc = p + 2 * kLane;
    for (size_t i = 0; i < kLane; i += 8) {
      uint64_t va, vb, vc;
      std::memcpy(&va, pa + i, 8);
      std::memcpy(&vb, pb + i, 8);
      std::memcpy(&vc, pc + i, 8);
      a = _mm_crc32_u64(a, va);
      b = _mm_crc32_u64(b, vb);
      d = _mm_crc32_u64(d, vc);
    }
    c = kShift2.Apply(static_cast<uint32_t>(a)) ^ kShift1.Apply(static_cast<uint32_t>(b)) ^ static_cast<uint32_t>(d);
    p += 3 * kLane;
    n -= 3 * kLane;
  }
  c = HardwareLane(c, p, n & ~size_t{7});
  p += n & ~size_t{7};
  n &= 7;
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

}  // namespace

uint32_t Crc32c(uint32_t seed, const uint8_t* data, size_t len) {
  uint32_t crc = ~seed;
#if defined(__x86_64__)
  static const bool hw = HaveSse42();
  crc = hw ? Hardware(crc, data, len) : Software(crc, data, len);
#else
  crc = Software(crc, data, len);
#endif
  return ~crc;
}

}  // namespace ptpvts
