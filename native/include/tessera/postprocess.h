// Post-processing of sentence embeddings: relative representations, whitening toward isotropy, and the removal of
// given directions. Rows are float32 vectors of `dim` values, row-major.
//
// - Relative representations (Moschella et al., ICLR 2023, "Relative representations enable zero-shot latent space
//   communication"): each vector becomes its cosine similarity to each of a fixed set of anchors.
// - Whitening (Su et al. 2021, "Whitening Sentence Representations for Better Semantics and Faster Retrieval"):
//   y = (x - mu) W, W = U diag(1 / sqrt(lambda + eps)) from the eigendecomposition Sigma = U diag(lambda) U^T of the
//   sample covariance; keeping the first k columns of W also reduces the dimension.
// - Projection onto the orthogonal complement of given directions (DECOR-style debiasing): v - sum_i (v . u_i) u_i
//   over an orthonormal basis u of the directions' span.
//
// Every function checks its arguments first (invalid_argument; shapes overflow-checked), never throws, and gives
// the same bits for any thread count: work is cut into row blocks whose boundaries depend only on the shapes.
#pragma once

#include <cstddef>

#include "tessera/status.h"

namespace tessera::postprocess {

// out[i] = x[i] / |x[i]| for each of n rows (the norm summed in float64); a zero row stays zero. out may be x
// (in place) but must not partly overlap it. Threaded over rows.
Status normalize_rows(const float* x, std::size_t n, std::size_t dim, float* out) noexcept;

// out [n, anchor_count] = cosine of each vector with each anchor: the vectors' and anchors' rows are L2-normalised
// (a zero row gives zeros), then multiplied on the blocked SIMD matrix product. anchors_normalized says the anchors
// already went through normalize_rows (the RelativeProjector keeps them so), which skips that step; normalize_output
// L2-normalises each output row. out must not overlap an input. NaN or infinite inputs propagate.
Status relative_representation(const float* vectors, std::size_t n, const float* anchors, std::size_t anchor_count,
                               std::size_t dim, bool anchors_normalized, bool normalize_output, float* out) noexcept;

// Symmetric eigendecomposition in float64: a [dim, dim] (row-major, symmetric; only its lower triangle is read) is
// overwritten. values[dim] receives the eigenvalues in descending order, vectors [dim, dim] the matching unit
// eigenvectors as columns (vectors[r * dim + j] is component r of eigenvector j), each with its largest-magnitude
// component positive (the first such component on ties), so results are reproducible.
// Householder tridiagonalisation, then the implicit QL method with Wilkinson shifts; both O(dim^3) (about
// 9 dim^3 flops with the vectors), the O(dim^3) parts threaded. Returns internal if QL fails to converge
// (60 iterations for one eigenvalue; not seen).
Status symmetric_eigen(double* a, std::size_t dim, double* values, double* vectors) noexcept;

// Fits a whitening on sample [n, dim], n >= 1: mean[dim] (float64 sums), the covariance with divisor n - 1 (np.cov's;
// 1 when n = 1), accumulated in float64, its eigendecomposition (symmetric_eigen), and
// matrix [dim, components] = the first `components` eigenvectors (eigenvalues descending) scaled by
// 1 / sqrt(max(lambda, 0) + epsilon). eigenvalues[dim] (optional) receives all eigenvalues, descending.
// 1 <= components <= dim, epsilon finite and > 0 unless every kept eigenvalue is positive. A sample with fewer rows
// than dim is rank deficient: the trailing eigenvalues are (about) zero and epsilon keeps their scale finite.
Status whitening_fit(const float* sample, std::size_t n, std::size_t dim, std::size_t components, double epsilon,
                     float* mean, float* matrix, double* eigenvalues) noexcept;

// out [n, components] = (x - mean) matrix, optionally L2-normalised per row; centring in float32, then the blocked
// SIMD matrix product. 1 <= components <= dim; out must not overlap an input.
Status whitening_transform(const float* x, std::size_t n, std::size_t dim, const float* mean, const float* matrix,
                           std::size_t components, bool normalize_output, float* out) noexcept;

// Orthonormal basis of the span of directions [count, dim], by modified Gram-Schmidt in float64 with a second
// orthogonalisation pass: a direction whose residual norm falls below 1e-10 times its own norm (zero, or numerically
// dependent on the ones before it) is dropped. basis [count, dim] receives *rank unit rows. Non-finite directions
// are invalid_argument.
Status orthonormalize(const float* directions, std::size_t count, std::size_t dim, double* basis,
                      std::size_t* rank) noexcept;

// out [n, dim] = v - sum_i (v . u_i) u_i for every row v, u the orthonormal basis of `directions` (orthonormalize),
// optionally L2-normalised afterwards; count = 0 copies (or normalises) the rows. The coefficients and the residual
// are computed in float64 and rounded once (about 1 ulp of the row's largest value); threaded over rows. out may
// be vectors (in place) but must not partly overlap it, nor overlap directions. *rank (optional) receives the basis size.
Status project_out(const float* vectors, std::size_t n, const float* directions, std::size_t count, std::size_t dim,
                   bool normalize_output, float* out, std::size_t* rank = nullptr) noexcept;

}  // namespace tessera::postprocess
