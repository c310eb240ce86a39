#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tessera/rng.h"
#include "test_util.h"

using namespace tessera;

TEST_CASE("SplitMix64 matches Vigna's reference sequence") {
  // splitmix64.c started with state 1234567 (the values published with the reference implementation).
  const std::uint64_t expected[] = {6457827717110365317ull, 3203168211198807973ull, 9817491932198370423ull,
                                    4593380528125082431ull, 16408922859458223821ull};
  for (int i = 0; i < 5; ++i) CHECK(rng::u64(1234567, i) == expected[i]);
}

TEST_CASE("transforms stay in range and use the documented bits") {
  CHECK(rng::to_uniform01(0) == 0.0);
  CHECK(rng::to_uniform01(~0ull) < 1.0);
  CHECK(rng::to_uniform01(~0ull) == 1.0 - 0x1.0p-53);
  CHECK(rng::to_uniform01f(~0ull) == 1.0f - 0x1.0p-24f);
  CHECK(rng::to_sign(1ull << 63) == -1.0f);
  CHECK(rng::to_sign((1ull << 63) - 1) == 1.0f);
  CHECK(rng::to_below(~0ull, 10) == 9);
  CHECK(rng::to_below(0, 10) == 0);
  CHECK(rng::derive(42, 1) != rng::derive(42, 2));
  CHECK(rng::derive(42, 1) != rng::derive(43, 1));
}

TEST_CASE("bulk fills equal element-wise generation for any offset and thread count") {
  test::RuntimeGuard guard;
  const std::uint64_t seed = 0xDEADBEEF;
  for (std::size_t threads : {1, 2, 7}) {
    REQUIRE(set_thread_count(threads) == Status::ok);
    for (std::uint64_t offset : {0ull, 1ull, 12345ull}) {
      const std::size_t n = 100003;
      std::vector<std::uint64_t> u(n);
      std::vector<float> f(n, NAN), g(n, NAN), s(n, NAN);
      rng::fill_u64(seed, offset, u.data(), n);
      rng::fill_uniform(seed, offset, f.data(), n);
      rng::fill_normal(seed, offset, g.data(), n);
      rng::fill_signs(seed, offset, s.data(), n);
      for (std::size_t i = 0; i < n; i += 97) {
        CHECK(u[i] == rng::u64(seed, offset + i));
        CHECK(f[i] == rng::to_uniform01f(rng::u64(seed, offset + i)));
        CHECK(g[i] == static_cast<float>(rng::normal_at(seed, offset + i)));
        CHECK(s[i] == rng::to_sign(rng::u64(seed, offset + i)));
      }
      CHECK(g[n - 1] == static_cast<float>(rng::normal_at(seed, offset + n - 1)));
    }
  }
}

TEST_CASE("normal stream has the moments of N(0, 1)") {
  const std::size_t n = 1 << 20;
  std::vector<float> g(n);
  rng::fill_normal(7, 0, g.data(), n);
  double m1 = 0, m2 = 0, m4 = 0;
  for (float x : g) {
    m1 += x;
    m2 += double(x) * x;
    m4 += double(x) * x * x * x;
  }
  m1 /= n, m2 /= n, m4 /= n;
  // Standard errors at n = 2^20: mean 0.001, variance 0.0014, fourth moment 0.01; bounds are about 5 sigma.
  CHECK(std::abs(m1) < 0.005);
  CHECK(std::abs(m2 - 1) < 0.007);
  CHECK(std::abs(m4 - 3) < 0.05);
}
