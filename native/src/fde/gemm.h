// A small float32 matrix product for the FDE encoder (SimHash sketches and inner projections), one implementation
// per instruction-set level. Internal to the core.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tessera/runtime.h"

namespace tessera::fde::detail {

// C = A B: A is m x k (row stride lda), B is k x n (ldb), C is m x n (ldc), all row-major; C is overwritten.
// Each element is a fused multiply-add chain over k in order (the scalar path rounds each product), so results
// are identical for any thread count.
using GemmFn = void (*)(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
                        std::size_t m, std::size_t k, std::size_t n);

GemmFn gemm(SimdLevel level) noexcept;

// dst[i] += src[i] for i < n: one rounding per element, the same at every level.
using AddFn = void (*)(float* dst, const float* src, std::size_t n);
AddFn add_rows(SimdLevel level) noexcept;

// dst[i] = src[i] for i < n, with stores that bypass the cache where the level has them (the destination is written
// once and not read back soon); store_fence() orders them before anything the thread does next.
using StreamFn = void (*)(float* dst, const float* src, std::size_t n);
StreamFn stream_rows(SimdLevel level) noexcept;
void store_fence() noexcept;

// Centroids: each row g < rows of block (p floats) whose count[g] exceeds 1 is multiplied by 1 / count[g].
using CentroidFn = void (*)(float* block, const std::uint32_t* count, std::size_t rows, std::size_t p);
CentroidFn centroids(SimdLevel level) noexcept;

// Count-sketch of transposed tokens, with the input coordinates grouped by the output coordinate they go to:
// yt row c (width floats, width a multiple of 16) = sum over e in [start[c], start[c + 1]) of sign[e] * xt row
// coordinate[e], in that order (ascending coordinates), so the sums are the same at every level.
using SketchFn = void (*)(float* yt, const float* xt, const std::uint32_t* start, const std::uint32_t* coordinate,
                          const float* sign, std::size_t p, std::size_t width);
SketchFn sketch_columns(SimdLevel level) noexcept;

// Partition ids from the SimHash values of k consecutive rows (row j holds bit j, the most significant first,
// for `width` tokens; width a multiple of 16): the integer whose Gray code is the sign pattern (bit = value > 0).
using PartitionFn = void (*)(const float* sketch, std::size_t k, std::size_t width, std::uint32_t* partition);
PartitionFn partitions(SimdLevel level) noexcept;

// For each token t < n, in order of t: block row partition[t] (p floats) += column t of yt (p rows of `width`
// floats; width a multiple of 16, at least n).
using AccumulateFn = void (*)(float* block, const float* yt, std::size_t width, const std::uint32_t* partition,
                              std::size_t n, std::size_t p);
AccumulateFn accumulate_rows(SimdLevel level) noexcept;

// dst (cols x rows, row stride ldd) = the transpose of src (rows x cols, row stride lds).
using TransposeFn = void (*)(const float* src, std::size_t rows, std::size_t cols, std::size_t lds, float* dst,
                             std::size_t ldd);
TransposeFn transpose(SimdLevel level) noexcept;

void gemm_scalar(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
                 std::size_t m, std::size_t k, std::size_t n);
#if defined(__x86_64__) || defined(_M_X64)
void gemm_avx2(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
               std::size_t m, std::size_t k, std::size_t n);
void gemm_avx512(const float* a, std::size_t lda, const float* b, std::size_t ldb, float* c, std::size_t ldc,
                 std::size_t m, std::size_t k, std::size_t n);
#endif

}  // namespace tessera::fde::detail
