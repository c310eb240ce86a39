#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tessera/half.h"
#include "tessera/rng.h"
#include "tessera/rope.h"
#include "test_util.h"

using namespace tessera;
using test::normals;

namespace {

std::vector<double> default_frequencies(std::size_t rot, double base) {
  std::vector<double> f(rot / 2);
  for (std::size_t i = 0; i < f.size(); ++i) f[i] = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(rot));
  return f;
}

// Nearest half (binary16) to v by search over every finite half value, ties to the even code: independent of the
// bit manipulation under test.
struct HalfTable {
  std::vector<std::pair<double, std::uint16_t>> values;  // non-negative finite halves, ascending
  HalfTable() {
    for (std::uint32_t h = 0; h < 0x7C00; ++h) {
      const std::uint32_t e = h >> 10, m = h & 0x3FF;
      const double v = e == 0 ? std::ldexp(static_cast<double>(m), -24) : std::ldexp(1.0 + m / 1024.0, static_cast<int>(e) - 15);
      values.emplace_back(v, static_cast<std::uint16_t>(h));
    }
  }
  std::uint16_t nearest(float f) const {
    const double a = std::fabs(static_cast<double>(f));
    const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    if (a >= 65520.0) return sign | 0x7C00;
    auto it = std::lower_bound(values.begin(), values.end(), std::make_pair(a, std::uint16_t{0}));
    if (it == values.end()) return sign | values.back().second;  // between 65504 and 65520: rounds down
    if (it == values.begin() || it->first == a) return sign | it->second;
    const auto below = *(it - 1), above = *it;
    const double d0 = a - below.first, d1 = above.first - a;
    if (d0 < d1) return sign | below.second;
    if (d1 < d0) return sign | above.second;
    return sign | ((below.second & 1) == 0 ? below.second : above.second);
  }
};

// Nearest bfloat16 by comparing the two candidates around v in float64, ties to the even code.
std::uint16_t nearest_bf16(float f) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  const auto low = static_cast<std::uint16_t>(bits >> 16), high = static_cast<std::uint16_t>(low + 1);
  const double v = f, a = bf16_to_f32(low), b = bf16_to_f32(high);
  const double da = std::fabs(v - a), db = std::fabs(v - b);  // callers keep v below the largest bfloat16
  if (da < db) return low;
  if (db < da) return high;
  return (low & 1) == 0 ? low : high;
}

double to_double(rope::DType dtype, const void* data, std::size_t i) {
  switch (dtype) {
    case rope::DType::f32: return static_cast<const float*>(data)[i];
    case rope::DType::f16: return f16_to_f32(static_cast<const std::uint16_t*>(data)[i]);
    default: return bf16_to_f32(static_cast<const std::uint16_t*>(data)[i]);
  }
}

// Spacing of the storage type at magnitude v (its ulp), for the half types' bound.
double storage_ulp(rope::DType dtype, double v) {
  const int mantissa = dtype == rope::DType::f32 ? 23 : dtype == rope::DType::f16 ? 10 : 7;
  const int min_exponent = dtype == rope::DType::f16 ? -14 : -126;
  const int e = v == 0 ? min_exponent : std::max(min_exponent, static_cast<int>(std::floor(std::log2(std::fabs(v)))));
  return std::ldexp(1.0, e - mantissa);
}

}  // namespace

TEST_CASE("half conversions round to nearest even, against a search over every value") {
  const HalfTable table;
  // Every half widens exactly and narrows back to itself; NaN stays NaN.
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(static_cast<std::uint16_t>(h));
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0) {
      CHECK(std::isnan(f));
      CHECK(std::isnan(f16_to_f32(f32_to_f16(f))));
    } else {
      REQUIRE(f32_to_f16(f) == h);
    }
    CHECK(f32_to_bf16(bf16_to_f32(static_cast<std::uint16_t>(h))) == ((h & 0x7FFF) > 0x7F80 ? (h | 0x40) : h));
  }
  // Random floats over the whole range, midpoints and the overflow boundary.
  std::uint64_t state = 7;
  std::vector<float> samples = {65504.0f, 65519.99f, 65520.0f, 1e-8f, 2.98023224e-8f, 5.96046448e-8f, -0.0f,
                                0x1p-25f, std::nextafter(0x1p-25f, 1.0f), 0x1p-14f, 1.0f + 0x1p-11f, 3.0e38f};
  for (int i = 0; i < 200000; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    samples.push_back(std::bit_cast<float>(static_cast<std::uint32_t>(state >> 32)));
  }
  for (float f : samples) {
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_f16(f) == table.nearest(f));
    if (std::fabs(f) < 3.3e38f) REQUIRE(f32_to_bf16(f) == nearest_bf16(f));
  }
}

TEST_CASE("RoPE cos/sin keep the phase exact at long positions, on every level") {
  test::RuntimeGuard guard;
  const auto f = default_frequencies(128, 10000.0);
  const std::vector<double> positions = {0, 1, 17, 4095, 65535, 500000, 999999, 123456.75, -3, 2147483647.0, 1e9 + 0.5};
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    for (double factor : {1.0, 0.7071}) {
      std::vector<float> cos(positions.size() * 64, NAN), sin(positions.size() * 64, NAN);
      const rope::Positions p{positions.data(), rope::PositionType::f64, false};
      REQUIRE(rope::cos_sin(p, positions.size(), f.data(), 64, factor, cos.data(), sin.data()) == Status::ok);
      double worst = 0;
      for (std::size_t t = 0; t < positions.size(); ++t)
        for (std::size_t i = 0; i < 64; ++i) {
          const double theta = positions[t] * f[i];  // the same float64 angle; std::cos/sin are the reference
          worst = std::max({worst, std::fabs(cos[t * 64 + i] - factor * std::cos(theta)),
                            std::fabs(sin[t * 64 + i] - factor * std::sin(theta))});
        }
      CHECK(worst <= 1.2e-7);  // float32 rounding of a value below 1 (6e-8) plus the polynomial (< 1e-11)
    }
  }
}

TEST_CASE("RoPE in place equals a float64 reference for every layout, style, type, position kind and level") {
  test::RuntimeGuard guard;
  struct Case {
    std::size_t batch, seq, heads, head_dim, rot;
  };
  const Case cases[] = {{1, 1, 1, 2, 2},   {2, 5, 3, 16, 16},   {1, 7, 2, 130, 98}, {3, 4, 1, 64, 32},
                        {2, 3, 4, 80, 80}, {1, 17, 3, 34, 34}, {1, 2, 5, 128, 128}};
  std::uint64_t seed = 1;
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    for (const Case& cs : cases)
      for (auto layout : {rope::Layout::bshd, rope::Layout::bhsd})
        for (auto style : {rope::Style::neox, rope::Style::interleaved})
          for (auto dtype : {rope::DType::f32, rope::DType::f16, rope::DType::bf16})
            for (int source = 0; source < 3; ++source) {  // 0: inv_freq, int32 shared; 1: inv_freq, f64 per batch;
                                                          // 2: tables (scaled), f32 positions
              ++seed;
              const std::size_t half = cs.rot / 2, tokens = cs.batch * cs.seq, n = tokens * cs.heads * cs.head_dim;
              const auto values = normals(n, seed);
              std::vector<std::uint8_t> data(n * (dtype == rope::DType::f32 ? 4 : 2));
              for (std::size_t i = 0; i < n; ++i) {
                if (dtype == rope::DType::f32) std::memcpy(&data[i * 4], &values[i], 4);
                else {
                  const std::uint16_t h = dtype == rope::DType::f16 ? f32_to_f16(values[i]) : f32_to_bf16(values[i]);
                  std::memcpy(&data[i * 2], &h, 2);
                }
              }
              const std::vector<std::uint8_t> before = data;
              const bool per_batch = source == 1;
              const std::size_t npos = per_batch ? tokens : cs.seq;
              std::vector<std::int32_t> pi(npos);
              std::vector<double> pd(npos);
              std::vector<float> pf(npos);
              for (std::size_t i = 0; i < npos; ++i) {
                pi[i] = static_cast<std::int32_t>((i * 7919 + seed) % 70000);
                pd[i] = static_cast<double>(pi[i]) + (source == 1 ? 0.25 : 0.0) + (i == 0 ? 999999 : 0);
                pf[i] = static_cast<float>(pi[i] % 50);
              }
              const auto f = default_frequencies(cs.rot, source == 1 ? 500000.0 : 10000.0);
              std::vector<float> table_cos, table_sin;
              rope::Angles angles;
              rope::Positions positions;
              if (source == 2) {
                const std::size_t rows = 50;
                table_cos = normals(rows * half, seed + 100), table_sin = normals(rows * half, seed + 200);
                angles.cos = table_cos.data(), angles.sin = table_sin.data(), angles.table_rows = rows;
                angles.attention_factor = 1.25;
                positions = {pf.data(), rope::PositionType::f32, false};
              } else {
                angles.inv_freq = f.data();
                angles.attention_factor = source == 1 ? 1.1386 : 1.0;
                positions = per_batch ? rope::Positions{pd.data(), rope::PositionType::f64, true}
                                      : rope::Positions{pi.data(), rope::PositionType::i32, false};
              }
              const rope::Shape shape{cs.batch, cs.seq, cs.heads, cs.head_dim, cs.rot, layout};
              REQUIRE(rope::apply(data.data(), dtype, shape, style, positions, angles) == Status::ok);
              for (std::size_t b = 0; b < cs.batch; ++b)
                for (std::size_t s = 0; s < cs.seq; ++s) {
                  const std::size_t pindex = per_batch ? b * cs.seq + s : s;
                  const double p = source == 2 ? pf[pindex] : per_batch ? pd[pindex] : pi[pindex];
                  for (std::size_t h = 0; h < cs.heads; ++h) {
                    const std::size_t row = (layout == rope::Layout::bshd ? (b * cs.seq + s) * cs.heads + h
                                                                          : (b * cs.heads + h) * cs.seq + s) *
                                            cs.head_dim;
                    for (std::size_t i = 0; i < half; ++i) {
                      double c, sn;
                      if (source == 2) {
                        c = table_cos[static_cast<std::size_t>(p) * half + i] * 1.25;
                        sn = table_sin[static_cast<std::size_t>(p) * half + i] * 1.25;
                      } else {
                        c = std::cos(p * f[i]) * angles.attention_factor;
                        sn = std::sin(p * f[i]) * angles.attention_factor;
                      }
                      const std::size_t ia = style == rope::Style::neox ? i : 2 * i;
                      const std::size_t ib = style == rope::Style::neox ? i + half : 2 * i + 1;
                      const double xa = to_double(dtype, before.data(), row + ia), xb = to_double(dtype, before.data(), row + ib);
                      const double ya = xa * c - xb * sn, yb = xb * c + xa * sn;
                      const double ga = to_double(dtype, data.data(), row + ia), gb = to_double(dtype, data.data(), row + ib);
                      // float32: the rotation's few roundings (|x| |cos, sin| <= 4 ulp-ish); half types: one rounding
                      // of the float32 result, so at most an ulp of the storage type.
                      const double scale = std::fabs(xa * c) + std::fabs(xb * sn) + std::fabs(xb * c) + std::fabs(xa * sn);
                      const double tol_a = dtype == rope::DType::f32 ? 1e-6 * scale + 1e-30 : storage_ulp(dtype, ya) + 1e-6 * scale;
                      const double tol_b = dtype == rope::DType::f32 ? 1e-6 * scale + 1e-30 : storage_ulp(dtype, yb) + 1e-6 * scale;
                      REQUIRE(std::fabs(ga - ya) <= tol_a);
                      REQUIRE(std::fabs(gb - yb) <= tol_b);
                    }
                    const std::size_t elem = dtype == rope::DType::f32 ? 4 : 2;  // channels past rot untouched
                    CHECK(std::memcmp(&data[(row + cs.rot) * elem], &before[(row + cs.rot) * elem],
                                      (cs.head_dim - cs.rot) * elem) == 0);
                  }
                }
            }
  }
}

TEST_CASE("RoPE is identical for any thread count and rejects bad arguments before writing") {
  test::RuntimeGuard guard;
  const std::size_t seq = 300, heads = 8, dim = 64;
  const auto x = normals(seq * heads * dim, 3);
  std::vector<std::int32_t> pos(seq);
  for (std::size_t i = 0; i < seq; ++i) pos[i] = static_cast<std::int32_t>(i * 3);
  const auto f = default_frequencies(dim, 10000.0);
  rope::Angles angles;
  angles.inv_freq = f.data();
  const rope::Positions positions{pos.data(), rope::PositionType::i32, false};
  const rope::Shape shape{1, seq, heads, dim, dim, rope::Layout::bshd};
  REQUIRE(set_thread_count(1) == Status::ok);
  auto one = x;
  REQUIRE(rope::apply(one.data(), rope::DType::f32, shape, rope::Style::neox, positions, angles) == Status::ok);
  for (std::size_t threads : {2, 7, 64}) {
    REQUIRE(set_thread_count(threads) == Status::ok);
    auto many = x;
    REQUIRE(rope::apply(many.data(), rope::DType::f32, shape, rope::Style::neox, positions, angles) == Status::ok);
    CHECK(std::memcmp(one.data(), many.data(), one.size() * 4) == 0);
  }

  auto untouched = x;
  auto fails = [&](rope::Shape s, rope::Positions p, rope::Angles a) {
    CHECK(rope::apply(untouched.data(), rope::DType::f32, s, rope::Style::neox, p, a) == Status::invalid_argument);
    CHECK(std::memcmp(untouched.data(), x.data(), x.size() * 4) == 0);
  };
  rope::Shape odd = shape;
  odd.rotary_dim = 63;
  fails(odd, positions, angles);
  rope::Shape wide = shape;
  wide.rotary_dim = 66;
  fails(wide, positions, angles);
  rope::Shape huge = shape;
  huge.batch = std::size_t{1} << 62;
  fails(huge, positions, angles);
  std::vector<float> nan_pos(seq, 1.0f);
  nan_pos[150] = NAN;
  fails(shape, {nan_pos.data(), rope::PositionType::f32, false}, angles);
  rope::Angles nan_factor = angles;
  nan_factor.attention_factor = INFINITY;
  fails(shape, positions, nan_factor);
  std::vector<float> table(10 * 32, 0.5f);
  rope::Angles both = angles;
  both.cos = table.data(), both.sin = table.data(), both.table_rows = 10;
  fails(shape, positions, both);  // two sources of angles
  rope::Angles tables;
  tables.cos = table.data(), tables.sin = table.data(), tables.table_rows = 10;
  fails(shape, positions, tables);  // positions beyond the table's 10 rows
  std::vector<float> fractional(seq, 2.5f);
  tables.table_rows = 10;
  fails(shape, {fractional.data(), rope::PositionType::f32, false}, tables);
  auto bad_freq = f;
  bad_freq[5] = NAN;
  rope::Angles nan_freq;
  nan_freq.inv_freq = bad_freq.data();
  fails(shape, positions, nan_freq);
  fails(shape, positions, rope::Angles{});  // no angles at all
}
