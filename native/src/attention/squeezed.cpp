// Squeezed Attention (Hooper et al., arXiv 2411.09688; SqueezeAILab/SqueezedAttention, read for the algorithm only):
// offline k-means over a fixed context's keys per key/value head, then per query a centroid lookup that chooses the
// clusters worth attending to and exact attention over their keys. See tessera/approx_attention.h.
//
// Where this differs from the reference: the reference clusters with cuML's KMeans (k-means++ init, up to 300
// iterations) and calibrates a global threshold offline from the last prompt queries; here k-means++ draws from
// Tessera's generator (one candidate per step), Lloyd runs `iterations` times, and the caller passes the threshold or
// asks for a fraction of the keys (keep_fraction) instead. The hierarchical (two-level) lookup is not implemented.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "../fde/gemm.h"
#include "tessera/approx_attention.h"
#include "tessera/memory.h"
#include "tessera/rng.h"
#include "tessera/runtime.h"

namespace tessera::attention {
namespace {

constexpr std::uint64_t kKmeansLabel = 0x53515A4B4D000000ull;  // "SQZKM": one stream per head below it
constexpr std::size_t kRowGrain = 64;                           // rows per chunk of the assignment step
constexpr std::size_t kQueryGrain = 64;                         // queries per unit of attend

// Cluster of each row of x [n, dim]: argmax_c x.c - |c|^2 / 2 (the nearest centroid in L2), lowest c on ties.
// ct: dim x clusters (centroids transposed); half: |c|^2 / 2. Returns whether any assignment changed.
Status assign(fde::detail::GemmFn gemm, const float* x, std::size_t n, std::size_t dim, const float* ct,
              const float* half, std::size_t clusters, std::uint32_t* cluster, bool* changed) {
  const std::size_t chunks = (n + kRowGrain - 1) / kRowGrain;
  std::vector<std::uint8_t> moved(chunks, 0);
  const std::size_t slots = slots_for(n, kRowGrain);
  std::vector<std::vector<float>> scratch(slots, std::vector<float>(kRowGrain * clusters));
  auto body = [&](std::size_t begin, std::size_t end, std::size_t slot) {
    float* s = scratch[slot].data();
    gemm(x + begin * dim, dim, ct, clusters, s, clusters, end - begin, dim, clusters);
    for (std::size_t i = begin; i < end; ++i) {
      const float* row = s + (i - begin) * clusters;
      std::uint32_t best = 0;
      float best_score = row[0] - half[0];
      for (std::size_t c = 1; c < clusters; ++c) {
        const float v = row[c] - half[c];
        if (v > best_score) best_score = v, best = static_cast<std::uint32_t>(c);
      }
      if (cluster[i] != best) moved[begin / kRowGrain] = 1, cluster[i] = best;
    }
  };
  const Status st = parallel_for(n, kRowGrain, body, slots);
  *changed = std::any_of(moved.begin(), moved.end(), [](std::uint8_t m) { return m != 0; });
  return st;
}

float squared_distance(const float* a, const float* b, std::size_t dim) {
  float acc[8] = {};
  std::size_t d = 0;
  for (; d + 8 <= dim; d += 8)
    for (std::size_t j = 0; j < 8; ++j) {
      const float t = a[d + j] - b[d + j];
      acc[j] += t * t;
    }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; d < dim; ++d) s += (a[d] - b[d]) * (a[d] - b[d]);
  return s;
}

// k-means++ (Arthur and Vassilvitskii 2007): the first centre uniform, each next one drawn with probability
// proportional to the squared distance to the nearest centre chosen so far. Draws are counter `i` of `stream`.
Status seed_centres(const float* x, std::size_t n, std::size_t dim, std::size_t clusters, std::uint64_t stream,
                    float* centres) {
  std::vector<float> nearest(n, std::numeric_limits<float>::infinity());
  std::size_t pick = rng::to_below(rng::u64(stream, 0), n);
  for (std::size_t c = 0; c < clusters; ++c) {
    if (c > 0) {
      double total = 0;
      for (std::size_t i = 0; i < n; ++i) total += nearest[i];
      if (total > 0) {
        const double r = rng::to_uniform01(rng::u64(stream, c)) * total;
        double run = 0;
        pick = n;
        for (std::size_t i = 0; i < n; ++i) {
          run += nearest[i];
          if (run > r && nearest[i] > 0) {
            pick = i;
            break;
          }
        }
        if (pick == n)  // rounding left r past the last positive weight: take the last one
          for (std::size_t i = n; i-- > 0;)
            if (nearest[i] > 0) {
              pick = i;
              break;
            }
      } else {  // every point sits on a centre already (fewer distinct keys than clusters)
        pick = rng::to_below(rng::u64(stream, c), n);
      }
    }
    float* centre = centres + c * dim;
    std::memcpy(centre, x + pick * dim, dim * sizeof(float));
    auto body = [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) nearest[i] = std::min(nearest[i], squared_distance(x + i * dim, centre, dim));
    };
    const Status st = parallel_for(n, 1024, body);
    if (st != Status::ok) return st;
  }
  return Status::ok;
}

void transpose_with_norms(const float* c, std::size_t clusters, std::size_t dim, float* ct, float* half) {
  for (std::size_t k = 0; k < clusters; ++k) {
    double s = 0;
    for (std::size_t d = 0; d < dim; ++d) {
      ct[d * clusters + k] = c[k * dim + d];
      s += static_cast<double>(c[k * dim + d]) * c[k * dim + d];
    }
    half[k] = static_cast<float>(s / 2);
  }
}

}  // namespace

Status SqueezedIndex::build(const float* keys, const float* values, const SqueezedConfig& c,
                            std::unique_ptr<SqueezedIndex>* out) noexcept {
  if (!out) return Status::invalid_argument;
  out->reset();
  if (c.heads_kv == 0 || c.seq_k == 0 || c.head_dim == 0 || c.head_dim > kMaxHeadDim || c.head_dim_v == 0 ||
      c.head_dim_v > kMaxHeadDim || c.clusters == 0 || c.clusters > c.seq_k || c.seq_k > 0xFFFFFFFFull)
    return Status::invalid_argument;
  std::size_t nk = 0, nv = 0, nc = 0;
  if (!element_count({c.heads_kv, c.seq_k, c.head_dim}, &nk) || !element_count({c.heads_kv, c.seq_k, c.head_dim_v}, &nv) ||
      !element_count({c.heads_kv, c.clusters, c.head_dim}, &nc) || !element_count({c.clusters, c.seq_k}, &nc))
    return Status::invalid_argument;
  if (!keys || !values) return Status::invalid_argument;
  try {
    auto index = std::make_unique<SqueezedIndex>();
    index->config_ = c;
    const std::size_t n = c.seq_k, dim = c.head_dim, dim_v = c.head_dim_v, k = c.clusters, heads = c.heads_kv;
    index->offsets_.assign(heads * (k + 1), 0);
    index->order_.assign(heads * n, 0);
    index->centroids_.assign(heads * k * dim, 0.0f);
    index->keys_t_.assign(heads * dim * n, 0.0f);
    index->values_.assign(heads * n * dim_v, 0.0f);
    const fde::detail::GemmFn gemm = fde::detail::gemm(active_simd_level());
    std::vector<float> x(n * dim), centres(k * dim), ct(dim * k), half(k);
    std::vector<double> sums(k * dim);
    std::vector<std::uint32_t> cluster(n), count(k);
    for (std::size_t h = 0; h < heads; ++h) {
      // The L2-normalised keys of this head (a zero key stays zero).
      for (std::size_t i = 0; i < n; ++i) {
        const float* row = keys + (i * heads + h) * dim;
        double s = 0;
        for (std::size_t d = 0; d < dim; ++d) s += static_cast<double>(row[d]) * row[d];
        const float inv = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
        for (std::size_t d = 0; d < dim; ++d) x[i * dim + d] = row[d] * inv;
      }
      Status st = seed_centres(x.data(), n, dim, k, rng::derive(c.seed, kKmeansLabel + h), centres.data());
      if (st != Status::ok) return st;
      std::fill(cluster.begin(), cluster.end(), std::numeric_limits<std::uint32_t>::max());
      bool changed = true;
      for (std::size_t it = 0;; ++it) {
        transpose_with_norms(centres.data(), k, dim, ct.data(), half.data());
        st = assign(gemm, x.data(), n, dim, ct.data(), half.data(), k, cluster.data(), &changed);
        if (st != Status::ok) return st;
        if (!changed || it == c.iterations) break;
        // Lloyd update: each centre becomes the mean of its points (an empty cluster keeps its centre).
        std::fill(sums.begin(), sums.end(), 0.0);
        std::fill(count.begin(), count.end(), 0u);
        for (std::size_t i = 0; i < n; ++i) {
          ++count[cluster[i]];
          double* s = sums.data() + cluster[i] * dim;
          for (std::size_t d = 0; d < dim; ++d) s[d] += x[i * dim + d];
        }
        for (std::size_t j = 0; j < k; ++j)
          if (count[j] > 0)
            for (std::size_t d = 0; d < dim; ++d) centres[j * dim + d] = static_cast<float>(sums[j * dim + d] / count[j]);
      }
      // Keys reordered by cluster (stable counting sort), centroids as means of the raw keys.
      std::uint32_t* offsets = index->offsets_.data() + h * (k + 1);
      std::uint32_t* order = index->order_.data() + h * n;
      for (std::size_t i = 0; i < n; ++i) ++offsets[cluster[i] + 1];
      for (std::size_t j = 0; j < k; ++j) offsets[j + 1] += offsets[j];
      std::vector<std::uint32_t> next(offsets, offsets + k);
      for (std::size_t i = 0; i < n; ++i) order[next[cluster[i]]++] = static_cast<std::uint32_t>(i);
      float* kt = index->keys_t_.data() + h * dim * n;
      float* vs = index->values_.data() + h * n * dim_v;
      float* cent = index->centroids_.data() + h * k * dim;
      for (std::size_t j = 0; j < k; ++j) {
        std::fill(sums.begin(), sums.begin() + dim, 0.0);
        const std::size_t a = offsets[j], len = offsets[j + 1] - a;
        for (std::uint32_t p = offsets[j]; p < offsets[j + 1]; ++p) {
          const float* row = keys + (order[p] * heads + h) * dim;
          for (std::size_t d = 0; d < dim; ++d) {
            kt[a * dim + d * len + (p - a)] = row[d];  // the cluster's block, transposed
            sums[d] += row[d];
          }
          std::memcpy(vs + p * dim_v, values + (order[p] * heads + h) * dim_v, dim_v * sizeof(float));
        }
        const std::uint32_t size = offsets[j + 1] - offsets[j];
        if (size > 0)
          for (std::size_t d = 0; d < dim; ++d) cent[j * dim + d] = static_cast<float>(sums[d] / size);
      }
    }
    *out = std::move(index);
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

std::size_t SqueezedIndex::memory_bytes() const noexcept {
  return (offsets_.size() + order_.size()) * sizeof(std::uint32_t) +
         (centroids_.size() + keys_t_.size() + values_.size()) * sizeof(float);
}

Status SqueezedIndex::attend(const float* q, const SqueezedQuery& o, float* out, float* lse,
                             double* kept_fraction) const noexcept {
  const SqueezedConfig& c = config_;
  if (o.heads_q == 0 || o.heads_q % c.heads_kv != 0 || !std::isfinite(o.scale)) return Status::invalid_argument;
  if (!(o.threshold >= 0) || !std::isfinite(o.threshold) || !(o.keep_fraction >= 0) || o.keep_fraction > 1)
    return Status::invalid_argument;
  std::size_t nq = 0, no = 0;
  if (!element_count({o.seq_q, o.heads_q, c.head_dim}, &nq) || !element_count({o.seq_q, o.heads_q, c.head_dim_v}, &no))
    return Status::invalid_argument;
  if (kept_fraction) *kept_fraction = 0;
  if (no == 0) return Status::ok;
  if (!q || !out) return Status::invalid_argument;
  const std::size_t n = c.seq_k, dim = c.head_dim, dim_v = c.head_dim_v, k = c.clusters;
  const std::size_t group = o.heads_q / c.heads_kv, blocks = (o.seq_q + kQueryGrain - 1) / kQueryGrain;
  const std::size_t units = o.heads_q * blocks;
  const fde::detail::GemmFn gemm = fde::detail::gemm(active_simd_level());
  const double log_threshold = o.threshold > 0 ? std::log(o.threshold) : -std::numeric_limits<double>::infinity();
  const std::size_t want = o.keep_fraction > 0 ? static_cast<std::size_t>(std::ceil(o.keep_fraction * n - 1e-9)) : 0;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  struct Scratch {
    std::vector<float> cs, qb, sb, tb, acc, mx, l;
    std::vector<std::uint8_t> keep;
    std::vector<std::uint32_t> sorted, rows;
  };
  try {
    // Centroids transposed per head (one GEMM per block of queries) and the largest cluster (scratch sizes).
    std::vector<float> ct(c.heads_kv * dim * k);
    std::size_t largest = 1;
    for (std::size_t h = 0; h < c.heads_kv; ++h)
      for (std::size_t j = 0; j < k; ++j) {
        largest = std::max<std::size_t>(largest, offsets_[h * (k + 1) + j + 1] - offsets_[h * (k + 1) + j]);
        for (std::size_t d = 0; d < dim; ++d) ct[(h * dim + d) * k + j] = centroids_[(h * k + j) * dim + d];
      }
    std::vector<std::uint64_t> kept_keys(units, 0);
    const std::size_t slots = slots_for(units, 1);
    std::vector<Scratch> scratch(slots);
    for (Scratch& s : scratch) {
      s.cs.resize(kQueryGrain * k), s.keep.resize(kQueryGrain * k), s.sorted.resize(k), s.rows.resize(kQueryGrain);
      s.qb.resize(kQueryGrain * dim), s.sb.resize(kQueryGrain * largest), s.tb.resize(kQueryGrain * dim_v);
      s.acc.resize(kQueryGrain * dim_v), s.mx.resize(kQueryGrain), s.l.resize(kQueryGrain);
    }
    // A unit is one query head and a block of queries. The block's queries choose their clusters; then, cluster by
    // cluster, the queries that kept it score its keys with one GEMM and fold them into their online softmax
    // (FlashAttention's running max and sum), the value sum being a second GEMM. Work is the kept (query, key) pairs.
    auto body = [&](std::size_t begin, std::size_t end, std::size_t slot) {
      Scratch& sc = scratch[slot];
      for (std::size_t u = begin; u < end; ++u) {
        const std::size_t h = u / blocks, i0 = (u % blocks) * kQueryGrain;
        const std::size_t rows = std::min(kQueryGrain, o.seq_q - i0), hk = h / group;
        const std::uint32_t* offsets = offsets_.data() + hk * (k + 1);
        const float* kt = keys_t_.data() + hk * dim * n;
        const float* vs = values_.data() + hk * n * dim_v;
        const float* q0 = q + (i0 * o.heads_q + h) * dim;
        const std::size_t q_stride = o.heads_q * dim;
        gemm(q0, q_stride, ct.data() + hk * dim * k, k, sc.cs.data(), k, rows, dim, k);
        std::fill(sc.keep.begin(), sc.keep.end(), std::uint8_t{0});
        for (std::size_t r = 0; r < rows; ++r) {
          float* s = sc.cs.data() + r * k;
          std::uint8_t* keep = sc.keep.data() + r;  // keep[j * kQueryGrain + r]: query r keeps cluster j
          // Cluster scores and the log of the estimate's denominator, log sum_k N_k exp(s_k).
          double mx = -std::numeric_limits<double>::infinity();
          for (std::size_t j = 0; j < k; ++j) {
            s[j] *= o.scale;
            if (offsets[j + 1] > offsets[j]) mx = std::max(mx, static_cast<double>(s[j]));
          }
          double z = 0;
          for (std::size_t j = 0; j < k; ++j)
            if (offsets[j + 1] > offsets[j]) z += static_cast<double>(offsets[j + 1] - offsets[j]) * std::exp(s[j] - mx);
          const double log_z = mx + std::log(z);
          std::size_t kept_count = 0;
          if (want > 0) {
            std::uint32_t* all = sc.sorted.data();
            std::size_t m = 0;
            for (std::size_t j = 0; j < k; ++j)
              if (offsets[j + 1] > offsets[j]) all[m++] = static_cast<std::uint32_t>(j);
            // The best clusters first: a partial sort of as many as the kept keys should need, widened if short.
            auto better = [&](std::uint32_t a, std::uint32_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
            std::size_t sorted = 0, t = 0;
            std::size_t guess = std::min(m, (want * m + n - 1) / n + 8);
            while (kept_count < want && t < m) {
              if (t == sorted) {
                std::partial_sort(all + sorted, all + guess, all + m, better);
                sorted = guess, guess = std::min(m, 2 * guess);
              }
              keep[all[t] * kQueryGrain] = 1, kept_count += offsets[all[t] + 1] - offsets[all[t]], ++t;
            }
          } else {
            for (std::size_t j = 0; j < k; ++j)
              if (offsets[j + 1] > offsets[j] && static_cast<double>(s[j]) - log_z > log_threshold)
                keep[j * kQueryGrain] = 1, kept_count += offsets[j + 1] - offsets[j];
          }
          kept_keys[u] += kept_count;
        }
        std::fill(sc.acc.begin(), sc.acc.end(), 0.0f);
        std::fill(sc.mx.begin(), sc.mx.end(), -kInf);
        std::fill(sc.l.begin(), sc.l.end(), 0.0f);
        for (std::size_t j = 0; j < k; ++j) {
          std::size_t m = 0;
          const std::uint8_t* keep = sc.keep.data() + j * kQueryGrain;
          for (std::size_t r = 0; r < rows; ++r)
            if (keep[r]) sc.rows[m++] = static_cast<std::uint32_t>(r);
          if (m == 0) continue;
          const std::uint32_t a = offsets[j], len = offsets[j + 1] - a;
          for (std::size_t t = 0; t < m; ++t) std::memcpy(&sc.qb[t * dim], q0 + sc.rows[t] * q_stride, dim * sizeof(float));
          gemm(sc.qb.data(), dim, kt + static_cast<std::size_t>(a) * dim, len, sc.sb.data(), len, m, dim, len);
          for (std::size_t t = 0; t < m; ++t) {
            const std::uint32_t r = sc.rows[t];
            float* srow = sc.sb.data() + t * len;
            float mnew = sc.mx[r];
            for (std::size_t e = 0; e < len; ++e) mnew = std::max(mnew, srow[e] *= o.scale);
            const float alpha = sc.mx[r] == -kInf ? 0.0f : std::exp(sc.mx[r] - mnew);
            float sum = 0;
            for (std::size_t e = 0; e < len; ++e) sum += (srow[e] = std::exp(srow[e] - mnew));
            sc.l[r] = sc.l[r] * alpha + sum;
            sc.mx[r] = mnew;
            float* acc = sc.acc.data() + r * dim_v;
            for (std::size_t d = 0; d < dim_v; ++d) acc[d] *= alpha;
          }
          gemm(sc.sb.data(), len, vs + static_cast<std::size_t>(a) * dim_v, dim_v, sc.tb.data(), dim_v, m, len, dim_v);
          for (std::size_t t = 0; t < m; ++t) {
            float* acc = sc.acc.data() + sc.rows[t] * dim_v;
            const float* add = sc.tb.data() + t * dim_v;
            for (std::size_t d = 0; d < dim_v; ++d) acc[d] += add[d];
          }
        }
        for (std::size_t r = 0; r < rows; ++r) {
          const std::size_t i = i0 + r;
          float* dst = out + (i * o.heads_q + h) * dim_v;
          const float* acc = sc.acc.data() + r * dim_v;
          const bool none = sc.l[r] == 0;
          const float inv = none ? 0.0f : 1.0f / sc.l[r];
          for (std::size_t d = 0; d < dim_v; ++d) dst[d] = acc[d] * inv;
          if (lse) lse[h * o.seq_q + i] = none ? -kInf : sc.mx[r] + std::log(sc.l[r]);
        }
      }
    };
    const Status st = parallel_for(units, 1, body, slots);
    if (st != Status::ok) return st;
    if (kept_fraction) {
      double total = 0;
      for (std::uint64_t v : kept_keys) total += static_cast<double>(v);
      *kept_fraction = total / (static_cast<double>(n) * o.seq_q * o.heads_q);
    }
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::attention
