// Bindings of the key/value cache (tessera/kv_cache.h): a handle class whose attendAsync keeps the cache alive and
// makes appends and resets throw while it runs (attends only read, so they may overlap).
#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "addon.h"
#include "args.h"
#include "async.h"
#include "tessera/kv_cache.h"
#include "tessera/memory.h"

namespace tessera::napi {
namespace {

constexpr std::uint64_t kMaxCount = std::uint64_t{1} << 40;
constexpr std::uint64_t kMaxTokens = std::uint64_t{1} << 24;

attention::DType dtype_arg(const Napi::CallbackInfo& info, std::size_t i, const char* name) {
  return choice<attention::DType>(info, i, name, {{"float32", attention::DType::f32},
                                                  {"float16", attention::DType::f16},
                                                  {"bfloat16", attention::DType::bf16}});
}

class KvCacheHandle final : public Napi::ObjectWrap<KvCacheHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "KvCacheHandle",
                       {InstanceMethod<&KvCacheHandle::Append>("append"),
                        InstanceMethod<&KvCacheHandle::Attend<false>>("attend"),
                        InstanceMethod<&KvCacheHandle::Attend<true>>("attendAsync"),
                        InstanceMethod<&KvCacheHandle::Position>("position"),
                        InstanceMethod<&KvCacheHandle::Stored>("stored"),
                        InstanceMethod<&KvCacheHandle::MemoryBytes>("memoryBytes"),
                        InstanceMethod<&KvCacheHandle::Reset>("reset"),
                        InstanceMethod<&KvCacheHandle::Release>("release")});
  }

  // (layers, batch, headsKV, headDim, headDimV, dtype, eviction, window, globalTokens)
  explicit KvCacheHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KvCacheHandle>(info) {
    expect_arity(info, 9, 9, "KvCacheHandle");
    attention::KvCacheConfig c;
    c.layers = integer(info, 0, "layers", 1, kMaxCount);
    c.batch = integer(info, 1, "batch", 1, kMaxCount);
    c.heads_kv = integer(info, 2, "headsKV", 1, kMaxCount);
    c.head_dim = integer(info, 3, "headDim", 1, attention::kMaxHeadDim);
    c.head_dim_v = integer(info, 4, "headDimV", 1, attention::kMaxHeadDim);
    c.dtype = dtype_arg(info, 5, "dtype");
    c.eviction = choice<attention::Eviction>(info, 6, "eviction", {{"none", attention::Eviction::none},
                                                                  {"sliding", attention::Eviction::sliding},
                                                                  {"lambda", attention::Eviction::lambda}});
    c.window = integer(info, 7, "window", 0, kMaxTokens);
    c.global_tokens = integer(info, 8, "globalTokens", 0, kMaxTokens);
    if (attention::KvCache::validate(c) != Status::ok)
      throw_range(info.Env(), "this cache configuration is invalid (window must be ≥ 1 with eviction, globalTokens "
                              "needs eviction 'lambda', and the sizes must not overflow)");
    cache_ = std::make_shared<attention::KvCache>(c);
  }

 private:
  attention::KvCache& cache(Napi::Env env) {
    if (!cache_) throw Napi::Error::New(env, "KvCache has been disposed");
    return *cache_;
  }

  // Mutations wait for no one: while an attendAsync runs they throw instead.
  attention::KvCache& mutable_cache(Napi::Env env, const char* what) {
    attention::KvCache& c = cache(env);
    if (busy_->load() > 0)
      throw Napi::Error::New(env, std::string("KvCache.") + what + ": an attendAsync on this cache has not settled");
    return c;
  }

  std::size_t layer_arg(const Napi::CallbackInfo& info, std::size_t i) {
    return integer(info, i, "layer", 0, cache(info.Env()).config().layers - 1);
  }

  // (layer, k, v, dtype, tokens): k [batch, tokens, headsKV, headDim], v [batch, tokens, headsKV, headDimV]
  Napi::Value Append(const Napi::CallbackInfo& info) {
    expect_arity(info, 5, 5, "append");
    Napi::Env env = info.Env();
    attention::KvCache& c = mutable_cache(env, "append");
    const std::size_t layer = layer_arg(info, 0);
    const attention::DType dtype = dtype_arg(info, 3, "dtype");
    const bool f32 = dtype == attention::DType::f32;
    Storage k = storage(info, 1, "k", f32), v = storage(info, 2, "v", f32);
    const std::size_t tokens = integer(info, 4, "tokens", 0, kMaxTokens);
    const auto& cfg = c.config();
    std::size_t nk = 0, nv = 0;
    if (!element_count({cfg.batch, tokens, cfg.heads_kv, cfg.head_dim}, &nk) ||
        !element_count({cfg.batch, tokens, cfg.heads_kv, cfg.head_dim_v}, &nv))
      throw_range(env, "\"tokens\" is too large");
    if (k.length != nk) throw_range(env, "\"k\" must hold " + str(nk) + " values, got " + str(k.length));
    if (v.length != nv) throw_range(env, "\"v\" must hold " + str(nv) + " values, got " + str(v.length));
    const Status s = c.append(layer, k.bytes, v.bytes, dtype, tokens);
    if (s == Status::invalid_argument) throw_range(env, "append: the layer would exceed 2^24 stored tokens");
    check(env, s, "append");
    return env.Undefined();
  }

  // (layer, q, dtype, headsQ, seqQ, out, lse | null, scale, temperature, softcap, causal, window, globalTokens,
  //  alibiSlopes | null)
  template <bool Async>
  Napi::Value Attend(const Napi::CallbackInfo& info) {
    const char* fn = Async ? "attendAsync" : "attend";
    expect_arity(info, 14, 14, fn);
    Napi::Env env = info.Env();
    attention::KvCache& c = cache(env);
    const std::size_t layer = layer_arg(info, 0);
    const attention::DType dtype = dtype_arg(info, 2, "dtype");
    const bool f32 = dtype == attention::DType::f32;
    Storage q = storage(info, 1, "q", f32);
    const std::size_t heads_q = integer(info, 3, "headsQ", 1, kMaxCount);
    const std::size_t seq_q = integer(info, 4, "seqQ", 0, kMaxTokens);
    Storage out = storage(info, 5, "out", f32);
    auto lse = optional_typed_array<float>(info, 6, "lse");
    attention::KvAttendOptions o;
    o.scale = static_cast<float>(number(info, 7, "scale"));
    o.temperature = static_cast<float>(number(info, 8, "temperature"));
    o.softcap = static_cast<float>(number(info, 9, "softcap"));
    o.causal = boolean(info, 10, "causal");
    o.window = integer(info, 11, "window", 0, kMaxTokens);
    o.global_tokens = integer(info, 12, "globalTokens", 0, kMaxTokens);
    auto alibi = optional_typed_array<float>(info, 13, "alibiSlopes");
    const auto& cfg = c.config();
    if (heads_q % cfg.heads_kv != 0)
      throw_range(env, "\"headsQ\" (" + str(heads_q) + ") must be a multiple of the cache's headsKV (" + str(cfg.heads_kv) + ")");
    std::size_t nq = 0, no = 0;
    if (!element_count({cfg.batch, seq_q, heads_q, cfg.head_dim}, &nq) ||
        !element_count({cfg.batch, seq_q, heads_q, cfg.head_dim_v}, &no))
      throw_range(env, "the query shape holds too many values");
    if (q.length != nq) throw_range(env, "\"q\" must hold " + str(nq) + " values, got " + str(q.length));
    if (out.length != no) throw_range(env, "\"out\" must hold " + str(no) + " values, got " + str(out.length));
    if (lse && lse->ElementLength() != cfg.batch * heads_q * seq_q) throw_range(env, "\"lse\" must hold batch × headsQ × seqQ values");
    if (alibi) {
      if (alibi->ElementLength() != heads_q) throw_range(env, "\"alibiSlopes\" must hold headsQ values");
      o.alibi_slopes = alibi->Data();
    }
    if (bytes_overlap(out.bytes, out.byte_length, q.bytes, q.byte_length) ||
        (lse && (bytes_overlap(lse->Data(), lse->ByteLength(), q.bytes, q.byte_length) ||
                 bytes_overlap(lse->Data(), lse->ByteLength(), out.bytes, out.byte_length))))
      throw_range(env, "\"out\", \"lse\" and \"q\" must not overlap");
    const bool evicting = cfg.eviction != attention::Eviction::none;
    if (evicting && (o.window != 0 || o.global_tokens != 0 || o.alibi_slopes))
      throw_range(env, "a cache with eviction masks by its own window; \"window\", \"globalTokens\" and \"alibiSlopes\" "
                       "need eviction 'none'");
    if (o.global_tokens > 0 && o.window == 0 && !evicting) throw_range(env, "\"globalTokens\" needs a \"window\"");
    const std::size_t visible = c.max_queries(layer);
    if (seq_q > visible)
      throw_range(env, "\"seqQ\" (" + str(seq_q) + ") exceeds the newest tokens the cache holds for this layer (" +
                           str(visible) + "): queries are the last tokens appended");
    std::shared_ptr<attention::KvCache> keep = cache_;
    std::shared_ptr<std::atomic<int>> busy = busy_;
    auto kernel = [keep, layer, qb = q.bytes, dtype, heads_q, seq_q, o, ob = out.bytes,
                   lp = lse ? lse->Data() : nullptr] {
      return keep->attend(layer, qb, dtype, heads_q, seq_q, o, ob, lp);
    };
    if constexpr (Async) {
      std::vector<Napi::Object> inputs = {q.array};
      if (lse) inputs.push_back(*lse);
      if (alibi) inputs.push_back(*alibi);
      busy_->fetch_add(1);  // until the promise settles, on this thread, whatever the outcome
      return KernelWorker::Start(env, fn, kernel, out.array, inputs, nullptr, [busy] { busy->fetch_sub(1); });
    } else {
      check(env, kernel(), fn);
      return out.array;
    }
  }

  Napi::Value Position(const Napi::CallbackInfo& info) {
    expect_arity(info, 1, 1, "position");
    return Napi::Number::New(info.Env(), static_cast<double>(cache(info.Env()).position(layer_arg(info, 0))));
  }

  Napi::Value Stored(const Napi::CallbackInfo& info) {
    expect_arity(info, 1, 1, "stored");
    return Napi::Number::New(info.Env(), static_cast<double>(cache(info.Env()).stored(layer_arg(info, 0))));
  }

  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(cache(info.Env()).memory_bytes()));
  }

  Napi::Value Reset(const Napi::CallbackInfo& info) {
    mutable_cache(info.Env(), "reset").reset();
    return info.Env().Undefined();
  }

  // Drops this handle's share; an attendAsync in flight keeps its own until it settles.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    cache_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<attention::KvCache> cache_;
  std::shared_ptr<std::atomic<int>> busy_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace

void register_kv_cache(Napi::Env env, Napi::Object exports) {
  exports.Set("KvCacheHandle", KvCacheHandle::Define(env));
}

}  // namespace tessera::napi
