// NEON Hamming tiles (AArch64): vcnt per byte, pairwise-accumulated into 16-bit lanes.
#include <algorithm>

#include "../common/simd.h"
#include "kernels.h"

#if TESSERA_NEON
namespace tessera::binary::detail {
namespace {

std::uint32_t pair_neon(const std::uint8_t* a, const std::uint8_t* b, std::size_t bytes, std::uint8_t last_mask) {
  const std::size_t vector_bytes = bytes > 0 ? (bytes - 1) / 16 * 16 : 0;  // strictly before the last byte
  std::uint32_t total = 0;
  std::size_t i = 0;
  while (i < vector_bytes) {
    uint16x8_t acc = vdupq_n_u16(0);  // at most 16 per lane per block: flush well before 65535
    const std::size_t stop = std::min(vector_bytes, i + 2048 * 16);
    for (; i < stop; i += 16) acc = vpadalq_u8(acc, vcntq_u8(veorq_u8(vld1q_u8(a + i), vld1q_u8(b + i))));
    total += vaddlvq_u16(acc);
  }
  return total + hamming_tail(a, b, vector_bytes, bytes, last_mask);
}

}  // namespace

void hamming_tile_neon(const std::uint64_t* const* queries, std::size_t nq, const std::uint8_t* codes,
                       std::size_t stride, std::size_t ncodes, std::size_t bytes, std::uint8_t last_mask, void*, bool,
                       std::uint32_t* out) {
  for (std::size_t c = 0; c < ncodes; ++c) {
    const std::uint8_t* code = codes + c * stride;
    for (std::size_t q = 0; q < nq; ++q)
      out[q * ncodes + c] = pair_neon(reinterpret_cast<const std::uint8_t*>(queries[q]), code, bytes, last_mask);
  }
}

}  // namespace tessera::binary::detail
#endif
