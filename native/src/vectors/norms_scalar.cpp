#include "norms.h"

namespace tessera::vectors::detail {

double sum_squares_scalar(const float* x, std::size_t n) {
  double acc[4] = {0, 0, 0, 0};  // four independent chains: the adds overlap instead of waiting on each other
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) acc[k] += static_cast<double>(x[i + k]) * x[i + k];
  for (; i < n; ++i) acc[0] += static_cast<double>(x[i]) * x[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

void scale_scalar(const float* x, std::size_t n, double s, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(x[i] * s);
}

NormKernels norm_kernels(SimdLevel level) noexcept {
  switch (level) {
#if defined(__x86_64__) || defined(_M_X64)
    case SimdLevel::avx512:
    case SimdLevel::avx512_vpopcntdq:
      return {sum_squares_avx512, scale_avx512};
    case SimdLevel::avx2:
      return {sum_squares_avx2, scale_avx2};
#endif
#if defined(__aarch64__)
    case SimdLevel::neon:
      return {sum_squares_neon, scale_neon};
#endif
    default:
      return {sum_squares_scalar, scale_scalar};
  }
}

}  // namespace tessera::vectors::detail
