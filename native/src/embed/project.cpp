// Removal of given directions (tessera/postprocess.h): an orthonormal basis U of their span by modified Gram-Schmidt
// in float64, then for each block of rows the coefficients C = X U^T and X - C U on the blocked matrix product.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "../attention/matmul.h"
#include "tessera/memory.h"
#include "tessera/postprocess.h"
#include "tessera/runtime.h"
#include "util.h"

namespace tessera::postprocess {

using attention::detail::matmul;
using detail::kRowBlock;

namespace {

constexpr double kDependent = 1e-10;  // residual norm / original norm below which a direction is dropped

}  // namespace

Status orthonormalize(const float* directions, std::size_t count, std::size_t dim, double* basis,
                      std::size_t* rank) noexcept {
  std::size_t total = 0;
  if (dim == 0 || !element_count({count, dim}, &total) || !rank) return Status::invalid_argument;
  *rank = 0;
  if (total == 0) return Status::ok;
  if (!directions || !basis) return Status::invalid_argument;
  if (bytes_overlap(basis, total * sizeof(double), directions, total * sizeof(float))) return Status::invalid_argument;
  for (std::size_t i = 0; i < total; ++i)
    if (!std::isfinite(directions[i])) return Status::invalid_argument;
  std::size_t r = 0;
  for (std::size_t k = 0; k < count; ++k) {
    double* u = basis + r * dim;
    double norm2 = 0;
    for (std::size_t d = 0; d < dim; ++d) {
      u[d] = directions[k * dim + d];
      norm2 += u[d] * u[d];
    }
    if (norm2 == 0) continue;
    const double original = std::sqrt(norm2);
    // Modified Gram-Schmidt against the accepted vectors, twice ("twice is enough": the second pass removes what
    // rounding left of the first, so the basis is orthogonal to about 1e-16 even for nearly dependent directions).
    for (int pass = 0; pass < 2; ++pass)
      for (std::size_t j = 0; j < r; ++j) {
        const double* b = basis + j * dim;
        double dot = 0;
        for (std::size_t d = 0; d < dim; ++d) dot += b[d] * u[d];
        for (std::size_t d = 0; d < dim; ++d) u[d] -= dot * b[d];
      }
    norm2 = 0;
    for (std::size_t d = 0; d < dim; ++d) norm2 += u[d] * u[d];
    const double norm = std::sqrt(norm2);
    if (!(norm >= kDependent * original)) continue;  // numerically in the span of the earlier directions
    for (std::size_t d = 0; d < dim; ++d) u[d] /= norm;
    ++r;
  }
  *rank = r;
  return Status::ok;
}

Status project_out(const float* vectors, std::size_t n, const float* directions, std::size_t count, std::size_t dim,
                   bool normalize_output, float* out, std::size_t* rank) noexcept {
  std::size_t total = 0, n_dir = 0;
  if (dim == 0 || !element_count({n, dim}, &total) || !element_count({count, dim}, &n_dir))
    return Status::invalid_argument;
  if (count > 0 && !directions) return Status::invalid_argument;
  const std::size_t bytes = total * sizeof(float);
  if (total > 0 && (!vectors || !out)) return Status::invalid_argument;
  if ((out != vectors && bytes_overlap(out, bytes, vectors, bytes)) ||
      bytes_overlap(out, bytes, directions, n_dir * sizeof(float)))
    return Status::invalid_argument;
  try {
    std::vector<double> basis(n_dir);
    std::size_t r = 0;
    if (Status st = orthonormalize(directions, count, dim, basis.data(), &r); st != Status::ok) return st;
    if (rank) *rank = r;
    if (total == 0) return Status::ok;
    // U [r, dim] and U^T [dim, r] in float32: the two products' B operands.
    AlignedVector<float> u(r * dim), ut(r * dim);
    for (std::size_t j = 0; j < r; ++j)
      for (std::size_t d = 0; d < dim; ++d) ut[d * r + j] = u[j * dim + d] = static_cast<float>(basis[j * dim + d]);
    const std::size_t blocks = (n + kRowBlock - 1) / kRowBlock;
    const std::size_t slots = slots_for(blocks, 1);
    struct Scratch {
      AlignedVector<float> coefficients, reconstruction;
    };
    std::vector<Scratch> scratch(slots);
    for (Scratch& s : scratch) {
      s.coefficients.resize(kRowBlock * r);
      s.reconstruction.resize(r > 0 ? kRowBlock * dim : 0);
    }
    std::atomic<bool> failed{false};
    auto body = [&](std::size_t begin, std::size_t end, std::size_t slot) {
      float* coefficients = scratch[slot].coefficients.data();
      float* reconstruction = scratch[slot].reconstruction.data();
      for (std::size_t blk = begin; blk < end; ++blk) {
        const std::size_t i0 = blk * kRowBlock, rows = std::min(kRowBlock, n - i0);
        const float* x = vectors + i0 * dim;
        float* o = out + i0 * dim;
        if (r > 0) {
          if (matmul(x, dim, ut.data(), r, false, nullptr, coefficients, r, rows, dim, r, false) != Status::ok ||
              matmul(coefficients, r, u.data(), dim, false, nullptr, reconstruction, dim, rows, r, dim, false) !=
                  Status::ok) {
            failed = true;  // cannot happen: the arguments were checked above
            return;
          }
          for (std::size_t i = 0; i < rows * dim; ++i) o[i] = x[i] - reconstruction[i];
        } else if (o != x) {
          std::memcpy(o, x, rows * dim * sizeof(float));
        }
        if (normalize_output)
          for (std::size_t i = 0; i < rows; ++i) detail::normalize_row(o + i * dim, dim);
      }
    };
    if (Status st = parallel_for(blocks, 1, body, slots); st != Status::ok) return st;
    return failed ? Status::internal : Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::postprocess
