// Deep Interest Network's local activation unit (Zhou et al., KDD 2018, arXiv 1706.06978): an MLP scores each
// (candidate, behaviour) pair from [q, k, q - k, q ⊙ k]; the scores weight the behaviour embeddings. Learned from
// zhougr1993/DeepInterestNetwork din/model.py (attention, attention_multi_items); see tessera/pooling.h.
// Threaded over (row, candidate) units, each scoring its row's valid steps with single-threaded matrix products.
#include <algorithm>
#include <cmath>
#include <vector>

#include "matmul.h"
#include "tessera/memory.h"
#include "tessera/pooling.h"
#include "tessera/runtime.h"

namespace tessera::pooling {
namespace {

using attention::detail::matmul;

void activate(float* z, std::size_t rows, std::size_t units, Activation act, const float* slopes) {
  for (std::size_t i = 0; i < rows; ++i) {
    float* row = z + i * units;
    for (std::size_t u = 0; u < units; ++u) {
      const float v = row[u];
      switch (act) {
        case Activation::sigmoid: row[u] = 1.0f / (1.0f + std::exp(-v)); break;
        case Activation::relu: row[u] = v > 0 ? v : 0.0f; break;
        case Activation::prelu: row[u] = v > 0 ? v : slopes[u] * v; break;
      }
    }
  }
}

struct Scratch {
  std::vector<float> features, z1, z2, score;
};

}  // namespace

Status target_attention(const float* query, const float* keys, const TargetShape& s, const TargetWeights& w,
                        const std::int32_t* lengths, Activation act, bool softmax, float* out) noexcept {
  std::size_t n_q = 0, n_k = 0, n = 0;
  if (s.dim == 0 || s.hidden1 == 0 || s.hidden2 == 0) return Status::invalid_argument;
  if (act != Activation::sigmoid && act != Activation::relu && act != Activation::prelu) return Status::invalid_argument;
  if (!element_count({s.batch, s.items, s.dim}, &n_q) || !element_count({s.batch, s.seq, s.dim}, &n_k) ||
      !element_count({4, s.dim, s.hidden1}, &n) || !element_count({s.hidden1, s.hidden2}, &n) ||
      !element_count({s.seq, 4, s.dim}, &n) || !element_count({s.seq, s.hidden1 + s.hidden2}, &n))
    return Status::invalid_argument;
  if (n_q == 0) return Status::ok;
  if (!query || !out || (n_k > 0 && !keys)) return Status::invalid_argument;
  if (!w.w1 || !w.b1 || !w.w2 || !w.b2 || !w.w3 || !w.b3) return Status::invalid_argument;
  if (act == Activation::prelu && (!w.prelu1 || !w.prelu2)) return Status::invalid_argument;
  if (lengths)
    for (std::size_t b = 0; b < s.batch; ++b)
      if (lengths[b] < 0 || static_cast<std::size_t>(lengths[b]) > s.seq) return Status::invalid_argument;
  if (bytes_overlap(out, n_q * sizeof(float), query, n_q * sizeof(float)) ||
      bytes_overlap(out, n_q * sizeof(float), keys, n_k * sizeof(float)))
    return Status::invalid_argument;

  const std::size_t H = s.dim, units = s.batch * s.items, h1 = s.hidden1, h2 = s.hidden2;
  const double inverse_sqrt_dim = 1.0 / std::sqrt(static_cast<double>(H));
  try {
    const std::size_t slots = slots_for(units, 1);
    std::vector<Scratch> scratch(slots);
    for (Scratch& sc : scratch) {
      sc.features.resize(s.seq * 4 * H), sc.z1.resize(s.seq * h1), sc.z2.resize(s.seq * h2), sc.score.resize(s.seq);
    }
    auto body = [&](std::size_t begin, std::size_t end, std::size_t slot) {
      Scratch& sc = scratch[slot];
      for (std::size_t u = begin; u < end; ++u) {
        const std::size_t b = u / s.items;
        const std::size_t steps = lengths ? static_cast<std::size_t>(lengths[b]) : s.seq;
        const float* q = query + u * H;
        const float* kb = keys + b * s.seq * H;
        float* dst = out + u * H;
        std::fill(dst, dst + H, 0.0f);
        if (steps == 0) continue;
        for (std::size_t t = 0; t < steps; ++t) {
          const float* k = kb + t * H;
          float* f = sc.features.data() + t * 4 * H;
          for (std::size_t d = 0; d < H; ++d) {
            f[d] = q[d], f[H + d] = k[d], f[2 * H + d] = q[d] - k[d], f[3 * H + d] = q[d] * k[d];
          }
        }
        (void)matmul(sc.features.data(), 4 * H, w.w1, h1, false, w.b1, sc.z1.data(), h1, steps, 4 * H, h1, false);
        activate(sc.z1.data(), steps, h1, act, w.prelu1);
        (void)matmul(sc.z1.data(), h1, w.w2, h2, false, w.b2, sc.z2.data(), h2, steps, h1, h2, false);
        activate(sc.z2.data(), steps, h2, act, w.prelu2);
        for (std::size_t t = 0; t < steps; ++t) {
          const float* z = sc.z2.data() + t * h2;
          float acc = w.b3[0];
          for (std::size_t j = 0; j < h2; ++j) acc += z[j] * w.w3[j];
          sc.score[t] = acc;
        }
        if (softmax) {
          float m = -INFINITY;
          for (std::size_t t = 0; t < steps; ++t) m = std::max(m, static_cast<float>(sc.score[t] * inverse_sqrt_dim));
          double sum = 0;
          for (std::size_t t = 0; t < steps; ++t)
            sum += sc.score[t] = std::exp(static_cast<float>(sc.score[t] * inverse_sqrt_dim) - m);
          const float inverse = static_cast<float>(1.0 / sum);
          for (std::size_t t = 0; t < steps; ++t) sc.score[t] *= inverse;
        }
        for (std::size_t t = 0; t < steps; ++t) {
          const float a = sc.score[t];
          const float* k = kb + t * H;
          for (std::size_t d = 0; d < H; ++d) dst[d] += a * k[d];
        }
      }
    };
    return parallel_for(units, 1, body, slots);
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::pooling
