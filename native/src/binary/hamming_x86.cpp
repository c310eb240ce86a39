// x86 Hamming tiles.
//
// AVX2: the nibble-lookup popcount (vpshufb; Muła, Kurz and Lemire, "Faster Population Counts Using AVX2
// Instructions", 2018), one code-query pair at a time.
// AVX-512 VPOPCNTDQ: codes transposed eight at a time, see below.
#include <algorithm>

#include "../common/simd.h"
#include "kernels.h"

#if TESSERA_X86
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace tessera::binary::detail {
namespace {

TESSERA_TARGET_AVX2 inline __m256i popcount_bytes_avx2(__m256i x) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2,
                                       3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));
  const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
  return _mm256_add_epi8(lo, hi);
}

TESSERA_TARGET_AVX2 std::uint32_t pair_avx2(const std::uint8_t* a, const std::uint8_t* b, std::size_t bytes,
                                            std::uint8_t last_mask) {
  // 32-byte blocks strictly before the last byte; the rest (with the masked last byte) in the scalar tail.
  const std::size_t vector_bytes = bytes > 0 ? (bytes - 1) / 32 * 32 : 0;
  __m256i total = _mm256_setzero_si256();
  std::size_t i = 0;
  while (i < vector_bytes) {
    __m256i counts = _mm256_setzero_si256();  // byte counters: at most 8 per block, so flush every 31 blocks
    const std::size_t stop = std::min(vector_bytes, i + 31 * 32);
    for (; i < stop; i += 32) {
      const __m256i x = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i)));
      counts = _mm256_add_epi8(counts, popcount_bytes_avx2(x));
    }
    total = _mm256_add_epi64(total, _mm256_sad_epu8(counts, _mm256_setzero_si256()));
  }
  const __m128i half = _mm_add_epi64(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
  const auto sum = static_cast<std::uint32_t>(_mm_cvtsi128_si64(half) + _mm_extract_epi64(half, 1));
  return sum + hamming_tail(a, b, vector_bytes, bytes, last_mask);
}

// ---- AVX-512 VPOPCNTDQ ------------------------------------------------------------------------------------------
// Codes are transposed eight at a time: T[w] holds 64-bit word w of codes 0..7, one per lane (invalid bytes and
// padding bits zeroed). A query then costs, per word and eight codes, one broadcast XOR, one vpopcntq and one add,
// with no horizontal reduction: the eight lanes of the sum are the eight distances. The transpose is done once per
// code tile and reused by every query tile.

constexpr std::size_t kBlock = 8;
constexpr std::size_t kTransposeFrom = 4;  // queries per tile from which the transpose pays for itself

TESSERA_TARGET_AVX512_VPOPCNT inline void transpose8x8(__m512i r[8]) {
  const __m512i t0 = _mm512_unpacklo_epi64(r[0], r[1]), t1 = _mm512_unpackhi_epi64(r[0], r[1]);
  const __m512i t2 = _mm512_unpacklo_epi64(r[2], r[3]), t3 = _mm512_unpackhi_epi64(r[2], r[3]);
  const __m512i t4 = _mm512_unpacklo_epi64(r[4], r[5]), t5 = _mm512_unpackhi_epi64(r[4], r[5]);
  const __m512i t6 = _mm512_unpacklo_epi64(r[6], r[7]), t7 = _mm512_unpackhi_epi64(r[6], r[7]);
  const __m512i u0 = _mm512_shuffle_i64x2(t0, t2, 0x88), u1 = _mm512_shuffle_i64x2(t0, t2, 0xDD);
  const __m512i u2 = _mm512_shuffle_i64x2(t1, t3, 0x88), u3 = _mm512_shuffle_i64x2(t1, t3, 0xDD);
  const __m512i u4 = _mm512_shuffle_i64x2(t4, t6, 0x88), u5 = _mm512_shuffle_i64x2(t4, t6, 0xDD);
  const __m512i u6 = _mm512_shuffle_i64x2(t5, t7, 0x88), u7 = _mm512_shuffle_i64x2(t5, t7, 0xDD);
  r[0] = _mm512_shuffle_i64x2(u0, u4, 0x88);  // word 0 of codes 0..7
  r[4] = _mm512_shuffle_i64x2(u0, u4, 0xDD);
  r[2] = _mm512_shuffle_i64x2(u1, u5, 0x88);
  r[6] = _mm512_shuffle_i64x2(u1, u5, 0xDD);
  r[1] = _mm512_shuffle_i64x2(u2, u6, 0x88);
  r[5] = _mm512_shuffle_i64x2(u2, u6, 0xDD);
  r[3] = _mm512_shuffle_i64x2(u3, u7, 0x88);
  r[7] = _mm512_shuffle_i64x2(u3, u7, 0xDD);
}

// Transposes `count` (<= 8) codes into words x 8 lanes at `out`; missing codes are zero.
TESSERA_TARGET_AVX512_VPOPCNT void transpose_block(const std::uint8_t* codes, std::size_t stride, std::size_t count,
                                                   std::size_t bytes, std::uint8_t last_mask, __m512i* out) {
  const std::size_t words = (bytes + 7) / 8;
  for (std::size_t w0 = 0; w0 < words; w0 += 8) {
    const std::size_t from = 8 * w0;                       // first byte of this segment
    const std::size_t in_segment = std::min<std::size_t>(64, bytes - from);
    const __mmask64 load = in_segment == 64 ? ~__mmask64(0) : (__mmask64(1) << in_segment) - 1;
    __m512i keep = _mm512_set1_epi8(static_cast<char>(0xFF));
    if (from + in_segment == bytes)  // this segment ends the row: keep only the last byte's data bits
      keep = _mm512_mask_mov_epi8(keep, __mmask64(1) << (in_segment - 1), _mm512_set1_epi8(static_cast<char>(last_mask)));
    __m512i r[8];
    for (std::size_t j = 0; j < 8; ++j)
      r[j] = j < count ? _mm512_and_si512(_mm512_maskz_loadu_epi8(load, codes + j * stride + from), keep)
                       : _mm512_setzero_si512();
    transpose8x8(r);
    for (std::size_t i = 0; i < 8 && w0 + i < words; ++i) _mm512_store_si512(out + w0 + i, r[i]);
  }
}

// Few queries: transposing would cost more than it saves, so each pair is counted in place and reduced.
TESSERA_TARGET_AVX512_VPOPCNT void score_direct(const std::uint64_t* const* queries, std::size_t nq,
                                                const std::uint8_t* codes, std::size_t stride, std::size_t ncodes,
                                                std::size_t bytes, std::uint8_t last_mask, std::uint32_t* out) {
  const std::size_t segments = (bytes + 63) / 64;
  const std::size_t in_last = bytes - (segments - 1) * 64;
  const __mmask64 last_load = in_last == 64 ? ~__mmask64(0) : (__mmask64(1) << in_last) - 1;
  const __m512i last_keep =
      _mm512_mask_mov_epi8(_mm512_set1_epi8(static_cast<char>(0xFF)), __mmask64(1) << (in_last - 1),
                           _mm512_set1_epi8(static_cast<char>(last_mask)));
  for (std::size_t c = 0; c < ncodes; ++c) {
    const std::uint8_t* code = codes + c * stride;
    if (c + 4 < ncodes) _mm_prefetch(reinterpret_cast<const char*>(code + 4 * stride), _MM_HINT_T0);
    for (std::size_t q = 0; q < nq; ++q) {
      const auto* query = reinterpret_cast<const std::uint8_t*>(queries[q]);
      __m512i acc = _mm512_setzero_si512();
      for (std::size_t s = 0; s + 1 < segments; ++s)
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(code + 64 * s),
                                                                         _mm512_loadu_si512(query + 64 * s))));
      const std::size_t s = segments - 1;
      const __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi8(last_load, code + 64 * s),
                                         _mm512_maskz_loadu_epi8(last_load, query + 64 * s));
      acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_and_si512(x, last_keep)));
      out[q * ncodes + c] = static_cast<std::uint32_t>(_mm512_reduce_add_epi64(acc));
    }
  }
}

template <int NQ>
TESSERA_TARGET_AVX512_VPOPCNT void score_block(const __m512i* t, std::size_t words, const std::uint64_t* const* q,
                                               std::size_t count, std::uint32_t* out, std::size_t out_stride) {
  // Every loop over queries is unrolled, so the accumulators live in registers (a rolled loop makes GCC keep them in
  // memory and clear them with rep stosq: a quarter of the time of a 1024-bit block).
  __m512i acc[NQ];
#pragma GCC unroll 16
  for (int i = 0; i < NQ; ++i) acc[i] = _mm512_setzero_si512();
  for (std::size_t w = 0; w < words; ++w) {
    const __m512i code_words = _mm512_load_si512(t + w);
#pragma GCC unroll 16
    for (int i = 0; i < NQ; ++i)
      acc[i] = _mm512_add_epi64(acc[i], _mm512_popcnt_epi64(_mm512_xor_si512(code_words, _mm512_set1_epi64(static_cast<long long>(q[i][w])))));
  }
  const __mmask8 valid = count >= 8 ? __mmask8(0xFF) : static_cast<__mmask8>((1u << count) - 1);
#pragma GCC unroll 16
  for (int i = 0; i < NQ; ++i) _mm256_mask_storeu_epi32(out + i * out_stride, valid, _mm512_cvtepi64_epi32(acc[i]));
}

}  // namespace

void hamming_tile_avx2(const std::uint64_t* const* queries, std::size_t nq, const std::uint8_t* codes,
                       std::size_t stride, std::size_t ncodes, std::size_t bytes, std::uint8_t last_mask, void*, bool,
                       std::uint32_t* out) {
  for (std::size_t c = 0; c < ncodes; ++c) {
    const std::uint8_t* code = codes + c * stride;
    for (std::size_t q = 0; q < nq; ++q)
      out[q * ncodes + c] = pair_avx2(reinterpret_cast<const std::uint8_t*>(queries[q]), code, bytes, last_mask);
  }
}

std::size_t vpopcnt_scratch_bytes(std::size_t bytes, std::size_t ncodes) {
  return (ncodes + kBlock - 1) / kBlock * ((bytes + 7) / 8) * 64;
}

void hamming_tile_vpopcnt(const std::uint64_t* const* queries, std::size_t nq, const std::uint8_t* codes,
                          std::size_t stride, std::size_t ncodes, std::size_t bytes, std::uint8_t last_mask,
                          void* scratch, bool prepared, std::uint32_t* out) {
  if (bytes == 0 || ncodes == 0) return;
  if (nq < kTransposeFrom) return score_direct(queries, nq, codes, stride, ncodes, bytes, last_mask, out);
  const std::size_t words = (bytes + 7) / 8;
  auto* t = static_cast<__m512i*>(scratch);
  if (!prepared)
    for (std::size_t c = 0; c < ncodes; c += kBlock)
      transpose_block(codes + c * stride, stride, std::min(kBlock, ncodes - c), bytes, last_mask, t + (c / kBlock) * words);
  for (std::size_t c = 0; c < ncodes; c += kBlock) {  // a transposed block stays in L1 while every query uses it
    const __m512i* block = t + (c / kBlock) * words;
    const std::size_t count = std::min(kBlock, ncodes - c);
    for (std::size_t q0 = 0; q0 < nq; q0 += 8) {  // eight queries at a time: every accumulator in a register
      const std::uint64_t* const* q = queries + q0;
      std::uint32_t* o = out + q0 * ncodes + c;
      switch (std::min<std::size_t>(8, nq - q0)) {
        case 1: score_block<1>(block, words, q, count, o, ncodes); break;
        case 2: score_block<2>(block, words, q, count, o, ncodes); break;
        case 3: score_block<3>(block, words, q, count, o, ncodes); break;
        case 4: score_block<4>(block, words, q, count, o, ncodes); break;
        case 5: score_block<5>(block, words, q, count, o, ncodes); break;
        case 6: score_block<6>(block, words, q, count, o, ncodes); break;
        case 7: score_block<7>(block, words, q, count, o, ncodes); break;
        default: score_block<8>(block, words, q, count, o, ncodes); break;
      }
    }
  }
}

}  // namespace tessera::binary::detail
#endif
