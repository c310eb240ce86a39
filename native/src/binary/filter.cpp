#include "filter.h"

#include "../common/simd.h"

#if TESSERA_X86
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tessera::binary::detail {
namespace {

template <class T>
std::size_t filter_scalar(const T* keys, std::size_t n, T threshold, std::uint32_t* positions) {
  std::size_t m = 0;
  for (std::size_t j = 0; j < n; ++j)
    if (keys[j] <= threshold) positions[m++] = static_cast<std::uint32_t>(j);
  return m;
}

#if TESSERA_X86
TESSERA_TARGET_AVX512 std::size_t filter_u32_avx512(const std::uint32_t* keys, std::size_t n, std::uint32_t threshold,
                                                     std::uint32_t* positions) {
  const __m512i t = _mm512_set1_epi32(static_cast<int>(threshold));
  const __m512i step = _mm512_set1_epi32(16);
  __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  std::size_t m = 0, j = 0;
  for (; j + 16 <= n; j += 16, index = _mm512_add_epi32(index, step)) {
    const __mmask16 pass = _mm512_cmple_epu32_mask(_mm512_loadu_si512(keys + j), t);
    if (pass) {  // rare once the heap is full
      _mm512_mask_compressstoreu_epi32(positions + m, pass, index);
      m += static_cast<std::size_t>(__builtin_popcount(pass));
    }
  }
  for (; j < n; ++j)
    if (keys[j] <= threshold) positions[m++] = static_cast<std::uint32_t>(j);
  return m;
}

TESSERA_TARGET_AVX512 std::size_t filter_f32_avx512(const float* keys, std::size_t n, float threshold,
                                                     std::uint32_t* positions) {
  const __m512 t = _mm512_set1_ps(threshold);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  std::size_t m = 0, j = 0;
  for (; j + 16 <= n; j += 16, index = _mm512_add_epi32(index, step)) {
    const __mmask16 pass = _mm512_cmp_ps_mask(_mm512_loadu_ps(keys + j), t, _CMP_LE_OQ);
    if (pass) {
      _mm512_mask_compressstoreu_epi32(positions + m, pass, index);
      m += static_cast<std::size_t>(__builtin_popcount(pass));
    }
  }
  for (; j < n; ++j)
    if (keys[j] <= threshold) positions[m++] = static_cast<std::uint32_t>(j);
  return m;
}

TESSERA_TARGET_AVX2 std::size_t filter_u32_avx2(const std::uint32_t* keys, std::size_t n, std::uint32_t threshold,
                                                 std::uint32_t* positions) {
  // Unsigned a <= t  <=>  min(a, t) == a.
  const __m256i t = _mm256_set1_epi32(static_cast<int>(threshold));
  std::size_t m = 0, j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i k = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + j));
    unsigned pass = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_min_epu32(k, t), k))));
    while (pass) {
      positions[m++] = static_cast<std::uint32_t>(j + static_cast<std::size_t>(__builtin_ctz(pass)));
      pass &= pass - 1;
    }
  }
  for (; j < n; ++j)
    if (keys[j] <= threshold) positions[m++] = static_cast<std::uint32_t>(j);
  return m;
}

TESSERA_TARGET_AVX2 std::size_t filter_f32_avx2(const float* keys, std::size_t n, float threshold,
                                                 std::uint32_t* positions) {
  const __m256 t = _mm256_set1_ps(threshold);
  std::size_t m = 0, j = 0;
  for (; j + 8 <= n; j += 8) {
    unsigned pass = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(keys + j), t, _CMP_LE_OQ)));
    while (pass) {
      positions[m++] = static_cast<std::uint32_t>(j + static_cast<std::size_t>(__builtin_ctz(pass)));
      pass &= pass - 1;
    }
  }
  for (; j < n; ++j)
    if (keys[j] <= threshold) positions[m++] = static_cast<std::uint32_t>(j);
  return m;
}
#endif

}  // namespace

FilterU32 filter_u32(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return filter_u32_avx512;
  if (level == SimdLevel::avx2) return filter_u32_avx2;
#endif
  (void)level;
  return filter_scalar<std::uint32_t>;
}

FilterF32 filter_f32(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return filter_f32_avx512;
  if (level == SimdLevel::avx2) return filter_f32_avx2;
#endif
  (void)level;
  return filter_scalar<float>;
}

}  // namespace tessera::binary::detail
