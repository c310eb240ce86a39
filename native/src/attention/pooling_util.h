// Helpers shared by the pooling heads: token masks, float64 row sums, L2 normalisation. Internal to the core.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tessera/pooling.h"

namespace tessera::pooling::detail {

// At most one mask kind, and lengths within [0, seq].
inline bool mask_valid(const TokenMask& m, std::size_t batch, std::size_t seq) noexcept {
  if ((m.mask_u8 != nullptr) + (m.mask_i32 != nullptr) + (m.lengths != nullptr) > 1) return false;
  if (m.lengths)
    for (std::size_t b = 0; b < batch; ++b)
      if (m.lengths[b] < 0 || static_cast<std::size_t>(m.lengths[b]) > seq) return false;
  return true;
}

// Whether token t of row b counts.
inline bool is_valid(const TokenMask& m, std::size_t seq, std::size_t b, std::size_t t) noexcept {
  if (m.mask_u8) return m.mask_u8[b * seq + t] != 0;
  if (m.mask_i32) return m.mask_i32[b * seq + t] != 0;
  if (m.lengths) return t < static_cast<std::size_t>(m.lengths[b]);
  return true;
}

// row /= max(|row|, 1e-12), the norm summed in float64 (torch.nn.functional.normalize's eps).
inline void l2_normalize(float* row, std::size_t dim) noexcept {
  double sum = 0;
  for (std::size_t d = 0; d < dim; ++d) sum += static_cast<double>(row[d]) * row[d];
  const double norm = std::sqrt(sum);
  if (norm == 0) return;
  const double inverse = 1.0 / std::fmax(norm, 1e-12);
  for (std::size_t d = 0; d < dim; ++d) row[d] = static_cast<float>(row[d] * inverse);
}

inline bool all_finite(const float* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return false;
  return true;
}

}  // namespace tessera::pooling::detail
