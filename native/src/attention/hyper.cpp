// HyperAttention (Han et al., arXiv 2310.05869; insuhan/hyper-attn, read for the algorithm only): sortLSH block
// diagonal plus uniformly sampled columns, merged through their LSEs; causal attention by recursive halving. Every
// attention evaluation here is the exact core (attend) on gathered blocks, and every merge is merge_states.
// See tessera/approx_attention.h for the definition.
//
// Where this differs from the reference:
// - Buckets: the reference maps the LSH sign pattern through the Gray sequence (perm[code]); here the sort key is the
//   pattern's RANK in the reflected Gray sequence (the inverse map), so that buckets next to each other in the sort
//   order differ in exactly one sign bit, which is what the Gray coding is for.
// - Ragged sizes: the reference pads the sorted keys to a multiple of block_size and splits queries evenly; here
//   the last key block is short (key_lengths of the core) and query blocks differ in size by at most one.
// - Odd lengths in the causal recursion: the reference pads one zero row; here the top half gets ceil(n / 2) rows.
// - Exact attention when seq_q OR seq_k is below min_seq_len (the reference's non-causal path looks at seq_q only).
// - GQA: query head h reads key/value head h / (heads_q / heads_kv); the reference has no grouped heads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "tessera/approx_attention.h"
#include "tessera/memory.h"
#include "tessera/rng.h"

namespace tessera::attention {
namespace {

constexpr std::uint64_t kLshLabel = kHyperLshLabel;        // the Gaussian projections
constexpr std::uint64_t kSampleLabel = kHyperSampleLabel;  // the sampled columns

struct Context {
  HyperOptions o;
  std::size_t dim = 0, dim_v = 0;
  std::vector<float> proj;  // dim x lsh_bits
};

// One (batch, query head): contiguous rows.
struct Head {
  const float* q;
  const float* k;
  const float* v;
  std::size_t nq, nk;
};

bool exact_size(const HyperOptions& o, std::size_t nq, std::size_t nk) {
  return nq < o.min_seq_len || nk < o.min_seq_len;
}

Status exact(const Context& c, const Head& h, bool causal, float* out, float* lse) {
  Shape s;
  s.seq_q = h.nq, s.seq_k = h.nk, s.head_dim = c.dim, s.head_dim_v = c.dim_v;
  Options o;
  o.scale = c.o.scale;
  o.causal = causal;
  return attend(h.q, h.k, h.v, DType::f32, s, o, out, lse);
}

// Sort keys: the rank of each row's sign pattern (bit r: x.proj_r > 0) in the reflected Gray sequence.
void lsh_keys(const Context& c, const float* x, std::size_t n, std::uint32_t* key) {
  const std::size_t bits = c.o.lsh_bits;
  for (std::size_t i = 0; i < n; ++i) {
    const float* row = x + i * c.dim;
    std::uint32_t code = 0;
    for (std::size_t r = 0; r < bits; ++r) {
      float dot = 0;
      for (std::size_t d = 0; d < c.dim; ++d) dot += row[d] * c.proj[d * bits + r];
      if (dot > 0) code |= 1u << r;
    }
    std::uint32_t rank = code;
    for (std::uint32_t g = code >> 1; g; g >>= 1) rank ^= g;
    key[i] = rank;
  }
}

// Stable counting sort of row indices by key.
void sort_by_key(const std::uint32_t* key, std::size_t n, std::size_t bits, std::uint32_t* order) {
  std::vector<std::uint32_t> start((std::size_t{1} << bits) + 1, 0);
  for (std::size_t i = 0; i < n; ++i) ++start[key[i] + 1];
  for (std::size_t b = 1; b < start.size(); ++b) start[b] += start[b - 1];
  for (std::size_t i = 0; i < n; ++i) order[start[key[i]]++] = static_cast<std::uint32_t>(i);
}

std::uint64_t sample_stream(const HyperOptions& o, std::size_t head, std::size_t node) {
  return rng::derive(rng::derive(o.seed, kSampleLabel), (static_cast<std::uint64_t>(head) << 24) | node);
}

std::size_t block_count(const Context& c, std::size_t nk) { return (nk + c.o.block_size - 1) / c.o.block_size; }
std::size_t query_start(std::size_t b, std::size_t nq, std::size_t nb) { return b * nq / nb; }

void plan(const Context& c, const Head& h, std::size_t head, std::size_t node, std::uint32_t* q_order,
          std::uint32_t* k_order, std::uint32_t* samples) {
  std::vector<std::uint32_t> key(std::max(h.nq, h.nk));
  lsh_keys(c, h.q, h.nq, key.data());
  sort_by_key(key.data(), h.nq, c.o.lsh_bits, q_order);
  lsh_keys(c, h.k, h.nk, key.data());
  sort_by_key(key.data(), h.nk, c.o.lsh_bits, k_order);
  const std::uint64_t stream = sample_stream(c.o, head, node);
  for (std::size_t t = 0; t < c.o.sample_size; ++t) samples[t] = static_cast<std::uint32_t>(rng::to_below(rng::u64(stream, t), h.nk));
}

// Non-causal HyperAttention of one head: out [nq, dim_v], lse [nq].
Status non_causal(const Context& c, const Head& h, std::size_t head, std::size_t node, float* out, float* lse) {
  if (exact_size(c.o, h.nq, h.nk)) return exact(c, h, false, out, lse);
  const std::size_t dim = c.dim, dim_v = c.dim_v, nb = block_count(c, h.nk), m = c.o.sample_size;
  const std::size_t kb = std::min(c.o.block_size, h.nk), qmax = (h.nq + nb - 1) / nb;
  std::vector<std::uint32_t> q_order(h.nq), k_order(h.nk), samples(m);
  plan(c, h, head, node, q_order.data(), k_order.data(), samples.data());

  // 1. Block diagonal: block b's queries against its keys, one batch row per block.
  std::vector<float> qs(nb * qmax * dim, 0.0f), ks(nb * kb * dim, 0.0f), vs(nb * kb * dim_v, 0.0f);
  std::vector<float> ob(nb * qmax * dim_v), lb(nb * qmax);
  std::vector<std::int32_t> lengths(nb);
  for (std::size_t b = 0; b < nb; ++b) {
    const std::size_t q0 = query_start(b, h.nq, nb), q1 = query_start(b + 1, h.nq, nb);
    for (std::size_t i = q0; i < q1; ++i)
      std::memcpy(&qs[(b * qmax + i - q0) * dim], h.q + q_order[i] * dim, dim * sizeof(float));
    const std::size_t k0 = b * kb, k1 = std::min(k0 + kb, h.nk);
    lengths[b] = static_cast<std::int32_t>(k1 - k0);
    for (std::size_t j = k0; j < k1; ++j) {
      std::memcpy(&ks[j * dim], h.k + k_order[j] * dim, dim * sizeof(float));
      std::memcpy(&vs[j * dim_v], h.v + k_order[j] * dim_v, dim_v * sizeof(float));
    }
  }
  Shape s;
  s.batch = nb, s.seq_q = qmax, s.seq_k = kb, s.head_dim = dim, s.head_dim_v = dim_v;
  Options o;
  o.scale = c.o.scale;
  o.key_lengths = lengths.data();
  Status st = attend(qs.data(), ks.data(), vs.data(), DType::f32, s, o, ob.data(), lb.data());
  if (st != Status::ok) return st;

  // 2. Sampled columns, each hidden from its own block's queries: block b's batch row holds the other samples.
  if (nb > 1 && m > 0) {
    ks.assign(nb * m * dim, 0.0f);
    vs.assign(nb * m * dim_v, 0.0f);
    std::vector<float> os(nb * qmax * dim_v), ls(nb * qmax);
    for (std::size_t b = 0; b < nb; ++b) {
      std::size_t n = 0;
      for (std::size_t t = 0; t < m; ++t) {
        if (samples[t] / kb == b) continue;
        std::memcpy(&ks[(b * m + n) * dim], h.k + k_order[samples[t]] * dim, dim * sizeof(float));
        std::memcpy(&vs[(b * m + n) * dim_v], h.v + k_order[samples[t]] * dim_v, dim_v * sizeof(float));
        ++n;
      }
      lengths[b] = static_cast<std::int32_t>(n);
    }
    s.seq_k = m;
    st = attend(qs.data(), ks.data(), vs.data(), DType::f32, s, o, os.data(), ls.data());
    if (st != Status::ok) return st;
    const float weight = static_cast<float>(std::log(static_cast<double>(h.nk) / static_cast<double>(m)));
    for (float& x : ls) x += weight;  // -infinity (no visible sample) stays -infinity
    MergeShape ms;
    ms.batch = nb, ms.seq = qmax, ms.dim = dim_v;
    st = merge_states(ob.data(), lb.data(), os.data(), ls.data(), ms, ob.data(), lb.data());
    if (st != Status::ok) return st;
  }

  // 3. Rows back in their order.
  for (std::size_t b = 0; b < nb; ++b) {
    const std::size_t q0 = query_start(b, h.nq, nb), q1 = query_start(b + 1, h.nq, nb);
    for (std::size_t i = q0; i < q1; ++i) {
      std::memcpy(out + q_order[i] * dim_v, &ob[(b * qmax + i - q0) * dim_v], dim_v * sizeof(float));
      lse[q_order[i]] = lb[b * qmax + i - q0];
    }
  }
  return Status::ok;
}

// Causal HyperAttention of one head (nq == nk == n), by recursive halving; node numbers the sample streams.
Status causal(const Context& c, const Head& h, std::size_t head, std::size_t node, float* out, float* lse) {
  const std::size_t n = h.nq;
  if (n <= c.o.min_seq_len) return exact(c, h, true, out, lse);
  const std::size_t top = (n + 1) / 2, bottom = n - top;
  const Head tl{h.q, h.k, h.v, top, top};
  const Head br{h.q + top * c.dim, h.k + top * c.dim, h.v + top * c.dim_v, bottom, bottom};
  const Head bl{h.q + top * c.dim, h.k, h.v, bottom, top};
  Status st = causal(c, tl, head, 2 * node, out, lse);
  if (st == Status::ok) st = causal(c, br, head, 2 * node + 1, out + top * c.dim_v, lse + top);
  if (st != Status::ok) return st;
  std::vector<float> o(bottom * c.dim_v), l(bottom);
  st = non_causal(c, bl, head, node, o.data(), l.data());
  if (st != Status::ok) return st;
  MergeShape ms;
  ms.seq = bottom, ms.dim = c.dim_v;
  return merge_states(out + top * c.dim_v, lse + top, o.data(), l.data(), ms, out + top * c.dim_v, lse + top);
}

std::size_t row_index(const Shape& s, std::size_t heads, std::size_t seq, std::size_t b, std::size_t h, std::size_t t) {
  return s.layout == Layout::bshd ? (b * seq + t) * heads + h : (b * heads + h) * seq + t;
}

void gather(const float* x, const Shape& s, std::size_t heads, std::size_t seq, std::size_t dim, std::size_t b,
            std::size_t h, float* dst) {
  for (std::size_t t = 0; t < seq; ++t) std::memcpy(dst + t * dim, x + row_index(s, heads, seq, b, h, t) * dim, dim * sizeof(float));
}

Status check(const float* q, const float* k, const float* v, const Shape& s, const HyperOptions& o) {
  if (s.batch == 0 || s.heads_q == 0 || s.heads_kv == 0 || s.heads_q % s.heads_kv != 0) return Status::invalid_argument;
  if (s.head_dim == 0 || s.head_dim > kMaxHeadDim || s.head_dim_v == 0 || s.head_dim_v > kMaxHeadDim)
    return Status::invalid_argument;
  if (s.seq_q > 0xFFFFFFFFull || s.seq_k > 0xFFFFFFFFull || !std::isfinite(o.scale)) return Status::invalid_argument;
  if (o.block_size == 0 || o.lsh_bits > kMaxLshBits || o.sample_size > (std::size_t{1} << 24)) return Status::invalid_argument;
  if (o.causal && s.seq_q != s.seq_k) return Status::invalid_argument;
  std::size_t n = 0;
  if (!element_count({s.batch, s.heads_q, s.seq_q, s.head_dim}, &n) || !element_count({s.batch, s.heads_kv, s.seq_k, s.head_dim}, &n) ||
      !element_count({s.batch, s.heads_kv, s.seq_k, s.head_dim_v}, &n) || !element_count({s.batch, s.heads_q, s.seq_q, s.head_dim_v}, &n) ||
      !element_count({s.batch, s.heads_q, s.seq_k}, &n) || !element_count({s.batch, s.heads_q, o.sample_size}, &n))
    return Status::invalid_argument;
  if ((s.seq_q > 0 && !q) || (s.seq_k > 0 && (!k || !v))) return Status::invalid_argument;
  return Status::ok;
}

bool whole_exact(const Shape& s, const HyperOptions& o) {
  return o.causal ? s.seq_k <= o.min_seq_len : exact_size(o, s.seq_q, s.seq_k);
}

Context context(const Shape& s, const HyperOptions& o) {
  Context c;
  c.o = o;
  c.dim = s.head_dim, c.dim_v = s.head_dim_v;
  c.proj.resize(s.head_dim * o.lsh_bits);
  rng::fill_normal(rng::derive(o.seed, kLshLabel), 0, c.proj.data(), c.proj.size());
  return c;
}

}  // namespace

Status hyper_attend(const float* q, const float* k, const float* v, const Shape& s, const HyperOptions& o, float* out,
                    float* lse) noexcept {
  Status st = check(q, k, v, s, o);
  if (st != Status::ok) return st;
  if (s.seq_q == 0) return Status::ok;
  if (!out) return Status::invalid_argument;
  if (whole_exact(s, o)) {
    Options e;
    e.scale = o.scale;
    e.causal = o.causal;
    return attend(q, k, v, DType::f32, s, e, out, lse);
  }
  try {
    const Context c = context(s, o);
    const std::size_t group = s.heads_q / s.heads_kv;
    std::vector<float> qh(s.seq_q * s.head_dim), kh(s.seq_k * s.head_dim), vh(s.seq_k * s.head_dim_v);
    std::vector<float> oh(s.seq_q * s.head_dim_v), lh(s.seq_q);
    for (std::size_t b = 0; b < s.batch; ++b)
      for (std::size_t hk = 0; hk < s.heads_kv; ++hk) {
        gather(k, s, s.heads_kv, s.seq_k, s.head_dim, b, hk, kh.data());
        gather(v, s, s.heads_kv, s.seq_k, s.head_dim_v, b, hk, vh.data());
        for (std::size_t h = hk * group; h < (hk + 1) * group; ++h) {
          gather(q, s, s.heads_q, s.seq_q, s.head_dim, b, h, qh.data());
          const Head head{qh.data(), kh.data(), vh.data(), s.seq_q, s.seq_k};
          const std::size_t id = b * s.heads_q + h;
          st = o.causal ? causal(c, head, id, 1, oh.data(), lh.data()) : non_causal(c, head, id, 1, oh.data(), lh.data());
          if (st != Status::ok) return st;
          for (std::size_t t = 0; t < s.seq_q; ++t)
            std::memcpy(out + row_index(s, s.heads_q, s.seq_q, b, h, t) * s.head_dim_v, &oh[t * s.head_dim_v],
                        s.head_dim_v * sizeof(float));
          if (lse) std::memcpy(lse + id * s.seq_q, lh.data(), s.seq_q * sizeof(float));
        }
      }
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status hyper_plan(const float* q, const float* k, const Shape& s, const HyperOptions& o, std::uint32_t* query_order,
                  std::uint32_t* key_order, std::uint32_t* samples) noexcept {
  Status st = check(q, k, k, s, o);
  if (st != Status::ok) return st;
  if (o.causal || whole_exact(s, o) || !query_order || !key_order || (o.sample_size > 0 && !samples))
    return Status::invalid_argument;
  try {
    const Context c = context(s, o);
    std::vector<float> qh(s.seq_q * s.head_dim), kh(s.seq_k * s.head_dim);
    for (std::size_t b = 0; b < s.batch; ++b)
      for (std::size_t h = 0; h < s.heads_q; ++h) {
        const std::size_t id = b * s.heads_q + h;
        gather(q, s, s.heads_q, s.seq_q, s.head_dim, b, h, qh.data());
        gather(k, s, s.heads_kv, s.seq_k, s.head_dim, b, h / (s.heads_q / s.heads_kv), kh.data());
        const Head head{qh.data(), kh.data(), nullptr, s.seq_q, s.seq_k};
        plan(c, head, id, 1, query_order + id * s.seq_q, key_order + id * s.seq_k, samples + id * o.sample_size);
      }
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::attention
