// Exact Chamfer (MaxSim) scores: for each document, the sum over query tokens of the largest dot product with any
// document token. Blocked like a matrix product, without ever storing the score matrix: the query is transposed
// once (dim x query tokens), then each group of document tokens is broadcast against whole columns of it, so the
// running maximum over document tokens is an element-wise max of registers, and the only horizontal reduction is
// the final sum over query tokens.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "../common/simd.h"
#include "tessera/fde.h"
#include "tessera/runtime.h"

#if TESSERA_X86
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tessera::fde {
namespace {

// The query transposed into dim rows of `stride` floats (query tokens padded with zeros); the x86 kernels' layout.
[[maybe_unused]] std::vector<float> transpose_query(const float* q, std::size_t nq, std::size_t dim, std::size_t stride) {
  std::vector<float> t(dim * stride, 0.0f);
  for (std::size_t a = 0; a < nq; ++a)
    for (std::size_t i = 0; i < dim; ++i) t[i * stride + a] = q[a * dim + i];
  return t;
}

float chamfer_scalar(const float* q, std::size_t nq, const float* doc, std::size_t n, std::size_t dim) {
  float total = 0;
  for (std::size_t a = 0; a < nq; ++a) {
    float best = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < n; ++j) {
      float s = 0;
      for (std::size_t i = 0; i < dim; ++i) s += q[a * dim + i] * doc[j * dim + i];
      best = std::max(best, s);
    }
    total += best;
  }
  return total;
}

#if TESSERA_X86
constexpr std::size_t kLanes512 = 16, kBlock512 = 32;  // query tokens per block: two zmm columns

// Running maxima of NJ document tokens against a block of 32 query tokens (two zmm of the transposed query).
template <int NJ>
TESSERA_TARGET_AVX512 void tokens_avx512(const float* qt, std::size_t stride, const float* doc, std::size_t dim,
                                         __m512& max0, __m512& max1, const float* next, std::size_t next_bytes) {
  // The next group's tokens are one contiguous run: ask for it now, since each token row alone is too short a
  // stream for the hardware prefetcher to pick up in time.
  for (std::size_t b = 0; b < next_bytes; b += 64) _mm_prefetch(reinterpret_cast<const char*>(next) + b, _MM_HINT_T0);
  __m512 a0[NJ], a1[NJ];
#pragma GCC unroll 8
  for (int j = 0; j < NJ; ++j) a0[j] = a1[j] = _mm512_setzero_ps();
  for (std::size_t i = 0; i < dim; ++i) {
    const __m512 q0 = _mm512_loadu_ps(qt + i * stride), q1 = _mm512_loadu_ps(qt + i * stride + kLanes512);
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j) {
      const __m512 d = _mm512_set1_ps(doc[j * dim + i]);
      a0[j] = _mm512_fmadd_ps(d, q0, a0[j]);
      a1[j] = _mm512_fmadd_ps(d, q1, a1[j]);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < NJ; ++j) {
    max0 = _mm512_max_ps(max0, a0[j]);
    max1 = _mm512_max_ps(max1, a1[j]);
  }
}

TESSERA_TARGET_AVX512 float chamfer_avx512(const float* qt, std::size_t stride, std::size_t nq, const float* doc,
                                           std::size_t n, std::size_t dim, const float* next_doc, std::size_t next_n) {
  float total = 0;
  for (std::size_t b = 0; b < nq; b += kBlock512) {
    __m512 max0 = _mm512_set1_ps(-INFINITY), max1 = max0;
    std::size_t j = 0;
    // While a group is computed, the next one is prefetched: the next group of this document, or the first of the
    // next document (in the last query block, once this document is in cache).
    const bool last_block = b + kBlock512 >= nq;
    auto next = [&](std::size_t from) -> std::pair<const float*, std::size_t> {
      if (b == 0 && from < n) return {doc + from * dim, (std::min(n, from + 8) - from) * dim * sizeof(float)};
      if (last_block && from >= n && next_doc) return {next_doc, std::min<std::size_t>(next_n, 8) * dim * sizeof(float)};
      return {doc, 0};
    };
    for (; j + 8 <= n; j += 8) {
      const auto [p, bytes] = next(j + 8);
      tokens_avx512<8>(qt + b, stride, doc + j * dim, dim, max0, max1, p, bytes);
    }
    const auto [p, bytes] = next(n);
    switch (n - j) {
      case 7: tokens_avx512<7>(qt + b, stride, doc + j * dim, dim, max0, max1, p, bytes); break;
      case 6: tokens_avx512<6>(qt + b, stride, doc + j * dim, dim, max0, max1, p, bytes); break;
      case 5: tokens_avx512<5>(qt + b, stride, doc + j * dim, dim, max0, max1, p, bytes); break;
      case 4: tokens_avx512<4>(qt + b, stride, doc + j * dim, dim, max0, max1, p, bytes); break;
      case 3: tokens_avx512<3>(qt + b, stride, doc + j * dim, dim, max0, max1, p, bytes); break;
      case 2: tokens_avx512<2>(qt + b, stride, doc + j * dim, dim, max0, max1, p, bytes); break;
      case 1: tokens_avx512<1>(qt + b, stride, doc + j * dim, dim, max0, max1, p, bytes); break;
      default: break;
    }
    // Padded query lanes hold max(0, ...) of zero columns: leave them out of the sum.
    const std::size_t valid = std::min(kBlock512, nq - b);
    const __mmask16 m0 = valid >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << valid) - 1);
    const __mmask16 m1 = valid <= 16 ? __mmask16(0) : valid >= 32 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (valid - 16)) - 1);
    total += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_maskz_mov_ps(m0, max0), _mm512_maskz_mov_ps(m1, max1)));
  }
  return total;
}

TESSERA_TARGET_AVX512 float dot_avx512(const float* a, const float* b, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

constexpr std::size_t kBlock256 = 16;

template <int NJ>
TESSERA_TARGET_AVX2 void tokens_avx2(const float* qt, std::size_t stride, const float* doc, std::size_t dim,
                                     __m256& max0, __m256& max1) {
  __m256 a0[NJ], a1[NJ];
#pragma GCC unroll 6
  for (int j = 0; j < NJ; ++j) a0[j] = a1[j] = _mm256_setzero_ps();
  for (std::size_t i = 0; i < dim; ++i) {
    const __m256 q0 = _mm256_loadu_ps(qt + i * stride), q1 = _mm256_loadu_ps(qt + i * stride + 8);
#pragma GCC unroll 6
    for (int j = 0; j < NJ; ++j) {
      const __m256 d = _mm256_broadcast_ss(doc + j * dim + i);
      a0[j] = _mm256_fmadd_ps(d, q0, a0[j]);
      a1[j] = _mm256_fmadd_ps(d, q1, a1[j]);
    }
  }
#pragma GCC unroll 6
  for (int j = 0; j < NJ; ++j) {
    max0 = _mm256_max_ps(max0, a0[j]);
    max1 = _mm256_max_ps(max1, a1[j]);
  }
}

TESSERA_TARGET_AVX2 float chamfer_avx2(const float* qt, std::size_t stride, std::size_t nq, const float* doc,
                                       std::size_t n, std::size_t dim) {
  float total = 0;
  for (std::size_t b = 0; b < nq; b += kBlock256) {
    __m256 max0 = _mm256_set1_ps(-INFINITY), max1 = max0;
    std::size_t j = 0;
    for (; j + 6 <= n; j += 6) tokens_avx2<6>(qt + b, stride, doc + j * dim, dim, max0, max1);
    switch (n - j) {
      case 5: tokens_avx2<5>(qt + b, stride, doc + j * dim, dim, max0, max1); break;
      case 4: tokens_avx2<4>(qt + b, stride, doc + j * dim, dim, max0, max1); break;
      case 3: tokens_avx2<3>(qt + b, stride, doc + j * dim, dim, max0, max1); break;
      case 2: tokens_avx2<2>(qt + b, stride, doc + j * dim, dim, max0, max1); break;
      case 1: tokens_avx2<1>(qt + b, stride, doc + j * dim, dim, max0, max1); break;
      default: break;
    }
    alignas(32) float lanes[16];
    _mm256_store_ps(lanes, max0);
    _mm256_store_ps(lanes + 8, max1);
    const std::size_t valid = std::min(kBlock256, nq - b);
    for (std::size_t l = 0; l < valid; ++l) total += lanes[l];
  }
  return total;
}
#endif

}  // namespace

Status chamfer_scores(const float* query, std::size_t query_tokens, const float* docs, const std::int32_t* lengths,
                      std::size_t count, std::size_t dim, float* out) noexcept {
  if (dim == 0 || query_tokens == 0) return Status::invalid_argument;
  if (count == 0) return Status::ok;
  if (!docs || !lengths) return Status::invalid_argument;
  try {
    std::vector<const float*> starts(count);
    std::size_t offset = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (lengths[i] <= 0) return Status::invalid_argument;  // no tokens: no maximum
      starts[i] = docs + offset * dim;
      offset += static_cast<std::size_t>(lengths[i]);
    }
    return chamfer_scores(query, query_tokens, starts.data(), lengths, count, dim, out);
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status chamfer_scores(const float* query, std::size_t query_tokens, const float* const* docs,
                      const std::int32_t* lengths, std::size_t count, std::size_t dim, float* out) noexcept {
  if (dim == 0 || query_tokens == 0) return Status::invalid_argument;
  if (count == 0) return Status::ok;
  if (!query || !docs || !lengths || !out) return Status::invalid_argument;
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (lengths[i] <= 0 || !docs[i]) return Status::invalid_argument;
    total += static_cast<std::size_t>(lengths[i]);
  }
  try {
    [[maybe_unused]] const SimdLevel level = active_simd_level();
    std::vector<float> qt;
    [[maybe_unused]] std::size_t stride = 0;
#if TESSERA_X86
    const bool wide = level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq;
    const bool avx2 = level == SimdLevel::avx2;
    if (wide || avx2) {
      const std::size_t block = wide ? kBlock512 : kBlock256;
      stride = (query_tokens + block - 1) / block * block;
      qt = transpose_query(query, query_tokens, dim, stride);
    }
#endif
    auto body = [&](std::size_t begin, std::size_t end) {
      for (std::size_t d = begin; d < end; ++d) {
        const float* doc = docs[d];
        const auto n = static_cast<std::size_t>(lengths[d]);
#if TESSERA_X86
        if (wide) {
          const bool more = d + 1 < end;
          out[d] = chamfer_avx512(qt.data(), stride, query_tokens, doc, n, dim, more ? docs[d + 1] : nullptr,
                                  more ? static_cast<std::size_t>(lengths[d + 1]) : 0);
          continue;
        }
        if (avx2) { out[d] = chamfer_avx2(qt.data(), stride, query_tokens, doc, n, dim); continue; }
#endif
        out[d] = chamfer_scalar(query, query_tokens, doc, n, dim);
      }
    };
    // About 64 KiB of document tokens per chunk.
    const std::size_t average = std::max<std::size_t>(1, total / count);
    return parallel_for(count, grain_for_bytes(average * dim * sizeof(float)), body);
  } catch (...) {
    return Status::out_of_memory;
  }
}

float dot(const float* a, const float* b, std::size_t n) noexcept {
#if TESSERA_X86
  const SimdLevel level = active_simd_level();
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return dot_avx512(a, b, n);
#endif
  float acc[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; ++l) acc[l] += a[i + l] * b[i + l];
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

}  // namespace tessera::fde
