// Hamming distance tiles, one implementation per instruction-set level. Internal to the core.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tessera/runtime.h"

namespace tessera::binary::detail {

constexpr std::size_t kTileQueriesMax = 16;  // the most queries any scan tile takes at once

// A Hamming kernel scores a tile of queries against a tile of codes: out[q * ncodes + c] = popcount(query q XOR
// code c) over `bytes` bytes, the last byte of the XOR ANDed with last_mask (padding bits ignored). Codes are read
// at `codes + c * stride`; queries are padded copies (query_words 64-bit words each, bytes past `bytes` zero).
// A kernel may first rearrange a code tile into `scratch` (scratch_bytes(bytes, ncodes) of it, 64-byte aligned):
// the caller passes prepared = false for the first query tile of each code tile and true for the others.
// No byte outside a code row is read.
struct HammingKernel {
  std::size_t tile_queries;
  std::size_t (*scratch_bytes)(std::size_t bytes, std::size_t ncodes);
  void (*tile)(const std::uint64_t* const* queries, std::size_t nq, const std::uint8_t* codes, std::size_t stride,
               std::size_t ncodes, std::size_t bytes, std::uint8_t last_mask, void* scratch, bool prepared,
               std::uint32_t* out);
};

HammingKernel hamming_kernel(SimdLevel level) noexcept;

inline std::size_t query_words(std::size_t bytes) { return (bytes + 7) / 8; }
inline std::size_t no_scratch(std::size_t, std::size_t) { return 0; }

void hamming_tile_scalar(const std::uint64_t* const* queries, std::size_t nq, const std::uint8_t* codes,
                         std::size_t stride, std::size_t ncodes, std::size_t bytes, std::uint8_t last_mask,
                         void* scratch, bool prepared, std::uint32_t* out);
#if defined(__x86_64__) || defined(_M_X64)
void hamming_tile_avx2(const std::uint64_t* const* queries, std::size_t nq, const std::uint8_t* codes,
                       std::size_t stride, std::size_t ncodes, std::size_t bytes, std::uint8_t last_mask,
                       void* scratch, bool prepared, std::uint32_t* out);
std::size_t vpopcnt_scratch_bytes(std::size_t bytes, std::size_t ncodes);
void hamming_tile_vpopcnt(const std::uint64_t* const* queries, std::size_t nq, const std::uint8_t* codes,
                          std::size_t stride, std::size_t ncodes, std::size_t bytes, std::uint8_t last_mask,
                          void* scratch, bool prepared, std::uint32_t* out);
#endif
#if defined(__aarch64__)
void hamming_tile_neon(const std::uint64_t* const* queries, std::size_t nq, const std::uint8_t* codes,
                       std::size_t stride, std::size_t ncodes, std::size_t bytes, std::uint8_t last_mask,
                       void* scratch, bool prepared, std::uint32_t* out);
#endif

// Bytes [from, bytes) of one pair, the last byte masked: the tail every implementation finishes with.
std::uint32_t hamming_tail(const std::uint8_t* a, const std::uint8_t* b, std::size_t from, std::size_t bytes,
                           std::uint8_t last_mask);

}  // namespace tessera::binary::detail
