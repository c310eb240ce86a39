#include <cmath>
#include <cstring>
#include <limits>

#include "norms.h"
#include "tessera/memory.h"
#include "tessera/vectors.h"

namespace tessera::vectors {
namespace {

// Requests a row's prefix ahead of use. Rows are short, separate streams that the hardware prefetcher only
// picks up after several misses each; asking one row ahead hides that ramp.
void prefetch_row(const float* x, std::size_t n) {
  const auto* p = reinterpret_cast<const char*>(x);
  for (std::size_t b = 0; b < n * sizeof(float); b += 64) __builtin_prefetch(p + b, 0, 3);
}

void truncate_row(const detail::NormKernels& k, const float* x, std::size_t keep, bool normalize, float* y) {
  if (!normalize) {
    if (y != x) std::memcpy(y, x, keep * sizeof(float));
    return;
  }
  const double ss = k.sum_squares(x, keep);
  if (ss == 0.0) {  // an all-zero prefix has no direction: leave it zero rather than divide by zero
    if (y != x) std::memcpy(y, x, keep * sizeof(float));
    return;
  }
  k.scale(x, keep, 1.0 / std::sqrt(ss), y);  // NaN or infinity in ss propagates, by design
}

}  // namespace

double sum_squares(const float* x, std::size_t n) noexcept {
  return detail::norm_kernels(active_simd_level()).sum_squares(x, n);
}

Status matryoshka(const float* in, std::size_t rows, std::size_t dim, std::size_t keep, bool normalize,
                  float* out) noexcept {
  if (dim == 0 || keep == 0 || keep > dim) return Status::invalid_argument;
  if (rows > std::numeric_limits<std::size_t>::max() / sizeof(float) / dim) return Status::invalid_argument;
  if (rows == 0) return Status::ok;
  if (in == nullptr || out == nullptr) return Status::invalid_argument;
  const bool in_place = out == in && keep == dim;
  if (!in_place && bytes_overlap(in, rows * dim * sizeof(float), out, rows * keep * sizeof(float)))
    return Status::invalid_argument;

  const detail::NormKernels k = detail::norm_kernels(active_simd_level());
  auto rows_body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r) {
      if (r + 1 < end) prefetch_row(in + (r + 1) * dim, keep);
      truncate_row(k, in + r * dim, keep, normalize, out + r * keep);
    }
  };
  // Each row reads and writes `keep` floats; rows are independent, so any split gives the same bytes.
  return parallel_for(rows, grain_for_bytes(2 * keep * sizeof(float)), rows_body);
}

}  // namespace tessera::vectors
