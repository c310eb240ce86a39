// Bindings of the embedding post-processing (tessera/postprocess.h): relative representations, whitening (fit and
// transform) and projection onto the orthogonal complement of given directions; each sync and async. Argument checks
// and marshalling only.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "async.h"
#include "tessera/memory.h"
#include "tessera/postprocess.h"

namespace tessera::napi {
namespace {

constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 40;

// The bytes of a typed array, for overlap checks (Data() accounts for the view's offset).
struct Span {
  const void* data;
  std::size_t bytes;
  template <class T>
  Span(const Napi::TypedArrayOf<T>& a) : data(a.Data()), bytes(a.ByteLength()) {}  // NOLINT: implicit on purpose
};

void no_overlap(Napi::Env env, Span out, std::initializer_list<Span> inputs, const char* name = "out") {
  for (const Span& in : inputs)
    if (bytes_overlap(out.data, out.bytes, in.data, in.bytes))
      throw_range(env, std::string("\"") + name + "\" overlaps an input");
}

// ---- relativeRepresentation: (vectors, anchors, out, n, anchorCount, dim, anchorsNormalized, normalize) ----------
struct RelativeKernel {
  const float *vectors, *anchors;
  float* out;
  std::size_t n, anchors_count, dim;
  bool anchors_normalized, normalize;
  Status run() const {
    return postprocess::relative_representation(vectors, n, anchors, anchors_count, dim, anchors_normalized, normalize,
                                                out);
  }
};

KernelCall<RelativeKernel> parse_relative(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 8, 8, function);
  Napi::Env env = info.Env();
  RelativeKernel c;
  c.n = integer(info, 3, "n", 0, kMaxCount);
  c.anchors_count = integer(info, 4, "anchorCount", 1, kMaxCount);
  c.dim = integer(info, 5, "dim", 1, kMaxCount);
  auto vectors = exactly<float>(info, 0, "vectors", elements(env, {c.n, c.dim}, "vectors"));
  auto anchors = exactly<float>(info, 1, "anchors", elements(env, {c.anchors_count, c.dim}, "anchors"));
  auto out = exactly<float>(info, 2, "out", elements(env, {c.n, c.anchors_count}, "out"));
  c.anchors_normalized = boolean(info, 6, "anchorsNormalized");
  c.normalize = boolean(info, 7, "normalize");
  no_overlap(env, out, {vectors, anchors});
  c.vectors = vectors.Data(), c.anchors = anchors.Data(), c.out = out.Data();
  return {out, {vectors, anchors, out}, c};
}

// ---- whiteningFit: (sample, mean, matrix, eigenvalues, n, dim, components, epsilon) --------------------------------
struct FitKernel {
  const float* sample;
  float *mean, *matrix;
  double* eigenvalues;
  std::size_t n, dim, components;
  double epsilon;
  Status run() const {
    return postprocess::whitening_fit(sample, n, dim, components, epsilon, mean, matrix, eigenvalues);
  }
};

KernelCall<FitKernel> parse_fit(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 8, 8, function);
  Napi::Env env = info.Env();
  FitKernel c;
  c.n = integer(info, 4, "n", 1, kMaxCount);
  c.dim = integer(info, 5, "dim", 1, std::uint64_t{1} << 16);
  c.components = integer(info, 6, "components", 1, c.dim);
  c.epsilon = number(info, 7, "epsilon");
  if (!(c.epsilon >= 0) || !(c.epsilon < 1e300)) throw_range(env, "\"epsilon\" must be finite and at least 0");
  elements(env, {c.dim, c.dim}, "covariance");
  auto sample = exactly<float>(info, 0, "sample", elements(env, {c.n, c.dim}, "sample"));
  auto mean = exactly<float>(info, 1, "mean", c.dim);
  auto matrix = exactly<float>(info, 2, "matrix", elements(env, {c.dim, c.components}, "matrix"));
  auto eigenvalues = exactly<double>(info, 3, "eigenvalues", c.dim);
  no_overlap(env, mean, {sample, matrix, eigenvalues}, "mean");
  no_overlap(env, matrix, {sample, eigenvalues}, "matrix");
  no_overlap(env, eigenvalues, {sample}, "eigenvalues");
  c.sample = sample.Data(), c.mean = mean.Data(), c.matrix = matrix.Data(), c.eigenvalues = eigenvalues.Data();
  return {mean, {sample, mean, matrix, eigenvalues}, c};
}

// ---- whiteningTransform: (x, out, mean, matrix, n, dim, components, normalize) -------------------------------------
struct TransformKernel {
  const float *x, *mean, *matrix;
  float* out;
  std::size_t n, dim, components;
  bool normalize;
  Status run() const {
    return postprocess::whitening_transform(x, n, dim, mean, matrix, components, normalize, out);
  }
};

KernelCall<TransformKernel> parse_transform(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 8, 8, function);
  Napi::Env env = info.Env();
  TransformKernel c;
  c.n = integer(info, 4, "n", 0, kMaxCount);
  c.dim = integer(info, 5, "dim", 1, kMaxCount);
  c.components = integer(info, 6, "components", 1, c.dim);
  c.normalize = boolean(info, 7, "normalize");
  auto x = exactly<float>(info, 0, "vectors", elements(env, {c.n, c.dim}, "vectors"));
  auto out = exactly<float>(info, 1, "out", elements(env, {c.n, c.components}, "out"));
  auto mean = exactly<float>(info, 2, "mean", c.dim);
  auto matrix = exactly<float>(info, 3, "matrix", elements(env, {c.dim, c.components}, "matrix"));
  no_overlap(env, out, {x, mean, matrix});
  c.x = x.Data(), c.out = out.Data(), c.mean = mean.Data(), c.matrix = matrix.Data();
  return {out, {x, out, mean, matrix}, c};
}

// ---- projectOut: (vectors, directions, out, n, count, dim, normalize); out may be vectors itself ------------------
struct ProjectKernel {
  const float *vectors, *directions;
  float* out;
  std::size_t n, count, dim;
  bool normalize;
  Status run() const { return postprocess::project_out(vectors, n, directions, count, dim, normalize, out); }
};

KernelCall<ProjectKernel> parse_project(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 7, 7, function);
  Napi::Env env = info.Env();
  ProjectKernel c;
  c.n = integer(info, 3, "n", 0, kMaxCount);
  c.count = integer(info, 4, "count", 0, kMaxCount);
  c.dim = integer(info, 5, "dim", 1, kMaxCount);
  c.normalize = boolean(info, 6, "normalize");
  auto vectors = exactly<float>(info, 0, "vectors", elements(env, {c.n, c.dim}, "vectors"));
  auto directions = exactly<float>(info, 1, "directions", elements(env, {c.count, c.dim}, "directions"));
  auto out = exactly<float>(info, 2, "out", elements(env, {c.n, c.dim}, "out"));
  no_overlap(env, out, {directions});
  if (out.Data() != vectors.Data()) no_overlap(env, out, {vectors});
  c.vectors = vectors.Data(), c.directions = directions.Data(), c.out = out.Data();
  return {out, {vectors, directions, out}, c};
}

// normalizeRows(x, out, n, dim): out may be x itself.
Napi::Value NormalizeRows(const Napi::CallbackInfo& info) {
  expect_arity(info, 4, 4, "normalizeRows");
  Napi::Env env = info.Env();
  const std::size_t n = integer(info, 2, "n", 0, kMaxCount), dim = integer(info, 3, "dim", 1, kMaxCount);
  const std::size_t total = elements(env, {n, dim}, "x");
  auto x = exactly<float>(info, 0, "x", total);
  auto out = exactly<float>(info, 1, "out", total);
  if (out.Data() != x.Data()) no_overlap(env, out, {x});
  check(env, postprocess::normalize_rows(x.Data(), n, dim, out.Data()), "normalizeRows");
  return out;
}

}  // namespace

void register_embed(Napi::Env env, Napi::Object exports) {
  export_kernel<RelativeKernel, parse_relative>(env, exports, "relativeRepresentation");
  export_kernel<FitKernel, parse_fit>(env, exports, "whiteningFit");
  export_kernel<TransformKernel, parse_transform>(env, exports, "whiteningTransform");
  export_kernel<ProjectKernel, parse_project>(env, exports, "projectOut");
  exports.Set("normalizeRows", Napi::Function::New(env, NormalizeRows, "normalizeRows"));
}

}  // namespace tessera::napi
