// Bulk fills of the counter-based SplitMix64 streams specified in tessera/rng.h.
#include <cmath>

#include "tessera/rng.h"
#include "tessera/runtime.h"

namespace tessera::rng {
namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;

// The normal pair made from counters 2j and 2j+1.
void normal_pair(std::uint64_t seed, std::uint64_t j, double* a, double* b) noexcept {
  const double u1 = to_uniform01(u64(seed, 2 * j));
  const double u2 = to_uniform01(u64(seed, 2 * j + 1));
  const double r = std::sqrt(-2.0 * std::log1p(-u1));  // 1 - u1 is in (0, 1]: the log is finite
  const double t = kTwoPi * u2;
  *a = r * std::cos(t);
  *b = r * std::sin(t);
}

template <class Fill>
void fill_parallel(std::size_t n, std::size_t bytes_per_item, Fill fill) noexcept {
  auto body = [&](std::size_t begin, std::size_t end) { fill(begin, end); };
  // The fills cannot throw, so parallel_for can only succeed; chunks are independent by construction.
  (void)parallel_for(n, grain_for_bytes(bytes_per_item, std::size_t{1} << 15), body);
}

}  // namespace

double normal_at(std::uint64_t seed, std::uint64_t index) noexcept {
  double a, b;
  normal_pair(seed, index / 2, &a, &b);
  return (index & 1) ? b : a;
}

void fill_u64(std::uint64_t seed, std::uint64_t offset, std::uint64_t* out, std::size_t n) noexcept {
  fill_parallel(n, 8, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) out[i] = u64(seed, offset + i);
  });
}

void fill_uniform(std::uint64_t seed, std::uint64_t offset, float* out, std::size_t n) noexcept {
  fill_parallel(n, 4, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) out[i] = to_uniform01f(u64(seed, offset + i));
  });
}

void fill_signs(std::uint64_t seed, std::uint64_t offset, float* out, std::size_t n) noexcept {
  fill_parallel(n, 4, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) out[i] = to_sign(u64(seed, offset + i));
  });
}

void fill_normal(std::uint64_t seed, std::uint64_t offset, float* out, std::size_t n) noexcept {
  // Costlier per element (log, sqrt, sin, cos): smaller chunks balance better.
  fill_parallel(n, 64, [&](std::size_t begin, std::size_t end) {
    std::size_t i = begin;
    if (i < end && ((offset + i) & 1)) {  // a chunk that starts on the second element of a pair
      out[i] = static_cast<float>(normal_at(seed, offset + i));
      ++i;
    }
    for (; i + 1 < end; i += 2) {
      double a, b;
      normal_pair(seed, (offset + i) / 2, &a, &b);
      out[i] = static_cast<float>(a);
      out[i + 1] = static_cast<float>(b);
    }
    if (i < end) out[i] = static_cast<float>(normal_at(seed, offset + i));
  });
}

}  // namespace tessera::rng
