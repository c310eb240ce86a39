// Symmetric eigendecomposition in float64 (see tessera/postprocess.h): Householder reduction to tridiagonal form,
// T = Q^T A Q, then the implicit QL method with Wilkinson shifts on T, whose plane rotations are accumulated into Q.
// All three O(dim^3) parts are threaded with fixed chunk boundaries: the symmetric rank-2 updates by rows, the
// accumulation of Q by column panels, and each QL sweep's rotations by column panels of the eigenvector matrix (a
// sweep's rotations depend only on T, so they are recorded first and then applied, vectorised, to each panel).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "tessera/memory.h"
#include "tessera/postprocess.h"
#include "tessera/runtime.h"

namespace tessera::postprocess {
namespace {

constexpr int kMaxIterations = 60;  // QL iterations for one eigenvalue; two or three is usual

// Rows of an n-wide double matrix per chunk: about 64 KiB of work each.
std::size_t row_grain(std::size_t n) { return std::max<std::size_t>(4, (std::size_t{1} << 13) / std::max<std::size_t>(n, 1)); }

struct Rotation {
  std::size_t i;
  double c, s;
};

// Reduces the symmetric a [n, n] (both triangles valid) in place. On return d = diag(T), e[k] = T[k][k + 1]
// (e[n - 1] = 0), and q [n, n] holds Q with A = Q T Q^T.
Status tridiagonalize(double* a, std::size_t n, double* d, double* e, double* q) {
  std::vector<double> v(n), p(n), beta(n, 0.0);
  for (std::size_t k = 0; k + 2 < n; ++k) {
    // The Householder reflection H = I - beta v v^T (on indices k+1 .. n-1) that maps column k below the diagonal
    // (row k to its right, by symmetry) onto its first coordinate, alpha.
    double* row = a + k * n;
    const std::size_t lo = k + 1, m = n - lo;
    double norm2 = 0;
    for (std::size_t j = lo; j < n; ++j) norm2 += row[j] * row[j];
    if (norm2 == 0) {
      e[k] = 0;
      continue;
    }
    const double norm = std::sqrt(norm2), x0 = row[lo];
    const double alpha = x0 >= 0 ? -norm : norm;
    for (std::size_t j = 0; j < m; ++j) v[j] = row[lo + j];
    v[0] = x0 - alpha;  // |x0| + norm: no cancellation
    const double vv = norm2 - x0 * x0 + v[0] * v[0];
    const double b = 2.0 / vv;
    beta[k] = b;
    // p = b A22 v, then A22 -= v w^T + w v^T with w = p - (b / 2)(v . p) v.
    auto product = [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        const double* ar = a + (lo + r) * n + lo;
        double s = 0;
        for (std::size_t j = 0; j < m; ++j) s += ar[j] * v[j];
        p[r] = b * s;
      }
    };
    if (Status st = parallel_for(m, row_grain(m), product); st != Status::ok) return st;
    double vp = 0;
    for (std::size_t j = 0; j < m; ++j) vp += v[j] * p[j];
    const double half = 0.5 * b * vp;
    for (std::size_t j = 0; j < m; ++j) p[j] -= half * v[j];  // p is now w
    auto update = [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        double* ar = a + (lo + r) * n + lo;
        const double vr = v[r], wr = p[r];
        for (std::size_t j = 0; j < m; ++j) ar[j] -= vr * p[j] + wr * v[j];
      }
    };
    if (Status st = parallel_for(m, row_grain(m), update); st != Status::ok) return st;
    e[k] = alpha;
    std::memcpy(row + lo, v.data(), m * sizeof(double));  // row k keeps v for the accumulation of Q
  }
  for (std::size_t k = 0; k < n; ++k) d[k] = a[k * n + k];
  if (n >= 2) e[n - 2] = a[(n - 2) * n + n - 1];
  e[n - 1] = 0;
  // Q = H_0 H_1 ... H_{n-3}, built from the right end: Q <- H_k Q touches rows and columns k+1 .. n-1 only.
  std::fill(q, q + n * n, 0.0);
  for (std::size_t k = 0; k < n; ++k) q[k * n + k] = 1;
  for (std::size_t k = n >= 3 ? n - 3 : 0; n >= 3; --k) {
    const double b = beta[k];
    if (b != 0) {
      const std::size_t lo = k + 1, m = n - lo;
      const double* vk = a + k * n + lo;
      constexpr std::size_t kPanel = 64;
      const std::size_t panels = (m + kPanel - 1) / kPanel;
      auto body = [&](std::size_t begin, std::size_t end) {
        double w[kPanel];
        for (std::size_t pn = begin; pn < end; ++pn) {
          const std::size_t c0 = lo + pn * kPanel, cols = std::min(kPanel, n - c0);
          std::fill(w, w + cols, 0.0);
          for (std::size_t r = 0; r < m; ++r) {
            const double* qr = q + (lo + r) * n + c0;
            for (std::size_t c = 0; c < cols; ++c) w[c] += vk[r] * qr[c];
          }
          for (std::size_t r = 0; r < m; ++r) {
            double* qr = q + (lo + r) * n + c0;
            const double f = b * vk[r];
            for (std::size_t c = 0; c < cols; ++c) qr[c] -= f * w[c];
          }
        }
      };
      if (Status st = parallel_for(panels, 1, body); st != Status::ok) return st;
    }
    if (k == 0) break;
  }
  return Status::ok;
}

// Applies a QL sweep's rotations, in order, to columns [k0, k1) of z, whose rows are the eigenvectors: a rotation
// combines two contiguous rows, so the loop over columns vectorises; each unit of work is one panel of columns (the
// same arithmetic on every element whichever thread runs it).
__attribute__((always_inline)) inline void rotate_columns(double* z, std::size_t n, const Rotation* rotations, std::size_t count, std::size_t k0,
                           std::size_t k1) {
  for (std::size_t r = 0; r < count; ++r) {
    double* zi = z + rotations[r].i * n;
    double* zj = zi + n;
    const double c = rotations[r].c, s = rotations[r].s;
    for (std::size_t k = k0; k < k1; ++k) {
      const double x = zi[k], y = zj[k];
      zj[k] = s * x + c * y;
      zi[k] = c * x - s * y;
    }
  }
}

void rotate_baseline(double* z, std::size_t n, const Rotation* rotations, std::size_t count, std::size_t k0,
                     std::size_t k1) {
  rotate_columns(z, n, rotations, count, k0, k1);
}

#if defined(__x86_64__)
// The same loop (inlined here) on 256-bit registers. AVX2 only, no FMA: every level rounds each product and sum
// alike, so the decomposition is the same bits at every dispatch level.
__attribute__((target("avx2"))) void rotate_avx2(double* z, std::size_t n, const Rotation* rotations,
                                                 std::size_t count, std::size_t k0, std::size_t k1) {
  rotate_columns(z, n, rotations, count, k0, k1);
}
#endif

using RotateFn = void (*)(double*, std::size_t, const Rotation*, std::size_t, std::size_t, std::size_t);

RotateFn pick_rotate() {
#if defined(__x86_64__)
  if (active_simd_level() >= SimdLevel::avx2) return rotate_avx2;
#endif
  return rotate_baseline;
}

// The implicit QL method on the tridiagonal (d, e), accumulating its rotations into the rows of z [n, n].
Status tridiagonal_ql(double* d, double* e, std::size_t n, double* z) {
  constexpr double kEps = std::numeric_limits<double>::epsilon();
  std::vector<Rotation> rotations;
  rotations.reserve(n);
  constexpr std::size_t kPanel = 128;  // columns per unit: 1 KiB of each row
  const RotateFn rotate = pick_rotate();
  const std::size_t panels = (n + kPanel - 1) / kPanel;
  // An off-diagonal element is negligible below eps times its diagonal neighbours, or below eps times the norm of
  // T: a perturbation the size of the rounding already made. The absolute test matters for rank-deficient
  // covariances, whose many (about) zero eigenvalues leave off-diagonal noise near 1e-17 ||T|| that no relative
  // test can accept.
  double norm = 0;
  for (std::size_t i = 0; i < n; ++i) norm = std::max(norm, std::fabs(d[i]) + std::fabs(e[i]) + (i > 0 ? std::fabs(e[i - 1]) : 0.0));
  const double negligible = kEps * norm;
  for (std::size_t l = 0; l < n; ++l) {
    for (int iteration = 0;; ++iteration) {
      // The first negligible off-diagonal element at or after l splits off the block l .. m.
      std::size_t m = l;
      for (; m + 1 < n; ++m) {
        const double scale = std::fabs(d[m]) + std::fabs(d[m + 1]);
        if (std::fabs(e[m]) <= kEps * scale || std::fabs(e[m]) <= negligible) break;
      }
      if (m == l) break;
      if (iteration == kMaxIterations) return Status::internal;
      // Wilkinson shift from the leading 2 x 2 block, folded into the first rotation's g.
      double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
      double r = std::hypot(g, 1.0);
      g = d[m] - d[l] + e[l] / (g + std::copysign(r, g));
      double s = 1, c = 1, p = 0;
      bool deflated = false;
      rotations.clear();
      for (std::size_t i = m; i-- > l;) {
        const double f = s * e[i], b = c * e[i];
        r = std::hypot(f, g);
        e[i + 1] = r;
        if (r == 0) {  // an exact zero appeared: undo the shift on d[i + 1] and restart on the smaller block
          d[i + 1] -= p;
          e[m] = 0;
          deflated = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2.0 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        rotations.push_back({i, c, s});
      }
      if (!rotations.empty()) {
        auto apply = [&](std::size_t begin, std::size_t end) {
          for (std::size_t panel = begin; panel < end; ++panel) {
            const std::size_t k0 = panel * kPanel, k1 = std::min(n, k0 + kPanel);
            rotate(z, n, rotations.data(), rotations.size(), k0, k1);
          }
        };
        if (Status st = parallel_for(panels, 1, apply); st != Status::ok) return st;
      }
      if (deflated) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  return Status::ok;
}

}  // namespace

Status symmetric_eigen(double* a, std::size_t dim, double* values, double* vectors) noexcept {
  std::size_t total = 0;
  if (dim == 0 || !element_count({dim, dim}, &total)) return Status::invalid_argument;
  if (!a || !values || !vectors) return Status::invalid_argument;
  if (bytes_overlap(a, total * sizeof(double), vectors, total * sizeof(double)) ||
      bytes_overlap(a, total * sizeof(double), values, dim * sizeof(double)) ||
      bytes_overlap(values, dim * sizeof(double), vectors, total * sizeof(double)))
    return Status::invalid_argument;
  for (std::size_t i = 0; i < dim; ++i)
    for (std::size_t j = 0; j <= i; ++j)
      if (!std::isfinite(a[i * dim + j])) return Status::invalid_argument;
  const std::size_t n = dim;
  try {
    for (std::size_t i = 0; i < n; ++i)  // the lower triangle mirrored: the reduction updates both
      for (std::size_t j = 0; j < i; ++j) a[j * n + i] = a[i * n + j];
    std::vector<double> d(n), e(n), z(total);
    if (Status st = tridiagonalize(a, n, d.data(), e.data(), z.data()); st != Status::ok) return st;
    for (std::size_t r = 0; r < n; ++r)  // Q's columns become rows: QL rotates pairs of them
      for (std::size_t c = r + 1; c < n; ++c) std::swap(z[r * n + c], z[c * n + r]);
    if (Status st = tridiagonal_ql(d.data(), e.data(), n, z.data()); st != Status::ok) return st;
    // Descending eigenvalues (ties keep QL's order), each vector's largest-magnitude component positive.
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return d[x] > d[y]; });
    for (std::size_t j = 0; j < n; ++j) {
      const std::size_t src = order[j];
      values[j] = d[src];
      const double* zs = z.data() + src * n;
      std::size_t arg = 0;
      for (std::size_t r = 1; r < n; ++r)
        if (std::fabs(zs[r]) > std::fabs(zs[arg])) arg = r;
      const double sign = zs[arg] < 0 ? -1.0 : 1.0;
      for (std::size_t r = 0; r < n; ++r) vectors[r * n + j] = sign * zs[r];
    }
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::postprocess
