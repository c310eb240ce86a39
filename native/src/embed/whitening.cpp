// Whitening of sentence embeddings (Su et al. 2021; tessera/postprocess.h): the mean and covariance of a sample in
// float64, the covariance's eigendecomposition, W = U diag(1 / sqrt(lambda + eps)); the transform centres each row
// and multiplies it by W on the blocked matrix product.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "../attention/matmul.h"
#include "tessera/memory.h"
#include "tessera/postprocess.h"
#include "tessera/runtime.h"
#include "util.h"

namespace tessera::postprocess {

using attention::detail::matmul;
using detail::kRowBlock;

Status whitening_fit(const float* sample, std::size_t n, std::size_t dim, std::size_t components, double epsilon,
                     float* mean, float* matrix, double* eigenvalues) noexcept {
  std::size_t n_in = 0, n_cov = 0, n_matrix = 0;
  if (n == 0 || dim == 0 || components == 0 || components > dim || !element_count({n, dim}, &n_in) ||
      !element_count({dim, dim}, &n_cov) || !element_count({dim, components}, &n_matrix))
    return Status::invalid_argument;
  if (!sample || !mean || !matrix || !std::isfinite(epsilon) || epsilon < 0) return Status::invalid_argument;
  if (bytes_overlap(mean, dim * sizeof(float), sample, n_in * sizeof(float)) ||
      bytes_overlap(matrix, n_matrix * sizeof(float), sample, n_in * sizeof(float)) ||
      bytes_overlap(matrix, n_matrix * sizeof(float), mean, dim * sizeof(float)) ||
      (eigenvalues && (bytes_overlap(eigenvalues, dim * sizeof(double), sample, n_in * sizeof(float)) ||
                       bytes_overlap(eigenvalues, dim * sizeof(double), mean, dim * sizeof(float)) ||
                       bytes_overlap(eigenvalues, dim * sizeof(double), matrix, n_matrix * sizeof(float)))))
    return Status::invalid_argument;
  try {
    // The mean: float64 column sums in row order, threaded over panels of columns.
    constexpr std::size_t kPanel = 256;
    std::vector<double> mu(dim, 0.0);
    auto sums = [&](std::size_t begin, std::size_t end) {
      for (std::size_t pn = begin; pn < end; ++pn) {
        const std::size_t c0 = pn * kPanel, cols = std::min(kPanel, dim - c0);
        double* m = mu.data() + c0;
        for (std::size_t i = 0; i < n; ++i) {
          const float* row = sample + i * dim + c0;
          for (std::size_t c = 0; c < cols; ++c) m[c] += row[c];
        }
        for (std::size_t c = 0; c < cols; ++c) m[c] /= static_cast<double>(n);
      }
    };
    if (Status st = parallel_for((dim + kPanel - 1) / kPanel, 1, sums); st != Status::ok) return st;
    for (std::size_t c = 0; c < dim; ++c)
      if (!std::isfinite(mu[c])) return Status::invalid_argument;  // a NaN or infinity in the sample

    // The covariance's lower triangle: blocks of centred rows in float64, each block's outer products added to the
    // rows of the covariance in parallel (every element sums the rows in order, whatever the thread count).
    std::vector<double> cov(n_cov, 0.0), centred(kRowBlock * dim);
    const std::size_t grain = std::max<std::size_t>(1, (std::size_t{1} << 16) / (kRowBlock * dim + 1));
    for (std::size_t i0 = 0; i0 < n; i0 += kRowBlock) {
      const std::size_t rows = std::min(kRowBlock, n - i0);
      for (std::size_t s = 0; s < rows; ++s)
        for (std::size_t c = 0; c < dim; ++c) centred[s * dim + c] = sample[(i0 + s) * dim + c] - mu[c];
      auto accumulate = [&](std::size_t begin, std::size_t end) {
        for (std::size_t r = begin; r < end; ++r) {
          double* cr = cov.data() + r * dim;
          for (std::size_t s = 0; s < rows; ++s) {
            const double* x = centred.data() + s * dim;
            const double xr = x[r];
            for (std::size_t c = 0; c <= r; ++c) cr[c] += xr * x[c];
          }
        }
      };
      if (Status st = parallel_for(dim, grain, accumulate); st != Status::ok) return st;
    }
    const double divisor = n > 1 ? static_cast<double>(n - 1) : 1.0;
    for (std::size_t r = 0; r < dim; ++r)
      for (std::size_t c = 0; c <= r; ++c) cov[r * dim + c] /= divisor;

    std::vector<double> values(dim), vectors(n_cov);
    if (Status st = symmetric_eigen(cov.data(), dim, values.data(), vectors.data()); st != Status::ok) return st;
    std::vector<double> scale(components);
    for (std::size_t j = 0; j < components; ++j) {
      const double v = std::max(values[j], 0.0) + epsilon;  // rounding can leave a zero eigenvalue slightly negative
      if (!(v > 0)) return Status::invalid_argument;           // epsilon 0 and a zero-variance component
      scale[j] = 1.0 / std::sqrt(v);
    }
    for (std::size_t r = 0; r < dim; ++r)
      for (std::size_t j = 0; j < components; ++j)
        matrix[r * components + j] = static_cast<float>(vectors[r * dim + j] * scale[j]);
    for (std::size_t c = 0; c < dim; ++c) mean[c] = static_cast<float>(mu[c]);
    if (eigenvalues) std::copy(values.begin(), values.end(), eigenvalues);
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status whitening_transform(const float* x, std::size_t n, std::size_t dim, const float* mean, const float* matrix,
                           std::size_t components, bool normalize_output, float* out) noexcept {
  std::size_t n_in = 0, n_matrix = 0, n_out = 0;
  if (dim == 0 || components == 0 || components > dim || !element_count({n, dim}, &n_in) ||
      !element_count({dim, components}, &n_matrix) ||
      !element_count({n, components}, &n_out))
    return Status::invalid_argument;
  if (!mean || !matrix) return Status::invalid_argument;
  if (n == 0) return Status::ok;
  if (!x || !out) return Status::invalid_argument;
  const std::size_t out_bytes = n_out * sizeof(float);
  if (bytes_overlap(out, out_bytes, x, n_in * sizeof(float)) || bytes_overlap(out, out_bytes, mean, dim * sizeof(float)) ||
      bytes_overlap(out, out_bytes, matrix, n_matrix * sizeof(float)))
    return Status::invalid_argument;
  try {
    const std::size_t blocks = (n + kRowBlock - 1) / kRowBlock;
    const std::size_t slots = slots_for(blocks, 1);
    std::vector<AlignedVector<float>> scratch(slots, AlignedVector<float>(kRowBlock * dim));
    std::atomic<bool> failed{false};
    auto body = [&](std::size_t begin, std::size_t end, std::size_t slot) {
      float* centred = scratch[slot].data();
      for (std::size_t blk = begin; blk < end; ++blk) {
        const std::size_t i0 = blk * kRowBlock, rows = std::min(kRowBlock, n - i0);
        for (std::size_t i = 0; i < rows; ++i) {
          const float* row = x + (i0 + i) * dim;
          for (std::size_t c = 0; c < dim; ++c) centred[i * dim + c] = row[c] - mean[c];
        }
        float* o = out + i0 * components;
        if (matmul(centred, dim, matrix, components, false, nullptr, o, components, rows, dim, components, false) !=
            Status::ok) {
          failed = true;  // cannot happen: the arguments were checked above
          return;
        }
        if (normalize_output)
          for (std::size_t i = 0; i < rows; ++i) detail::normalize_row(o + i * components, components);
      }
    };
    if (Status st = parallel_for(blocks, 1, body, slots); st != Status::ok) return st;
    return failed ? Status::internal : Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::postprocess
