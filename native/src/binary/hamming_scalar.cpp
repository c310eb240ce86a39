// Portable Hamming tiles: 64-bit words through std::popcount (the popcnt instruction on x86-64-v2).
#include <bit>
#include <cstring>

#include "kernels.h"

namespace tessera::binary::detail {

std::uint32_t hamming_tail(const std::uint8_t* a, const std::uint8_t* b, std::size_t from, std::size_t bytes,
                           std::uint8_t last_mask) {
  if (from >= bytes) return 0;
  std::uint32_t total = 0;
  std::size_t i = from;
  for (; i + 8 < bytes; i += 8) {  // strictly before the last byte
    std::uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    total += static_cast<std::uint32_t>(std::popcount(x ^ y));
  }
  for (; i + 1 < bytes; ++i) total += static_cast<std::uint32_t>(std::popcount(static_cast<unsigned>(a[i] ^ b[i])));
  return total + static_cast<std::uint32_t>(std::popcount(static_cast<unsigned>((a[i] ^ b[i]) & last_mask)));
}

void hamming_tile_scalar(const std::uint64_t* const* queries, std::size_t nq, const std::uint8_t* codes,
                         std::size_t stride, std::size_t ncodes, std::size_t bytes, std::uint8_t last_mask, void*,
                         bool, std::uint32_t* out) {
  for (std::size_t c = 0; c < ncodes; ++c) {
    const std::uint8_t* code = codes + c * stride;
    for (std::size_t q = 0; q < nq; ++q) {
      const auto* query = reinterpret_cast<const std::uint8_t*>(queries[q]);
      out[q * ncodes + c] = hamming_tail(query, code, 0, bytes, last_mask);
    }
  }
}

HammingKernel hamming_kernel(SimdLevel level) noexcept {
  switch (level) {
#if defined(__x86_64__) || defined(_M_X64)
    case SimdLevel::avx512_vpopcntdq:
      return {16, vpopcnt_scratch_bytes, hamming_tile_vpopcnt};
    case SimdLevel::avx512:  // no vector popcount: the AVX2 nibble lookup is the better choice there
    case SimdLevel::avx2:
      return {8, no_scratch, hamming_tile_avx2};
#endif
#if defined(__aarch64__)
    case SimdLevel::neon:
      return {8, no_scratch, hamming_tile_neon};
#endif
    default:
      return {8, no_scratch, hamming_tile_scalar};
  }
}

}  // namespace tessera::binary::detail
