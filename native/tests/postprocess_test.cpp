// Embedding post-processing (tessera/postprocess.h): the float64 eigensolver against matrices with known spectra and
// against its own residuals; whitening, relative representations and projection against float64 references written
// here, on every dispatch level this CPU runs, at one thread and at many; argument checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tessera/postprocess.h"
#include "test_util.h"

using namespace tessera;
using test::normals;
namespace pp = tessera::postprocess;

namespace {

// A random orthogonal matrix [n, n] (columns), from Gram-Schmidt on Gaussian columns.
std::vector<double> random_orthogonal(std::size_t n, std::uint64_t seed) {
  const auto g = normals(n * n, seed);
  std::vector<double> q(n * n);
  for (std::size_t j = 0; j < n; ++j) {
    std::vector<double> c(n);
    for (std::size_t r = 0; r < n; ++r) c[r] = g[r * n + j];
    for (int pass = 0; pass < 2; ++pass)
      for (std::size_t k = 0; k < j; ++k) {
        double dot = 0;
        for (std::size_t r = 0; r < n; ++r) dot += q[r * n + k] * c[r];
        for (std::size_t r = 0; r < n; ++r) c[r] -= dot * q[r * n + k];
      }
    double norm = 0;
    for (double x : c) norm += x * x;
    norm = std::sqrt(norm);
    for (std::size_t r = 0; r < n; ++r) q[r * n + j] = c[r] / norm;
  }
  return q;
}

// Q diag(lambda) Q^T.
std::vector<double> with_spectrum(const std::vector<double>& q, const std::vector<double>& lambda) {
  const std::size_t n = lambda.size();
  std::vector<double> a(n * n, 0.0);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t c = 0; c < n; ++c) {
      double s = 0;
      for (std::size_t k = 0; k < n; ++k) s += q[r * n + k] * lambda[k] * q[c * n + k];
      a[r * n + c] = s;
    }
  return a;
}

// max |A v_j - lambda_j v_j| / max |A|, max |V^T V - I|, and whether the values descend and each vector's largest
// component is positive.
struct EigenCheck {
  double residual = 0, orthogonality = 0;
  bool descending = true, signs = true;
};

EigenCheck check_eigen(const std::vector<double>& a, const std::vector<double>& values, const std::vector<double>& v,
                       std::size_t n) {
  EigenCheck out;
  double scale = 0;
  for (double x : a) scale = std::max(scale, std::fabs(x));
  if (scale == 0) scale = 1;
  for (std::size_t j = 0; j < n; ++j) {
    if (j > 0 && values[j] > values[j - 1]) out.descending = false;
    std::size_t arg = 0;
    for (std::size_t r = 0; r < n; ++r) {
      double s = 0;
      for (std::size_t k = 0; k < n; ++k) s += a[r * n + k] * v[k * n + j];
      out.residual = std::max(out.residual, std::fabs(s - values[j] * v[r * n + j]) / scale);
      if (std::fabs(v[r * n + j]) > std::fabs(v[arg * n + j])) arg = r;
    }
    if (!(v[arg * n + j] > 0)) out.signs = false;
    for (std::size_t k = 0; k < n; ++k) {
      double s = 0;
      for (std::size_t r = 0; r < n; ++r) s += v[r * n + j] * v[r * n + k];
      out.orthogonality = std::max(out.orthogonality, std::fabs(s - (j == k ? 1.0 : 0.0)));
    }
  }
  return out;
}

// max |got - want| / max |want| (absolute when want is all zeros); NaN gives infinity.
double relative_error(const float* got, const std::vector<double>& want) {
  double scale = 0, worst = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = std::fabs(got[i] - want[i]);
    if (!(d <= 1e300)) return INFINITY;
    worst = std::max(worst, d);
  }
  return scale == 0 ? worst : worst / scale;
}

std::vector<double> unit(const float* x, std::size_t dim) {
  double s = 0;
  for (std::size_t d = 0; d < dim; ++d) s += static_cast<double>(x[d]) * x[d];
  std::vector<double> u(dim, 0.0);
  if (s > 0)
    for (std::size_t d = 0; d < dim; ++d) u[d] = x[d] / std::sqrt(s);
  return u;
}

}  // namespace

TEST_CASE("symmetric_eigen: diagonal, 2 x 2 and zero matrices give their known decompositions") {
  {
    std::vector<double> a = {1, 0, 0, 0, -3, 0, 0, 0, 7}, values(3), v(9);
    REQUIRE(pp::symmetric_eigen(a.data(), 3, values.data(), v.data()) == Status::ok);
    CHECK(values == std::vector<double>{7, 1, -3});
    CHECK(v == std::vector<double>{0, 1, 0, 0, 0, 1, 1, 0, 0});
  }
  {
    std::vector<double> a = {2, 1, 1, 2}, values(2), v(4);
    REQUIRE(pp::symmetric_eigen(a.data(), 2, values.data(), v.data()) == Status::ok);
    CHECK(values[0] == doctest::Approx(3).epsilon(1e-15));
    CHECK(values[1] == doctest::Approx(1).epsilon(1e-15));
    const double h = std::sqrt(0.5);  // ties in magnitude: the first component is made positive
    CHECK(std::fabs(v[0] - h) < 1e-15);
    CHECK(std::fabs(v[2] - h) < 1e-15);
    CHECK(std::fabs(v[1] - h) < 1e-15);
    CHECK(std::fabs(v[3] + h) < 1e-15);
  }
  {
    std::vector<double> a(25, 0.0), values(5, 9.0), v(25);
    REQUIRE(pp::symmetric_eigen(a.data(), 5, values.data(), v.data()) == Status::ok);
    for (std::size_t j = 0; j < 5; ++j) {
      CHECK(values[j] == 0);
      for (std::size_t r = 0; r < 5; ++r) CHECK(v[r * 5 + j] == (r == j ? 1.0 : 0.0));
    }
  }
  {
    std::vector<double> a = {-4}, values(1), v(1);
    REQUIRE(pp::symmetric_eigen(a.data(), 1, values.data(), v.data()) == Status::ok);
    CHECK(values[0] == -4);
    CHECK(v[0] == 1);
  }
}

TEST_CASE("symmetric_eigen: known spectra with repeated and zero eigenvalues, random matrices, any level and thread count") {
  test::RuntimeGuard guard;
  for (std::size_t n : {3u, 17u, 64u, 129u}) {
    CAPTURE(n);
    // Q diag(lambda) Q^T with a repeated eigenvalue, a block of zeros (rank deficiency) and a negative one.
    std::vector<double> lambda(n);
    for (std::size_t k = 0; k < n; ++k) lambda[k] = k < n / 3 ? 5.0 - static_cast<double>(k) / n : (k < n / 2 ? 0.0 : 1.5);
    lambda[n - 1] = -2;
    const auto q = random_orthogonal(n, 100 + n);
    const auto a = with_spectrum(q, lambda);
    std::vector<double> sorted = lambda;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    std::vector<double> reference;
    for (SimdLevel level : test::levels())
    for (std::size_t threads : {std::size_t{1}, std::size_t{4}}) {
      CAPTURE(simd_level_name(level));
      REQUIRE(set_simd_level(level) == Status::ok);
      REQUIRE(set_thread_count(threads) == Status::ok);
      std::vector<double> work = a, values(n), v(n * n);
      REQUIRE(pp::symmetric_eigen(work.data(), n, values.data(), v.data()) == Status::ok);
      for (std::size_t k = 0; k < n; ++k) CHECK(std::fabs(values[k] - sorted[k]) < 1e-12 * 5);
      const EigenCheck c = check_eigen(a, values, v, n);
      CHECK(c.residual < 1e-12);
      CHECK(c.orthogonality < 1e-12);
      CHECK(c.descending);
      CHECK(c.signs);
      if (reference.empty())
        reference = v;
      else
        CHECK(v == reference);  // the same bits for any thread count and dispatch level
    }
    // A Gaussian symmetric matrix (only the lower triangle is read: the upper one holds garbage).
    const auto g = normals(n * n, 7 + n);
    std::vector<double> b(n * n);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t c = 0; c <= r; ++c) b[r * n + c] = b[c * n + r] = g[r * n + c];
    std::vector<double> work = b, values(n), v(n * n);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t c = r + 1; c < n; ++c) work[r * n + c] = 1e30;
    REQUIRE(pp::symmetric_eigen(work.data(), n, values.data(), v.data()) == Status::ok);
    const EigenCheck c = check_eigen(b, values, v, n);
    CHECK(c.residual < 1e-12);
    CHECK(c.orthogonality < 1e-12);
    CHECK(c.descending);
    CHECK(c.signs);
  }
}

TEST_CASE("symmetric_eigen: rank-deficient covariances (fewer centred samples than dimensions) converge") {
  // Without an absolute deflation test QL stalls on these: the zero eigenvalues leave off-diagonal noise that no
  // test relative to the (zero) diagonal accepts.
  for (auto [n, dim] : {std::pair<std::size_t, std::size_t>{10, 100}, {50, 200}, {100, 400}}) {
    CAPTURE(n);
    const auto x = normals(n * dim, 91 + n);
    std::vector<double> mu(dim, 0.0), c(dim * dim, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t r = 0; r < dim; ++r) mu[r] += x[i * dim + r] / static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t r = 0; r < dim; ++r)
        for (std::size_t k = 0; k < dim; ++k)
          c[r * dim + k] += (x[i * dim + r] - mu[r]) * (x[i * dim + k] - mu[k]) / static_cast<double>(n - 1);
    std::vector<double> work = c, values(dim), v(dim * dim);
    REQUIRE(pp::symmetric_eigen(work.data(), dim, values.data(), v.data()) == Status::ok);
    const EigenCheck check = check_eigen(c, values, v, dim);
    CHECK(check.residual < 1e-12);
    CHECK(check.orthogonality < 1e-12);
    CHECK(check.descending);
    CHECK(check.signs);
    CHECK(values[n - 2] > 1e-3 * values[0]);  // rank n - 1: centring removes one dimension
    for (std::size_t j = n - 1; j < dim; ++j) CHECK(std::fabs(values[j]) < 1e-13 * values[0]);
  }
}

TEST_CASE("symmetric_eigen: argument checks") {
  std::vector<double> a = {1, 0, 0, 1}, values(2), v(4);
  CHECK(pp::symmetric_eigen(a.data(), 0, values.data(), v.data()) == Status::invalid_argument);
  CHECK(pp::symmetric_eigen(nullptr, 2, values.data(), v.data()) == Status::invalid_argument);
  CHECK(pp::symmetric_eigen(a.data(), 2, nullptr, v.data()) == Status::invalid_argument);
  CHECK(pp::symmetric_eigen(a.data(), 2, values.data(), a.data()) == Status::invalid_argument);
  CHECK(pp::symmetric_eigen(a.data(), std::size_t{1} << 62, values.data(), v.data()) == Status::invalid_argument);
  a[2] = NAN;
  CHECK(pp::symmetric_eigen(a.data(), 2, values.data(), v.data()) == Status::invalid_argument);
}

TEST_CASE("whitening: the whitened sample's covariance is diag(lambda / (lambda + eps)), on every level") {
  test::RuntimeGuard guard;
  const std::size_t n = 300, dim = 37, k = 30;
  // Correlated, anisotropic data: Gaussian rows times a fixed mixing matrix, plus an offset.
  const auto g = normals(n * dim, 31), mix = normals(dim * dim, 32);
  std::vector<float> x(n * dim);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < dim; ++c) {
      double s = 3.0 + 0.1 * static_cast<double>(c);
      for (std::size_t j = 0; j < dim; ++j) s += g[i * dim + j] * mix[j * dim + c] * (1.0 + static_cast<double>(j % 5));
      x[i * dim + c] = static_cast<float>(s);
    }
  const double eps = 1e-3;
  std::vector<float> mean(dim), matrix(dim * k);
  std::vector<double> eigenvalues(dim);
  REQUIRE(pp::whitening_fit(x.data(), n, dim, k, eps, mean.data(), matrix.data(), eigenvalues.data()) == Status::ok);
  for (std::size_t c = 0; c < dim; ++c) {
    double m = 0;
    for (std::size_t i = 0; i < n; ++i) m += x[i * dim + c];
    CHECK(std::fabs(mean[c] - m / n) <= 1e-6 * std::fabs(m / n));
  }
  for (SimdLevel level : test::levels()) {
    CAPTURE(simd_level_name(level));
    REQUIRE(set_simd_level(level) == Status::ok);
    std::vector<float> y(n * k, NAN);
    REQUIRE(pp::whitening_transform(x.data(), n, dim, mean.data(), matrix.data(), k, false, y.data()) == Status::ok);
    // Against a float64 evaluation of the same formula.
    std::vector<double> want(n * k, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < k; ++j)
        for (std::size_t c = 0; c < dim; ++c)
          want[i * k + j] += (static_cast<double>(x[i * dim + c]) - mean[c]) * matrix[c * k + j];
    CHECK(relative_error(y.data(), want) < 1e-5);
    double worst = 0;
    for (std::size_t a = 0; a < k; ++a)
      for (std::size_t b = 0; b < k; ++b) {
        double s = 0;  // the output has mean zero up to rounding; the covariance's divisor is n - 1
        for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(y[i * k + a]) * y[i * k + b];
        const double expected = a == b ? eigenvalues[a] / (eigenvalues[a] + eps) : 0.0;
        worst = std::max(worst, std::fabs(s / (n - 1) - expected));
      }
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("whitening: argument checks and a rank-deficient sample") {
  std::vector<float> x = normals(4 * 6, 5), mean(6), matrix(36);
  std::vector<double> ev(6);
  CHECK(pp::whitening_fit(x.data(), 0, 6, 6, 1e-6, mean.data(), matrix.data(), ev.data()) == Status::invalid_argument);
  CHECK(pp::whitening_fit(x.data(), 4, 6, 7, 1e-6, mean.data(), matrix.data(), ev.data()) == Status::invalid_argument);
  CHECK(pp::whitening_fit(x.data(), 4, 6, 0, 1e-6, mean.data(), matrix.data(), ev.data()) == Status::invalid_argument);
  CHECK(pp::whitening_fit(x.data(), 4, 6, 6, -1, mean.data(), matrix.data(), ev.data()) == Status::invalid_argument);
  CHECK(pp::whitening_fit(x.data(), 4, 6, 6, NAN, mean.data(), matrix.data(), ev.data()) == Status::invalid_argument);
  CHECK(pp::whitening_fit(x.data(), 4, 6, 6, 1e-6, x.data(), matrix.data(), ev.data()) == Status::invalid_argument);
  // Four rows in six dimensions: rank 3; epsilon 0 cannot scale the zero-variance components ...
  CHECK(pp::whitening_fit(x.data(), 4, 6, 6, 0, mean.data(), matrix.data(), ev.data()) == Status::invalid_argument);
  // ... but it can when only the first three are kept, and a positive epsilon keeps every component finite.
  CHECK(pp::whitening_fit(x.data(), 4, 6, 3, 0, mean.data(), matrix.data(), ev.data()) == Status::ok);
  REQUIRE(pp::whitening_fit(x.data(), 4, 6, 6, 1e-6, mean.data(), matrix.data(), ev.data()) == Status::ok);
  for (float w : matrix) CHECK(std::isfinite(w));
  for (std::size_t j = 3; j < 6; ++j) CHECK(std::fabs(ev[j]) < 1e-12);
  x[5] = NAN;
  CHECK(pp::whitening_fit(x.data(), 4, 6, 6, 1e-6, mean.data(), matrix.data(), ev.data()) == Status::invalid_argument);
  std::vector<float> y(4 * 6);
  CHECK(pp::whitening_transform(x.data(), 4, 6, mean.data(), matrix.data(), 7, false, y.data()) == Status::invalid_argument);
  CHECK(pp::whitening_transform(x.data(), 4, 6, mean.data(), matrix.data(), 6, false, x.data()) == Status::invalid_argument);
  CHECK(pp::whitening_transform(nullptr, 0, 6, mean.data(), matrix.data(), 6, false, nullptr) == Status::ok);
}

TEST_CASE("relative_representation: cosines with the anchors against float64, zero rows, any thread count") {
  test::RuntimeGuard guard;
  const std::size_t n = 131, m = 19, dim = 45;
  auto x = normals(n * dim, 41), anchors = normals(m * dim, 42);
  std::fill(x.begin() + 3 * dim, x.begin() + 4 * dim, 0.0f);               // a zero vector
  std::fill(anchors.begin() + 2 * dim, anchors.begin() + 3 * dim, 0.0f);   // a zero anchor
  for (bool normalize : {false, true}) {
    std::vector<double> want(n * m);
    for (std::size_t i = 0; i < n; ++i) {
      const auto u = unit(x.data() + i * dim, dim);
      double norm = 0;
      for (std::size_t a = 0; a < m; ++a) {
        const auto w = unit(anchors.data() + a * dim, dim);
        double s = 0;
        for (std::size_t d = 0; d < dim; ++d) s += u[d] * w[d];
        want[i * m + a] = s;
        norm += s * s;
      }
      if (normalize && norm > 0)
        for (std::size_t a = 0; a < m; ++a) want[i * m + a] /= std::sqrt(norm);
    }
    std::vector<float> first;
    for (SimdLevel level : test::levels())
      for (std::size_t threads : {std::size_t{1}, std::size_t{3}}) {
        CAPTURE(simd_level_name(level));
        REQUIRE(set_simd_level(level) == Status::ok);
        REQUIRE(set_thread_count(threads) == Status::ok);
        std::vector<float> out(n * m, NAN);
        REQUIRE(pp::relative_representation(x.data(), n, anchors.data(), m, dim, false, normalize, out.data()) ==
                Status::ok);
        CHECK(relative_error(out.data(), want) < 1e-6);
        for (std::size_t a = 0; a < m; ++a) CHECK(out[3 * m + a] == 0);
        for (std::size_t i = 0; i < n; ++i) CHECK(out[i * m + 2] == 0);
        if (threads == 1) first = out;
        else CHECK(out == first);
      }
  }
  std::vector<float> out(n * m);
  CHECK(pp::relative_representation(x.data(), n, anchors.data(), 0, dim, false, true, out.data()) ==
        Status::invalid_argument);
  CHECK(pp::relative_representation(x.data(), n, anchors.data(), m, dim, false, true, x.data()) ==
        Status::invalid_argument);
  CHECK(pp::relative_representation(nullptr, 0, anchors.data(), m, dim, false, true, nullptr) == Status::ok);
}

TEST_CASE("project_out: outputs orthogonal to every direction and equal to float64; dependent directions dropped") {
  test::RuntimeGuard guard;
  const std::size_t n = 70, dim = 33;
  const auto x = normals(n * dim, 51);
  // Five directions: d0, d1, 2 d0 - d1 (dependent: small integers, so float32 holds the combination exactly), zero,
  // d2.
  auto base = normals(3 * dim, 52);
  for (float& b : base) b = std::round(b * 8);
  std::vector<float> dirs(5 * dim, 0.0f);
  std::copy(base.begin(), base.begin() + 2 * dim, dirs.begin());
  for (std::size_t d = 0; d < dim; ++d) dirs[2 * dim + d] = 2 * base[d] - base[dim + d];
  std::copy(base.begin() + 2 * dim, base.end(), dirs.begin() + 4 * dim);
  std::vector<double> basis(5 * dim);
  std::size_t rank = 99;
  REQUIRE(pp::orthonormalize(dirs.data(), 5, dim, basis.data(), &rank) == Status::ok);
  CHECK(rank == 3);
  for (std::size_t a = 0; a < rank; ++a)
    for (std::size_t b = 0; b < rank; ++b) {
      double s = 0;
      for (std::size_t d = 0; d < dim; ++d) s += basis[a * dim + d] * basis[b * dim + d];
      CHECK(std::fabs(s - (a == b ? 1.0 : 0.0)) < 1e-15);
    }
  for (SimdLevel level : test::levels()) {
    CAPTURE(simd_level_name(level));
    REQUIRE(set_simd_level(level) == Status::ok);
    std::vector<float> out(n * dim, NAN);
    std::size_t r = 0;
    REQUIRE(pp::project_out(x.data(), n, dirs.data(), 5, dim, false, out.data(), &r) == Status::ok);
    CHECK(r == 3);
    std::vector<double> want(n * dim);
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<double> v(x.begin() + i * dim, x.begin() + (i + 1) * dim);
      for (std::size_t j = 0; j < r; ++j) {
        double s = 0;
        for (std::size_t d = 0; d < dim; ++d) s += static_cast<double>(x[i * dim + d]) * basis[j * dim + d];
        for (std::size_t d = 0; d < dim; ++d) v[d] -= s * basis[j * dim + d];
      }
      std::copy(v.begin(), v.end(), want.begin() + i * dim);
      double vn = 0;
      for (std::size_t d = 0; d < dim; ++d) vn += static_cast<double>(x[i * dim + d]) * x[i * dim + d];
      for (std::size_t j = 0; j < 5; ++j) {  // orthogonal to every direction, dependent ones included
        const auto u = unit(dirs.data() + j * dim, dim);
        double s = 0;
        for (std::size_t d = 0; d < dim; ++d) s += out[i * dim + d] * u[d];
        CHECK(std::fabs(s) < 1e-6 * std::sqrt(vn));
      }
    }
    CHECK(relative_error(out.data(), want) < 1e-6);
    // In place gives the same bits.
    std::vector<float> inplace = x;
    REQUIRE(pp::project_out(inplace.data(), n, dirs.data(), 5, dim, false, inplace.data()) == Status::ok);
    CHECK(inplace == out);
  }
  std::vector<float> out(n * dim);
  CHECK(pp::project_out(x.data(), n, nullptr, 0, dim, false, out.data()) == Status::ok);
  CHECK(std::equal(out.begin(), out.end(), x.begin()));
  CHECK(pp::project_out(x.data(), n, dirs.data(), 5, 0, false, out.data()) == Status::invalid_argument);
  CHECK(pp::project_out(x.data(), n, nullptr, 2, dim, false, out.data()) == Status::invalid_argument);
  CHECK(pp::project_out(x.data(), n, out.data(), 2, dim, false, out.data()) == Status::invalid_argument);
  CHECK(pp::project_out(x.data(), n, dirs.data(), 5, dim, false, const_cast<float*>(x.data()) + 1) ==
        Status::invalid_argument);
  dirs[7] = INFINITY;
  CHECK(pp::project_out(x.data(), n, dirs.data(), 5, dim, false, out.data()) == Status::invalid_argument);
}

TEST_CASE("normalize_rows: unit rows, zero rows stay zero, in place") {
  std::vector<float> x = {3, 4, 0, 0, 1, 0}, out(6, NAN);
  REQUIRE(pp::normalize_rows(x.data(), 3, 2, out.data()) == Status::ok);
  CHECK(out == std::vector<float>{0.6f, 0.8f, 0, 0, 1, 0});
  REQUIRE(pp::normalize_rows(x.data(), 3, 2, x.data()) == Status::ok);
  CHECK(x == out);
  CHECK(pp::normalize_rows(x.data(), 2, 2, x.data() + 1) == Status::invalid_argument);
  CHECK(pp::normalize_rows(x.data(), 3, 0, out.data()) == Status::invalid_argument);
}
