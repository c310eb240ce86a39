// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of Tessera's files. Hardware instructions
// where the CPU has them (SSE4.2 on x86), a table otherwise; both give the same value.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tessera {

// Continues a CRC: pass the previous result as `crc` (0 to start). crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept;

}  // namespace tessera
