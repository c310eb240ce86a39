// AVX2 and AVX-512 row primitives. Floats are widened to float64 before squaring, so the sum loses nothing to
// overflow, underflow or cancellation of large partial sums; the loads, not the arithmetic, bound the speed.
#include "../common/simd.h"
#include "norms.h"

// GCC 12's AVX-512 headers build undefined vectors with a self-assignment it then warns about (a false positive).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if TESSERA_X86
namespace tessera::vectors::detail {

TESSERA_TARGET_AVX2 double sum_squares_avx2(const float* x, std::size_t n) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  __m256d acc2 = _mm256_setzero_pd(), acc3 = _mm256_setzero_pd();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = _mm256_loadu_ps(x + i);
    const __m256 b = _mm256_loadu_ps(x + i + 8);
    const __m256d a0 = _mm256_cvtps_pd(_mm256_castps256_ps128(a));
    const __m256d a1 = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    const __m256d b0 = _mm256_cvtps_pd(_mm256_castps256_ps128(b));
    const __m256d b1 = _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1));
    acc0 = _mm256_fmadd_pd(a0, a0, acc0);
    acc1 = _mm256_fmadd_pd(a1, a1, acc1);
    acc2 = _mm256_fmadd_pd(b0, b0, acc2);
    acc3 = _mm256_fmadd_pd(b1, b1, acc3);
  }
  for (; i + 4 <= n; i += 4) {
    const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i));
    acc0 = _mm256_fmadd_pd(a, a, acc0);
  }
  const __m256d acc = _mm256_add_pd(_mm256_add_pd(acc0, acc1), _mm256_add_pd(acc2, acc3));
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, acc);
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

TESSERA_TARGET_AVX2 void scale_avx2(const float* x, std::size_t n, double s, float* out) {
  const __m256d sv = _mm256_set1_pd(s);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_loadu_ps(x + i);
    const __m128 lo = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), sv));
    const __m128 hi = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), sv));
    _mm256_storeu_ps(out + i, _mm256_set_m128(hi, lo));
  }
  for (; i < n; ++i) out[i] = static_cast<float>(x[i] * s);
}

TESSERA_TARGET_AVX512 double sum_squares_avx512(const float* x, std::size_t n) {
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  __m512d acc2 = _mm512_setzero_pd(), acc3 = _mm512_setzero_pd();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = _mm512_loadu_ps(x + i);
    const __m512 b = _mm512_loadu_ps(x + i + 16);
    const __m512d a0 = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
    const __m512d a1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1));
    const __m512d b0 = _mm512_cvtps_pd(_mm512_castps512_ps256(b));
    const __m512d b1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1));
    acc0 = _mm512_fmadd_pd(a0, a0, acc0);
    acc1 = _mm512_fmadd_pd(a1, a1, acc1);
    acc2 = _mm512_fmadd_pd(b0, b0, acc2);
    acc3 = _mm512_fmadd_pd(b1, b1, acc3);
  }
  for (; i < n; i += 8) {  // the tail, eight at a time; masked lanes load as zero and add nothing
    const std::size_t left = n - i;
    const __mmask8 m = left >= 8 ? __mmask8(0xFF) : static_cast<__mmask8>((1u << left) - 1);
    const __m512d a = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + i));
    acc0 = _mm512_fmadd_pd(a, a, acc0);
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(acc0, acc1), _mm512_add_pd(acc2, acc3)));
}

TESSERA_TARGET_AVX512 void scale_avx512(const float* x, std::size_t n, double s, float* out) {
  const __m512d sv = _mm512_set1_pd(s);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 a = _mm512_loadu_ps(x + i);
    const __m256 lo = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)), sv));
    const __m256 hi = _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)), sv));
    _mm512_storeu_ps(out + i, _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1));
  }
  for (; i < n; i += 8) {
    const std::size_t left = n - i;
    const __mmask8 m = left >= 8 ? __mmask8(0xFF) : static_cast<__mmask8>((1u << left) - 1);
    const __m512d a = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + i));
    _mm256_mask_storeu_ps(out + i, m, _mm512_cvtpd_ps(_mm512_mul_pd(a, sv)));
  }
}

}  // namespace tessera::vectors::detail
#endif
