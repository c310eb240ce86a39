// ECAPA-TDNN attentive statistics pooling (Desplanques et al. 2020, arXiv 2005.07143). The order of operations and
// where eps goes were learned from speechbrain's speechbrain/lobes/models/ECAPA_TDNN.py (AttentiveStatisticsPooling,
// TDNNBlock); see tessera/pooling.h. One batch row at a time, only its valid frames; the 1x1 convolutions are matrix
// products on the blocked matmul, the per-channel softmax and statistics are threaded over channels.
#include <algorithm>
#include <cmath>
#include <vector>

#include "matmul.h"
#include "pooling_util.h"
#include "tessera/memory.h"
#include "tessera/pooling.h"
#include "tessera/runtime.h"

namespace tessera::pooling {
namespace {

using attention::detail::matmul;

// Weighted mean and sqrt(max(weighted variance, eps)) of x[0, n) with weights wt (or 1 / n each when wt is null).
void statistics(const float* x, const float* wt, std::size_t n, double eps, float* mean_out, float* std_out) {
  double mean = 0;
  for (std::size_t t = 0; t < n; ++t) mean += (wt ? wt[t] : 1.0) * x[t];
  if (!wt) mean /= static_cast<double>(n);
  double var = 0;
  for (std::size_t t = 0; t < n; ++t) var += (wt ? wt[t] : 1.0) * (x[t] - mean) * (x[t] - mean);
  if (!wt) var /= static_cast<double>(n);
  *mean_out = static_cast<float>(mean);
  *std_out = static_cast<float>(std::sqrt(std::max(var, eps)));
}

}  // namespace

Status attentive_stats_pool(const float* x, const StatsShape& s, const StatsWeights& w, const std::int32_t* lengths,
                            float eps, float bn_eps, float* out) noexcept {
  std::size_t n_in = 0, n_out = 0, n = 0;
  const std::size_t in_channels = s.global_context ? 3 * s.channels : s.channels;
  if (s.channels == 0 || s.attention_channels == 0) return Status::invalid_argument;
  if (!element_count({s.batch, s.channels, s.frames}, &n_in) || !element_count({s.batch, 2, s.channels}, &n_out) ||
      !element_count({s.attention_channels, 3, s.channels}, &n) ||
      !element_count({s.attention_channels + s.channels, s.frames}, &n))
    return Status::invalid_argument;
  if (!std::isfinite(eps) || eps < 0 || !std::isfinite(bn_eps) || bn_eps < 0) return Status::invalid_argument;
  if (n_out == 0) return Status::ok;
  if (!out || (n_in > 0 && !x)) return Status::invalid_argument;
  for (const float* p : {w.tdnn_weight, w.tdnn_bias, w.bn_mean, w.bn_var, w.bn_weight, w.bn_bias, w.conv_weight,
                         w.conv_bias})
    if (!p) return Status::invalid_argument;
  if (lengths)
    for (std::size_t b = 0; b < s.batch; ++b)
      if (lengths[b] < 0 || static_cast<std::size_t>(lengths[b]) > s.frames) return Status::invalid_argument;
  if (bytes_overlap(out, n_out * sizeof(float), x, n_in * sizeof(float))) return Status::invalid_argument;

  const std::size_t C = s.channels, A = s.attention_channels, L = s.frames;
  try {
    // The batch norm folded into a scale and shift per attention channel (inference: running statistics).
    std::vector<float> bn_scale(A), bn_shift(A);
    for (std::size_t a = 0; a < A; ++a) {
      const double k = w.bn_weight[a] / std::sqrt(static_cast<double>(w.bn_var[a]) + bn_eps);
      bn_scale[a] = static_cast<float>(k);
      bn_shift[a] = static_cast<float>(w.bn_bias[a] - k * w.bn_mean[a]);
    }
    std::vector<float> h(A * L), e(C * L), context(2 * C), offset(A);
    for (std::size_t b = 0; b < s.batch; ++b) {
      const std::size_t frames = lengths ? static_cast<std::size_t>(lengths[b]) : L;
      const float* xb = x + b * C * L;
      float* dst = out + b * 2 * C;
      if (frames == 0) {
        std::fill(dst, dst + 2 * C, 0.0f);
        continue;
      }
      // Global context: the per-channel mean and std over the valid frames enter the TDNN as constant inputs, so
      // their share of the product is one offset per attention channel.
      for (std::size_t a = 0; a < A; ++a) offset[a] = w.tdnn_bias[a];
      if (s.global_context) {
        auto global = [&](std::size_t begin, std::size_t end) {
          for (std::size_t c = begin; c < end; ++c)
            statistics(xb + c * L, nullptr, frames, eps, &context[c], &context[C + c]);
        };
        if (Status st = parallel_for(C, grain_for_bytes(frames * 8), global); st != Status::ok) return st;
        if (Status st = matmul(context.data(), 2 * C, w.tdnn_weight + C, 3 * C, true, w.tdnn_bias, offset.data(), A, 1,
                               2 * C, A, false);
            st != Status::ok)
          return st;
      }
      // h = tanh(BN(relu(W_x · x + offset))), [A, frames].
      if (Status st = matmul(w.tdnn_weight, in_channels, xb, L, false, nullptr, h.data(), frames, A, C, frames, true);
          st != Status::ok)
        return st;
      auto activate = [&](std::size_t begin, std::size_t end) {
        for (std::size_t a = begin; a < end; ++a) {
          float* row = h.data() + a * frames;
          for (std::size_t t = 0; t < frames; ++t)
            row[t] = std::tanh(std::max(row[t] + offset[a], 0.0f) * bn_scale[a] + bn_shift[a]);
        }
      };
      if (Status st = parallel_for(A, grain_for_bytes(frames * 16), activate); st != Status::ok) return st;
      // e = W_c · h + b_c, [C, frames]; softmax over time per channel; attentive mean and std.
      if (Status st = matmul(w.conv_weight, A, h.data(), frames, false, nullptr, e.data(), frames, C, A, frames, true);
          st != Status::ok)
        return st;
      auto pool = [&](std::size_t begin, std::size_t end) {
        for (std::size_t c = begin; c < end; ++c) {
          float* row = e.data() + c * frames;
          float m = -INFINITY;
          for (std::size_t t = 0; t < frames; ++t) m = std::max(m, row[t] += w.conv_bias[c]);
          double sum = 0;
          for (std::size_t t = 0; t < frames; ++t) sum += row[t] = std::exp(row[t] - m);
          const float inverse = static_cast<float>(1.0 / sum);
          for (std::size_t t = 0; t < frames; ++t) row[t] *= inverse;
          statistics(xb + c * L, row, frames, eps, &dst[c], &dst[C + c]);
        }
      };
      if (Status st = parallel_for(C, grain_for_bytes(frames * 24), pool); st != Status::ok) return st;
    }
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::pooling
