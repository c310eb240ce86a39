#include <cmath>
#include <limits>

#include "tessera/fde.h"
#include "tessera/rng.h"

namespace tessera::fde {
namespace {

constexpr std::uint64_t kSimhash = 1, kProjection = 2, kFinal = 3;

std::uint64_t stream(std::uint64_t seed, std::uint64_t kind, std::uint64_t repetition) {
  return rng::derive(seed, (kind << 32) | repetition);
}

}  // namespace

bool valid(const Config& c) noexcept {
  if (c.dim == 0 || c.dim > (std::size_t{1} << 20) || c.repetitions == 0 || c.repetitions > 4096) return false;
  if (c.simhash_bits > kMaxSimhashBits) return false;
  if (c.projection != Projection::identity && (c.projection_dim == 0 || c.projection_dim > (std::size_t{1} << 16)))
    return false;
  // The block is computed before any final projection: it must fit too.
  const double block = static_cast<double>(c.repetitions) * static_cast<double>(c.partitions()) * static_cast<double>(c.p());
  if (block > static_cast<double>(kMaxOutputDim) || c.final_dim > kMaxOutputDim) return false;
  // The matrices too stay within the same bound (a generous one: 256 MiB each).
  const double simhash = static_cast<double>(c.dim) * static_cast<double>(c.repetitions) * static_cast<double>(c.simhash_bits);
  const double projection = c.projection == Projection::identity ? 0.0 : static_cast<double>(c.repetitions) * static_cast<double>(c.dim) * static_cast<double>(c.p());
  return simhash <= static_cast<double>(kMaxOutputDim) && projection <= static_cast<double>(kMaxOutputDim);
}

Status generate(const Config& c, Matrices* out) noexcept {
  if (!valid(c)) return Status::invalid_argument;
  try {
    const std::size_t k = c.simhash_bits, rk = c.repetitions * k, p = c.p();
    out->simhash.assign(c.dim * rk, 0.0f);
    for (std::size_t r = 0; r < c.repetitions; ++r) {
      const std::uint64_t s = stream(c.seed, kSimhash, r);
      for (std::size_t i = 0; i < c.dim; ++i)
        for (std::size_t j = 0; j < k; ++j)
          out->simhash[i * rk + r * k + j] = static_cast<float>(rng::normal_at(s, i * k + j));
    }
    out->projection.clear();
    if (c.projection != Projection::identity) {
      out->projection.assign(c.repetitions * c.dim * p, 0.0f);
      const float scale = 1.0f / std::sqrt(static_cast<float>(p));
      for (std::size_t r = 0; r < c.repetitions; ++r) {
        const std::uint64_t s = stream(c.seed, kProjection, r);
        float* m = out->projection.data() + r * c.dim * p;
        for (std::size_t i = 0; i < c.dim; ++i) {
          if (c.projection == Projection::countsketch) {
            m[i * p + rng::to_below(rng::u64(s, 2 * i), p)] = rng::to_sign(rng::u64(s, 2 * i + 1));
          } else {
            for (std::size_t col = 0; col < p; ++col) m[i * p + col] = rng::to_sign(rng::u64(s, i * p + col)) * scale;
          }
        }
      }
    }
    out->final_bucket.clear();
    out->final_sign.clear();
    if (c.final_dim) {
      const std::size_t n = c.block_dim();
      out->final_bucket.resize(n);
      out->final_sign.resize(n);
      const std::uint64_t s = stream(c.seed, kFinal, 0);
      for (std::size_t t = 0; t < n; ++t) {
        out->final_bucket[t] = static_cast<std::int32_t>(rng::to_below(rng::u64(s, 2 * t), c.final_dim));
        out->final_sign[t] = rng::to_sign(rng::u64(s, 2 * t + 1));
      }
    }
  } catch (...) {
    return Status::out_of_memory;
  }
  return Status::ok;
}

bool matches(const Config& c, const Matrices& m) noexcept {
  if (!valid(c)) return false;
  if (m.simhash.size() != c.dim * c.repetitions * c.simhash_bits) return false;
  const std::size_t proj = c.projection == Projection::identity ? 0 : c.repetitions * c.dim * c.p();
  if (m.projection.size() != proj) return false;
  const std::size_t fin = c.final_dim ? c.block_dim() : 0;
  if (m.final_bucket.size() != fin || m.final_sign.size() != fin) return false;
  for (std::int32_t b : m.final_bucket)
    if (b < 0 || static_cast<std::size_t>(b) >= c.final_dim) return false;
  return true;
}

}  // namespace tessera::fde
