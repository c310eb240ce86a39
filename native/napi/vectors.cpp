// Bindings of the vectors module: matryoshka (truncate + renormalise) and, through it, l2Normalize.
#include <cstdint>

#include "addon.h"
#include "args.h"
#include "async.h"
#include "tessera/memory.h"
#include "tessera/vectors.h"

namespace tessera::napi {
namespace {

constexpr std::uint64_t kMaxDim = std::uint64_t{1} << 30;

struct MatryoshkaCall {
  Napi::Float32Array in, out;
  std::size_t rows = 0, dim = 0, keep = 0;
  bool normalize = true;
};

// (vectors: Float32Array, dim, keep, normalize: boolean, out?: Float32Array)
MatryoshkaCall parse_matryoshka(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 4, 5, function);
  MatryoshkaCall c;
  c.in = typed_array<float>(info, 0, "vectors");
  c.dim = integer(info, 1, "dim", 1, kMaxDim);
  c.keep = integer(info, 2, "keep", 1, kMaxDim);
  c.normalize = boolean(info, 3, "normalize");
  if (c.keep > c.dim)
    throw_range(info.Env(), "\"keep\" (" + std::to_string(c.keep) + ") must not exceed \"dim\" (" +
                                std::to_string(c.dim) + ")");
  if (c.in.ElementLength() % c.dim != 0)
    throw_range(info.Env(), "\"vectors\" length (" + std::to_string(c.in.ElementLength()) +
                                ") is not a multiple of \"dim\" (" + std::to_string(c.dim) + ")");
  c.rows = c.in.ElementLength() / c.dim;
  const std::size_t out_length = c.rows * c.keep;
  if (has_value(info, 4)) {
    c.out = typed_array<float>(info, 4, "out");
    if (c.out.ElementLength() != out_length)
      throw_range(info.Env(), "\"out\" must hold " + std::to_string(out_length) + " floats, got " +
                                  std::to_string(c.out.ElementLength()));
    const bool in_place = c.out.Data() == c.in.Data() && c.keep == c.dim;
    if (!in_place && bytes_overlap(c.in.Data(), c.in.ByteLength(), c.out.Data(), c.out.ByteLength()))
      throw_range(info.Env(), "\"out\" overlaps \"vectors\": only the same array with keep == dim works in place");
  } else {
    c.out = Napi::Float32Array::New(info.Env(), out_length);
  }
  return c;
}

Napi::Value Matryoshka(const Napi::CallbackInfo& info) {
  MatryoshkaCall c = parse_matryoshka(info, "matryoshka");
  check(info.Env(), vectors::matryoshka(c.in.Data(), c.rows, c.dim, c.keep, c.normalize, c.out.Data()),
        "matryoshka");
  return c.out;
}

Napi::Value MatryoshkaAsync(const Napi::CallbackInfo& info) {
  MatryoshkaCall c = parse_matryoshka(info, "matryoshkaAsync");
  const float* in = c.in.Data();
  float* out = c.out.Data();
  auto kernel = [in, out, rows = c.rows, dim = c.dim, keep = c.keep, normalize = c.normalize] {
    return vectors::matryoshka(in, rows, dim, keep, normalize, out);
  };
  return KernelWorker::Start(info.Env(), "matryoshkaAsync", kernel, c.out, {c.in});
}

}  // namespace

void register_vectors(Napi::Env env, Napi::Object exports) {
  exports.Set("matryoshka", Napi::Function::New(env, Matryoshka, "matryoshka"));
  exports.Set("matryoshkaAsync", Napi::Function::New(env, MatryoshkaAsync, "matryoshkaAsync"));
}

}  // namespace tessera::napi
