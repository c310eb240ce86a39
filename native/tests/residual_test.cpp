#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "tessera/binary.h"
#include "tessera/rng.h"
#include "test_util.h"

using namespace tessera;
using test::normals;

namespace {

struct Decoded {
  double alpha;
  std::vector<double> v;  // sum_t 2^-t s_t, exact
};

// Reads a residual row by the documented layout, independently of the library's decoder.
Decoded read_row(const std::uint8_t* row, std::size_t dim, std::size_t planes) {
  const std::size_t bytes = binary::code_bytes(dim);
  Decoded d{0, std::vector<double>(dim, 0.0)};
  float a;
  std::memcpy(&a, row + planes * bytes, 4);
  d.alpha = a;
  for (std::size_t t = 0; t < planes; ++t)
    for (std::size_t i = 0; i < dim; ++i)
      d.v[i] += (((row[t * bytes + i / 8] >> (7 - i % 8)) & 1) ? 1.0 : -1.0) * std::ldexp(1.0, -static_cast<int>(t));
  return d;
}

double squared_error(const float* x, const Decoded& d, double alpha) {
  double e = 0;
  for (std::size_t i = 0; i < d.v.size(); ++i) e += (x[i] - alpha * d.v[i]) * (x[i] - alpha * d.v[i]);
  return e;
}

}  // namespace

TEST_CASE("residual codes: layout, decode, least-squares alpha, nearest-grid planes, Max's error") {
  // Max (1960), optimum uniform quantizers of a unit Gaussian: mean squared error with 2, 4, 8, 16 levels.
  const double max_mse[binary::kMaxPlanes] = {0.3634, 0.1188, 0.03744, 0.01154};
  const std::size_t rows = 50;
  for (std::size_t dim : {1, 3, 8, 13, 64, 100, 768}) {
    const auto x = normals(rows * dim, dim);
    double previous_error = INFINITY;
    for (std::size_t planes = 1; planes <= binary::kMaxPlanes; ++planes) {
      const std::size_t rb = binary::residual_row_bytes(dim, planes);
      std::vector<std::uint8_t> codes(rows * rb, 0xCD);
      REQUIRE(binary::residual_encode(x.data(), rows, dim, planes, nullptr, codes.data()) == Status::ok);
      std::vector<float> y(rows * dim, NAN);
      REQUIRE(binary::residual_decode(codes.data(), rows, dim, planes, nullptr, y.data()) == Status::ok);
      double total_error = 0;
      for (std::size_t r = 0; r < rows; ++r) {
        const Decoded d = read_row(&codes[r * rb], dim, planes);
        for (std::size_t i = 0; i < dim; ++i) CHECK(y[r * dim + i] == static_cast<float>(static_cast<float>(d.alpha) * d.v[i]));
        const float* xr = &x[r * dim];
        const double e = squared_error(xr, d, d.alpha);
        total_error += e;
        // alpha is the least-squares scale for these planes (to float32 rounding)...
        CHECK(e <= squared_error(xr, d, d.alpha * (1 + 1e-3)) + 1e-12);
        CHECK(e <= squared_error(xr, d, d.alpha * (1 - 1e-3)) + 1e-12);
        // ...and each coordinate sits on the nearest point of the grid alpha * {odd multiples of 2^-(planes-1)}.
        const double step = d.alpha * std::ldexp(1.0, -static_cast<int>(planes - 1));
        const double top = d.alpha * (2 - std::ldexp(1.0, -static_cast<int>(planes - 1)));
        CAPTURE(dim);
        CAPTURE(planes);
        CAPTURE(r);
        for (std::size_t i = 0; i < dim; ++i) {
          const double grid = std::clamp(std::round((xr[i] / step - 1) / 2) * 2 + 1, -top / step, top / step) * step;
          CHECK(std::abs(xr[i] - d.alpha * d.v[i]) <= std::abs(xr[i] - grid) + 1e-5 * step);
        }
        // Plane 0 is the sign code packSigns would give.
        std::vector<std::uint8_t> signs(binary::code_bytes(dim));
        REQUIRE(binary::pack_signs(xr, 1, dim, 0.0f, binary::BitOrder::msb, signs.data()) == Status::ok);
        CHECK(std::memcmp(signs.data(), &codes[r * rb], signs.size()) == 0);
      }
      if (dim >= 8) CHECK(total_error < previous_error);  // one coordinate is exact with any number of planes
      previous_error = total_error;
      if (dim >= 64) {  // per-coordinate error near the optimum (rows are rescaled to their own norm, hence a margin)
        const double mse = total_error / static_cast<double>(rows * dim);
        CAPTURE(dim);
        CAPTURE(planes);
        CHECK(mse < max_mse[planes - 1] * 1.04);
        if (dim >= 768) CHECK(mse > max_mse[planes - 1] * 0.95);  // short rows fit their own scale: lower
      }
    }
  }
}

TEST_CASE("residual codes: zero rows, centres, NaN, bad arguments") {
  const std::size_t dim = 10;
  std::vector<float> zero(dim, 0.0f), y(dim, NAN);
  std::vector<std::uint8_t> code(binary::residual_row_bytes(dim, 2), 0xFF);
  REQUIRE(binary::residual_encode(zero.data(), 1, dim, 2, nullptr, code.data()) == Status::ok);
  REQUIRE(binary::residual_decode(code.data(), 1, dim, 2, nullptr, y.data()) == Status::ok);
  for (float v : y) CHECK(v == 0.0f);
  std::vector<float> center(dim), x(dim);
  for (std::size_t i = 0; i < dim; ++i) center[i] = 100.0f + static_cast<float>(i), x[i] = center[i] + (i % 2 ? 1.0f : -1.0f);
  REQUIRE(binary::residual_encode(x.data(), 1, dim, 1, center.data(), code.data()) == Status::ok);
  REQUIRE(binary::residual_decode(code.data(), 1, dim, 1, center.data(), y.data()) == Status::ok);
  for (std::size_t i = 0; i < dim; ++i) CHECK(y[i] == x[i]);  // ±1 around the centre is exactly representable
  x[3] = NAN;
  REQUIRE(binary::residual_encode(x.data(), 1, dim, 2, nullptr, code.data()) == Status::ok);
  REQUIRE(binary::residual_decode(code.data(), 1, dim, 2, nullptr, y.data()) == Status::ok);
  CHECK(std::isnan(y[0]));
  CHECK(binary::residual_encode(x.data(), 1, dim, 0, nullptr, code.data()) == Status::invalid_argument);
  CHECK(binary::residual_encode(x.data(), 1, dim, 5, nullptr, code.data()) == Status::invalid_argument);
  CHECK(binary::residual_encode(x.data(), 1, 0, 1, nullptr, code.data()) == Status::invalid_argument);
}

TEST_CASE("SDC and ADC scores are the inner products of the reconstructions, top-k sorted, any thread count") {
  test::RuntimeGuard guard;
  for (std::size_t dim : {5, 64, 130}) {
    for (std::size_t planes = 1; planes <= binary::kMaxPlanes; ++planes) {
      const std::size_t n = 600, nq = 7, rb = binary::residual_row_bytes(dim, planes);
      const auto docs = normals(n * dim, 1000 + dim + planes);
      auto queries = normals(nq * dim, 2000 + dim + planes);
      std::vector<std::uint8_t> dc(n * rb), qc(nq * rb);
      REQUIRE(binary::residual_encode(docs.data(), n, dim, planes, nullptr, dc.data()) == Status::ok);
      REQUIRE(binary::residual_encode(queries.data(), nq, dim, planes, nullptr, qc.data()) == Status::ok);
      std::copy_n(dc.begin(), rb, dc.begin() + 9 * rb);  // a duplicate document: a tie broken by index
      const std::size_t k = 20;
      std::vector<float> norms(n);
      for (std::size_t j = 0; j < n; ++j) norms[j] = static_cast<float>(binary::residual_squared_norm(&dc[j * rb], dim, planes));
      for (int mode = 0; mode < 4; ++mode) {  // 0: SDC, 1: ADC, 2: SDC for L2, 3: ADC for L2
        const bool sdc = mode % 2 == 0, l2 = mode >= 2;
        std::vector<std::vector<std::pair<double, std::int32_t>>> want(nq);
        for (std::size_t i = 0; i < nq; ++i) {
          const Decoded qd = read_row(&qc[i * rb], dim, planes);
          for (std::size_t j = 0; j < n; ++j) {
            const Decoded dd = read_row(&dc[j * rb], dim, planes);
            double s = 0;
            for (std::size_t e = 0; e < dim; ++e) {
              const double a = sdc ? qd.alpha * qd.v[e] : queries[i * dim + e], b = dd.alpha * dd.v[e];
              s += l2 ? -(a - b) * (a - b) : a * b;
            }
            want[i].push_back({-s, static_cast<std::int32_t>(j)});
          }
          std::sort(want[i].begin(), want[i].end());
        }
        for (SimdLevel level : test::levels()) {
          REQUIRE(set_simd_level(level) == Status::ok);
          for (std::size_t threads : {1, 3}) {
            REQUIRE(set_thread_count(threads) == Status::ok);
            std::vector<std::int32_t> idx(nq * k, -1);
            std::vector<float> score(nq * k, NAN);
            binary::ScoreQuery sq{nq, dc.data(), n, dim, planes, k, nullptr, l2 ? norms.data() : nullptr};
            if (sdc) REQUIRE(binary::sdc_topk(qc.data(), sq, idx.data(), score.data()) == Status::ok);
            else REQUIRE(binary::adc_topk(queries.data(), sq, idx.data(), score.data()) == Status::ok);
            for (std::size_t i = 0; i < nq; ++i) {
              for (std::size_t r = 0; r < k; ++r) {
                const double exact = -want[i][r].first;
                // SDC inner products are exact up to the final rounding; ADC sums floats, and the L2 forms subtract
                // norms held in float32: bound by the magnitudes involved.
                const Decoded dd = read_row(&dc[static_cast<std::size_t>(want[i][r].second) * rb], dim, planes);
                double magnitude = 0, dn = 0, qn = 0;
                const Decoded qd = read_row(&qc[i * rb], dim, planes);
                for (std::size_t e = 0; e < dim; ++e) {
                  const double a = sdc ? qd.alpha * qd.v[e] : queries[i * dim + e], b = dd.alpha * dd.v[e];
                  magnitude += std::abs(a * b), dn += b * b, qn += a * a;
                }
                double bound = mode == 0 ? std::abs(exact) * 0x1.0p-24 : magnitude * 4 * static_cast<double>(dim) * 0x1.0p-24;
                if (l2) bound = 2 * bound + (dn + qn) * 0x1.0p-22 + std::abs(exact) * 0x1.0p-24;
                CHECK(std::abs(score[i * k + r] - exact) <= bound + 1e-30);
                if (r + 1 < k && -want[i][r + 1].first + bound < exact - bound)  // separated beyond rounding
                  CHECK(idx[i * k + r] == want[i][r].second);
              }
              for (std::size_t r = 0; r + 1 < k; ++r)  // the output itself is sorted by (score desc, index asc)
                CHECK((score[i * k + r] > score[i * k + r + 1] ||
                       (score[i * k + r] == score[i * k + r + 1] && idx[i * k + r] < idx[i * k + r + 1])));
            }
          }
        }
      }
    }
  }
}
