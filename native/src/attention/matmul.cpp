// Threaded matrix products for the pooling heads: (row block, column panel) units over the FDE gemm kernels.
#include "matmul.h"

#include <algorithm>
#include <vector>

#include "../fde/gemm.h"
#include "tessera/runtime.h"

namespace tessera::attention::detail {
namespace {

constexpr std::size_t kPanel = 64;       // columns per unit: four zmm (or eight ymm) of accumulators wide
constexpr std::size_t kRowBlock = 128;   // rows per unit: a packed panel is reused this many times

}  // namespace

Status matmul(const float* a, std::size_t lda, const float* b, std::size_t ldb, bool b_transposed, const float* bias,
              float* c, std::size_t ldc, std::size_t m, std::size_t k, std::size_t n, bool threaded) noexcept {
  if (m == 0 || n == 0) return Status::ok;
  if (!a || !b || !c) return Status::invalid_argument;
  const fde::detail::GemmFn gemm = fde::detail::gemm(active_simd_level());
  const std::size_t row_blocks = (m + kRowBlock - 1) / kRowBlock, panels = (n + kPanel - 1) / kPanel;
  const std::size_t units = row_blocks * panels;
  auto run = [&](std::size_t u, std::vector<float>& pack) {
    const std::size_t panel = u % panels, block = u / panels;
    const std::size_t j0 = panel * kPanel, cols = std::min(kPanel, n - j0);
    const std::size_t i0 = block * kRowBlock, rows = std::min(kRowBlock, m - i0);
    const float* bp = b + j0;
    std::size_t ld = ldb;
    if (b_transposed) {
      // The panel's columns are rows j0 .. j0 + cols of the [n, k] matrix: copy them transposed, [k, cols].
      for (std::size_t jj = 0; jj < cols; ++jj) {
        const float* src = b + (j0 + jj) * ldb;
        for (std::size_t kk = 0; kk < k; ++kk) pack[kk * kPanel + jj] = src[kk];
      }
      bp = pack.data(), ld = kPanel;
    }
    float* cp = c + i0 * ldc + j0;
    gemm(a + i0 * lda, lda, bp, ld, cp, ldc, rows, k, cols);
    if (bias)
      for (std::size_t i = 0; i < rows; ++i)
        for (std::size_t jj = 0; jj < cols; ++jj) cp[i * ldc + jj] += bias[j0 + jj];
  };
  try {
    const std::size_t pack_size = b_transposed ? k * kPanel : 0;
    if (!threaded || units == 1) {
      std::vector<float> pack(pack_size);
      for (std::size_t u = 0; u < units; ++u) run(u, pack);
      return Status::ok;
    }
    const std::size_t slots = slots_for(units, 1);
    std::vector<std::vector<float>> packs(slots, std::vector<float>(pack_size));
    auto body = [&](std::size_t begin, std::size_t end, std::size_t slot) {
      for (std::size_t u = begin; u < end; ++u) run(u, packs[slot]);
    };
    return parallel_for(units, 1, body, slots);
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::attention::detail
