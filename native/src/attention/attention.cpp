// Exact attention: argument checks, the plan, threads over (batch, head, query block); and the LSE merge.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernel.h"
#include "tessera/attention.h"
#include "tessera/memory.h"

namespace tessera::attention {
namespace detail {

void prepare(Scratch& s, const Plan& p) {
  const std::size_t dim = p.shape.head_dim, dim_v = p.shape.head_dim_v;
  const std::size_t vstride = (dim_v + 15) / 16 * 16;  // enough for every level's lane count
  for (Lanes& b : s.blocks) {
    b.qt.resize(dim * kQueryBlock);
    b.o.resize(kQueryBlock * vstride);
    for (auto* lane : {&b.lo, &b.hi, &b.global, &b.position, &b.m, &b.l, &b.alpha}) lane->resize(kQueryBlock);
  }
  s.st.resize(kKeyBlock * kQueryBlock);
  s.kb.resize(kKeyBlock * dim);
  s.vb.resize(kKeyBlock * vstride);
  s.row.resize(std::max(dim, dim_v));
}

UnitRunner unit_runner(SimdLevel level, bool rows) noexcept {
#if defined(__x86_64__) || defined(_M_X64)
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) return rows ? run_rows_unit_avx512 : run_unit_avx512;
  if (level == SimdLevel::avx2) return rows ? run_rows_unit_avx2 : run_unit_avx2;
#endif
  (void)level;
  return rows ? run_rows_unit_scalar : run_unit_scalar;
}

}  // namespace detail

namespace {

// Positions are compared as float32 lanes: exact for indices up to 2^24.
constexpr std::size_t kMaxSequence = std::size_t{1} << 24;

detail::Strides strides(const Shape& s, std::size_t heads, std::size_t seq, std::size_t dim) {
  if (s.layout == Layout::bshd) return {seq * heads * dim, dim, heads * dim};
  return {heads * seq * dim, seq * dim, dim};
}

bool options_valid(const Shape& s, const Options& o) {
  if (!std::isfinite(o.scale) || !std::isfinite(o.temperature) || !(o.temperature > 0)) return false;
  if (!std::isfinite(o.softcap) || o.softcap < 0) return false;
  if (o.global_tokens > 0 && o.window == 0) return false;  // the global branch belongs to a windowed (Λ) mask
  if (o.key_lengths)
    for (std::size_t b = 0; b < s.batch; ++b)
      if (o.key_lengths[b] < 0 || static_cast<std::size_t>(o.key_lengths[b]) > s.seq_k) return false;
  if (o.segments) {
    if (o.segment_count == 0 || o.segments[0] != 0 || static_cast<std::size_t>(o.segments[o.segment_count]) != s.seq_k)
      return false;
    for (std::size_t i = 0; i < o.segment_count; ++i)
      if (o.segments[i + 1] <= o.segments[i]) return false;
  } else if (o.anchor) {
    return false;  // the anchor is a packed row's shared first token
  }
  if (o.alibi_slopes)
    for (std::size_t h = 0; h < s.heads_q; ++h)
      if (!std::isfinite(o.alibi_slopes[h])) return false;
  if (o.bias && ((o.bias_batch != 1 && o.bias_batch != s.batch) || (o.bias_heads != 1 && o.bias_heads != s.heads_q)))
    return false;
  return true;
}

}  // namespace

Status attend(const void* q, const void* k, const void* v, DType dtype, const Shape& s, const Options& o, void* out,
              float* lse) noexcept {
  if (s.batch == 0 || s.heads_q == 0 || s.heads_kv == 0 || s.heads_q % s.heads_kv != 0) return Status::invalid_argument;
  if (s.head_dim == 0 || s.head_dim > kMaxHeadDim || s.head_dim_v == 0 || s.head_dim_v > kMaxHeadDim)
    return Status::invalid_argument;
  if (s.seq_q > kMaxSequence || s.seq_k > kMaxSequence) return Status::invalid_argument;
  std::size_t n_q = 0, n_k = 0, n_v = 0, n_o = 0;
  if (!element_count({s.batch, s.heads_q, s.seq_q, s.head_dim}, &n_q) ||
      !element_count({s.batch, s.heads_kv, s.seq_k, s.head_dim}, &n_k) ||
      !element_count({s.batch, s.heads_kv, s.seq_k, s.head_dim_v}, &n_v) ||
      !element_count({s.batch, s.heads_q, s.seq_q, s.head_dim_v}, &n_o))
    return Status::invalid_argument;
  if (!options_valid(s, o)) return Status::invalid_argument;
  if (n_o == 0) return Status::ok;
  if (!q || !out || (s.seq_k > 0 && (!k || !v))) return Status::invalid_argument;

  detail::Plan p;
  p.q = static_cast<const std::uint8_t*>(q);
  p.k = static_cast<const std::uint8_t*>(k);
  p.v = static_cast<const std::uint8_t*>(v);
  p.out = static_cast<std::uint8_t*>(out);
  p.lse = lse;
  p.dtype = dtype;
  p.element_bytes = dtype == DType::f32 ? 4 : 2;
  p.shape = s;
  p.options = o;
  p.group = s.heads_q / s.heads_kv;
  p.qs = strides(s, s.heads_q, s.seq_q, s.head_dim);
  p.ks = strides(s, s.heads_kv, s.seq_k, s.head_dim);
  p.vs = strides(s, s.heads_kv, s.seq_k, s.head_dim_v);
  p.os = strides(s, s.heads_q, s.seq_q, s.head_dim_v);
  p.transform = o.bias || o.alibi_slopes || o.softcap > 0;
  // With nothing between q.k and the softmax, 1 / temperature folds into the query scale.
  p.q_scale = p.transform ? o.scale : o.scale / o.temperature;
  p.post_scale = p.transform ? 1.0f / o.temperature : 1.0f;
  // As many query blocks per unit as leave at least four units per thread.
  const std::size_t blocks = (s.seq_q + detail::kQueryBlock - 1) / detail::kQueryBlock;
  p.sub_blocks = detail::kSubBlocks;
  while (p.sub_blocks > 1 && s.batch * s.heads_q * ((blocks + p.sub_blocks - 1) / p.sub_blocks) < 4 * thread_count())
    p.sub_blocks /= 2;
  p.query_blocks = (blocks + p.sub_blocks - 1) / p.sub_blocks;
  p.rows = p.group * s.seq_q <= detail::kMaxRows;
  const std::size_t units = p.rows ? s.batch * s.heads_kv : s.batch * s.heads_q * p.query_blocks;
  const detail::UnitRunner run = detail::unit_runner(active_simd_level(), p.rows);
  try {
    const std::size_t slots = slots_for(units, 1);
    std::vector<detail::Scratch> scratch(slots);
    for (auto& sc : scratch) detail::prepare(sc, p);
    auto body = [&](std::size_t begin, std::size_t end, std::size_t slot) {
      for (std::size_t u = begin; u < end; ++u) run(p, u, scratch[slot]);
    };
    return parallel_for(units, 1, body, slots);
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status merge_states(const float* out_a, const float* lse_a, const float* out_b, const float* lse_b,
                    const MergeShape& s, float* out, float* lse) noexcept {
  std::size_t rows = 0, total = 0;
  if (!element_count({s.batch, s.heads, s.seq}, &rows) || !element_count({rows, s.dim}, &total) || s.dim == 0)
    return Status::invalid_argument;
  if (rows == 0) return Status::ok;
  if (!out_a || !lse_a || !out_b || !lse_b || !out || !lse) return Status::invalid_argument;
  // Row (b, t, h) of a bshd output, or (b, h, t) of a bhsd one; LSEs are [batch, heads, seq] either way.
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const std::size_t b = i / (s.heads * s.seq);
      const std::size_t rest = i % (s.heads * s.seq);
      const std::size_t h = s.layout == Layout::bshd ? rest % s.heads : rest / s.seq;
      const std::size_t t = s.layout == Layout::bshd ? rest / s.heads : rest % s.seq;
      const std::size_t li = (b * s.heads + h) * s.seq + t;
      const double a = lse_a[li], c = lse_b[li];
      const double m = std::max(a, c);
      float* dst = out + i * s.dim;
      if (std::isinf(m) && m < 0) {  // neither side saw a key
        for (std::size_t d = 0; d < s.dim; ++d) dst[d] = 0.0f;
        lse[li] = -std::numeric_limits<float>::infinity();
        continue;
      }
      const double wa = std::exp(a - m), wb = std::exp(c - m), sum = wa + wb;
      const float fa = static_cast<float>(wa / sum), fb = static_cast<float>(wb / sum);
      const float* ra = out_a + i * s.dim;
      const float* rb = out_b + i * s.dim;
      for (std::size_t d = 0; d < s.dim; ++d) dst[d] = fa * ra[d] + fb * rb[d];
      lse[li] = static_cast<float>(m + std::log(sum));
    }
  };
  return parallel_for(rows, grain_for_bytes(s.dim * 12), body);
}

}  // namespace tessera::attention
