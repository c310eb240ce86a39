// SDC and ADC top-k over residual codes (BEBR's symmetric distance calculation, and its asymmetric counterpart).
//
// SDC: with query planes a_t, doc planes c_u (±1 vectors, dim long) and scales alpha_q, alpha_d,
//   <q^, d^> = alpha_q alpha_d sum_{t,u} 2^-(t+u) <a_t, c_u>,   <a_t, c_u> = dim - 2 popcount(a_t xor c_u).
// The sum is an integer once scaled by 4^(planes-1), so the score is exact up to its final rounding to float32.
// The popcounts come from the Hamming kernels: every query plane against doc plane u is one Hamming tile.
//
// ADC: <q, d^> = alpha_d sum_u 2^-u (2 S_u - sum_i q_i), where S_u sums the query over the dims set in plane u.
// For L2 search both become -|q - d^|^2 = 2 <q, d^> - |d^|^2 - |q|^2, with |d^|^2 given per document.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "../common/simd.h"
#include "kernels.h"
#include "scan.h"
#include "tessera/binary.h"

#if TESSERA_X86
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tessera::binary {
namespace {

bool valid(const ScoreQuery& q) {
  if (q.dim == 0 || q.planes == 0 || q.planes > kMaxPlanes || q.k == 0) return false;
  if (q.n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) return false;
  const std::size_t row = residual_row_bytes(q.dim, q.planes);
  return q.n <= std::numeric_limits<std::size_t>::max() / row && q.nq <= std::numeric_limits<std::size_t>::max() / row;
}

float alpha_of(const std::uint8_t* row, std::size_t dim, std::size_t planes) {
  float a;
  std::memcpy(&a, row + planes * code_bytes(dim), sizeof a);
  return a;
}

// Scores become ascending keys for the scan: -score, with NaN last.
inline float key_of(double score) {
  const auto f = static_cast<float>(score);
  return std::isnan(f) ? std::numeric_limits<float>::infinity() : -f;
}

class AlignedBuffer {
 public:
  void* get(std::size_t bytes) {
    if (bytes > size_) {
      size_ = (bytes + 63) / 64 * 64;
      memory_.reset(static_cast<std::uint8_t*>(::operator new[](size_, std::align_val_t{64})));
    }
    return memory_.get();
  }

 private:
  struct Delete {
    void operator()(std::uint8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<std::uint8_t[], Delete> memory_;
  std::size_t size_ = 0;
};

struct SdcScorer {
  detail::HammingKernel kernel;
  const ScoreQuery& q;
  std::size_t planes, plane_bytes, row_bytes, words;
  std::vector<std::uint64_t> query_planes;  // nq x planes, padded to words
  std::vector<float> query_alpha;
  std::vector<double> query_norm;           // squared, for L2 scores
  std::size_t tile_queries;
  std::size_t bytes_per_code;
  std::vector<AlignedBuffer> scratch;       // per slot: one transposed tile per doc plane
  std::size_t scratch_per_plane = 0;
  double weight[kMaxPlanes][kMaxPlanes];    // 2^(2(planes-1) - t - u)
  double unscale;                           // 4^-(planes-1)

  SdcScorer(const std::uint8_t* query_codes, const ScoreQuery& sq)
      : kernel(detail::hamming_kernel(active_simd_level())), q(sq), planes(sq.planes), plane_bytes(code_bytes(sq.dim)),
        row_bytes(residual_row_bytes(sq.dim, sq.planes)), words(detail::query_words(plane_bytes)),
        query_planes(sq.nq * sq.planes * detail::query_words(plane_bytes), 0), query_alpha(sq.nq), query_norm(sq.nq),
        tile_queries(std::max<std::size_t>(1, kernel.tile_queries / sq.planes)), bytes_per_code(row_bytes) {
    const std::uint8_t mask = last_byte_mask(sq.dim, BitOrder::msb);
    for (std::size_t j = 0; j < sq.nq; ++j) {
      const std::uint8_t* row = query_codes + j * row_bytes;
      for (std::size_t t = 0; t < planes; ++t) {
        auto* dst = reinterpret_cast<std::uint8_t*>(query_planes.data() + (j * planes + t) * words);
        std::memcpy(dst, row + t * plane_bytes, plane_bytes);
        dst[plane_bytes - 1] &= mask;
      }
      query_alpha[j] = alpha_of(row, sq.dim, planes);
      query_norm[j] = residual_squared_norm(row, sq.dim, planes);
    }
    for (std::size_t t = 0; t < planes; ++t)
      for (std::size_t u = 0; u < planes; ++u) weight[t][u] = std::ldexp(1.0, static_cast<int>(2 * (planes - 1) - t - u));
    unscale = std::ldexp(1.0, -2 * static_cast<int>(planes - 1));
  }

  void reserve_slots(std::size_t slots) {
    scratch.resize(slots);
    scratch_per_plane = (kernel.scratch_bytes(plane_bytes, detail::kCodeTile) + 63) / 64 * 64;
  }

  void score(std::size_t slot, std::size_t q0, std::size_t nt, std::size_t c0, std::size_t nc, bool first, float* keys) {
    constexpr std::size_t kDistances = detail::kTileQueriesMax * detail::kCodeTile;  // per doc plane
    // Per slot: the transposed tile of each doc plane, then the plane's distances (kept off the thread's stack).
    auto* base = static_cast<std::uint8_t*>(scratch[slot].get(planes * (scratch_per_plane + kDistances * 4)));
    auto* distances = reinterpret_cast<std::uint32_t*>(base + planes * scratch_per_plane);
    const std::uint64_t* qp[detail::kTileQueriesMax];
    for (std::size_t i = 0; i < nt; ++i)
      for (std::size_t t = 0; t < planes; ++t) qp[i * planes + t] = query_planes.data() + ((q0 + i) * planes + t) * words;
    const std::uint8_t mask = last_byte_mask(q.dim, BitOrder::msb);
    for (std::size_t u = 0; u < planes; ++u)
      kernel.tile(qp, nt * planes, q.codes + c0 * row_bytes + u * plane_bytes, row_bytes, nc, plane_bytes, mask,
                  base + u * scratch_per_plane, !first, distances + u * kDistances);
    const auto dim = static_cast<double>(q.dim);
    for (std::size_t j = 0; j < nc; ++j) {
      const double ad = alpha_of(q.codes + (c0 + j) * row_bytes, q.dim, planes) * unscale;
      for (std::size_t i = 0; i < nt; ++i) {
        double integer = 0;  // exact: at most 16 terms, each an integer below 2^7 * dim
        for (std::size_t t = 0; t < planes; ++t)
          for (std::size_t u = 0; u < planes; ++u)
            integer += weight[t][u] * (dim - 2.0 * distances[u * kDistances + (i * planes + t) * nc + j]);
        const double ip = query_alpha[q0 + i] * ad * integer;
        keys[i * nc + j] = key_of(q.doc_norms ? 2 * ip - q.doc_norms[c0 + j] - query_norm[q0 + i] : ip);
      }
    }
  }
};

// ---- ADC -------------------------------------------------------------------------------------------------------

// The query in the order a plane's bits come out of a little-endian 16-bit load of msb-first bytes: lane k of group
// g holds dim 16g + 7 - k (k < 8) or 16g + 23 - k (k >= 8). Padded with zeros to a multiple of 16.
std::vector<float> bit_order_query(const float* x, std::size_t dim) {
  std::vector<float> out((dim + 15) / 16 * 16, 0.0f);
  for (std::size_t i = 0; i < dim; ++i) {
    const std::size_t byte = i / 8, bit = 7 - i % 8;  // msb: dim i is bit (7 - i % 8) of byte i / 8
    out[byte * 8 + bit] = x[i];
  }
  return out;
}

// S = sum of q over the set bits of one plane. Scalar: bit by bit over the reordered query.
double set_sum_scalar(const float* ordered, const std::uint8_t* plane, std::size_t plane_bytes) {
  double s = 0;
  for (std::size_t b = 0; b < plane_bytes; ++b)
    for (unsigned bits = plane[b]; bits; bits &= bits - 1) s += ordered[b * 8 + static_cast<std::size_t>(__builtin_ctz(bits))];
  return s;
}

#if TESSERA_X86
TESSERA_TARGET_AVX512 double set_sum_avx512(const float* ordered, const std::uint8_t* plane, std::size_t plane_bytes) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  std::size_t b = 0;
  for (; b + 4 <= plane_bytes; b += 4) {
    std::uint32_t m;
    std::memcpy(&m, plane + b, 4);
    acc0 = _mm512_mask_add_ps(acc0, static_cast<__mmask16>(m), acc0, _mm512_loadu_ps(ordered + b * 8));
    acc1 = _mm512_mask_add_ps(acc1, static_cast<__mmask16>(m >> 16), acc1, _mm512_loadu_ps(ordered + b * 8 + 16));
  }
  for (; b < plane_bytes; b += 2) {  // the last 1 to 3 bytes, without reading past the plane
    const std::uint32_t m = plane[b] | (b + 1 < plane_bytes ? static_cast<std::uint32_t>(plane[b + 1]) << 8 : 0u);
    acc0 = _mm512_mask_add_ps(acc0, static_cast<__mmask16>(m), acc0, _mm512_loadu_ps(ordered + b * 8));
  }
  return static_cast<double>(_mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)));
}
#endif

using SetSumFn = double (*)(const float*, const std::uint8_t*, std::size_t);

SetSumFn set_sum_for(SimdLevel level) {
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return set_sum_avx512;
#endif
  (void)level;
  return set_sum_scalar;
}

struct AdcScorer {
  const ScoreQuery& q;
  std::size_t planes, plane_bytes, row_bytes;
  std::vector<std::vector<float>> ordered;  // per query, padded to a multiple of 16 (+16 for the tail loads)
  std::vector<double> query_sum, query_square;
  SetSumFn set_sum;
  std::size_t tile_queries = 4;
  std::size_t bytes_per_code;

  AdcScorer(const float* queries, const ScoreQuery& sq)
      : q(sq), planes(sq.planes), plane_bytes(code_bytes(sq.dim)), row_bytes(residual_row_bytes(sq.dim, sq.planes)),
        ordered(sq.nq), query_sum(sq.nq), query_square(sq.nq), set_sum(set_sum_for(active_simd_level())),
        bytes_per_code(row_bytes) {
    for (std::size_t j = 0; j < sq.nq; ++j) {
      ordered[j] = bit_order_query(queries + j * sq.dim, sq.dim);
      ordered[j].resize(ordered[j].size() + 16, 0.0f);
      double s = 0, s2 = 0;
      for (std::size_t i = 0; i < sq.dim; ++i) {
        s += queries[j * sq.dim + i];
        s2 += static_cast<double>(queries[j * sq.dim + i]) * queries[j * sq.dim + i];
      }
      query_sum[j] = s;
      query_square[j] = s2;
    }
  }

  void reserve_slots(std::size_t) {}

  void score(std::size_t, std::size_t q0, std::size_t nt, std::size_t c0, std::size_t nc, bool, float* keys) {
    for (std::size_t j = 0; j < nc; ++j) {
      const std::uint8_t* row = q.codes + (c0 + j) * row_bytes;
      const double ad = alpha_of(row, q.dim, planes);
      for (std::size_t i = 0; i < nt; ++i) {
        double s = 0;
        for (std::size_t u = 0; u < planes; ++u)
          s += std::ldexp(2.0 * set_sum(ordered[q0 + i].data(), row + u * plane_bytes, plane_bytes) - query_sum[q0 + i],
                          -static_cast<int>(u));
        const double ip = ad * s;
        keys[i * nc + j] = key_of(q.doc_norms ? 2 * ip - q.doc_norms[c0 + j] - query_square[q0 + i] : ip);
      }
    }
  }
};

template <class Scorer>
Status run(Scorer& scorer, const ScoreQuery& q, std::int32_t* out_keys, float* out_scores) {
  const std::size_t kk = std::min(q.k, q.n);
  auto write = [&](std::size_t query, std::size_t rank, const detail::Entry<float>& e) {
    out_keys[query * kk + rank] = e.id;
    out_scores[query * kk + rank] = std::isinf(e.key) && e.key > 0 ? std::numeric_limits<float>::quiet_NaN() : -e.key;
  };
  return detail::scan_topk<float>(q.nq, q.n, q.k, q.ids, scorer, write);
}

}  // namespace

double residual_squared_norm(const std::uint8_t* row, std::size_t dim, std::size_t planes) noexcept {
  const std::size_t bytes = code_bytes(dim);
  const std::uint8_t mask = last_byte_mask(dim, BitOrder::msb);
  double sum = 0;  // sum_{t,u} 2^-(t+u) (dim - 2 popcount(s_t xor s_u)), each term exact
  for (std::size_t t = 0; t < planes; ++t)
    for (std::size_t u = 0; u < planes; ++u) {
      const double h = t == u ? 0 : detail::hamming_tail(row + t * bytes, row + u * bytes, 0, bytes, mask);
      sum += std::ldexp(static_cast<double>(dim) - 2 * h, -static_cast<int>(t + u));
    }
  const double alpha = alpha_of(row, dim, planes);
  return alpha * alpha * sum;
}

Status sdc_topk(const std::uint8_t* query_codes, const ScoreQuery& q, std::int32_t* out_keys,
                float* out_scores) noexcept {
  if (!valid(q)) return Status::invalid_argument;
  if (q.nq == 0 || q.n == 0) return Status::ok;
  if (!query_codes || !q.codes || !out_keys || !out_scores) return Status::invalid_argument;
  try {
    SdcScorer scorer(query_codes, q);
    return run(scorer, q, out_keys, out_scores);
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status adc_topk(const float* queries, const ScoreQuery& q, std::int32_t* out_keys, float* out_scores) noexcept {
  if (!valid(q)) return Status::invalid_argument;
  if (q.nq == 0 || q.n == 0) return Status::ok;
  if (!queries || !q.codes || !out_keys || !out_scores) return Status::invalid_argument;
  try {
    AdcScorer scorer(queries, q);
    return run(scorer, q, out_keys, out_scores);
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::binary
