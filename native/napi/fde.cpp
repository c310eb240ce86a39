// Bindings of the multi-vector module: the FDE encoder (an ObjectWrap over a shared, immutable State, so async
// encodes keep it alive), Chamfer scores, and the multi-vector index.
#include <cstring>
#include <memory>
#include <string>

#include "addon.h"
#include "args.h"
#include "async.h"
#include "tessera/fde.h"
#include "tessera/memory.h"
#include "tessera/multivector_index.h"

namespace tessera::napi {
namespace {


constexpr std::uint64_t kMaxDim = std::uint64_t{1} << 20;

// Token rows with per-cloud counts: checks lengths are positive and sum to the rows; returns the cloud count.
std::size_t clouds(const Napi::CallbackInfo& info, const Napi::Float32Array& tokens, const Napi::Int32Array& lengths,
                   std::size_t dim, const char* name) {
  if (tokens.ElementLength() % dim != 0)
    throw_range(info.Env(), std::string("\"") + name + "\" length (" + str(tokens.ElementLength()) +
                                ") is not a multiple of dim (" + str(dim) + ")");
  std::size_t total = 0;
  for (std::size_t i = 0; i < lengths.ElementLength(); ++i) {
    if (lengths[i] <= 0)
      throw_range(info.Env(), "\"lengths\"[" + str(i) + "] is " + std::to_string(lengths[i]) + ": every one must be at least 1");
    total += static_cast<std::size_t>(lengths[i]);
  }
  if (total != tokens.ElementLength() / dim)
    throw_range(info.Env(), "\"lengths\" sum to " + str(total) + " tokens, \"" + name + "\" holds " +
                                str(tokens.ElementLength() / dim));
  return lengths.ElementLength();
}

class FdeEncoderHandle final : public Napi::ObjectWrap<FdeEncoderHandle> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x7465737365726146ull, 0x6465456e636f6465ull};  // "tesseraF", "deEncode"

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdeEncoderHandle",
                       {InstanceMethod<&FdeEncoderHandle::Encode<false>>("encode"),
                        InstanceMethod<&FdeEncoderHandle::Encode<true>>("encodeAsync"),
                        InstanceMethod<&FdeEncoderHandle::OutputDim>("outputDim"),
                        InstanceMethod<&FdeEncoderHandle::ExportMatrices>("exportMatrices"),
                        InstanceMethod<&FdeEncoderHandle::Release>("release")});
  }

  // (dim, repetitions, simhashBits, projection, projectionDim, finalDim, seed, fillEmpty,
  //  [simhash, projectionMatrix, finalBucket, finalSign]: matrices to use instead of generating them)
  explicit FdeEncoderHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdeEncoderHandle>(info) {
    expect_arity(info, 8, 12, "FdeEncoderHandle");
    auto s = std::make_shared<fde::State>();
    fde::Config& c = s->config;
    c.dim = integer(info, 0, "dim", 1, kMaxDim);
    c.repetitions = integer(info, 1, "repetitions", 1, 4096);
    c.simhash_bits = integer(info, 2, "simhashBits", 0, fde::kMaxSimhashBits);
    c.projection = choice<fde::Projection>(info, 3, "projection", {{"countsketch", fde::Projection::countsketch},
                                                                   {"dense", fde::Projection::dense},
                                                                   {"identity", fde::Projection::identity}});
    c.projection_dim = integer(info, 4, "projectionDim", 1, std::uint64_t{1} << 16);
    c.final_dim = integer(info, 5, "finalDim", 0, fde::kMaxOutputDim);
    c.seed = u64(info, 6, "seed");
    c.fill_empty = boolean(info, 7, "fillEmpty");
    if (!fde::valid(c))
      throw_range(info.Env(), "the encoding or its matrices would exceed " + str(fde::kMaxOutputDim) +
                                  " floats (repetitions x 2^simhashBits x projectionDim, dim x repetitions x "
                                  "simhashBits, repetitions x dim x projectionDim)");
    if (info.Length() > 8) {
      auto simhash = typed_array<float>(info, 8, "simhash");
      auto projection = typed_array<float>(info, 9, "projection");
      auto bucket = typed_array<std::int32_t>(info, 10, "finalBucket");
      auto sign = typed_array<float>(info, 11, "finalSign");
      s->matrices = {copy_in(simhash), copy_in(projection), copy_in(bucket), copy_in(sign)};
      if (!fde::matches(c, s->matrices)) throw_range(info.Env(), "the matrices do not fit this configuration");
    } else {
      check(info.Env(), fde::generate(c, &s->matrices), "FdeEncoder");
    }
    check(info.Env(), fde::prepare(s.get()), "FdeEncoder");
    state_ = std::move(s);
    info.This().As<Napi::Object>().TypeTag(&kTypeTag);
  }

  std::shared_ptr<const fde::State> state(Napi::Env env) const {
    if (!state_) throw Napi::Error::New(env, "FdeEncoder has been disposed");
    return state_;
  }

 private:
  // (tokens: Float32Array, lengths: Int32Array, document: boolean, out?: Float32Array)
  template <bool Async>
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    const char* fn = Async ? "encodeAsync" : "encode";
    expect_arity(info, 3, 4, fn);
    auto s = state(info.Env());
    auto tokens = typed_array<float>(info, 0, "tokens");
    auto lengths = typed_array<std::int32_t>(info, 1, "lengths");
    const bool document = boolean(info, 2, "document");
    const std::size_t count = clouds(info, tokens, lengths, s->config.dim, "tokens");
    const std::size_t length = count * s->config.output_dim();
    Napi::Float32Array out;
    if (has_value(info, 3)) {
      out = typed_array<float>(info, 3, "out");
      if (out.ElementLength() != length) throw_range(info.Env(), "\"out\" must hold " + str(length) + " floats");
      if (bytes_overlap(out.Data(), out.ByteLength(), tokens.Data(), tokens.ByteLength()) ||
          bytes_overlap(out.Data(), out.ByteLength(), lengths.Data(), lengths.ByteLength()))
        throw_range(info.Env(), "\"out\" overlaps \"tokens\" or \"lengths\"");
    } else {
      out = Napi::Float32Array::New(info.Env(), length);
    }
    auto kernel = [s, t = tokens.Data(), l = lengths.Data(), count, document, o = out.Data()] {
      return fde::encode(*s, t, l, count, document, o);
    };
    if constexpr (Async) {
      return KernelWorker::Start(info.Env(), fn, kernel, out, {tokens, lengths});
    } else {
      check(info.Env(), kernel(), fn);
      return out;
    }
  }

  Napi::Value OutputDim(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(state(info.Env())->config.output_dim()));
  }

  Napi::Value ExportMatrices(const Napi::CallbackInfo& info) {
    auto s = state(info.Env());
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("simhash", copy_out(info.Env(), s->matrices.simhash));
    o.Set("projection", copy_out(info.Env(), s->matrices.projection));
    o.Set("finalBucket", copy_out(info.Env(), s->matrices.final_bucket));
    o.Set("finalSign", copy_out(info.Env(), s->matrices.final_sign));
    return o;
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    state_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<const fde::State> state_;
};

// (query: Float32Array, docs: Float32Array, lengths: Int32Array, dim)
template <bool Async>
Napi::Value ChamferScores(const Napi::CallbackInfo& info) {
  const char* fn = Async ? "chamferScoresAsync" : "chamferScores";
  expect_arity(info, 4, 4, fn);
  auto query = typed_array<float>(info, 0, "query");
  auto docs = typed_array<float>(info, 1, "docs");
  auto lengths = typed_array<std::int32_t>(info, 2, "lengths");
  const std::size_t dim = integer(info, 3, "dim", 1, kMaxDim);
  if (query.ElementLength() == 0) throw_range(info.Env(), "\"query\" is empty: it needs at least one token");
  if (query.ElementLength() % dim != 0)
    throw_range(info.Env(), "\"query\" length (" + str(query.ElementLength()) + ") is not a multiple of dim (" + str(dim) + ")");
  const std::size_t count = clouds(info, docs, lengths, dim, "docs");
  auto out = Napi::Float32Array::New(info.Env(), count);
  auto kernel = [q = query.Data(), nq = query.ElementLength() / dim, d = docs.Data(), l = lengths.Data(), count, dim,
                 o = out.Data()] { return fde::chamfer_scores(q, nq, d, l, count, dim, o); };
  if constexpr (Async) {
    return KernelWorker::Start(info.Env(), fn, kernel, out, {query, docs, lengths});
  } else {
    check(info.Env(), kernel(), fn);
    return out;
  }
}

class MultiVectorIndexHandle final : public Napi::ObjectWrap<MultiVectorIndexHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "MultiVectorIndexHandle",
                       {InstanceMethod<&MultiVectorIndexHandle::Add>("add"),
                        InstanceMethod<&MultiVectorIndexHandle::Remove>("remove"),
                        InstanceMethod<&MultiVectorIndexHandle::Search<false>>("search"),
                        InstanceMethod<&MultiVectorIndexHandle::Search<true>>("searchAsync"),
                        InstanceMethod<&MultiVectorIndexHandle::Size>("size"),
                        InstanceMethod<&MultiVectorIndexHandle::MemoryBytes>("memoryBytes"),
                        InstanceMethod<&MultiVectorIndexHandle::Export>("exportContents"),
                        InstanceMethod<&MultiVectorIndexHandle::Import>("importContents"),
                        InstanceMethod<&MultiVectorIndexHandle::Release>("release")});
  }

  // (encoder: FdeEncoderHandle, fdeBits)
  explicit MultiVectorIndexHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MultiVectorIndexHandle>(info) {
    expect_arity(info, 2, 2, "MultiVectorIndexHandle");
    if (!info[0].IsObject()) throw_type(info.Env(), "Expected \"encoder\" to be an FdeEncoder handle, got " + describe(info[0]));
    Napi::Object o = info[0].As<Napi::Object>();
    // The type tag proves the object was made by FdeEncoderHandle's constructor: unwrapping anything else would be
    // an unchecked cast.
    if (!o.CheckTypeTag(&FdeEncoderHandle::kTypeTag))
      throw_type(info.Env(), "Expected \"encoder\" to be an FdeEncoder handle, got " + describe(o));
    FdeEncoderHandle* encoder = FdeEncoderHandle::Unwrap(o);
    const std::size_t bits = integer(info, 1, "fdeBits", 0, binary::kMaxPlanes);
    index_ = std::make_shared<fde::MultiVectorIndex>(encoder->state(info.Env()), bits);
  }

 private:
  fde::MultiVectorIndex& index(Napi::Env env) {
    if (!index_) throw Napi::Error::New(env, "MultiVectorIndex has been disposed");
    return *index_;
  }

  // (ids: Int32Array, tokens: Float32Array, lengths: Int32Array)
  Napi::Value Add(const Napi::CallbackInfo& info) {
    expect_arity(info, 3, 3, "add");
    fde::MultiVectorIndex& ix = index(info.Env());
    auto ids = typed_array<std::int32_t>(info, 0, "ids");
    auto tokens = typed_array<float>(info, 1, "tokens");
    auto lengths = typed_array<std::int32_t>(info, 2, "lengths");
    const std::size_t count = clouds(info, tokens, lengths, ix.encoder().config.dim, "tokens");
    if (ids.ElementLength() != count) throw_range(info.Env(), "\"ids\" must hold one id per document (" + str(count) + ")");
    const Status s = ix.add(ids.Data(), count, tokens.Data(), lengths.Data());
    if (s == Status::invalid_argument) throw_range(info.Env(), "\"ids\" holds an id that is repeated or already in the index");
    check(info.Env(), s, "add");
    return info.Env().Undefined();
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    expect_arity(info, 1, 1, "remove");
    fde::MultiVectorIndex& ix = index(info.Env());
    auto ids = typed_array<std::int32_t>(info, 0, "ids");
    return Napi::Number::New(info.Env(), static_cast<double>(ix.remove(ids.Data(), ids.ElementLength())));
  }

  // (query: Float32Array, k, candidates, rerank: boolean) -> { ids, scores }, min(k, size) of each
  template <bool Async>
  Napi::Value Search(const Napi::CallbackInfo& info) {
    const char* fn = Async ? "searchAsync" : "search";
    expect_arity(info, 4, 4, fn);
    auto keep = index_;
    fde::MultiVectorIndex& ix = index(info.Env());
    auto query = typed_array<float>(info, 0, "query");
    const std::size_t k = integer(info, 1, "k", 1, std::uint64_t{1} << 24);
    const std::size_t candidates = integer(info, 2, "candidates", 0, std::uint64_t{1} << 24);
    const bool rerank = boolean(info, 3, "rerank");
    const std::size_t dim = ix.encoder().config.dim;
    if (query.ElementLength() == 0 || query.ElementLength() % dim != 0)
      throw_range(info.Env(), "\"query\" must hold one or more tokens of dim (" + str(dim) + ") floats");
    // Room for k; the search reports how many it filled (fewer when the index holds fewer documents), and the
    // result is trimmed to that.
    auto ids = Napi::Int32Array::New(info.Env(), k);
    auto scores = Napi::Float32Array::New(info.Env(), k);
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("ids", ids);
    result.Set("scores", scores);
    auto count = std::make_shared<std::size_t>(0);
    auto kernel = [keep, q = query.Data(), nq = query.ElementLength() / dim, k, candidates, rerank, i = ids.Data(),
                   s = scores.Data(), count] { return keep->search(q, nq, k, candidates, rerank, i, s, count.get()); };
    // Runs on the JS thread once the search is done (for the async form, in a later scope: it reads the arrays back
    // from the result object, never from handles of this call).
    auto finish = [count](Napi::Object r) {
      const auto n = static_cast<std::size_t>(*count);
      r.Set("ids", Napi::Int32Array::New(r.Env(), n, r.Get("ids").As<Napi::Int32Array>().ArrayBuffer(), 0));
      r.Set("scores", Napi::Float32Array::New(r.Env(), n, r.Get("scores").As<Napi::Float32Array>().ArrayBuffer(), 0));
    };
    if constexpr (Async) {
      return KernelWorker::Start(info.Env(), fn, kernel, result, {query}, finish);
    } else {
      check(info.Env(), kernel(), fn);
      finish(result);
      return result;
    }
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(index(info.Env()).size()));
  }

  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(index(info.Env()).memory_bytes()));
  }

  Napi::Value Export(const Napi::CallbackInfo& info) {
    fde::MultiVectorIndex::Contents c;
    check(info.Env(), index(info.Env()).export_contents(&c), "exportContents");
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("ids", copy_out(info.Env(), c.ids));
    o.Set("lengths", copy_out(info.Env(), c.lengths));
    o.Set("tokens", copy_out(info.Env(), c.tokens));
    o.Set("fdes", copy_out(info.Env(), c.fdes));
    o.Set("codes", copy_out(info.Env(), c.codes));
    return o;
  }

  // (ids, lengths, tokens, fdes: Float32Array, codes: Uint8Array)
  Napi::Value Import(const Napi::CallbackInfo& info) {
    expect_arity(info, 5, 5, "importContents");
    fde::MultiVectorIndex& ix = index(info.Env());
    fde::MultiVectorIndex::Contents c;
    c.ids = copy_in(typed_array<std::int32_t>(info, 0, "ids"));
    c.lengths = copy_in(typed_array<std::int32_t>(info, 1, "lengths"));
    c.tokens = copy_in(typed_array<float>(info, 2, "tokens"));
    c.fdes = copy_in(typed_array<float>(info, 3, "fdes"));
    c.codes = copy_in(typed_array<std::uint8_t>(info, 4, "codes"));
    const Status s = ix.import_contents(c);
    if (s == Status::invalid_argument) throw_range(info.Env(), "index contents are inconsistent, repeat an id, or the index is not empty");
    check(info.Env(), s, "importContents");
    return info.Env().Undefined();
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    index_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<fde::MultiVectorIndex> index_;
};

}  // namespace

std::shared_ptr<const fde::State> fde_encoder_state(const Napi::Value& handle, const char* name) {
  Napi::Env env = handle.Env();
  if (!handle.IsObject() || !handle.As<Napi::Object>().CheckTypeTag(&FdeEncoderHandle::kTypeTag))
    throw_type(env, std::string("Expected \"") + name + "\" to be an FdeEncoder handle, got " + describe(handle));
  return FdeEncoderHandle::Unwrap(handle.As<Napi::Object>())->state(env);
}

void register_fde(Napi::Env env, Napi::Object exports) {
  Napi::Function encoder = FdeEncoderHandle::Define(env);
  exports.Set("FdeEncoderHandle", encoder);
  exports.Set("chamferScores", Napi::Function::New(env, ChamferScores<false>, "chamferScores"));
  exports.Set("chamferScoresAsync", Napi::Function::New(env, ChamferScores<true>, "chamferScoresAsync"));
  exports.Set("MultiVectorIndexHandle", MultiVectorIndexHandle::Define(env));
}

}  // namespace tessera::napi
