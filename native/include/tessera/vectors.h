// Row-wise vector operations on row-major float32 matrices: L2 normalisation and Matryoshka truncation.
#pragma once

#include <cstddef>

#include "tessera/status.h"

namespace tessera::vectors {

// Matryoshka truncation (Kusupati et al., "Matryoshka Representation Learning", 2022; 2D Matryoshka and Starbucks
// embeddings are likewise meant to be used at any prefix of their dimensions): out row r = the first `keep` values of
// in row r, divided by their L2 norm when `normalize`. The norm is accumulated in float64 and the scaling done in
// float64, so every finite input gives a result within about half an ulp of the exact one, with no overflow or
// underflow. A row whose prefix is all zeros stays all zeros (no NaN). NaN and infinity propagate.
//
// `in` holds rows × dim floats and `out` rows × keep; 1 <= keep <= dim. `out` may equal `in` only when keep == dim
// (in-place normalisation); other overlaps are invalid_argument. Threaded over rows; identical for any thread count.
Status matryoshka(const float* in, std::size_t rows, std::size_t dim, std::size_t keep, bool normalize,
                  float* out) noexcept;

inline Status l2_normalize(const float* in, std::size_t rows, std::size_t dim, float* out) noexcept {
  return matryoshka(in, rows, dim, dim, true, out);
}

// Sum of squares of n floats, accumulated in float64 (exposed for tests and other modules).
double sum_squares(const float* x, std::size_t n) noexcept;

}  // namespace tessera::vectors
