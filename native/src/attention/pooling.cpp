// Token pooling: masked mean, first (CLS) or last valid token, optionally L2-normalised; threaded over rows.
#include <algorithm>
#include <vector>

#include "pooling_util.h"
#include "tessera/memory.h"
#include "tessera/pooling.h"
#include "tessera/runtime.h"

namespace tessera::pooling {

Status pool_tokens(const float* hidden, std::size_t batch, std::size_t seq, std::size_t dim, Mode mode,
                   const TokenMask& mask, bool normalize, float* out) noexcept {
  std::size_t n_in = 0, n_out = 0;
  if (dim == 0 || !element_count({batch, seq, dim}, &n_in) || !element_count({batch, dim}, &n_out))
    return Status::invalid_argument;
  if (mode != Mode::mean && mode != Mode::cls && mode != Mode::last) return Status::invalid_argument;
  if (n_out == 0) return Status::ok;
  if (!out || (n_in > 0 && !hidden)) return Status::invalid_argument;
  if (!detail::mask_valid(mask, batch, seq)) return Status::invalid_argument;
  if (bytes_overlap(out, n_out * sizeof(float), hidden, n_in * sizeof(float))) return Status::invalid_argument;
  auto body = [&](std::size_t begin, std::size_t end) {
    std::vector<double> sum(mode == Mode::mean ? dim : 0);
    for (std::size_t b = begin; b < end; ++b) {
      float* dst = out + b * dim;
      const float* rows = hidden + b * seq * dim;
      std::fill(dst, dst + dim, 0.0f);
      if (mode == Mode::mean) {
        std::fill(sum.begin(), sum.end(), 0.0);
        std::size_t count = 0;
        for (std::size_t t = 0; t < seq; ++t) {
          if (!detail::is_valid(mask, seq, b, t)) continue;
          ++count;
          const float* x = rows + t * dim;
          for (std::size_t d = 0; d < dim; ++d) sum[d] += x[d];
        }
        if (count > 0)
          for (std::size_t d = 0; d < dim; ++d) dst[d] = static_cast<float>(sum[d] / static_cast<double>(count));
      } else {
        std::size_t pick = seq;  // none
        for (std::size_t i = 0; i < seq; ++i) {
          const std::size_t t = mode == Mode::cls ? i : seq - 1 - i;
          if (detail::is_valid(mask, seq, b, t)) {
            pick = t;
            break;
          }
        }
        if (pick < seq) std::copy(rows + pick * dim, rows + (pick + 1) * dim, dst);
      }
      if (normalize) detail::l2_normalize(dst, dim);
    }
  };
  try {
    return parallel_for(batch, std::max<std::size_t>(1, grain_for_bytes(std::max<std::size_t>(1, seq) * dim * 4)), body);
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::pooling
