// Row primitives of the vectors module, one set per instruction-set level. Internal to the core.
#pragma once

#include <cstddef>

#include "tessera/runtime.h"

namespace tessera::vectors::detail {

struct NormKernels {
  // Σ x[i]², every square and sum in float64 (a float's square is exact in float64).
  double (*sum_squares)(const float* x, std::size_t n);
  // out[i] = float(x[i] · s) with the product taken in float64.
  void (*scale)(const float* x, std::size_t n, double s, float* out);
};

NormKernels norm_kernels(SimdLevel level) noexcept;

double sum_squares_scalar(const float* x, std::size_t n);
void scale_scalar(const float* x, std::size_t n, double s, float* out);
#if defined(__x86_64__) || defined(_M_X64)
double sum_squares_avx2(const float* x, std::size_t n);
void scale_avx2(const float* x, std::size_t n, double s, float* out);
double sum_squares_avx512(const float* x, std::size_t n);
void scale_avx512(const float* x, std::size_t n, double s, float* out);
#endif
#if defined(__aarch64__)
double sum_squares_neon(const float* x, std::size_t n);
void scale_neon(const float* x, std::size_t n, double s, float* out);
#endif

}  // namespace tessera::vectors::detail
