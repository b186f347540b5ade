#pragma once
#include <cstddef>
#include <cstdint>

namespace ptpvts {
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI digests,
// the cartridge file format and the key journal. `seed` is a previous result for
// incremental use (0 to start).
uint32_t Crc32c(uint32_t seed, const uint8_t* data, size_t len);
}  // namespace ptpvts
