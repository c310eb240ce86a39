// Multi-bit residual codes: BEBR's recurrent binarization (Gan et al., "Binary Embedding-based Retrieval at
// Tencent", KDD 2023) with its fixed plane weights 2^-t, without the trained transforms: x ~ alpha * sum_t 2^-t s_t.
//
// Given alpha, choosing each plane as the sign of what the earlier planes leave picks, per coordinate, the nearest
// point of the uniform grid alpha * {odd multiples of 2^-(planes-1)} (a binary search over it); given the planes,
// the least-squares alpha is <x, v> / <v, v>. Alternating the two never raises the squared error. It starts from
// the optimum scale for Gaussian data and stops when the planes stop changing (or after kMaxRounds), always ending
// with the least-squares alpha of the planes it stores.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tessera/binary.h"
#include "tessera/runtime.h"

namespace tessera::binary {
namespace {

// A row's planes spell, per coordinate, an odd level m in [-(2^planes - 1), 2^planes - 1]: the reconstruction is
// alpha * m * 2^-(planes-1), and the greedy sign-of-the-residual choice is m = 2 ceil(y / 2) - 1 with y = x / step,
// clamped (ties, where the residual is exactly zero, go down, as "sign > 0" does). Its bits, from the top, are the
// planes: u = (m + 2^planes - 1) / 2, plane t = bit (planes - 1 - t) of u.
constexpr int kMaxRounds = 64;  // Gaussian rows of 1536 dims converge in about 20

// Max's optimum uniform quantizer steps for a unit Gaussian with 2, 4, 8, 16 levels (J. Max, "Quantizing for
// minimum distortion", IRE Trans. Information Theory, 1960), as alpha = 2^(planes-2) * step: the starting scale,
// from which alternating converges in a few rounds.
constexpr double kStartAlpha[kMaxPlanes] = {0.7979, 0.9957, 2 * 0.5860, 4 * 0.3352};

struct RowScratch {
  std::vector<double> r;   // the centred row
  std::vector<int> level;  // the odd level of each coordinate
};

// Greedy levels for a scale; returns whether any changed.
bool choose_levels(const std::vector<double>& r, std::size_t planes, double alpha, std::vector<int>& level) {
  const int top = (1 << planes) - 1;
  const double inverse_step = 1.0 / std::ldexp(alpha, -static_cast<int>(planes - 1));
  bool changed = false;
  for (std::size_t i = 0; i < r.size(); ++i) {
    const double y = r[i] * inverse_step;
    const int m = std::isfinite(y) ? static_cast<int>(std::clamp(2 * std::ceil(y / 2) - 1, double(-top), double(top))) : -1;
    changed |= m != level[i];
    level[i] = m;
  }
  return changed;
}

double least_squares_alpha(const std::vector<double>& r, std::size_t planes, const std::vector<int>& level) {
  double xm = 0, mm = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    xm += r[i] * level[i];
    mm += static_cast<double>(level[i]) * level[i];
  }
  return mm > 0 ? std::ldexp(xm / mm, static_cast<int>(planes - 1)) : 0.0;
}

void encode_row(const float* x, std::size_t dim, std::size_t planes, const float* center, RowScratch& s,
                std::uint8_t* out) {
  s.r.resize(dim);
  s.level.assign(dim, 0);  // not a level: the first round always counts as a change
  double sum_squares = 0;
  for (std::size_t i = 0; i < dim; ++i) {
    s.r[i] = static_cast<double>(x[i]) - (center ? center[i] : 0.0f);
    sum_squares += s.r[i] * s.r[i];
  }
  double alpha = kStartAlpha[planes - 1] * std::sqrt(sum_squares / static_cast<double>(dim));
  if (alpha > 0) {
    for (int round = 0; round < kMaxRounds; ++round) {
      const bool changed = choose_levels(s.r, planes, alpha, s.level);
      alpha = least_squares_alpha(s.r, planes, s.level);  // always last: alpha fits the stored planes exactly
      if (!changed || !(alpha > 0)) break;
    }
  } else {
    s.level.assign(dim, -1);  // an all-zero row (or NaN): every plane -1, scale alpha (0 or NaN)
  }
  const std::size_t bytes = code_bytes(dim);
  std::memset(out, 0, planes * bytes);
  const int top = (1 << planes) - 1;
  for (std::size_t i = 0; i < dim; ++i) {
    const auto u = static_cast<unsigned>((s.level[i] + top) / 2);
    for (std::size_t t = 0; t < planes; ++t)
      if ((u >> (planes - 1 - t)) & 1u) out[t * bytes + i / 8] |= static_cast<std::uint8_t>(0x80u >> (i % 8));
  }
  const float a = static_cast<float>(alpha);
  std::memcpy(out + planes * bytes, &a, sizeof a);  // little-endian hosts only, as every Tessera format
}

}  // namespace

Status residual_encode(const float* x, std::size_t rows, std::size_t dim, std::size_t planes, const float* center,
                       std::uint8_t* out) noexcept {
  if (dim == 0 || planes == 0 || planes > kMaxPlanes) return Status::invalid_argument;
  if (rows > std::numeric_limits<std::size_t>::max() / (dim * sizeof(float))) return Status::invalid_argument;
  if (rows == 0) return Status::ok;
  if (x == nullptr || out == nullptr) return Status::invalid_argument;
  const std::size_t row_bytes = residual_row_bytes(dim, planes);
  try {
    auto body = [&](std::size_t begin, std::size_t end) {
      RowScratch scratch;
      for (std::size_t r = begin; r < end; ++r) encode_row(x + r * dim, dim, planes, center, scratch, out + r * row_bytes);
    };
    return parallel_for(rows, std::max<std::size_t>(1, 4096 / dim), body);
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status residual_decode(const std::uint8_t* codes, std::size_t rows, std::size_t dim, std::size_t planes,
                       const float* center, float* out) noexcept {
  if (dim == 0 || planes == 0 || planes > kMaxPlanes) return Status::invalid_argument;
  if (rows > std::numeric_limits<std::size_t>::max() / (dim * sizeof(float))) return Status::invalid_argument;
  if (rows == 0) return Status::ok;
  if (codes == nullptr || out == nullptr) return Status::invalid_argument;
  const std::size_t bytes = code_bytes(dim), row_bytes = residual_row_bytes(dim, planes);
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r) {
      const std::uint8_t* code = codes + r * row_bytes;
      float alpha;
      std::memcpy(&alpha, code + planes * bytes, sizeof alpha);
      float* y = out + r * dim;
      for (std::size_t i = 0; i < dim; ++i) {
        float v = 0;  // an exact sum: odd multiples of 2^-(planes-1)
        for (std::size_t t = 0; t < planes; ++t) {
          const bool on = (code[t * bytes + i / 8] >> (7 - i % 8)) & 1u;
          v += on ? std::ldexp(1.0f, -static_cast<int>(t)) : -std::ldexp(1.0f, -static_cast<int>(t));
        }
        y[i] = alpha * v + (center ? center[i] : 0.0f);
      }
    }
  };
  return parallel_for(rows, grain_for_bytes(dim * sizeof(float)), body);
}

}  // namespace tessera::binary
