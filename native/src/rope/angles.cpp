// cos and sin of RoPE angles with the phase kept in float64.
//
// theta = p * f is reduced to r = theta - k pi/2 with k = nearest(theta * 2/pi), |r| <= pi/4: pi/2 is split into a
// float64 head and the tail the head leaves out, and theta - k * head is one fused multiply-add (exact before its
// single rounding), so r carries theta's own float64 accuracy (~1e-16 relative) at any position. sin r and cos r
// are Taylor polynomials through r^11 and r^12 (truncation below 1e-11 on |r| <= pi/4), evaluated in float64;
// the quadrant k mod 4 swaps and negates them. Rounding the results to float32 is the only error that matters.
#include <cmath>
#include <initializer_list>

#include "../common/simd.h"
#include "kernels.h"

#if TESSERA_X86
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tessera::rope::detail {
namespace {

constexpr double kTwoOverPi = 0.63661977236758134308;
constexpr double kHalfPiHead = 1.5707963267948966;       // float64 nearest pi/2
constexpr double kHalfPiTail = 6.123233995736766036e-17;  // pi/2 - kHalfPiHead

// 1/n! with alternating signs: sin r = r + r^3 (S3 + r^2 (S5 + ...)), cos r = 1 + r^2 (C2 + r^2 (C4 + ...)).
constexpr double S3 = -1.0 / 6, S5 = 1.0 / 120, S7 = -1.0 / 5040, S9 = 1.0 / 362880, S11 = -1.0 / 39916800;
constexpr double C2 = -0.5, C4 = 1.0 / 24, C6 = -1.0 / 720, C8 = 1.0 / 40320, C10 = -1.0 / 3628800,
                 C12 = 1.0 / 479001600;

}  // namespace

void angles_scalar(double position, const double* inv_freq, std::size_t half, double factor, float* cos,
                   float* sin) {
  for (std::size_t i = 0; i < half; ++i) {
    const double theta = position * inv_freq[i];
    const double k = std::nearbyint(theta * kTwoOverPi);
    const double r = std::fma(-k, kHalfPiTail, std::fma(-k, kHalfPiHead, theta));
    const double r2 = r * r;
    // Horner steps as fused multiply-adds, in the SIMD kernels' order, so every level (and the CUDA kernel) rounds
    // alike and gives the same bits.
    double s = std::fma(r2, S11, S9);
    for (const double term : {S7, S5, S3}) s = std::fma(r2, s, term);
    s = std::fma(r * r2, s, r);
    double c = std::fma(r2, C12, C10);
    for (const double term : {C8, C6, C4, C2, 1.0}) c = std::fma(r2, c, term);
    const double quadrant = k - 4.0 * std::floor(k * 0.25);  // k mod 4, also for negative k
    const bool odd = quadrant == 1.0 || quadrant == 3.0;
    double sv = odd ? c : s, cv = odd ? s : c;
    if (quadrant >= 2.0) sv = 0.0 - sv;  // 0 - x as the SIMD kernels negate (never -0)
    if (quadrant == 1.0 || quadrant == 2.0) cv = 0.0 - cv;
    cos[i] = static_cast<float>(cv * factor);
    sin[i] = static_cast<float>(sv * factor);
  }
}

#if TESSERA_X86
namespace {

TESSERA_TARGET_AVX512 void angles_avx512(double position, const double* inv_freq, std::size_t half, double factor,
                                         float* cos, float* sin) {
  const __m512d p = _mm512_set1_pd(position), scale = _mm512_set1_pd(factor);
  const __m512d one = _mm512_set1_pd(1.0), two = _mm512_set1_pd(2.0), three = _mm512_set1_pd(3.0);
  for (std::size_t i = 0; i < half; i += 8) {
    const auto m = static_cast<__mmask8>(half - i >= 8 ? 0xFF : (1u << (half - i)) - 1);
    const __m512d theta = _mm512_mul_pd(p, _mm512_maskz_loadu_pd(m, inv_freq + i));
    const __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(theta, _mm512_set1_pd(kTwoOverPi)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(kHalfPiHead), theta);
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(kHalfPiTail), r);
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d s = _mm512_fmadd_pd(r2, _mm512_set1_pd(S11), _mm512_set1_pd(S9));
    s = _mm512_fmadd_pd(r2, s, _mm512_set1_pd(S7));
    s = _mm512_fmadd_pd(r2, s, _mm512_set1_pd(S5));
    s = _mm512_fmadd_pd(r2, s, _mm512_set1_pd(S3));
    s = _mm512_fmadd_pd(_mm512_mul_pd(r, r2), s, r);
    __m512d c = _mm512_fmadd_pd(r2, _mm512_set1_pd(C12), _mm512_set1_pd(C10));
    c = _mm512_fmadd_pd(r2, c, _mm512_set1_pd(C8));
    c = _mm512_fmadd_pd(r2, c, _mm512_set1_pd(C6));
    c = _mm512_fmadd_pd(r2, c, _mm512_set1_pd(C4));
    c = _mm512_fmadd_pd(r2, c, _mm512_set1_pd(C2));
    c = _mm512_fmadd_pd(r2, c, one);
    const __m512d quadrant = _mm512_sub_pd(
        k, _mm512_mul_pd(_mm512_set1_pd(4.0), _mm512_roundscale_pd(_mm512_mul_pd(k, _mm512_set1_pd(0.25)),
                                                                   _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)));
    const __mmask8 odd = _mm512_cmp_pd_mask(quadrant, one, _CMP_EQ_OQ) | _mm512_cmp_pd_mask(quadrant, three, _CMP_EQ_OQ);
    const __mmask8 negate_sin = _mm512_cmp_pd_mask(quadrant, two, _CMP_GE_OQ);
    const __mmask8 negate_cos = _mm512_cmp_pd_mask(quadrant, one, _CMP_EQ_OQ) | _mm512_cmp_pd_mask(quadrant, two, _CMP_EQ_OQ);
    __m512d sv = _mm512_mask_blend_pd(odd, s, c), cv = _mm512_mask_blend_pd(odd, c, s);
    const __m512d zero = _mm512_setzero_pd();
    sv = _mm512_mask_sub_pd(sv, negate_sin, zero, sv);
    cv = _mm512_mask_sub_pd(cv, negate_cos, zero, cv);
    _mm256_mask_storeu_ps(cos + i, m, _mm512_cvtpd_ps(_mm512_mul_pd(cv, scale)));
    _mm256_mask_storeu_ps(sin + i, m, _mm512_cvtpd_ps(_mm512_mul_pd(sv, scale)));
  }
}

TESSERA_TARGET_AVX2 void angles_avx2(double position, const double* inv_freq, std::size_t half, double factor,
                                     float* cos, float* sin) {
  const __m256d p = _mm256_set1_pd(position), scale = _mm256_set1_pd(factor);
  const __m256d one = _mm256_set1_pd(1.0), two = _mm256_set1_pd(2.0), three = _mm256_set1_pd(3.0);
  std::size_t i = 0;
  for (; i + 4 <= half; i += 4) {
    const __m256d theta = _mm256_mul_pd(p, _mm256_loadu_pd(inv_freq + i));
    const __m256d k = _mm256_round_pd(_mm256_mul_pd(theta, _mm256_set1_pd(kTwoOverPi)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(kHalfPiHead), theta);
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(kHalfPiTail), r);
    const __m256d r2 = _mm256_mul_pd(r, r);
    __m256d s = _mm256_fmadd_pd(r2, _mm256_set1_pd(S11), _mm256_set1_pd(S9));
    s = _mm256_fmadd_pd(r2, s, _mm256_set1_pd(S7));
    s = _mm256_fmadd_pd(r2, s, _mm256_set1_pd(S5));
    s = _mm256_fmadd_pd(r2, s, _mm256_set1_pd(S3));
    s = _mm256_fmadd_pd(_mm256_mul_pd(r, r2), s, r);
    __m256d c = _mm256_fmadd_pd(r2, _mm256_set1_pd(C12), _mm256_set1_pd(C10));
    c = _mm256_fmadd_pd(r2, c, _mm256_set1_pd(C8));
    c = _mm256_fmadd_pd(r2, c, _mm256_set1_pd(C6));
    c = _mm256_fmadd_pd(r2, c, _mm256_set1_pd(C4));
    c = _mm256_fmadd_pd(r2, c, _mm256_set1_pd(C2));
    c = _mm256_fmadd_pd(r2, c, one);
    const __m256d quadrant =
        _mm256_sub_pd(k, _mm256_mul_pd(_mm256_set1_pd(4.0), _mm256_floor_pd(_mm256_mul_pd(k, _mm256_set1_pd(0.25)))));
    const __m256d odd = _mm256_or_pd(_mm256_cmp_pd(quadrant, one, _CMP_EQ_OQ), _mm256_cmp_pd(quadrant, three, _CMP_EQ_OQ));
    const __m256d negate_sin = _mm256_cmp_pd(quadrant, two, _CMP_GE_OQ);
    const __m256d negate_cos = _mm256_or_pd(_mm256_cmp_pd(quadrant, one, _CMP_EQ_OQ), _mm256_cmp_pd(quadrant, two, _CMP_EQ_OQ));
    const __m256d sign = _mm256_set1_pd(-0.0);
    __m256d sv = _mm256_blendv_pd(s, c, odd), cv = _mm256_blendv_pd(c, s, odd);
    sv = _mm256_xor_pd(sv, _mm256_and_pd(negate_sin, sign));
    cv = _mm256_xor_pd(cv, _mm256_and_pd(negate_cos, sign));
    _mm_storeu_ps(cos + i, _mm256_cvtpd_ps(_mm256_mul_pd(cv, scale)));
    _mm_storeu_ps(sin + i, _mm256_cvtpd_ps(_mm256_mul_pd(sv, scale)));
  }
  if (i < half) angles_scalar(position, inv_freq + i, half - i, factor, cos + i, sin + i);
}

}  // namespace
#endif

AnglesFn angles(SimdLevel level) noexcept {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return angles_avx512;
  if (level == SimdLevel::avx2) return angles_avx2;
#endif
  (void)level;
  return angles_scalar;
}

}  // namespace tessera::rope::detail
