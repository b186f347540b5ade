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

__attribute__((target("sse4.2"))) uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
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
