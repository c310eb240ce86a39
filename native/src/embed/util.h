// Helpers shared by the embedding post-processing kernels. Internal to the core.
#pragma once

#include <cmath>
#include <cstddef>

namespace tessera::postprocess::detail {

// Rows per unit of work: a unit's scratch (rows x dim floats) stays in L2 for dim up to a few thousand, and the
// boundaries depend only on n, so every thread count gives the same bits.
constexpr std::size_t kRowBlock = 64;

// 1 / |row| with the norm summed in float64, or 0 for a zero row (which then stays zero).
inline double inverse_norm(const float* row, std::size_t dim) noexcept {
  double sum = 0;
  for (std::size_t d = 0; d < dim; ++d) sum += static_cast<double>(row[d]) * row[d];
  return sum > 0 ? 1.0 / std::sqrt(sum) : 0.0;
}

// dst = src * scale, each element rounded once from float64; dst may be src.
inline void scale_row(const float* src, double scale, std::size_t dim, float* dst) noexcept {
  for (std::size_t d = 0; d < dim; ++d) dst[d] = static_cast<float>(src[d] * scale);
}

inline void normalize_row(float* row, std::size_t dim) noexcept { scale_row(row, inverse_norm(row, dim), dim, row); }

}  // namespace tessera::postprocess::detail
