// Relative representations (Moschella et al., ICLR 2023): cosines of each vector with a fixed set of anchors, as one
// matrix product of the vectors with the normalised, transposed anchors, each output row then scaled by 1 / |x|.
#include <algorithm>
#include <atomic>
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

Status normalize_rows(const float* x, std::size_t n, std::size_t dim, float* out) noexcept {
  std::size_t total = 0;
  if (dim == 0 || !element_count({n, dim}, &total)) return Status::invalid_argument;
  if (total == 0) return Status::ok;
  if (!x || !out) return Status::invalid_argument;
  if (out != x && bytes_overlap(out, total * sizeof(float), x, total * sizeof(float))) return Status::invalid_argument;
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i)
      detail::scale_row(x + i * dim, detail::inverse_norm(x + i * dim, dim), dim, out + i * dim);
  };
  return parallel_for(n, grain_for_bytes(dim * sizeof(float)), body);
}

Status relative_representation(const float* vectors, std::size_t n, const float* anchors, std::size_t anchor_count,
                               std::size_t dim, bool anchors_normalized, bool normalize_output, float* out) noexcept {
  std::size_t n_in = 0, n_anchors = 0, n_out = 0;
  if (dim == 0 || anchor_count == 0 || !element_count({n, dim}, &n_in) ||
      !element_count({anchor_count, dim}, &n_anchors) || !element_count({n, anchor_count}, &n_out))
    return Status::invalid_argument;
  if (!anchors) return Status::invalid_argument;
  if (n_out == 0) return Status::ok;
  if (!vectors || !out) return Status::invalid_argument;
  if (bytes_overlap(out, n_out * sizeof(float), vectors, n_in * sizeof(float)) ||
      bytes_overlap(out, n_out * sizeof(float), anchors, n_anchors * sizeof(float)))
    return Status::invalid_argument;
  const std::size_t m = anchor_count;
  try {
    // The anchors normalised (unless they already are) and transposed, [dim, m]: the product's B operand.
    AlignedVector<float> at(n_anchors);
    for (std::size_t a = 0; a < m; ++a) {
      const float* row = anchors + a * dim;
      const double inverse = anchors_normalized ? 1.0 : detail::inverse_norm(row, dim);
      for (std::size_t d = 0; d < dim; ++d)
        at[d * m + a] = anchors_normalized ? row[d] : static_cast<float>(row[d] * inverse);
    }
    const std::size_t blocks = (n + kRowBlock - 1) / kRowBlock;
    std::atomic<bool> failed{false};
    auto body = [&](std::size_t begin, std::size_t end) {
      for (std::size_t blk = begin; blk < end; ++blk) {
        const std::size_t i0 = blk * kRowBlock, rows = std::min(kRowBlock, n - i0);
        float* o = out + i0 * m;
        // Blocks run one per chunk, so the product stays on this thread.
        if (matmul(vectors + i0 * dim, dim, at.data(), m, false, nullptr, o, m, rows, dim, m, false) != Status::ok) {
          failed = true;  // cannot happen: the arguments were checked above
          return;
        }
        for (std::size_t i = 0; i < rows; ++i) {
          detail::scale_row(o + i * m, detail::inverse_norm(vectors + (i0 + i) * dim, dim), m, o + i * m);
          if (normalize_output) detail::normalize_row(o + i * m, m);
        }
      }
    };
    if (Status st = parallel_for(blocks, 1, body); st != Status::ok) return st;
    return failed ? Status::internal : Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::postprocess
