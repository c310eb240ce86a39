#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "tessera/rng.h"
#include "tessera/vectors.h"
#include "test_util.h"

using namespace tessera;

namespace {

// float64 reference of one truncated, normalised row.
std::vector<double> reference_row(const float* x, std::size_t keep) {
  double ss = 0;
  for (std::size_t i = 0; i < keep; ++i) ss += double(x[i]) * x[i];
  std::vector<double> y(keep);
  for (std::size_t i = 0; i < keep; ++i) y[i] = ss == 0 ? x[i] : x[i] / std::sqrt(ss);
  return y;
}

std::vector<float> random_rows(std::size_t rows, std::size_t dim, std::uint64_t seed, float scale = 1) {
  std::vector<float> v(rows * dim);
  rng::fill_normal(seed, 0, v.data(), v.size());
  for (float& x : v) x *= scale;
  return v;
}

// Half an ulp of the exact value, plus the float64 rounding that can tip a tie: the bound the kernel documents.
void check_close(float got, double want) {
  const double bound = std::abs(want) * (0x1.0p-24 + 1e-12) + std::numeric_limits<float>::denorm_min();
  CHECK(std::abs(double(got) - want) <= bound);
}

}  // namespace

TEST_CASE("matryoshka matches a float64 reference on every kernel path and edge size") {
  test::RuntimeGuard guard;
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    CAPTURE(simd_level_name(level));
    for (std::size_t dim : {1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 127, 768, 1025}) {
      for (std::size_t keep : {std::size_t{1}, dim / 2 + 1, dim - 1, dim}) {
        if (keep == 0 || keep > dim) continue;
        const std::size_t rows = 13;
        const auto in = random_rows(rows, dim, dim * 1000 + keep);
        std::vector<float> out(rows * keep, NAN);  // poisoned: every element must be written
        REQUIRE(vectors::matryoshka(in.data(), rows, dim, keep, true, out.data()) == Status::ok);
        for (std::size_t r = 0; r < rows; ++r) {
          const auto want = reference_row(&in[r * dim], keep);
          for (std::size_t i = 0; i < keep; ++i) check_close(out[r * keep + i], want[i]);
        }
        std::vector<float> plain(rows * keep, NAN);
        REQUIRE(vectors::matryoshka(in.data(), rows, dim, keep, false, plain.data()) == Status::ok);
        for (std::size_t r = 0; r < rows; ++r)
          CHECK(std::memcmp(&plain[r * keep], &in[r * dim], keep * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("extreme magnitudes neither overflow nor underflow; zero rows stay zero; NaN propagates") {
  test::RuntimeGuard guard;
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    const std::size_t dim = 37;
    for (float scale : {1e30f, 1e-30f, 1e-40f /* subnormal */, 6e37f /* near FLT_MAX */}) {
      const auto in = random_rows(3, dim, 5, scale);
      std::vector<float> out(in.size(), NAN);
      REQUIRE(vectors::l2_normalize(in.data(), 3, dim, out.data()) == Status::ok);
      for (std::size_t r = 0; r < 3; ++r) {
        const auto want = reference_row(&in[r * dim], dim);
        for (std::size_t i = 0; i < dim; ++i) check_close(out[r * dim + i], want[i]);
      }
    }
    std::vector<float> zeros(2 * dim, 0.0f), out(2 * dim, NAN);
    zeros[dim + 5] = 0.0f;
    REQUIRE(vectors::l2_normalize(zeros.data(), 2, dim, out.data()) == Status::ok);
    for (float v : out) CHECK(v == 0.0f);
    auto nan_row = random_rows(1, dim, 6);
    nan_row[3] = NAN;
    std::vector<float> nan_out(dim, 0.0f);
    REQUIRE(vectors::l2_normalize(nan_row.data(), 1, dim, nan_out.data()) == Status::ok);
    for (float v : nan_out) CHECK(std::isnan(v));
  }
}

TEST_CASE("results are bit-identical for any thread count, and in place equals out of place") {
  test::RuntimeGuard guard;
  const std::size_t rows = 3001, dim = 96, keep = 48;
  const auto in = random_rows(rows, dim, 11);
  REQUIRE(set_thread_count(1) == Status::ok);
  std::vector<float> one(rows * keep, NAN);
  REQUIRE(vectors::matryoshka(in.data(), rows, dim, keep, true, one.data()) == Status::ok);
  for (std::size_t threads : {2, 5, 64}) {
    REQUIRE(set_thread_count(threads) == Status::ok);
    std::vector<float> many(rows * keep, NAN);
    REQUIRE(vectors::matryoshka(in.data(), rows, dim, keep, true, many.data()) == Status::ok);
    CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0);
  }
  std::vector<float> full(rows * dim, NAN), inplace = in;
  REQUIRE(vectors::l2_normalize(in.data(), rows, dim, full.data()) == Status::ok);
  REQUIRE(vectors::l2_normalize(inplace.data(), rows, dim, inplace.data()) == Status::ok);
  CHECK(std::memcmp(full.data(), inplace.data(), full.size() * sizeof(float)) == 0);
}

TEST_CASE("bad shapes and overlaps are rejected, empty input is fine") {
  std::vector<float> buf(64, 1.0f);
  CHECK(vectors::matryoshka(buf.data(), 4, 0, 0, true, buf.data()) == Status::invalid_argument);
  CHECK(vectors::matryoshka(buf.data(), 4, 16, 0, true, buf.data()) == Status::invalid_argument);
  CHECK(vectors::matryoshka(buf.data(), 4, 16, 17, true, buf.data()) == Status::invalid_argument);
  CHECK(vectors::matryoshka(nullptr, 4, 16, 8, true, buf.data()) == Status::invalid_argument);
  CHECK(vectors::matryoshka(buf.data(), SIZE_MAX / 2, 16, 8, true, buf.data()) == Status::invalid_argument);
  // Truncating in place would let one thread's output overwrite another's input.
  CHECK(vectors::matryoshka(buf.data(), 4, 16, 8, true, buf.data()) == Status::invalid_argument);
  CHECK(vectors::matryoshka(buf.data(), 2, 16, 16, true, buf.data() + 8) == Status::invalid_argument);
  CHECK(vectors::matryoshka(nullptr, 0, 16, 8, true, nullptr) == Status::ok);
  CHECK(vectors::sum_squares(buf.data(), 0) == 0.0);
  CHECK(vectors::sum_squares(buf.data(), 63) == 63.0);
}
