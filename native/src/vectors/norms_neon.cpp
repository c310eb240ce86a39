// NEON row primitives (AArch64): float64 lanes, two per register.
#include "../common/simd.h"
#include "norms.h"

#if TESSERA_NEON
namespace tessera::vectors::detail {

double sum_squares_neon(const float* x, std::size_t n) {
  float64x2_t acc0 = vdupq_n_f64(0), acc1 = vdupq_n_f64(0), acc2 = vdupq_n_f64(0), acc3 = vdupq_n_f64(0);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t a = vld1q_f32(x + i);
    const float32x4_t b = vld1q_f32(x + i + 4);
    const float64x2_t a0 = vcvt_f64_f32(vget_low_f32(a)), a1 = vcvt_high_f64_f32(a);
    const float64x2_t b0 = vcvt_f64_f32(vget_low_f32(b)), b1 = vcvt_high_f64_f32(b);
    acc0 = vfmaq_f64(acc0, a0, a0);
    acc1 = vfmaq_f64(acc1, a1, a1);
    acc2 = vfmaq_f64(acc2, b0, b0);
    acc3 = vfmaq_f64(acc3, b1, b1);
  }
  double sum = vaddvq_f64(vaddq_f64(vaddq_f64(acc0, acc1), vaddq_f64(acc2, acc3)));
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

void scale_neon(const float* x, std::size_t n, double s, float* out) {
  const float64x2_t sv = vdupq_n_f64(s);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t a = vld1q_f32(x + i);
    const float32x2_t lo = vcvt_f32_f64(vmulq_f64(vcvt_f64_f32(vget_low_f32(a)), sv));
    const float32x4_t r = vcvt_high_f32_f64(lo, vmulq_f64(vcvt_high_f64_f32(a), sv));
    vst1q_f32(out + i, r);
  }
  for (; i < n; ++i) out[i] = static_cast<float>(x[i] * s);
}

}  // namespace tessera::vectors::detail
#endif
