// Bindings of the binary module: sign packing, Hamming top-k, residual codes with SDC/ADC top-k, and the flat
// index (an ObjectWrap over a shared FlatIndex, so an async search keeps it alive past dispose()).
#include <cstring>
#include <memory>
#include <string>

#include "addon.h"
#include "args.h"
#include "async.h"
#include "tessera/binary.h"
#include "tessera/binary_index.h"
#include "tessera/runtime.h"

namespace tessera::napi {
namespace {

using binary::BitOrder;

constexpr std::uint64_t kMaxDim = std::uint64_t{1} << 24;
constexpr std::uint64_t kMaxK = std::uint64_t{1} << 24;


BitOrder order_of(bool msb) { return msb ? BitOrder::msb : BitOrder::lsb; }

// A rows x row_bytes view of `bytes`, checked; returns the row count.
std::size_t rows_of(Napi::Env env, std::size_t length, std::size_t row, const char* name, const char* unit) {
  if (length % row != 0)
    throw_range(env, std::string("\"") + name + "\" length (" + str(length) + ") is not a multiple of " + str(row) +
                         " (" + unit + ")");
  return length / row;
}

template <class T>
Napi::TypedArrayOf<T> output(const Napi::CallbackInfo& info, std::size_t i, std::size_t length) {
  if (!has_value(info, i)) return Napi::TypedArrayOf<T>::New(info.Env(), length);
  auto out = typed_array<T>(info, i, "out");
  if (out.ElementLength() != length)
    throw_range(info.Env(), "\"out\" must hold " + str(length) + " elements, got " + str(out.ElementLength()));
  return out;
}

// ---- sign codes ------------------------------------------------------------------------------------------------

// (x: Float32Array, dim, msb: boolean, threshold: number, out?: Uint8Array)
Napi::Value PackSigns(const Napi::CallbackInfo& info) {
  expect_arity(info, 4, 5, "packSigns");
  auto x = typed_array<float>(info, 0, "x");
  const std::size_t dim = integer(info, 1, "dim", 1, kMaxDim);
  const bool msb = boolean(info, 2, "msb");
  const auto threshold = static_cast<float>(number(info, 3, "threshold"));
  const std::size_t rows = rows_of(info.Env(), x.ElementLength(), dim, "x", "dim");
  auto out = output<std::uint8_t>(info, 4, rows * binary::code_bytes(dim));
  check(info.Env(), binary::pack_signs(x.Data(), rows, dim, threshold, order_of(msb), out.Data()), "packSigns");
  return out;
}

// (codes: Uint8Array, dim, msb: boolean, out?: Float32Array)
Napi::Value UnpackSigns(const Napi::CallbackInfo& info) {
  expect_arity(info, 3, 4, "unpackSigns");
  auto codes = typed_array<std::uint8_t>(info, 0, "codes");
  const std::size_t dim = integer(info, 1, "dim", 1, kMaxDim);
  const bool msb = boolean(info, 2, "msb");
  const std::size_t rows = rows_of(info.Env(), codes.ElementLength(), binary::code_bytes(dim), "codes", "bytes per row");
  auto out = output<float>(info, 3, rows * dim);
  check(info.Env(), binary::unpack_signs(codes.Data(), rows, dim, order_of(msb), out.Data()), "unpackSigns");
  return out;
}

// ---- Hamming top-k ---------------------------------------------------------------------------------------------

Napi::Object topk_result(Napi::Env env, Napi::Int32Array indices, Napi::TypedArray values, const char* values_name) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("indices", indices);
  r.Set(values_name, values);
  return r;
}

// (queries: Uint8Array, codes: Uint8Array, bits, k, msb: boolean)
template <bool Async>
Napi::Value HammingTopK(const Napi::CallbackInfo& info) {
  const char* fn = Async ? "hammingTopKAsync" : "hammingTopK";
  expect_arity(info, 5, 5, fn);
  auto queries = typed_array<std::uint8_t>(info, 0, "queries");
  auto codes = typed_array<std::uint8_t>(info, 1, "codes");
  const std::size_t bits = integer(info, 2, "bits", 1, kMaxDim);
  const std::size_t k = integer(info, 3, "k", 1, kMaxK);
  const bool msb = boolean(info, 4, "msb");
  const std::size_t bytes = binary::code_bytes(bits);
  const std::size_t nq = rows_of(info.Env(), queries.ElementLength(), bytes, "queries", "bytes per code");
  const std::size_t n = rows_of(info.Env(), codes.ElementLength(), bytes, "codes", "bytes per code");
  if (n > static_cast<std::size_t>(INT32_MAX)) throw_range(info.Env(), "\"codes\" holds more than 2^31 - 1 rows");
  const std::size_t kk = std::min(k, n);
  auto indices = Napi::Int32Array::New(info.Env(), nq * kk);
  auto distances = Napi::Int32Array::New(info.Env(), nq * kk);
  const binary::HammingQuery hq{queries.Data(), nq, codes.Data(), n, bits, order_of(msb), k};
  Napi::Object result = topk_result(info.Env(), indices, distances, "distances");
  if constexpr (Async) {
    auto kernel = [hq, i = indices.Data(), d = distances.Data()] { return binary::hamming_topk(hq, i, d); };
    return KernelWorker::Start(info.Env(), fn, kernel, result, {queries, codes});
  } else {
    check(info.Env(), binary::hamming_topk(hq, indices.Data(), distances.Data()), fn);
    return result;
  }
}

// ---- residual codes --------------------------------------------------------------------------------------------

std::size_t planes_arg(const Napi::CallbackInfo& info, std::size_t i) {
  return integer(info, i, "bits", 1, binary::kMaxPlanes);
}

const float* center_arg(const Napi::CallbackInfo& info, std::size_t i, std::size_t dim, Napi::Object* keep) {
  auto center = optional_typed_array<float>(info, i, "center");
  if (!center) return nullptr;
  if (center->ElementLength() != dim)
    throw_range(info.Env(), "\"center\" must hold dim (" + str(dim) + ") floats, got " + str(center->ElementLength()));
  *keep = *center;
  return center->Data();
}

// (x: Float32Array, dim, bits, center?: Float32Array, out?: Uint8Array)
template <bool Async>
Napi::Value ResidualEncode(const Napi::CallbackInfo& info) {
  const char* fn = Async ? "residualEncodeAsync" : "residualEncode";
  expect_arity(info, 3, 5, fn);
  auto x = typed_array<float>(info, 0, "x");
  const std::size_t dim = integer(info, 1, "dim", 1, kMaxDim);
  const std::size_t planes = planes_arg(info, 2);
  Napi::Object keep_center = Napi::Object::New(info.Env());
  const float* center = center_arg(info, 3, dim, &keep_center);
  const std::size_t rows = rows_of(info.Env(), x.ElementLength(), dim, "x", "dim");
  auto out = output<std::uint8_t>(info, 4, rows * binary::residual_row_bytes(dim, planes));
  if constexpr (Async) {
    auto kernel = [x = x.Data(), rows, dim, planes, center, o = out.Data()] {
      return binary::residual_encode(x, rows, dim, planes, center, o);
    };
    return KernelWorker::Start(info.Env(), fn, kernel, out, {x, keep_center});
  } else {
    check(info.Env(), binary::residual_encode(x.Data(), rows, dim, planes, center, out.Data()), fn);
    return out;
  }
}

// (codes: Uint8Array, dim, bits, center?: Float32Array, out?: Float32Array)
template <bool Async>
Napi::Value ResidualDecode(const Napi::CallbackInfo& info) {
  const char* fn = Async ? "residualDecodeAsync" : "residualDecode";
  expect_arity(info, 3, 5, fn);
  auto codes = typed_array<std::uint8_t>(info, 0, "codes");
  const std::size_t dim = integer(info, 1, "dim", 1, kMaxDim);
  const std::size_t planes = planes_arg(info, 2);
  Napi::Object keep_center = Napi::Object::New(info.Env());
  const float* center = center_arg(info, 3, dim, &keep_center);
  const std::size_t rows =
      rows_of(info.Env(), codes.ElementLength(), binary::residual_row_bytes(dim, planes), "codes", "bytes per row");
  auto out = output<float>(info, 4, rows * dim);
  if constexpr (Async) {
    auto kernel = [c = codes.Data(), rows, dim, planes, center, o = out.Data()] {
      return binary::residual_decode(c, rows, dim, planes, center, o);
    };
    return KernelWorker::Start(info.Env(), fn, kernel, out, {codes, keep_center});
  } else {
    check(info.Env(), binary::residual_decode(codes.Data(), rows, dim, planes, center, out.Data()), fn);
    return out;
  }
}

// sdc: (queryCodes: Uint8Array, docCodes: Uint8Array, dim, bits, k); adc: (queries: Float32Array, docCodes, dim, bits, k)
template <bool Sdc, bool Async>
Napi::Value ScoreTopK(const Napi::CallbackInfo& info) {
  const char* fn = Sdc ? (Async ? "sdcTopKAsync" : "sdcTopK") : (Async ? "adcTopKAsync" : "adcTopK");
  expect_arity(info, 5, 5, fn);
  Napi::Object queries_keep;
  const void* queries = nullptr;
  std::size_t query_length = 0;
  if constexpr (Sdc) {
    auto q = typed_array<std::uint8_t>(info, 0, "queryCodes");
    queries_keep = q, queries = q.Data(), query_length = q.ElementLength();
  } else {
    auto q = typed_array<float>(info, 0, "queries");
    queries_keep = q, queries = q.Data(), query_length = q.ElementLength();
  }
  auto docs = typed_array<std::uint8_t>(info, 1, "docCodes");
  const std::size_t dim = integer(info, 2, "dim", 1, kMaxDim);
  const std::size_t planes = planes_arg(info, 3);
  const std::size_t k = integer(info, 4, "k", 1, kMaxK);
  const std::size_t row = binary::residual_row_bytes(dim, planes);
  const std::size_t nq = Sdc ? rows_of(info.Env(), query_length, row, "queryCodes", "bytes per row")
                             : rows_of(info.Env(), query_length, dim, "queries", "dim");
  const std::size_t n = rows_of(info.Env(), docs.ElementLength(), row, "docCodes", "bytes per row");
  if (n > static_cast<std::size_t>(INT32_MAX)) throw_range(info.Env(), "\"docCodes\" holds more than 2^31 - 1 rows");
  const std::size_t kk = std::min(k, n);
  auto indices = Napi::Int32Array::New(info.Env(), nq * kk);
  auto scores = Napi::Float32Array::New(info.Env(), nq * kk);
  const binary::ScoreQuery sq{nq, docs.Data(), n, dim, planes, k};
  auto kernel = [sq, queries, i = indices.Data(), s = scores.Data()] {
    return Sdc ? binary::sdc_topk(static_cast<const std::uint8_t*>(queries), sq, i, s)
               : binary::adc_topk(static_cast<const float*>(queries), sq, i, s);
  };
  Napi::Object result = topk_result(info.Env(), indices, scores, "scores");
  if constexpr (Async) {
    return KernelWorker::Start(info.Env(), fn, kernel, result, {queries_keep, docs});
  } else {
    check(info.Env(), kernel(), fn);
    return result;
  }
}

// ---- the flat index --------------------------------------------------------------------------------------------

class BinaryIndexHandle final : public Napi::ObjectWrap<BinaryIndexHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "BinaryIndexHandle",
                       {InstanceMethod<&BinaryIndexHandle::Add>("add"),
                        InstanceMethod<&BinaryIndexHandle::Remove>("remove"),
                        InstanceMethod<&BinaryIndexHandle::Search<false>>("search"),
                        InstanceMethod<&BinaryIndexHandle::Search<true>>("searchAsync"),
                        InstanceMethod<&BinaryIndexHandle::Size>("size"),
                        InstanceMethod<&BinaryIndexHandle::MemoryBytes>("memoryBytes"),
                        InstanceMethod<&BinaryIndexHandle::Export>("exportContents"),
                        InstanceMethod<&BinaryIndexHandle::Import>("importContents"),
                        InstanceMethod<&BinaryIndexHandle::Release>("release")});
  }

  // (dim, bits, store: string, similarity: string)
  explicit BinaryIndexHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BinaryIndexHandle>(info) {
    expect_arity(info, 4, 4, "BinaryIndexHandle");
    binary::IndexConfig c;
    c.dim = integer(info, 0, "dim", 1, kMaxDim);
    c.planes = planes_arg(info, 1);
    c.store = choice<binary::VectorStore>(info, 2, "store", {{"none", binary::VectorStore::none},
                                                              {"float32", binary::VectorStore::float32},
                                                              {"int8", binary::VectorStore::int8}});
    c.similarity = choice<binary::Similarity>(info, 3, "similarity",
                                              {{"dot", binary::Similarity::dot}, {"l2", binary::Similarity::l2}});
    index_ = std::make_shared<binary::FlatIndex>(c);
  }

 private:
  binary::FlatIndex& index(Napi::Env env) {
    if (!index_) throw Napi::Error::New(env, "BinaryIndex has been disposed");
    return *index_;
  }

  // (ids: Int32Array, codes: Uint8Array, vectors?: Float32Array)
  Napi::Value Add(const Napi::CallbackInfo& info) {
    expect_arity(info, 2, 3, "add");
    binary::FlatIndex& ix = index(info.Env());
    auto ids = typed_array<std::int32_t>(info, 0, "ids");
    auto codes = typed_array<std::uint8_t>(info, 1, "codes");
    auto vectors = optional_typed_array<float>(info, 2, "vectors");
    const std::size_t count = ids.ElementLength();
    if (codes.ElementLength() != count * ix.row_bytes())
      throw_range(info.Env(), "\"codes\" must hold " + str(count) + " rows of " + str(ix.row_bytes()) + " bytes");
    const bool stores = ix.config().store != binary::VectorStore::none;
    if (stores && (!vectors || vectors->ElementLength() != count * ix.config().dim))
      throw_range(info.Env(), "\"vectors\" must hold " + str(count) + " rows of " + str(ix.config().dim) +
                                  " floats (this index keeps them for rescoring)");
    const Status s = ix.add(ids.Data(), count, codes.Data(), stores ? vectors->Data() : nullptr);
    if (s == Status::invalid_argument) throw_range(info.Env(), "\"ids\" holds an id that is repeated or already in the index");
    check(info.Env(), s, "add");
    return info.Env().Undefined();
  }

  // (ids: Int32Array) -> number removed
  Napi::Value Remove(const Napi::CallbackInfo& info) {
    expect_arity(info, 1, 1, "remove");
    binary::FlatIndex& ix = index(info.Env());
    auto ids = typed_array<std::int32_t>(info, 0, "ids");
    return Napi::Number::New(info.Env(), static_cast<double>(ix.remove(ids.Data(), ids.ElementLength())));
  }

  // (queries: Float32Array | undefined, queryCodes: Uint8Array | undefined, center: Float32Array | undefined, nq, k,
  //  metric, candidates, rescore). Float queries are encoded (after subtracting center) when codes are needed.
  template <bool Async>
  Napi::Value Search(const Napi::CallbackInfo& info) {
    const char* fn = Async ? "searchAsync" : "search";
    expect_arity(info, 8, 8, fn);
    binary::FlatIndex& ix = index(info.Env());
    auto queries = optional_typed_array<float>(info, 0, "queries");
    auto codes = optional_typed_array<std::uint8_t>(info, 1, "queryCodes");
    auto center = optional_typed_array<float>(info, 2, "center");
    binary::SearchRequest r;
    r.nq = integer(info, 3, "nq", 0, INT32_MAX);
    r.k = integer(info, 4, "k", 1, kMaxK);
    r.metric = choice<binary::Metric>(info, 5, "metric", {{"hamming", binary::Metric::hamming},
                                                          {"sdc", binary::Metric::sdc}, {"adc", binary::Metric::adc}});
    r.candidates = integer(info, 6, "candidates", 0, kMaxK);
    r.rescore = boolean(info, 7, "rescore");
    const auto& c = ix.config();
    if (queries && queries->ElementLength() != r.nq * c.dim)
      throw_range(info.Env(), "\"queries\" must hold " + str(r.nq) + " rows of " + str(c.dim) + " floats");
    if (codes && codes->ElementLength() != r.nq * ix.row_bytes())
      throw_range(info.Env(), "\"queryCodes\" must hold " + str(r.nq) + " rows of " + str(ix.row_bytes()) + " bytes");
    if ((r.metric == binary::Metric::adc || r.rescore) && !queries)
      throw_range(info.Env(), "this search needs float \"queries\"");
    if (r.metric != binary::Metric::adc && !codes && !queries) throw_range(info.Env(), "this search needs queries");
    if (center && center->ElementLength() != c.dim)
      throw_range(info.Env(), "\"center\" must hold dim (" + str(c.dim) + ") floats");
    if (r.rescore && c.store == binary::VectorStore::none)
      throw_range(info.Env(), "rescoring needs an index that stores vectors (store: float32 or int8)");
    r.queries = queries ? queries->Data() : nullptr;
    r.query_codes = codes ? codes->Data() : nullptr;
    r.center = center ? center->Data() : nullptr;
    // Room for k per query; the search reports kk = min(k, size) as it runs (an add or remove may come between
    // this call and an async search), the rows are packed nq x kk at the front, and the result is trimmed to that.
    auto ids = Napi::Int32Array::New(info.Env(), r.nq * r.k);
    auto scores = Napi::Float32Array::New(info.Env(), r.nq * r.k);
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("ids", ids);
    result.Set("scores", scores);
    auto kk = std::make_shared<std::size_t>(0);
    std::shared_ptr<binary::FlatIndex> keep = index_;
    auto kernel = [keep, r, i = ids.Data(), s = scores.Data(), kk] { return keep->search(r, i, s, kk.get()); };
    const std::size_t nq = r.nq;
    auto finish = [kk, nq](Napi::Object out) {  // on the JS thread: arrays read back from the result object
      out.Set("ids", Napi::Int32Array::New(out.Env(), nq * *kk, out.Get("ids").As<Napi::Int32Array>().ArrayBuffer(), 0));
      out.Set("scores", Napi::Float32Array::New(out.Env(), nq * *kk, out.Get("scores").As<Napi::Float32Array>().ArrayBuffer(), 0));
      out.Set("k", Napi::Number::New(out.Env(), static_cast<double>(*kk)));
    };
    if constexpr (Async) {
      Napi::Object keep_q = queries ? Napi::Object(*queries) : Napi::Object::New(info.Env());
      Napi::Object keep_c = codes ? Napi::Object(*codes) : Napi::Object::New(info.Env());
      Napi::Object keep_center = center ? Napi::Object(*center) : Napi::Object::New(info.Env());
      return KernelWorker::Start(info.Env(), fn, kernel, result, {keep_q, keep_c, keep_center}, finish);
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

  // () -> { ids, codes, vectors?, quantized?, scales? } (copies)
  Napi::Value Export(const Napi::CallbackInfo& info) {
    binary::FlatIndex& ix = index(info.Env());
    binary::FlatIndex::Contents c;
    check(info.Env(), ix.export_contents(&c), "exportContents");
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("ids", copy_out(info.Env(), c.ids));
    o.Set("codes", copy_out(info.Env(), c.codes));
    if (ix.config().store == binary::VectorStore::float32) o.Set("vectors", copy_out(info.Env(), c.vectors));
    if (ix.config().store == binary::VectorStore::int8) {
      o.Set("quantized", copy_out(info.Env(), c.quantized));
      o.Set("scales", copy_out(info.Env(), c.scales));
    }
    return o;
  }

  // (ids: Int32Array, codes: Uint8Array, vectors?: Float32Array, quantized?: Int8Array, scales?: Float32Array)
  Napi::Value Import(const Napi::CallbackInfo& info) {
    expect_arity(info, 2, 5, "importContents");
    binary::FlatIndex& ix = index(info.Env());
    auto ids = typed_array<std::int32_t>(info, 0, "ids");
    auto codes = typed_array<std::uint8_t>(info, 1, "codes");
    auto vectors = optional_typed_array<float>(info, 2, "vectors");
    auto quantized = optional_typed_array<std::int8_t>(info, 3, "quantized");
    auto scales = optional_typed_array<float>(info, 4, "scales");
    const std::size_t n = ids.ElementLength(), dim = ix.config().dim;
    const bool ok = codes.ElementLength() == n * ix.row_bytes() &&
                    (ix.config().store != binary::VectorStore::float32 || (vectors && vectors->ElementLength() == n * dim)) &&
                    (ix.config().store != binary::VectorStore::int8 ||
                     (quantized && scales && quantized->ElementLength() == n * dim && scales->ElementLength() == n));
    if (!ok) throw_range(info.Env(), "index contents have inconsistent sizes");
    const Status s = ix.import_contents(ids.Data(), n, codes.Data(), vectors ? vectors->Data() : nullptr,
                                        quantized ? quantized->Data() : nullptr, scales ? scales->Data() : nullptr);
    if (s == Status::invalid_argument) throw_range(info.Env(), "index contents repeat an id, or the index is not empty");
    check(info.Env(), s, "importContents");
    return info.Env().Undefined();
  }

  // Drops this handle's share of the index; an async search in flight keeps its own until it settles.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    index_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<binary::FlatIndex> index_;
};

// (bytes) -> XOR + popcount of that many bytes in L1 over the pool: the Hamming scan's compute ceiling, for bench/.
Napi::Value PopcountWork(const Napi::CallbackInfo& info) {
  expect_arity(info, 1, 1, "popcountWork");
  const std::uint64_t bytes = integer(info, 0, "bytes", 0, std::uint64_t{1} << 44);
  return Napi::Number::New(info.Env(), static_cast<double>(popcount_work(bytes) & 0xFFFFFFFFu));
}

}  // namespace

void register_binary(Napi::Env env, Napi::Object exports) {
  exports.Set("packSigns", Napi::Function::New(env, PackSigns, "packSigns"));
  exports.Set("unpackSigns", Napi::Function::New(env, UnpackSigns, "unpackSigns"));
  exports.Set("hammingTopK", Napi::Function::New(env, HammingTopK<false>, "hammingTopK"));
  exports.Set("hammingTopKAsync", Napi::Function::New(env, HammingTopK<true>, "hammingTopKAsync"));
  exports.Set("residualEncode", Napi::Function::New(env, ResidualEncode<false>, "residualEncode"));
  exports.Set("residualEncodeAsync", Napi::Function::New(env, ResidualEncode<true>, "residualEncodeAsync"));
  exports.Set("residualDecode", Napi::Function::New(env, ResidualDecode<false>, "residualDecode"));
  exports.Set("residualDecodeAsync", Napi::Function::New(env, ResidualDecode<true>, "residualDecodeAsync"));
  exports.Set("sdcTopK", Napi::Function::New(env, ScoreTopK<true, false>, "sdcTopK"));
  exports.Set("sdcTopKAsync", Napi::Function::New(env, ScoreTopK<true, true>, "sdcTopKAsync"));
  exports.Set("adcTopK", Napi::Function::New(env, ScoreTopK<false, false>, "adcTopK"));
  exports.Set("adcTopKAsync", Napi::Function::New(env, ScoreTopK<false, true>, "adcTopKAsync"));
  exports.Set("BinaryIndexHandle", BinaryIndexHandle::Define(env));
  exports.Set("popcountWork", Napi::Function::New(env, PopcountWork, "popcountWork"));
}

}  // namespace tessera::napi
