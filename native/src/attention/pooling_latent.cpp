// NV-Embed latent-attention pooling (Lee et al. 2024, arXiv 2405.17428). The semantics were learned from NVIDIA's
// modeling_nvembed.py (PreNorm, Attention, GEGLU, FeedForward, LatentAttentionModel) and the candle port
// huggingface/candle candle-transformers/src/models/nvembed_v2/model.rs; see tessera/pooling.h for the formula.
// Tokens are processed in chunks of rows (only valid ones: a token's result never depends on another token), each
// step threaded: LayerNorm over rows, linear layers on the blocked matmul, attention on attention::attend.
#include <algorithm>
#include <cmath>
#include <vector>

#include "matmul.h"
#include "pooling_util.h"
#include "tessera/attention.h"
#include "tessera/memory.h"
#include "tessera/pooling.h"
#include "tessera/runtime.h"

namespace tessera::pooling {
namespace {

constexpr std::size_t kChunk = 128;  // tokens per step

using attention::detail::matmul;

// dst row = (src row - mean) / sqrt(var + eps) · w + b, statistics in float64 (torch's biased variance).
Status layer_norm(const float* src, std::size_t rows, std::size_t dim, const float* w, const float* b, float eps,
                  float* dst) {
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const float* x = src + i * dim;
      double mean = 0, var = 0;
      for (std::size_t d = 0; d < dim; ++d) mean += x[d];
      mean /= static_cast<double>(dim);
      for (std::size_t d = 0; d < dim; ++d) var += (x[d] - mean) * (x[d] - mean);
      var /= static_cast<double>(dim);
      const double inverse = 1.0 / std::sqrt(var + eps);
      float* y = dst + i * dim;
      for (std::size_t d = 0; d < dim; ++d) y[d] = static_cast<float>((x[d] - mean) * inverse) * w[d] + b[d];
    }
  };
  return parallel_for(rows, grain_for_bytes(dim * 8), body);
}

// Each row of s (cols scores) becomes softmax(scale · row), in place.
Status softmax_rows(float* s, std::size_t rows, std::size_t cols, float scale) {
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      float* row = s + i * cols;
      float m = -INFINITY;
      for (std::size_t j = 0; j < cols; ++j) m = std::max(m, scale * row[j]);
      double sum = 0;
      for (std::size_t j = 0; j < cols; ++j) sum += row[j] = std::exp(scale * row[j] - m);
      const float inverse = static_cast<float>(1.0 / sum);
      for (std::size_t j = 0; j < cols; ++j) row[j] *= inverse;
    }
  };
  return parallel_for(rows, grain_for_bytes(cols * 16), body);
}

bool weights_present(const LatentWeights& w) {
  for (const float* p : {w.latents, w.norm_weight, w.norm_bias, w.context_norm_weight, w.context_norm_bias, w.to_q,
                         w.to_kv, w.to_out, w.ff_norm_weight, w.ff_norm_bias, w.ff_in, w.ff_in_bias, w.ff_out,
                         w.ff_out_bias})
    if (!p) return false;
  return true;
}

#define TESSERA_TRY(expr)                     \
  do {                                        \
    const Status status_ = (expr);            \
    if (status_ != Status::ok) return status_; \
  } while (0)

}  // namespace

Status latent_attention_pool(const float* hidden, const LatentShape& s, const LatentWeights& w, const TokenMask& mask,
                             float layer_norm_eps, bool normalize, float* out) noexcept {
  std::size_t n_in = 0, n_out = 0, inner = 0, n = 0;
  if (s.dim == 0 || s.heads == 0 || s.head_dim == 0 || s.num_latents == 0 || s.ff_dim == 0)
    return Status::invalid_argument;
  if (!element_count({s.batch, s.seq, s.dim}, &n_in) || !element_count({s.batch, s.dim}, &n_out) ||
      !element_count({s.heads, s.head_dim}, &inner) || !element_count({2, inner, s.dim}, &n) ||
      !element_count({kChunk, 2, inner}, &n) || !element_count({s.num_latents, 2, inner}, &n) ||
      !element_count({s.num_latents, s.dim}, &n) || !element_count({2, s.ff_dim, s.dim}, &n) ||
      !element_count({kChunk, 2, s.ff_dim}, &n) || !element_count({kChunk, s.num_latents}, &n))
    return Status::invalid_argument;
  if (!std::isfinite(layer_norm_eps) || !(layer_norm_eps > 0)) return Status::invalid_argument;
  if (n_out == 0) return Status::ok;
  if (!out || (n_in > 0 && !hidden) || !weights_present(w)) return Status::invalid_argument;
  if (!detail::mask_valid(mask, s.batch, s.seq)) return Status::invalid_argument;
  if (bytes_overlap(out, n_out * sizeof(float), hidden, n_in * sizeof(float))) return Status::invalid_argument;

  const std::size_t dim = s.dim, r = s.num_latents, ff = s.ff_dim, hd = s.head_dim;
  try {
    // The valid tokens, row by row in order.
    std::vector<std::size_t> tokens;
    std::vector<std::size_t> counts(s.batch, 0);
    for (std::size_t b = 0; b < s.batch; ++b)
      for (std::size_t t = 0; t < s.seq; ++t)
        if (detail::is_valid(mask, s.seq, b, t)) tokens.push_back(b * s.seq + t), ++counts[b];
    std::vector<double> sums(n_out, 0.0);

    if (!tokens.empty()) {
      // Keys and values of the latents, shared by every token: [K | V] = LN_c(latents) · W_kvᵀ, split per half.
      std::vector<float> context(r * dim), kv(r * 2 * inner), keys(r * inner), values(r * inner);
      TESSERA_TRY(layer_norm(w.latents, r, dim, w.context_norm_weight, w.context_norm_bias, layer_norm_eps,
                             context.data()));
      TESSERA_TRY(matmul(context.data(), dim, w.to_kv, dim, true, nullptr, kv.data(), 2 * inner, r, dim, 2 * inner, true));
      for (std::size_t j = 0; j < r; ++j) {
        std::copy(kv.data() + j * 2 * inner, kv.data() + j * 2 * inner + inner, keys.data() + j * inner);
        std::copy(kv.data() + j * 2 * inner + inner, kv.data() + (j + 1) * 2 * inner, values.data() + j * inner);
      }
      kv = {};
      const std::size_t rows_max = std::min(kChunk, tokens.size());
      std::vector<float> x(rows_max * dim), xn(rows_max * dim), q(rows_max * inner), o(rows_max * inner),
          y(rows_max * dim), g(rows_max * 2 * ff), h(rows_max * ff), z(rows_max * dim);
      std::vector<float> scores(hd > attention::kMaxHeadDim ? rows_max * r : 0);
      const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));

      for (std::size_t first = 0; first < tokens.size(); first += kChunk) {
        const std::size_t rows = std::min(kChunk, tokens.size() - first);
        for (std::size_t i = 0; i < rows; ++i)
          std::copy(hidden + tokens[first + i] * dim, hidden + (tokens[first + i] + 1) * dim, x.data() + i * dim);
        // Cross-attention block: y = x + W_out · attn(LN_q(x)).
        TESSERA_TRY(layer_norm(x.data(), rows, dim, w.norm_weight, w.norm_bias, layer_norm_eps, xn.data()));
        TESSERA_TRY(matmul(xn.data(), dim, w.to_q, dim, true, nullptr, q.data(), inner, rows, dim, inner, true));
        if (hd <= attention::kMaxHeadDim) {
          attention::Shape as;
          as.batch = 1, as.heads_q = as.heads_kv = s.heads, as.seq_q = rows, as.seq_k = r;
          as.head_dim = as.head_dim_v = hd, as.layout = attention::Layout::bshd;
          attention::Options ao;
          ao.scale = scale;
          TESSERA_TRY(attention::attend(q.data(), keys.data(), values.data(), attention::DType::f32, as, ao, o.data(),
                                        nullptr));
        } else {
          // Heads wider than the tiled kernel takes: scores, softmax and the weighted sum as matrix products.
          for (std::size_t head = 0; head < s.heads; ++head) {
            const std::size_t c0 = head * hd;
            TESSERA_TRY(matmul(q.data() + c0, inner, keys.data() + c0, inner, true, nullptr, scores.data(), r, rows,
                               hd, r, true));
            TESSERA_TRY(softmax_rows(scores.data(), rows, r, scale));
            TESSERA_TRY(matmul(scores.data(), r, values.data() + c0, inner, false, nullptr, o.data() + c0, inner, rows,
                               r, hd, true));
          }
        }
        TESSERA_TRY(matmul(o.data(), inner, w.to_out, inner, true, w.to_out_bias, y.data(), dim, rows, inner, dim, true));
        for (std::size_t i = 0; i < rows * dim; ++i) y[i] += x[i];
        // Feed-forward block: z = y + W_2 · geglu(W_1 · LN_f(y) + b_1) + b_2.
        TESSERA_TRY(layer_norm(y.data(), rows, dim, w.ff_norm_weight, w.ff_norm_bias, layer_norm_eps, xn.data()));
        TESSERA_TRY(matmul(xn.data(), dim, w.ff_in, dim, true, w.ff_in_bias, g.data(), 2 * ff, rows, dim, 2 * ff, true));
        auto geglu = [&](std::size_t begin, std::size_t end) {
          for (std::size_t i = begin; i < end; ++i) {
            const float* gi = g.data() + i * 2 * ff;
            float* hi = h.data() + i * ff;
            for (std::size_t j = 0; j < ff; ++j) {
              const float gate = gi[ff + j];
              hi[j] = gi[j] * (0.5f * gate * (1.0f + std::erf(gate * 0.70710678118654752f)));
            }
          }
        };
        TESSERA_TRY(parallel_for(rows, grain_for_bytes(ff * 12), geglu));
        TESSERA_TRY(matmul(h.data(), ff, w.ff_out, ff, true, w.ff_out_bias, z.data(), dim, rows, ff, dim, true));
        // Residual, then into the row's sum (in token order: the same for any thread count).
        for (std::size_t i = 0; i < rows; ++i) {
          double* sum = sums.data() + (tokens[first + i] / s.seq) * dim;
          const float* zi = z.data() + i * dim;
          const float* yi = y.data() + i * dim;
          for (std::size_t d = 0; d < dim; ++d) sum[d] += static_cast<double>(zi[d] + yi[d]);
        }
      }
    }
    for (std::size_t b = 0; b < s.batch; ++b) {
      float* dst = out + b * dim;
      const double count = static_cast<double>(counts[b]);
      for (std::size_t d = 0; d < dim; ++d) dst[d] = counts[b] ? static_cast<float>(sums[b * dim + d] / count) : 0.0f;
      if (normalize) detail::l2_normalize(dst, dim);
    }
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::pooling
