// Bindings of the pooling heads (tessera/pooling.h): token pooling, NV-Embed latent attention, ECAPA attentive
// statistics, DIN target attention; each sync and async. Argument checks and marshalling only.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "async.h"
#include "tessera/memory.h"
#include "tessera/pooling.h"

namespace tessera::napi {
namespace {

constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 40;

// What a call reads (kept alive by the async form) and writes; out must overlap nothing it reads.
struct Arrays {
  std::vector<Napi::Object> keep;
  std::vector<std::pair<const void*, std::size_t>> read;

  template <class T>
  const T* add(const std::optional<Napi::TypedArrayOf<T>>& a) {
    if (!a) return nullptr;
    keep.push_back(*a);
    read.emplace_back(a->Data(), a->ByteLength());
    return a->Data();
  }
  void check_out(Napi::Env env, const Napi::Float32Array& out) const {
    for (const auto& [p, n] : read)
      if (bytes_overlap(out.Data(), out.ByteLength(), p, n)) throw_range(env, "\"out\" overlaps an input");
  }
};

// A Float32Array of exactly `n` values.
Napi::Float32Array floats(const Napi::CallbackInfo& info, std::size_t i, const char* name, std::size_t n) {
  return exactly<float>(info, i, name, n);
}

std::optional<Napi::Float32Array> optional_floats(const Napi::CallbackInfo& info, std::size_t i, const char* name,
                                                  std::size_t n) {
  if (!has_value(info, i)) return std::nullopt;
  return floats(info, i, name, n);
}

// (maskU8 | null, maskI32 | null, lengths | null) at i, i + 1, i + 2.
pooling::TokenMask token_mask(const Napi::CallbackInfo& info, std::size_t i, std::size_t batch, std::size_t seq,
                              Arrays& arrays) {
  Napi::Env env = info.Env();
  auto u8 = optional_typed_array<std::uint8_t>(info, i, "mask");
  auto i32 = optional_typed_array<std::int32_t>(info, i + 1, "mask");
  auto lengths = optional_typed_array<std::int32_t>(info, i + 2, "lengths");
  if ((u8.has_value() + i32.has_value() + lengths.has_value()) > 1) throw_range(env, "give \"mask\" or \"lengths\", not both");
  const std::size_t cells = elements(env, {batch, seq}, "mask");
  if ((u8 && u8->ElementLength() != cells) || (i32 && i32->ElementLength() != cells))
    throw_range(env, "\"mask\" must hold batch × seq = " + str(cells) + " values");
  if (lengths) {
    if (lengths->ElementLength() != batch) throw_range(env, "\"lengths\" must hold batch = " + str(batch) + " values");
    for (std::size_t b = 0; b < batch; ++b)
      if ((*lengths)[b] < 0 || static_cast<std::size_t>((*lengths)[b]) > seq)
        throw_range(env, "\"lengths\"[" + str(b) + "] must be from 0 to " + str(seq));
  }
  pooling::TokenMask m;
  m.mask_u8 = arrays.add(u8), m.mask_i32 = arrays.add(i32), m.lengths = arrays.add(lengths);
  return m;
}

std::optional<Napi::Float32Array> some(const Napi::Float32Array& a) { return a; }

// A call being parsed: the output and inputs as JavaScript arrays, and the kernel's plain arguments.
template <class Kernel>
struct Parsed {
  Napi::Float32Array out;
  Arrays arrays;
  Kernel kernel;
};

// The parsed call as the shared runners take it (async.h).
template <class Kernel>
KernelCall<Kernel> call(Parsed<Kernel>& p) {
  return {p.out, std::move(p.arrays.keep), p.kernel};
}

// ---- poolTokens: (hidden, out, batch, seq, dim, mode, maskU8, maskI32, lengths, normalize) ------------------------
struct TokensKernel {
  float* out = nullptr;
  const float* hidden;
  std::size_t batch, seq, dim;
  pooling::Mode mode;
  pooling::TokenMask mask;
  bool normalize;
  Status run() const { return pooling::pool_tokens(hidden, batch, seq, dim, mode, mask, normalize, out); }
};

KernelCall<TokensKernel> parse_tokens(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 10, 10, function);
  Napi::Env env = info.Env();
  Parsed<TokensKernel> p;
  TokensKernel& c = p.kernel;
  c.batch = integer(info, 2, "batch", 0, kMaxCount);
  c.seq = integer(info, 3, "seq", 0, kMaxCount);
  c.dim = integer(info, 4, "dim", 1, kMaxCount);
  c.hidden = p.arrays.add(some(floats(info, 0, "hidden", elements(env, {c.batch, c.seq, c.dim}, "hidden"))));
  p.out = floats(info, 1, "out", elements(env, {c.batch, c.dim}, "out"));
  c.mode = choice<pooling::Mode>(info, 5, "mode", {{"mean", pooling::Mode::mean}, {"cls", pooling::Mode::cls},
                                                   {"last", pooling::Mode::last}});
  c.mask = token_mask(info, 6, c.batch, c.seq, p.arrays);
  c.normalize = boolean(info, 9, "normalize");
  p.arrays.check_out(env, p.out);
  c.out = p.out.Data();
  return call(p);
}

// ---- latentAttentionPool ------------------------------------------------------------------------------------------
// (hidden, out, batch, seq, dim, heads, headDim, numLatents, ffDim, maskU8, maskI32, lengths, eps, normalize,
//  latents, normWeight, normBias, contextNormWeight, contextNormBias, toQ, toKv, toOut, toOutBias | null,
//  ffNormWeight, ffNormBias, ffIn, ffInBias, ffOut, ffOutBias)
struct LatentKernel {
  float* out = nullptr;
  const float* hidden;
  pooling::LatentShape shape;
  pooling::LatentWeights weights;
  pooling::TokenMask mask;
  float eps;
  bool normalize;
  Status run() const {
    return pooling::latent_attention_pool(hidden, shape, weights, mask, eps, normalize, out);
  }
};

KernelCall<LatentKernel> parse_latent(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 29, 29, function);
  Napi::Env env = info.Env();
  Parsed<LatentKernel> p;
  LatentKernel& c = p.kernel;
  pooling::LatentShape& s = c.shape;
  s.batch = integer(info, 2, "batch", 0, kMaxCount);
  s.seq = integer(info, 3, "seq", 0, kMaxCount);
  s.dim = integer(info, 4, "dim", 1, kMaxCount);
  s.heads = integer(info, 5, "heads", 1, kMaxCount);
  s.head_dim = integer(info, 6, "headDim", 1, kMaxCount);
  s.num_latents = integer(info, 7, "numLatents", 1, kMaxCount);
  s.ff_dim = integer(info, 8, "ffDim", 1, kMaxCount);
  c.hidden = p.arrays.add(some(floats(info, 0, "hidden", elements(env, {s.batch, s.seq, s.dim}, "hidden"))));
  p.out = floats(info, 1, "out", elements(env, {s.batch, s.dim}, "out"));
  c.mask = token_mask(info, 9, s.batch, s.seq, p.arrays);
  const double eps = number(info, 12, "eps");
  if (!(eps > 0) || !(eps < 1)) throw_range(env, "\"eps\" must be above 0 and below 1");
  c.eps = static_cast<float>(eps);
  c.normalize = boolean(info, 13, "normalize");
  const std::size_t inner = elements(env, {s.heads, s.head_dim}, "heads × headDim"), d = s.dim;
  pooling::LatentWeights& w = c.weights;
  auto vec = [&](std::size_t i, const char* name, std::size_t n) { return p.arrays.add(some(floats(info, i, name, n))); };
  w.latents = vec(14, "latents", elements(env, {s.num_latents, d}, "latents"));
  w.norm_weight = vec(15, "normWeight", d), w.norm_bias = vec(16, "normBias", d);
  w.context_norm_weight = vec(17, "contextNormWeight", d), w.context_norm_bias = vec(18, "contextNormBias", d);
  w.to_q = vec(19, "toQ", elements(env, {inner, d}, "toQ"));
  w.to_kv = vec(20, "toKv", elements(env, {2, inner, d}, "toKv"));
  w.to_out = vec(21, "toOut", elements(env, {d, inner}, "toOut"));
  w.to_out_bias = p.arrays.add(optional_floats(info, 22, "toOutBias", d));
  w.ff_norm_weight = vec(23, "ffNormWeight", d), w.ff_norm_bias = vec(24, "ffNormBias", d);
  w.ff_in = vec(25, "ffIn", elements(env, {2, s.ff_dim, d}, "ffIn"));
  w.ff_in_bias = vec(26, "ffInBias", elements(env, {2, s.ff_dim}, "ffInBias"));
  w.ff_out = vec(27, "ffOut", elements(env, {d, s.ff_dim}, "ffOut"));
  w.ff_out_bias = vec(28, "ffOutBias", d);
  p.arrays.check_out(env, p.out);
  c.out = p.out.Data();
  return call(p);
}

// ---- attentiveStatsPool -------------------------------------------------------------------------------------------
// (x, out, batch, channels, frames, attentionChannels, globalContext, lengths | null, eps, bnEps,
//  tdnnWeight, tdnnBias, bnMean, bnVar, bnWeight, bnBias, convWeight, convBias)
struct StatsKernel {
  float* out = nullptr;
  const float* x;
  pooling::StatsShape shape;
  pooling::StatsWeights weights;
  const std::int32_t* lengths;
  float eps, bn_eps;
  Status run() const {
    return pooling::attentive_stats_pool(x, shape, weights, lengths, eps, bn_eps, out);
  }
};

KernelCall<StatsKernel> parse_stats(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 18, 18, function);
  Napi::Env env = info.Env();
  Parsed<StatsKernel> p;
  StatsKernel& c = p.kernel;
  pooling::StatsShape& s = c.shape;
  s.batch = integer(info, 2, "batch", 0, kMaxCount);
  s.channels = integer(info, 3, "channels", 1, kMaxCount);
  s.frames = integer(info, 4, "frames", 0, kMaxCount);
  s.attention_channels = integer(info, 5, "attentionChannels", 1, kMaxCount);
  s.global_context = boolean(info, 6, "globalContext");
  c.x = p.arrays.add(some(floats(info, 0, "x", elements(env, {s.batch, s.channels, s.frames}, "x"))));
  p.out = floats(info, 1, "out", elements(env, {s.batch, 2, s.channels}, "out"));
  auto lengths = optional_typed_array<std::int32_t>(info, 7, "lengths");
  if (lengths) {
    if (lengths->ElementLength() != s.batch) throw_range(env, "\"lengths\" must hold batch = " + str(s.batch) + " values");
    for (std::size_t b = 0; b < s.batch; ++b)
      if ((*lengths)[b] < 0 || static_cast<std::size_t>((*lengths)[b]) > s.frames)
        throw_range(env, "\"lengths\"[" + str(b) + "] must be from 0 to " + str(s.frames));
  }
  c.lengths = p.arrays.add(lengths);
  const double eps = number(info, 8, "eps"), bn_eps = number(info, 9, "bnEps");
  if (!(eps >= 0) || !(eps < 1)) throw_range(env, "\"eps\" must be from 0 to below 1");
  if (!(bn_eps >= 0) || !(bn_eps < 1)) throw_range(env, "\"bnEps\" must be from 0 to below 1");
  c.eps = static_cast<float>(eps), c.bn_eps = static_cast<float>(bn_eps);
  const std::size_t A = s.attention_channels, C = s.channels;
  pooling::StatsWeights& w = c.weights;
  auto vec = [&](std::size_t i, const char* name, std::size_t n) { return p.arrays.add(some(floats(info, i, name, n))); };
  w.tdnn_weight = vec(10, "tdnnWeight", elements(env, {A, s.global_context ? std::size_t{3} : std::size_t{1}, C}, "tdnnWeight"));
  w.tdnn_bias = vec(11, "tdnnBias", A);
  w.bn_mean = vec(12, "bnMean", A), w.bn_var = vec(13, "bnVar", A);
  w.bn_weight = vec(14, "bnWeight", A), w.bn_bias = vec(15, "bnBias", A);
  w.conv_weight = vec(16, "convWeight", elements(env, {C, A}, "convWeight"));
  w.conv_bias = vec(17, "convBias", C);
  p.arrays.check_out(env, p.out);
  c.out = p.out.Data();
  return call(p);
}

// ---- targetAttention ----------------------------------------------------------------------------------------------
// (query, keys, out, batch, items, seq, dim, hidden1, hidden2, lengths | null, activation, normalize,
//  w1, b1, w2, b2, w3, b3, prelu1 | null, prelu2 | null)
struct TargetKernel {
  float* out = nullptr;
  const float *query, *keys;
  pooling::TargetShape shape;
  pooling::TargetWeights weights;
  const std::int32_t* lengths;
  pooling::Activation activation;
  bool softmax;
  Status run() const {
    return pooling::target_attention(query, keys, shape, weights, lengths, activation, softmax, out);
  }
};

KernelCall<TargetKernel> parse_target(const Napi::CallbackInfo& info, const char* function) {
  expect_arity(info, 20, 20, function);
  Napi::Env env = info.Env();
  Parsed<TargetKernel> p;
  TargetKernel& c = p.kernel;
  pooling::TargetShape& s = c.shape;
  s.batch = integer(info, 3, "batch", 0, kMaxCount);
  s.items = integer(info, 4, "items", 1, kMaxCount);
  s.seq = integer(info, 5, "seqK", 0, kMaxCount);
  s.dim = integer(info, 6, "dim", 1, kMaxCount);
  s.hidden1 = integer(info, 7, "hidden1", 1, kMaxCount);
  s.hidden2 = integer(info, 8, "hidden2", 1, kMaxCount);
  const std::size_t nq = elements(env, {s.batch, s.items, s.dim}, "query");
  c.query = p.arrays.add(some(floats(info, 0, "query", nq)));
  c.keys = p.arrays.add(some(floats(info, 1, "keys", elements(env, {s.batch, s.seq, s.dim}, "keys"))));
  p.out = floats(info, 2, "out", nq);
  auto lengths = optional_typed_array<std::int32_t>(info, 9, "lengths");
  if (lengths) {
    if (lengths->ElementLength() != s.batch) throw_range(env, "\"lengths\" must hold batch = " + str(s.batch) + " values");
    for (std::size_t b = 0; b < s.batch; ++b)
      if ((*lengths)[b] < 0 || static_cast<std::size_t>((*lengths)[b]) > s.seq)
        throw_range(env, "\"lengths\"[" + str(b) + "] must be from 0 to " + str(s.seq));
  }
  c.lengths = p.arrays.add(lengths);
  c.activation = choice<pooling::Activation>(info, 10, "activation", {{"sigmoid", pooling::Activation::sigmoid},
                                                                      {"relu", pooling::Activation::relu},
                                                                      {"prelu", pooling::Activation::prelu}});
  c.softmax = choice<bool>(info, 11, "normalize", {{"softmax", true}, {"none", false}});
  pooling::TargetWeights& w = c.weights;
  auto vec = [&](std::size_t i, const char* name, std::size_t n) { return p.arrays.add(some(floats(info, i, name, n))); };
  w.w1 = vec(12, "w1", elements(env, {4, s.dim, s.hidden1}, "w1"));
  w.b1 = vec(13, "b1", s.hidden1);
  w.w2 = vec(14, "w2", elements(env, {s.hidden1, s.hidden2}, "w2"));
  w.b2 = vec(15, "b2", s.hidden2);
  w.w3 = vec(16, "w3", s.hidden2);
  w.b3 = vec(17, "b3", 1);
  w.prelu1 = p.arrays.add(optional_floats(info, 18, "prelu1", s.hidden1));
  w.prelu2 = p.arrays.add(optional_floats(info, 19, "prelu2", s.hidden2));
  if (c.activation == pooling::Activation::prelu && (!w.prelu1 || !w.prelu2))
    throw_range(env, "activation 'prelu' needs \"prelu1\" and \"prelu2\"");
  p.arrays.check_out(env, p.out);
  c.out = p.out.Data();
  return call(p);
}

}  // namespace

void register_pooling(Napi::Env env, Napi::Object exports) {
  export_kernel<TokensKernel, parse_tokens>(env, exports, "poolTokens");
  export_kernel<LatentKernel, parse_latent>(env, exports, "latentAttentionPool");
  export_kernel<StatsKernel, parse_stats>(env, exports, "attentiveStatsPool");
  export_kernel<TargetKernel, parse_target>(env, exports, "targetAttention");
}

}  // namespace tessera::napi
