// A blocked, threaded float32 matrix product for the pooling heads' linear layers, on the FDE module's register-tiled
// kernels (src/fde/gemm.h). Internal to the core.
#pragma once

#include <cstddef>

#include "tessera/status.h"

namespace tessera::attention::detail {

// C[m, n] = A[m, k] · B (+ bias[n] on every row), all row-major with row strides lda, ldb, ldc. B is [k, n] (a
// TensorFlow Dense kernel, a value matrix) or, with b_transposed, given as its transpose [n, k] (torch.nn.Linear's
// weight, a key matrix). C is overwritten and must not overlap A, B or bias.
//
// C is cut into blocks of rows and panels of columns; a transposed B panel is first packed into a [k, panel] copy.
// Each element is one multiply-add chain over k in order (fused on the SIMD levels), so the result is the same for
// any thread count.
// threaded = false runs on the calling thread (for callers already inside a parallel_for).
Status matmul(const float* a, std::size_t lda, const float* b, std::size_t ldb, bool b_transposed, const float* bias,
              float* c, std::size_t ldc, std::size_t m, std::size_t k, std::size_t n, bool threaded) noexcept;

}  // namespace tessera::attention::detail
