#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "tessera/fde.h"
#include "tessera/rng.h"
#include "test_util.h"

using namespace tessera;
using test::normals;

namespace {

// An independent float64 implementation of the algorithm in tessera/fde.h (as Google's reference describes it),
// from the generated matrices. Returns false when a SimHash value is so close to zero that float32 and float64 may
// disagree on its sign (then the cloud is not compared).
bool reference_fde(const fde::Config& c, const fde::Matrices& m, const float* x, std::size_t n, bool document,
                   std::vector<double>& out) {
  const std::size_t k = c.simhash_bits, B = c.partitions(), p = c.p(), dim = c.dim;
  std::vector<double> block(c.block_dim(), 0.0);
  for (std::size_t r = 0; r < c.repetitions; ++r) {
    std::vector<std::uint32_t> bits(n, 0), part(n, 0);
    for (std::size_t t = 0; t < n; ++t) {
      for (std::size_t j = 0; j < k; ++j) {
        double s = 0, scale = 0;
        for (std::size_t i = 0; i < dim; ++i) {
          const double g = m.simhash[i * c.repetitions * k + r * k + j];
          s += x[t * dim + i] * g;
          scale += std::abs(x[t * dim + i] * g);
        }
        if (std::abs(s) < 1e-4 * scale) return false;
        bits[t] = (bits[t] << 1) | (s > 0 ? 1u : 0u);
      }
      std::uint32_t g = 0, acc = 0;  // AppendToGrayCode, bit by bit from the top
      for (std::size_t j = 0; j < k; ++j) {
        const std::uint32_t b = (bits[t] >> (k - 1 - j)) & 1u;
        g = (g << 1) + (b ^ (g & 1u));
        (void)acc;
      }
      part[t] = g;
    }
    auto projected = [&](std::size_t t, std::vector<double>& y) {
      y.assign(p, 0.0);
      for (std::size_t i = 0; i < dim; ++i) {
        if (c.projection == fde::Projection::identity) y[i] += x[t * dim + i];
        else for (std::size_t col = 0; col < p; ++col) y[col] += x[t * dim + i] * m.projection[(r * dim + i) * p + col];
      }
    };
    std::vector<double> count(B, 0), y;
    for (std::size_t t = 0; t < n; ++t) {
      projected(t, y);
      for (std::size_t j = 0; j < p; ++j) block[(r * B + part[t]) * p + j] += y[j];
      count[part[t]] += 1;
    }
    for (std::size_t g = 0; g < B; ++g) {
      if (!document) continue;
      if (count[g] > 0) {
        for (std::size_t j = 0; j < p; ++j) block[(r * B + g) * p + j] /= count[g];
      } else if (c.fill_empty && k > 0) {
        const std::uint32_t pattern = static_cast<std::uint32_t>(g ^ (g >> 1));
        std::size_t best = 0;
        int best_d = 1 << 30;
        for (std::size_t t = 0; t < n; ++t) {
          const int d = std::popcount(bits[t] ^ pattern);
          if (d < best_d) best_d = d, best = t;  // strict: the lowest token index wins ties
        }
        projected(best, y);
        for (std::size_t j = 0; j < p; ++j) block[(r * B + g) * p + j] = y[j];
      }
    }
  }
  if (c.final_dim) {
    out.assign(c.final_dim, 0.0);
    for (std::size_t t = 0; t < block.size(); ++t) out[m.final_bucket[t]] += m.final_sign[t] * block[t];
  } else {
    out = block;
  }
  return true;
}

}  // namespace

TEST_CASE("FDE matrices follow the specification") {
  fde::Config c;
  c.dim = 10, c.repetitions = 3, c.simhash_bits = 4, c.projection = fde::Projection::countsketch, c.projection_dim = 6;
  c.final_dim = 50, c.seed = 7;
  fde::Matrices m;
  REQUIRE(fde::generate(c, &m) == Status::ok);
  REQUIRE(fde::matches(c, m));
  const std::uint64_t s1 = rng::derive(7, (1ull << 32) | 2);
  CHECK(m.simhash[3 * 12 + 2 * 4 + 1] == static_cast<float>(rng::normal_at(s1, 3 * 4 + 1)));
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t i = 0; i < 10; ++i) {
      int nonzero = 0;
      for (std::size_t col = 0; col < 6; ++col) {
        const float v = m.projection[(r * 10 + i) * 6 + col];
        CHECK((v == 0.0f || v == 1.0f || v == -1.0f));
        nonzero += v != 0.0f;
      }
      CHECK(nonzero == 1);  // count-sketch: exactly one ±1 per input coordinate
    }
  const std::uint64_t s2 = rng::derive(7, (2ull << 32) | 1);
  CHECK(m.projection[(1 * 10 + 4) * 6 + rng::to_below(rng::u64(s2, 8), 6)] == rng::to_sign(rng::u64(s2, 9)));
  const std::uint64_t s3 = rng::derive(7, 3ull << 32);
  CHECK(m.final_bucket[17] == static_cast<std::int32_t>(rng::to_below(rng::u64(s3, 34), 50)));
  c.projection = fde::Projection::dense;
  REQUIRE(fde::generate(c, &m) == Status::ok);
  for (float v : m.projection) CHECK(std::abs(std::abs(v) - 1.0f / std::sqrt(6.0f)) < 1e-7f);
  c.simhash_bits = 17;
  CHECK(fde::generate(c, &m) == Status::invalid_argument);
  c.simhash_bits = 3, c.projection_dim = 0;
  CHECK(fde::generate(c, &m) == Status::invalid_argument);
}

TEST_CASE("FDE encodings equal a float64 reference on every path, projection, fill and final sketch") {
  test::RuntimeGuard guard;
  struct Case {
    std::size_t dim, reps, k;
    fde::Projection proj;
    std::size_t p, final_dim;
    bool fill;
  };
  const Case cases[] = {{16, 3, 3, fde::Projection::countsketch, 8, 0, true},
                        {16, 2, 4, fde::Projection::dense, 5, 0, true},
                        {7, 2, 2, fde::Projection::identity, 0, 0, false},
                        {33, 4, 5, fde::Projection::countsketch, 16, 100, true},
                        {9, 1, 0, fde::Projection::identity, 0, 0, true},
                        // 256 partitions: long clouds leave many empty (the k-cube search), short ones few (the scan);
                        // an odd projection width pairs the last sketch row with nothing.
                        {24, 2, 8, fde::Projection::countsketch, 7, 0, true}};
  for (const Case& cs : cases) {
    fde::Config c;
    c.dim = cs.dim, c.repetitions = cs.reps, c.simhash_bits = cs.k, c.projection = cs.proj, c.projection_dim = cs.p;
    c.final_dim = cs.final_dim, c.fill_empty = cs.fill, c.seed = cs.dim * 31 + cs.k;
    fde::Matrices m;
    REQUIRE(fde::generate(c, &m) == Status::ok);
    // 200 tokens: a full 128-token sketch chunk and a 5-column one.
    const std::vector<std::int32_t> lengths = {1, 2, 7, 30, 3, 64, 200};
    std::size_t total = 0;
    for (auto l : lengths) total += static_cast<std::size_t>(l);
    const auto tokens = normals(total * c.dim, c.seed);
    for (bool document : {false, true}) {
      for (SimdLevel level : test::levels()) {
        REQUIRE(set_simd_level(level) == Status::ok);
        std::vector<float> out(lengths.size() * c.output_dim(), NAN);
        REQUIRE(fde::encode(c, m, tokens.data(), lengths.data(), lengths.size(), document, out.data()) == Status::ok);
        std::size_t off = 0, compared = 0;
        for (std::size_t d = 0; d < lengths.size(); ++d) {
          std::vector<double> want;
          const std::size_t n = static_cast<std::size_t>(lengths[d]);
          if (reference_fde(c, m, &tokens[off * c.dim], n, document, want)) {
            ++compared;
            for (std::size_t j = 0; j < want.size(); ++j) {
              const float got = out[d * c.output_dim() + j];
              REQUIRE(std::abs(got - want[j]) <= 1e-4 * (1 + std::abs(want[j])));
            }
          }
          off += n;
        }
        CHECK(compared >= lengths.size() - 1);
      }
    }
  }
}

TEST_CASE("FDE: one partition without projection gives the sum (query) and the mean (document)") {
  fde::Config c;
  c.dim = 5, c.repetitions = 1, c.simhash_bits = 0, c.projection = fde::Projection::identity;
  fde::Matrices m;
  REQUIRE(fde::generate(c, &m) == Status::ok);
  const auto x = normals(4 * 5, 3);
  const std::int32_t len = 4;
  std::vector<float> q(5), d(5);
  REQUIRE(fde::encode(c, m, x.data(), &len, 1, false, q.data()) == Status::ok);
  REQUIRE(fde::encode(c, m, x.data(), &len, 1, true, d.data()) == Status::ok);
  for (std::size_t j = 0; j < 5; ++j) {
    const float sum = ((x[j] + x[5 + j]) + x[10 + j]) + x[15 + j];
    CHECK(q[j] == sum);
    CHECK(d[j] == sum / 4);
  }
}

TEST_CASE("FDE batches are identical for any thread count, and reject empty clouds") {
  test::RuntimeGuard guard;
  fde::Config c;
  c.dim = 32;
  fde::Matrices m;
  REQUIRE(fde::generate(c, &m) == Status::ok);
  std::vector<std::int32_t> lengths(41);
  for (std::size_t i = 0; i < lengths.size(); ++i) lengths[i] = static_cast<std::int32_t>(1 + (i * 7) % 40);
  std::size_t total = 0;
  for (auto l : lengths) total += static_cast<std::size_t>(l);
  const auto tokens = normals(total * 32, 5);
  REQUIRE(set_thread_count(1) == Status::ok);
  std::vector<float> one(lengths.size() * c.output_dim());
  REQUIRE(fde::encode(c, m, tokens.data(), lengths.data(), lengths.size(), true, one.data()) == Status::ok);
  for (std::size_t threads : {2, 5, 64}) {
    REQUIRE(set_thread_count(threads) == Status::ok);
    std::vector<float> many(one.size(), NAN);
    REQUIRE(fde::encode(c, m, tokens.data(), lengths.data(), lengths.size(), true, many.data()) == Status::ok);
    CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0);
  }
  // A prepared state (what the bindings keep per encoder) encodes exactly as the standalone form.
  fde::State state{c, m, nullptr};
  std::vector<float> prepared(one.size(), NAN);
  CHECK(fde::encode(state, tokens.data(), lengths.data(), lengths.size(), true, prepared.data()) == Status::invalid_argument);
  REQUIRE(fde::prepare(&state) == Status::ok);
  REQUIRE(fde::encode(state, tokens.data(), lengths.data(), lengths.size(), true, prepared.data()) == Status::ok);
  CHECK(std::memcmp(one.data(), prepared.data(), one.size() * sizeof(float)) == 0);
  lengths[3] = 0;
  CHECK(fde::encode(c, m, tokens.data(), lengths.data(), lengths.size(), true, one.data()) == Status::invalid_argument);
  CHECK(fde::encode(state, tokens.data(), lengths.data(), lengths.size(), true, one.data()) == Status::invalid_argument);
  fde::Matrices wrong = m;
  wrong.simhash.pop_back();
  CHECK(fde::encode(c, wrong, tokens.data(), lengths.data(), 1, true, one.data()) == Status::invalid_argument);
}

TEST_CASE("Chamfer scores equal a float64 reference on every path and edge size") {
  test::RuntimeGuard guard;
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    for (std::size_t dim : {1, 3, 16, 128}) {
      for (std::size_t nq : {1, 5, 16, 17, 32, 33, 70}) {
        const std::vector<std::int32_t> lengths = {1, 2, 5, 6, 7, 8, 9, 100};
        std::size_t total = 0;
        for (auto l : lengths) total += static_cast<std::size_t>(l);
        const auto q = normals(nq * dim, dim * 100 + nq);
        const auto docs = normals(total * dim, dim * 1000 + nq);
        std::vector<float> out(lengths.size(), NAN);
        REQUIRE(fde::chamfer_scores(q.data(), nq, docs.data(), lengths.data(), lengths.size(), dim, out.data()) == Status::ok);
        std::size_t off = 0;
        for (std::size_t d = 0; d < lengths.size(); ++d) {
          double want = 0, magnitude = 0;
          for (std::size_t a = 0; a < nq; ++a) {
            double best = -INFINITY, best_mag = 0;
            for (std::size_t j = 0; j < static_cast<std::size_t>(lengths[d]); ++j) {
              double s = 0, mag = 0;
              for (std::size_t i = 0; i < dim; ++i) {
                s += static_cast<double>(q[a * dim + i]) * docs[(off + j) * dim + i];
                mag += std::abs(static_cast<double>(q[a * dim + i]) * docs[(off + j) * dim + i]);
              }
              if (s > best) best = s, best_mag = mag;
            }
            want += best;
            magnitude += best_mag + std::abs(best);
          }
          CHECK(std::abs(out[d] - want) <= magnitude * 1e-6 * static_cast<double>(dim + nq) + 1e-30);
          off += static_cast<std::size_t>(lengths[d]);
        }
      }
    }
  }
  const float one = 1;
  const std::int32_t zero = 0;
  float out;
  CHECK(fde::chamfer_scores(&one, 1, &one, &zero, 1, 1, &out) == Status::invalid_argument);
  CHECK(fde::chamfer_scores(&one, 0, &one, &zero, 0, 1, &out) == Status::invalid_argument);
}
