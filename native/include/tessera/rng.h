// Tessera's random generator: SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
// OOPSLA 2014; constants from Vigna's reference splitmix64.c), used in counter form so that any element of a random
// matrix can be made independently, by any thread, on the host. CUDA kernels receive matrices made here.
//
// Specification (version 1; persisted files record it):
//   mix(z)       = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^ (z >> 31)
//   u64(seed, i) = mix(seed + (i + 1) * 0x9E3779B97F4A7C15)      (mod 2^64; i = 0, 1, ... is the counter)
//   uniform01    = (u64 >> 11) * 2^-53                            double in [0, 1)
//   uniform01f   = (u64 >> 40) * 2^-24                            float in [0, 1), exact
//   sign         = u64's top bit set ? -1 : +1
//   below(n)     = (u64 * n) >> 64 (128-bit product)              integer in [0, n), Lemire's multiply-shift
//   normal pair  = counters 2j, 2j+1: r = sqrt(-2 ln(1 - uniform01(2j))), t = 2π uniform01(2j+1);
//                  element 2j = r cos t, element 2j+1 = r sin t (double, then rounded where stored as float)
//   derive(seed, label) = mix(seed ^ mix(label + 0x9E3779B97F4A7C15))   an independent stream per purpose
// The sequence from seed s is exactly Vigna's splitmix64 started with state s.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tessera::rng {

constexpr std::uint32_t kAlgorithmVersion = 1;
constexpr std::uint64_t kGamma = 0x9E3779B97F4A7C15ull;

constexpr std::uint64_t mix(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
constexpr std::uint64_t u64(std::uint64_t seed, std::uint64_t counter) noexcept {
  return mix(seed + (counter + 1) * kGamma);
}
constexpr std::uint64_t derive(std::uint64_t seed, std::uint64_t label) noexcept {
  return mix(seed ^ mix(label + kGamma));
}
constexpr double to_uniform01(std::uint64_t u) noexcept { return static_cast<double>(u >> 11) * 0x1.0p-53; }
constexpr float to_uniform01f(std::uint64_t u) noexcept { return static_cast<float>(u >> 40) * 0x1.0p-24f; }
constexpr float to_sign(std::uint64_t u) noexcept { return (u >> 63) ? -1.0f : 1.0f; }
constexpr std::uint64_t to_below(std::uint64_t u, std::uint64_t n) noexcept {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(u) * n) >> 64);
}
// Element `index` of the standard normal stream (see the specification above).
double normal_at(std::uint64_t seed, std::uint64_t index) noexcept;

// Bulk fills of counters [offset, offset + n), threaded; identical for any thread count.
void fill_u64(std::uint64_t seed, std::uint64_t offset, std::uint64_t* out, std::size_t n) noexcept;
void fill_uniform(std::uint64_t seed, std::uint64_t offset, float* out, std::size_t n) noexcept;
void fill_normal(std::uint64_t seed, std::uint64_t offset, float* out, std::size_t n) noexcept;
void fill_signs(std::uint64_t seed, std::uint64_t offset, float* out, std::size_t n) noexcept;

}  // namespace tessera::rng
