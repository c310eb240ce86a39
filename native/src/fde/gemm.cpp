// FDE matrix products. The SIMD kernels keep a block of C in registers: each step of k broadcasts one element of A
// per row and multiplies it with a row segment of B.
#include "gemm.h"

#include <algorithm>
#include <cstdint>

#include "../common/simd.h"

#if TESSERA_X86
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tessera::fde::detail {

void gemm_scalar(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
                 std::size_t m, std::size_t k, std::size_t n) {
  for (std::size_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    std::fill(ci, ci + n, 0.0f);
    for (std::size_t kk = 0; kk < k; ++kk) {
      const float x = a[i * lda + kk];
      const float* bk = b + kk * ldb;
      for (std::size_t j = 0; j < n; ++j) ci[j] += x * bk[j];
    }
  }
}

#if TESSERA_X86
namespace {

template <int R, int C>
TESSERA_TARGET_AVX512 void block_avx512(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c,
                                        std::size_t ldc, std::size_t rows, std::size_t k, std::size_t cols) {
  __m512 acc[R][C];
  __mmask16 mask[C];
#pragma GCC unroll 8
  for (int q = 0; q < C; ++q) {
    const std::size_t left = cols > static_cast<std::size_t>(16 * q) ? cols - 16 * q : 0;
    mask[q] = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int q = 0; q < C; ++q) acc[r][q] = _mm512_setzero_ps();
  for (std::size_t kk = 0; kk < k; ++kk) {
    __m512 bv[C];
#pragma GCC unroll 8
    for (int q = 0; q < C; ++q) bv[q] = _mm512_maskz_loadu_ps(mask[q], b + kk * ldb + 16 * q);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const std::size_t row = static_cast<std::size_t>(r) < rows ? static_cast<std::size_t>(r) : 0;  // padded rows repeat row 0
      const __m512 x = _mm512_set1_ps(a[row * lda + kk]);
#pragma GCC unroll 8
      for (int q = 0; q < C; ++q) acc[r][q] = _mm512_fmadd_ps(x, bv[q], acc[r][q]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    if (static_cast<std::size_t>(r) < rows)
#pragma GCC unroll 8
      for (int q = 0; q < C; ++q) _mm512_mask_storeu_ps(c + r * ldc + 16 * q, mask[q], acc[r][q]);
}

template <int R, int C>
TESSERA_TARGET_AVX512 void tiles_avx512(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c,
                                        std::size_t ldc, std::size_t m, std::size_t k, std::size_t n) {
  for (std::size_t j = 0; j < n; j += 16 * C)
    for (std::size_t i = 0; i < m; i += R)
      block_avx512<R, C>(a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, std::min<std::size_t>(R, m - i), k,
                         std::min<std::size_t>(16 * C, n - j));
}

template <int R>
TESSERA_TARGET_AVX2 void block_avx2(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c,
                                    std::size_t ldc, std::size_t rows, std::size_t k, std::size_t cols) {
  // Two ymm per row (16 columns); lanes past `cols` are masked on load and store.
  alignas(32) int lanes[16];
  for (int l = 0; l < 16; ++l) lanes[l] = static_cast<std::size_t>(l) < cols ? -1 : 0;
  const __m256i m0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
  const __m256i m1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes + 8));
  __m256 acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (std::size_t kk = 0; kk < k; ++kk) {
    const __m256 b0 = _mm256_maskload_ps(b + kk * ldb, m0);
    const __m256 b1 = _mm256_maskload_ps(b + kk * ldb + 8, m1);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const std::size_t row = static_cast<std::size_t>(r) < rows ? static_cast<std::size_t>(r) : 0;
      const __m256 x = _mm256_broadcast_ss(a + row * lda + kk);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    if (static_cast<std::size_t>(r) < rows) {
      _mm256_maskstore_ps(c + r * ldc, m0, acc[r][0]);
      _mm256_maskstore_ps(c + r * ldc + 8, m1, acc[r][1]);
    }
}

}  // namespace

void gemm_avx512(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
                 std::size_t m, std::size_t k, std::size_t n) {
  // The block covers B's width in as few zmm columns as it takes (up to 7: 112 floats, e.g. 20 repetitions x 5
  // SimHash bits), with as many rows as leave registers for the B row: accumulators + columns <= 28.
  switch ((n + 15) / 16) {
    case 1: return tiles_avx512<8, 1>(a, lda, b, ldb, c, ldc, m, k, n);
    case 2: return tiles_avx512<6, 2>(a, lda, b, ldb, c, ldc, m, k, n);
    case 3: return tiles_avx512<6, 3>(a, lda, b, ldb, c, ldc, m, k, n);
    case 4: return tiles_avx512<4, 4>(a, lda, b, ldb, c, ldc, m, k, n);
    case 5: return tiles_avx512<5, 5>(a, lda, b, ldb, c, ldc, m, k, n);
    case 6: return tiles_avx512<3, 6>(a, lda, b, ldb, c, ldc, m, k, n);
    case 7: return tiles_avx512<3, 7>(a, lda, b, ldb, c, ldc, m, k, n);
    default: return tiles_avx512<4, 4>(a, lda, b, ldb, c, ldc, m, k, n);
  }
}

void gemm_avx2(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
               std::size_t m, std::size_t k, std::size_t n) {
  for (std::size_t j = 0; j < n; j += 16)
    for (std::size_t i = 0; i < m; i += 6)
      block_avx2<6>(a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc, std::min<std::size_t>(6, m - i), k,
                    std::min<std::size_t>(16, n - j));
}
#endif

namespace {

void add_scalar(float* dst, const float* src, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] += src[i];
}

void subtract_scalar(float* dst, const float* src, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] -= src[i];
}

void stream_scalar(float* dst, const float* src, std::size_t n) { std::copy(src, src + n, dst); }

void centroids_scalar(float* block, const std::uint32_t* count, std::size_t rows, std::size_t p) {
  for (std::size_t g = 0; g < rows; ++g) {
    if (count[g] <= 1) continue;
    const float inverse = 1.0f / static_cast<float>(count[g]);
    for (std::size_t j = 0; j < p; ++j) block[g * p + j] *= inverse;
  }
}

void sketch_scalar(float* yt, const float* xt, const std::uint32_t* start, const std::uint32_t* coordinate,
                   const float* sign, std::size_t p, std::size_t width) {
  for (std::size_t c = 0; c < p; ++c) {
    float* row = yt + c * width;
    std::fill(row, row + width, 0.0f);
    for (std::uint32_t e = start[c]; e < start[c + 1]; ++e) {
      const float* x = xt + coordinate[e] * width;
      if (sign[e] < 0) subtract_scalar(row, x, width);
      else add_scalar(row, x, width);
    }
  }
}

std::uint32_t gray_decode(std::uint32_t bits) {
  for (std::uint32_t shift = 1; shift < 32; shift <<= 1) bits ^= bits >> shift;
  return bits;
}

void partitions_scalar(const float* sketch, std::size_t k, std::size_t width, std::uint32_t* partition) {
  std::fill(partition, partition + width, 0u);
  for (std::size_t j = 0; j < k; ++j)
    for (std::size_t t = 0; t < width; ++t) partition[t] = (partition[t] << 1) | (sketch[j * width + t] > 0.0f ? 1u : 0u);
  for (std::size_t t = 0; t < width; ++t) partition[t] = gray_decode(partition[t]);  // NaN gave bit 0 above
}

void accumulate_scalar(float* block, const float* yt, std::size_t width, const std::uint32_t* partition, std::size_t n,
                       std::size_t p) {
  for (std::size_t t = 0; t < n; ++t) {
    float* dst = block + partition[t] * p;
    for (std::size_t c = 0; c < p; ++c) dst[c] += yt[c * width + t];
  }
}

void transpose_scalar(const float* src, std::size_t rows, std::size_t cols, std::size_t lds, float* dst,
                      std::size_t ldd) {
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

#if TESSERA_X86
TESSERA_TARGET_AVX512 void add_avx512(float* dst, const float* src, std::size_t n) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_add_ps(_mm512_loadu_ps(dst + i), _mm512_loadu_ps(src + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + i), _mm512_maskz_loadu_ps(m, src + i)));
  }
}

// Sketch rows c and c + 1 (when `pair`) over W columns of 16 tokens: 2W independent sums in registers, so the adds
// of one chain overlap the others' latency (x * ±1 is exact, so the fused multiply-add is an add or a subtract, in
// the order the specification fixes).
template <int W>
TESSERA_TARGET_AVX512 void sketch_rows(float* yt, const float* xt, const std::uint32_t* start,
                                       const std::uint32_t* coordinate, const float* sign, std::size_t c, bool pair,
                                       std::size_t width) {
  __m512 a[W], b[W];
#pragma GCC unroll 8
  for (int w = 0; w < W; ++w) a[w] = b[w] = _mm512_setzero_ps();
  std::uint32_t ea = start[c], eb = pair ? start[c + 1] : 0;
  const std::uint32_t end_a = start[c + 1], end_b = pair ? start[c + 2] : 0;
  for (; ea < end_a && eb < end_b; ++ea, ++eb) {
    const float* xa = xt + coordinate[ea] * width;
    const float* xb = xt + coordinate[eb] * width;
    const __m512 sa = _mm512_set1_ps(sign[ea]), sb = _mm512_set1_ps(sign[eb]);
#pragma GCC unroll 8
    for (int w = 0; w < W; ++w) {
      a[w] = _mm512_fmadd_ps(_mm512_loadu_ps(xa + 16 * w), sa, a[w]);
      b[w] = _mm512_fmadd_ps(_mm512_loadu_ps(xb + 16 * w), sb, b[w]);
    }
  }
  for (; ea < end_a; ++ea) {
    const float* xa = xt + coordinate[ea] * width;
    const __m512 sa = _mm512_set1_ps(sign[ea]);
#pragma GCC unroll 8
    for (int w = 0; w < W; ++w) a[w] = _mm512_fmadd_ps(_mm512_loadu_ps(xa + 16 * w), sa, a[w]);
  }
  for (; eb < end_b; ++eb) {
    const float* xb = xt + coordinate[eb] * width;
    const __m512 sb = _mm512_set1_ps(sign[eb]);
#pragma GCC unroll 8
    for (int w = 0; w < W; ++w) b[w] = _mm512_fmadd_ps(_mm512_loadu_ps(xb + 16 * w), sb, b[w]);
  }
#pragma GCC unroll 8
  for (int w = 0; w < W; ++w) {
    _mm512_storeu_ps(yt + c * width + 16 * w, a[w]);
    if (pair) _mm512_storeu_ps(yt + (c + 1) * width + 16 * w, b[w]);
  }
}

template <int W>
TESSERA_TARGET_AVX512 void sketch_chunk(float* yt, const float* xt, const std::uint32_t* start,
                                        const std::uint32_t* coordinate, const float* sign, std::size_t p,
                                        std::size_t width) {
  for (std::size_t c = 0; c < p; c += 2) sketch_rows<W>(yt, xt, start, coordinate, sign, c, c + 1 < p, width);
}

TESSERA_TARGET_AVX512 void sketch_avx512(float* yt, const float* xt, const std::uint32_t* start,
                                         const std::uint32_t* coordinate, const float* sign, std::size_t p,
                                         std::size_t width) {
  // Up to 128 tokens a chunk (eight columns of 16), two output coordinates at a time: 16 sums in registers.
  for (std::size_t t = 0; t < width; t += 128) {
    float* y = yt + t;
    const float* x = xt + t;
    switch (std::min<std::size_t>(8, (width - t) / 16)) {
      case 1: sketch_chunk<1>(y, x, start, coordinate, sign, p, width); break;
      case 2: sketch_chunk<2>(y, x, start, coordinate, sign, p, width); break;
      case 3: sketch_chunk<3>(y, x, start, coordinate, sign, p, width); break;
      case 4: sketch_chunk<4>(y, x, start, coordinate, sign, p, width); break;
      case 5: sketch_chunk<5>(y, x, start, coordinate, sign, p, width); break;
      case 6: sketch_chunk<6>(y, x, start, coordinate, sign, p, width); break;
      case 7: sketch_chunk<7>(y, x, start, coordinate, sign, p, width); break;
      default: sketch_chunk<8>(y, x, start, coordinate, sign, p, width); break;
    }
  }
}

TESSERA_TARGET_AVX512 void stream_avx512(float* dst, const float* src, std::size_t n) {
  std::size_t i = 0;
  for (; i < n && (reinterpret_cast<std::uintptr_t>(dst + i) & 63) != 0; ++i) dst[i] = src[i];  // to a cache line
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

TESSERA_TARGET_AVX512 void centroids_avx512(float* block, const std::uint32_t* count, std::size_t rows, std::size_t p) {
  const std::size_t whole = p / 16 * 16;
  const auto tail = static_cast<__mmask16>((1u << (p - whole)) - 1);
  for (std::size_t g = 0; g < rows; ++g) {
    if (count[g] <= 1) continue;
    const __m512 inverse = _mm512_set1_ps(1.0f / static_cast<float>(count[g]));
    float* row = block + g * p;
    for (std::size_t j = 0; j < whole; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), inverse));
    if (tail) _mm512_mask_storeu_ps(row + whole, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, row + whole), inverse));
  }
}

TESSERA_TARGET_AVX512 void partitions_avx512(const float* sketch, std::size_t k, std::size_t width,
                                             std::uint32_t* partition) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512i one = _mm512_set1_epi32(1);
  for (std::size_t t = 0; t < width; t += 16) {
    __m512i bits = _mm512_setzero_si512();
    for (std::size_t j = 0; j < k; ++j) {
      const __mmask16 positive = _mm512_cmp_ps_mask(_mm512_loadu_ps(sketch + j * width + t), zero, _CMP_GT_OQ);
      bits = _mm512_mask_or_epi32(_mm512_slli_epi32(bits, 1), positive, _mm512_slli_epi32(bits, 1), one);
    }
    for (int shift = 1; shift < 32; shift <<= 1) bits = _mm512_xor_si512(bits, _mm512_srli_epi32(bits, shift));
    _mm512_storeu_si512(partition + t, bits);
  }
}

// Transposes the 16 x 16 block in r: rows interleaved in pairs, then fours, then the 128-bit lanes regrouped.
TESSERA_TARGET_AVX512 inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
  }
  // r[4q + m] now holds, in each 128-bit lane L, column (4 L + m) of rows 4q..4q+3: gather lane L of r[m],
  // r[4 + m], r[8 + m], r[12 + m] into row 4 L + m.
  for (int m = 0; m < 4; ++m) {
    const __m512 a = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x44), b = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x44);
    const __m512 c = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xEE), d = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xEE);
    t[0 + m] = _mm512_shuffle_f32x4(a, b, 0x88);
    t[4 + m] = _mm512_shuffle_f32x4(a, b, 0xDD);
    t[8 + m] = _mm512_shuffle_f32x4(c, d, 0x88);
    t[12 + m] = _mm512_shuffle_f32x4(c, d, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

TESSERA_TARGET_AVX512 void transpose16(const float* src, std::size_t lds, float* dst, std::size_t ldd) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
  transpose16(r);
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * ldd, r[i]);
}

// 16 tokens x up to 16 sketch rows at a time, transposed in registers and added to their partitions' rows.
TESSERA_TARGET_AVX512 void accumulate_avx512(float* block, const float* yt, std::size_t width,
                                             const std::uint32_t* partition, std::size_t n, std::size_t p) {
  for (std::size_t c0 = 0; c0 < p; c0 += 16) {
    const std::size_t rows = std::min<std::size_t>(16, p - c0);
    const auto mask = static_cast<__mmask16>((1u << rows) - 1);
    for (std::size_t t0 = 0; t0 < n; t0 += 16) {
      __m512 r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        r[i] = static_cast<std::size_t>(i) < rows ? _mm512_loadu_ps(yt + (c0 + i) * width + t0) : _mm512_setzero_ps();
      transpose16(r);
      const std::size_t tokens = std::min<std::size_t>(16, n - t0);
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) {
        if (static_cast<std::size_t>(j) >= tokens) break;
        float* dst = block + partition[t0 + j] * p + c0;
        _mm512_mask_storeu_ps(dst, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), r[j]));
      }
    }
  }
}

TESSERA_TARGET_AVX512 void transpose_avx512(const float* src, std::size_t rows, std::size_t cols, std::size_t lds,
                                            float* dst, std::size_t ldd) {
  const std::size_t rows16 = rows / 16 * 16, cols16 = cols / 16 * 16;
  for (std::size_t r = 0; r < rows16; r += 16)
    for (std::size_t c = 0; c < cols16; c += 16) transpose16(src + r * lds + c, lds, dst + c * ldd + r, ldd);
  // The edges, element by element.
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = r < rows16 ? cols16 : 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}
#endif

}  // namespace

AddFn add_rows(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return add_avx512;
#endif
  (void)level;
  return add_scalar;
}

StreamFn stream_rows(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return stream_avx512;
#endif
  (void)level;
  return stream_scalar;
}

void store_fence() noexcept {
#if TESSERA_X86
  _mm_sfence();
#endif
}

CentroidFn centroids(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return centroids_avx512;
#endif
  (void)level;
  return centroids_scalar;
}

SketchFn sketch_columns(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return sketch_avx512;
#endif
  (void)level;
  return sketch_scalar;
}

PartitionFn partitions(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return partitions_avx512;
#endif
  (void)level;
  return partitions_scalar;
}

AccumulateFn accumulate_rows(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return accumulate_avx512;
#endif
  (void)level;
  return accumulate_scalar;
}

TransposeFn transpose(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return transpose_avx512;
#endif
  (void)level;
  return transpose_scalar;
}

GemmFn gemm(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return gemm_avx512;
  if (level == SimdLevel::avx2) return gemm_avx2;
#endif
  (void)level;
  return gemm_scalar;
}

}  // namespace tessera::fde::detail
