// Helpers shared by the core's tests.
#pragma once

#include <cstdint>
#include <vector>

#include "tessera/rng.h"
#include "tessera/runtime.h"

namespace tessera::test {

// Every dispatch level this CPU can run, so each test covers each kernel path.
inline std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::scalar, SimdLevel::neon, SimdLevel::avx2, SimdLevel::avx512,
                      SimdLevel::avx512_vpopcntdq})
    if (simd_level_available(l)) out.push_back(l);
  return out;
}

// n standard normal floats from Tessera's generator (stream `seed`).
inline std::vector<float> normals(std::size_t n, std::uint64_t seed) {
  std::vector<float> v(n);
  rng::fill_normal(seed, 0, v.data(), n);
  return v;
}

// Restores the dispatch level and thread count a test changed.
struct RuntimeGuard {
  SimdLevel level = active_simd_level();
  std::size_t threads = thread_count();
  ~RuntimeGuard() {
    (void)set_simd_level(level);
    (void)set_thread_count(threads);
  }
};

}  // namespace tessera::test
