// Bindings of approximate attention (tessera/approx_attention.h): the Squeezed Attention index handle and
// HyperAttention (sync and async), plus HyperAttention's plan for tests. Marshalling and argument checks only.
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"
#include "async.h"
#include "tessera/approx_attention.h"
#include "tessera/memory.h"

namespace tessera::napi {
namespace {

constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 40;
constexpr std::uint64_t kMaxSeq = 0xFFFFFFFFull;

template <class A, class B>
void no_overlap(Napi::Env env, const A& a, const B& b, const char* what) {
  if (bytes_overlap(a.Data(), a.ByteLength(), b.Data(), b.ByteLength())) throw_range(env, what);
}

Napi::Int32Array to_int32(Napi::Env env, const std::vector<std::uint32_t>& v) {
  auto a = Napi::Int32Array::New(env, v.size());
  for (std::size_t i = 0; i < v.size(); ++i) a[i] = static_cast<std::int32_t>(v[i]);
  return a;
}

// ---- Squeezed Attention ----------------------------------------------------------------------------------------

class SqueezedHandle final : public Napi::ObjectWrap<SqueezedHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SqueezedAttentionHandle",
                       {InstanceMethod<&SqueezedHandle::Build<false>>("build"),
                        InstanceMethod<&SqueezedHandle::Build<true>>("buildAsync"),
                        InstanceMethod<&SqueezedHandle::Attend<false>>("attend"),
                        InstanceMethod<&SqueezedHandle::Attend<true>>("attendAsync"),
                        InstanceMethod<&SqueezedHandle::Layout>("layout"),
                        InstanceMethod<&SqueezedHandle::MemoryBytes>("memoryBytes"),
                        InstanceMethod<&SqueezedHandle::Release>("release")});
  }

  explicit SqueezedHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SqueezedHandle>(info) {
    expect_arity(info, 0, 0, "SqueezedAttentionHandle");
  }

 private:
  const attention::SqueezedIndex& index(Napi::Env env) {
    if (!index_) throw Napi::Error::New(env, "SqueezedAttention has been disposed or not built");
    return *index_;
  }

  // (keys, values, headsKV, seqK, headDim, headDimV, clusters, iterations, seed)
  template <bool Async>
  Napi::Value Build(const Napi::CallbackInfo& info) {
    const char* fn = Async ? "buildAsync" : "build";
    expect_arity(info, 9, 9, fn);
    Napi::Env env = info.Env();
    if (index_ || building_) throw Napi::Error::New(env, "SqueezedAttention handle is already built");
    attention::SqueezedConfig c;
    c.heads_kv = integer(info, 2, "headsKV", 1, kMaxCount);
    c.seq_k = integer(info, 3, "seqK", 1, kMaxSeq);
    c.head_dim = integer(info, 4, "headDim", 1, attention::kMaxHeadDim);
    c.head_dim_v = integer(info, 5, "headDimV", 1, attention::kMaxHeadDim);
    c.clusters = integer(info, 6, "clusters", 1, c.seq_k);
    c.iterations = integer(info, 7, "iterations", 0, 100000);
    c.seed = u64(info, 8, "seed");
    auto keys = exactly<float>(info, 0, "keys", elements(env, {c.seq_k, c.heads_kv, c.head_dim}, "keys"));
    auto values = exactly<float>(info, 1, "values", elements(env, {c.seq_k, c.heads_kv, c.head_dim_v}, "values"));
    auto built = std::make_shared<std::unique_ptr<attention::SqueezedIndex>>();
    auto kernel = [k = keys.Data(), v = values.Data(), c, built] { return attention::SqueezedIndex::build(k, v, c, built.get()); };
    if constexpr (Async) {
      building_ = true;
      auto finish = [this, built](Napi::Object) {
        building_ = false;
        index_ = std::shared_ptr<const attention::SqueezedIndex>(std::move(*built));
      };
      Napi::Object result = Napi::Object::New(env);
      // The handle itself is kept alive with the inputs, so `finish` may touch it.
      return KernelWorker::Start(env, fn, kernel, result, {keys, values, info.This().As<Napi::Object>()}, finish);
    } else {
      check(env, kernel(), fn);
      index_ = std::shared_ptr<const attention::SqueezedIndex>(std::move(*built));
      return env.Undefined();
    }
  }

  // (q, out, lse | null, headsQ, seqQ, scale, threshold, keepFraction) -> keptFraction (a Promise of { keptFraction })
  template <bool Async>
  Napi::Value Attend(const Napi::CallbackInfo& info) {
    const char* fn = Async ? "attendAsync" : "attend";
    expect_arity(info, 8, 8, fn);
    Napi::Env env = info.Env();
    std::shared_ptr<const attention::SqueezedIndex> keep = index_;
    if (!keep) index(env);
    const attention::SqueezedConfig& c = keep->config();
    attention::SqueezedQuery query;
    query.heads_q = integer(info, 3, "headsQ", 1, kMaxCount);
    query.seq_q = integer(info, 4, "seqQ", 0, kMaxCount);
    query.scale = static_cast<float>(number(info, 5, "scale"));
    query.threshold = number(info, 6, "threshold");
    query.keep_fraction = number(info, 7, "keepFraction");
    if (query.heads_q % c.heads_kv != 0)
      throw_range(env, "\"headsQ\" (" + str(query.heads_q) + ") must be a multiple of headsKV (" + str(c.heads_kv) + ")");
    if (!(query.threshold >= 0) || std::isinf(query.threshold)) throw_range(env, "\"threshold\" must be finite and not negative");
    if (!(query.keep_fraction >= 0 && query.keep_fraction <= 1)) throw_range(env, "\"keepFraction\" must be from 0 to 1");
    auto q = exactly<float>(info, 0, "q", elements(env, {query.seq_q, query.heads_q, c.head_dim}, "q"));
    auto out = exactly<float>(info, 1, "out", elements(env, {query.seq_q, query.heads_q, c.head_dim_v}, "out"));
    auto lse = optional_typed_array<float>(info, 2, "lse");
    if (lse && lse->ElementLength() != query.seq_q * query.heads_q) throw_range(env, "\"lse\" must hold headsQ × seqQ values");
    no_overlap(env, out, q, "\"out\" overlaps \"q\"");
    if (lse) no_overlap(env, *lse, q, "\"lse\" overlaps \"q\""), no_overlap(env, *lse, out, "\"lse\" overlaps \"out\"");
    auto kept = std::make_shared<double>(0);
    auto kernel = [keep, qd = q.Data(), query, od = out.Data(), ld = lse ? lse->Data() : nullptr, kept] {
      return keep->attend(qd, query, od, ld, kept.get());
    };
    if constexpr (Async) {
      auto finish = [kept](Napi::Object r) { r.Set("keptFraction", Napi::Number::New(r.Env(), *kept)); };
      std::vector<Napi::Object> alive = {q, out};
      if (lse) alive.push_back(*lse);
      return KernelWorker::Start(env, fn, kernel, Napi::Object::New(env), alive, finish);
    } else {
      check(env, kernel(), fn);
      return Napi::Number::New(env, *kept);
    }
  }

  // () -> { offsets: Int32Array [headsKV, clusters + 1], order: Int32Array [headsKV, seqK], centroids: Float32Array }
  Napi::Value Layout(const Napi::CallbackInfo& info) {
    const attention::SqueezedIndex& ix = index(info.Env());
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("offsets", to_int32(info.Env(), ix.offsets()));
    o.Set("order", to_int32(info.Env(), ix.order()));
    o.Set("centroids", copy_out(info.Env(), ix.centroids()));
    return o;
  }

  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(index(info.Env()).memory_bytes()));
  }

  // Drops this handle's share; an async attend in flight keeps its own until it settles.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    index_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<const attention::SqueezedIndex> index_;
  bool building_ = false;
};

// ---- HyperAttention ---------------------------------------------------------------------------------------------

struct HyperCall {
  Napi::Float32Array q, k, v, out;
  std::optional<Napi::Float32Array> lse;
  attention::Shape shape;
  attention::HyperOptions options;
};

attention::Layout layout_of(const Napi::CallbackInfo& info, std::size_t i) {
  return choice<attention::Layout>(info, i, "layout", {{"bshd", attention::Layout::bshd}, {"bhsd", attention::Layout::bhsd}});
}

// Shape and options at [first, first + 14): layout, batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV, scale,
// causal, blockSize, sampleSize, lshBits, minSeqLen; then seed.
void parse_shape(const Napi::CallbackInfo& info, std::size_t i, attention::Shape& s, attention::HyperOptions& o) {
  Napi::Env env = info.Env();
  s.layout = layout_of(info, i);
  s.batch = integer(info, i + 1, "batch", 1, kMaxCount);
  s.heads_q = integer(info, i + 2, "headsQ", 1, kMaxCount);
  s.heads_kv = integer(info, i + 3, "headsKV", 1, kMaxCount);
  s.seq_q = integer(info, i + 4, "seqQ", 0, kMaxSeq);
  s.seq_k = integer(info, i + 5, "seqK", 0, kMaxSeq);
  s.head_dim = integer(info, i + 6, "headDim", 1, attention::kMaxHeadDim);
  s.head_dim_v = integer(info, i + 7, "headDimV", 1, attention::kMaxHeadDim);
  o.scale = static_cast<float>(number(info, i + 8, "scale"));
  o.causal = boolean(info, i + 9, "causal");
  o.block_size = integer(info, i + 10, "blockSize", 1, kMaxSeq);
  o.sample_size = integer(info, i + 11, "sampleSize", 0, std::uint64_t{1} << 24);
  o.lsh_bits = integer(info, i + 12, "lshBits", 0, attention::kMaxLshBits);
  o.min_seq_len = integer(info, i + 13, "minSeqLen", 0, kMaxCount);
  o.seed = u64(info, i + 14, "seed");
  if (s.heads_q % s.heads_kv != 0)
    throw_range(env, "\"headsQ\" (" + str(s.heads_q) + ") must be a multiple of \"headsKV\" (" + str(s.heads_kv) + ")");
  if (o.causal && s.seq_q != s.seq_k) throw_range(env, "causal HyperAttention needs \"seqQ\" equal to \"seqK\"");
}

// (q, k, v, out, lse | null, layout, batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV, scale, causal, blockSize,
//  sampleSize, lshBits, minSeqLen, seed)
HyperCall parse_hyper(const Napi::CallbackInfo& info, const char* fn) {
  expect_arity(info, 20, 20, fn);
  Napi::Env env = info.Env();
  HyperCall c;
  parse_shape(info, 5, c.shape, c.options);
  const attention::Shape& s = c.shape;
  c.q = exactly<float>(info, 0, "q", elements(env, {s.batch, s.heads_q, s.seq_q, s.head_dim}, "q"));
  c.k = exactly<float>(info, 1, "k", elements(env, {s.batch, s.heads_kv, s.seq_k, s.head_dim}, "k"));
  c.v = exactly<float>(info, 2, "v", elements(env, {s.batch, s.heads_kv, s.seq_k, s.head_dim_v}, "v"));
  c.out = exactly<float>(info, 3, "out", elements(env, {s.batch, s.heads_q, s.seq_q, s.head_dim_v}, "out"));
  c.lse = optional_typed_array<float>(info, 4, "lse");
  if (c.lse && c.lse->ElementLength() != s.batch * s.heads_q * s.seq_q) throw_range(env, "\"lse\" must hold batch × headsQ × seqQ values");
  for (const auto* a : {&c.q, &c.k, &c.v}) {
    no_overlap(env, c.out, *a, "\"out\" overlaps an input");
    if (c.lse) no_overlap(env, *c.lse, *a, "\"lse\" overlaps an input");
  }
  if (c.lse) no_overlap(env, *c.lse, c.out, "\"lse\" overlaps \"out\"");
  return c;
}

template <bool Async>
Napi::Value HyperAttention(const Napi::CallbackInfo& info) {
  const char* fn = Async ? "hyperAttentionAsync" : "hyperAttention";
  HyperCall c = parse_hyper(info, fn);
  auto kernel = [q = c.q.Data(), k = c.k.Data(), v = c.v.Data(), s = c.shape, o = c.options, out = c.out.Data(),
                 lse = c.lse ? c.lse->Data() : nullptr] { return attention::hyper_attend(q, k, v, s, o, out, lse); };
  if constexpr (Async) {
    std::vector<Napi::Object> alive = {c.q, c.k, c.v};
    if (c.lse) alive.push_back(*c.lse);
    return KernelWorker::Start(info.Env(), fn, kernel, c.out, alive);
  } else {
    check(info.Env(), kernel(), fn);
    return c.out;
  }
}

// (q, k, layout, batch, headsQ, headsKV, seqQ, seqK, headDim, headDimV, scale, causal, blockSize, sampleSize,
//  lshBits, minSeqLen, seed) -> { queryOrder, keyOrder, samples } (Int32Arrays, per (batch, query head))
Napi::Value HyperAttentionPlan(const Napi::CallbackInfo& info) {
  expect_arity(info, 17, 17, "hyperAttentionPlan");
  Napi::Env env = info.Env();
  attention::Shape s;
  attention::HyperOptions o;
  parse_shape(info, 2, s, o);
  auto q = exactly<float>(info, 0, "q", elements(env, {s.batch, s.heads_q, s.seq_q, s.head_dim}, "q"));
  auto k = exactly<float>(info, 1, "k", elements(env, {s.batch, s.heads_kv, s.seq_k, s.head_dim}, "k"));
  std::vector<std::uint32_t> qo(elements(env, {s.batch, s.heads_q, s.seq_q}, "queryOrder"));
  std::vector<std::uint32_t> ko(elements(env, {s.batch, s.heads_q, s.seq_k}, "keyOrder"));
  std::vector<std::uint32_t> sm(elements(env, {s.batch, s.heads_q, o.sample_size}, "samples"));
  const Status st = attention::hyper_plan(q.Data(), k.Data(), s, o, qo.data(), ko.data(), sm.data());
  if (st == Status::invalid_argument) throw_range(env, "hyperAttentionPlan: this call would be exact or causal (no plan)");
  check(env, st, "hyperAttentionPlan");
  Napi::Object r = Napi::Object::New(env);
  r.Set("queryOrder", to_int32(env, qo));
  r.Set("keyOrder", to_int32(env, ko));
  r.Set("samples", to_int32(env, sm));
  return r;
}

}  // namespace

void register_approx_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("SqueezedAttentionHandle", SqueezedHandle::Define(env));
  exports.Set("hyperAttention", Napi::Function::New(env, HyperAttention<false>, "hyperAttention"));
  exports.Set("hyperAttentionAsync", Napi::Function::New(env, HyperAttention<true>, "hyperAttentionAsync"));
  exports.Set("hyperAttentionPlan", Napi::Function::New(env, HyperAttentionPlan, "hyperAttentionPlan"));
}

}  // namespace tessera::napi
