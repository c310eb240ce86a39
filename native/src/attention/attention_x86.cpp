// The attention unit for AVX2 and AVX-512: tile.inl compiled twice, each copy under its own target pragma, with a
// 8- or 16-lane ops type.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../common/half_simd.h"
#include "kernel.h"
#include "tessera/half.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace tessera::attention::detail {

#pragma GCC push_options
#pragma GCC target("avx512f,avx512cd,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2,popcnt")
namespace avx512 {

struct V {
  static constexpr std::size_t W = 16, kRows = 6, kPvRows = 4;
  using reg = __m512;
  using mask = __mmask16;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg set1(float x) { return _mm512_set1_ps(x); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg abs(reg x) { return _mm512_abs_ps(x); }
  static reg round(reg x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static reg ldexp(reg x, reg n) { return _mm512_scalef_ps(x, n); }
  static mask lt(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static mask ge(reg a, reg b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static mask mand(mask a, mask b) { return a & b; }
  static mask mor(mask a, mask b) { return a | b; }
  static reg select(mask m, reg a, reg b) { return _mm512_mask_blend_ps(m, b, a); }
  static float hsum(reg x) { return _mm512_reduce_add_ps(x); }

  static void load_row(float* dst, const void* src, std::size_t n, DType t) {
    if (t == DType::f32) return void(std::memcpy(dst, src, n * sizeof(float)));
    const auto* h = static_cast<const std::uint16_t*>(src);
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(dst + i, half_simd::widen16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i)), t == DType::bf16));
    for (; i < n; ++i) dst[i] = t == DType::f16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
  }
  static void store_row(void* dst, const float* src, std::size_t n, DType t) {
    if (t == DType::f32) return void(std::memcpy(dst, src, n * sizeof(float)));
    auto* h = static_cast<std::uint16_t*>(dst);
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + i), half_simd::narrow16(_mm512_loadu_ps(src + i), t == DType::bf16));
    for (; i < n; ++i) h[i] = t == DType::f16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
  }
};

#include "tile.inl"

}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,popcnt")
namespace avx2 {

struct V {
  static constexpr std::size_t W = 8, kRows = 1, kPvRows = 2;
  using reg = __m256;
  using mask = __m256;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float x) { return _mm256_set1_ps(x); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg abs(reg x) { return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF))); }
  static reg round(reg x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // x 2^n for integral n: 2^n built in the exponent field, clamped to the normal range (callers select away the
  // lanes where that clamp matters).
  static reg ldexp(reg x, reg n) {
    const __m256 clamped = _mm256_min_ps(_mm256_max_ps(n, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(127.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(clamped), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(x, _mm256_castsi256_ps(e));
  }
  static mask lt(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static mask ge(reg a, reg b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static mask mand(mask a, mask b) { return _mm256_and_ps(a, b); }
  static mask mor(mask a, mask b) { return _mm256_or_ps(a, b); }
  static reg select(mask m, reg a, reg b) { return _mm256_blendv_ps(b, a, m); }
  static float hsum(reg x) {
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
  }

  static void load_row(float* dst, const void* src, std::size_t n, DType t) {
    if (t == DType::f32) return void(std::memcpy(dst, src, n * sizeof(float)));
    const auto* h = static_cast<const std::uint16_t*>(src);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i, half_simd::widen8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i)), t == DType::bf16));
    for (; i < n; ++i) dst[i] = t == DType::f16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
  }
  static void store_row(void* dst, const float* src, std::size_t n, DType t) {
    if (t == DType::f32) return void(std::memcpy(dst, src, n * sizeof(float)));
    auto* h = static_cast<std::uint16_t*>(dst);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i), half_simd::narrow8(_mm256_loadu_ps(src + i), t == DType::bf16));
    for (; i < n; ++i) h[i] = t == DType::f16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
  }
};

#include "tile.inl"

}  // namespace avx2
#pragma GCC pop_options

void run_unit_avx512(const Plan& plan, std::size_t unit, Scratch& scratch) { avx512::run_unit(plan, unit, scratch); }
void run_unit_avx2(const Plan& plan, std::size_t unit, Scratch& scratch) { avx2::run_unit(plan, unit, scratch); }
void run_rows_unit_avx512(const Plan& plan, std::size_t unit, Scratch& scratch) { avx512::run_rows_unit(plan, unit, scratch); }
void run_rows_unit_avx2(const Plan& plan, std::size_t unit, Scratch& scratch) { avx2::run_rows_unit(plan, unit, scratch); }

}  // namespace tessera::attention::detail
#endif
