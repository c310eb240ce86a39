// Bindings of the CUDA backend (compiled into the CUDA addon only): the device probe, and handles over device
// codes, a device FDE encoder and device multi-vector documents.
//
// Each handle holds a shared slot with its device object. A call parses its arguments on the JS thread into a
// closure over that slot, then runs it there (sync) or on a worker thread (async, the Promise settling when the
// results are on the host); a worker keeps the slot and its arrays alive, so release() during a call is safe: the
// device memory goes when the last call holding it ends. A failed call throws (or rejects with) the backend's
// message: RangeError for a bad argument, Error for a CUDA error or device out-of-memory (saying the sizes).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"
#include "cuda_async.h"
#include "tessera/cuda.h"
#include "tessera/cuda_retrieval.h"

namespace tessera::napi {
namespace {

// The device object of a handle: filled by load(), emptied by release().
template <class T>
struct Slot {
  std::unique_ptr<T> object;
};

template <class Derived, class T>
class DeviceHandle : public Napi::ObjectWrap<Derived> {
 public:
  explicit DeviceHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Derived>(info) {}

 protected:
  // The slot for a call; throws once released or before a load has finished.
  std::shared_ptr<Slot<T>> loaded(Napi::Env env, const char* name) const {
    if (!slot_ || !slot_->object) throw Napi::Error::New(env, std::string(name) + ": the device object has been released or is not loaded");
    return slot_;
  }
  // A fresh slot for load(); loading twice is an error.
  std::shared_ptr<Slot<T>> fresh(Napi::Env env) {
    if (slot_) throw Napi::Error::New(env, "the device object is already loaded");
    slot_ = std::make_shared<Slot<T>>();
    return slot_;
  }
  Napi::Value Release(const Napi::CallbackInfo& info) {
    slot_.reset();
    return info.Env().Undefined();
  }
  Napi::Value DeviceBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(loaded(info.Env(), "deviceBytes")->object->device_bytes()));
  }
  Napi::Value LastKernelMs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), loaded(info.Env(), "lastKernelMs")->object->last_kernel_ms());
  }

  std::shared_ptr<Slot<T>> slot_;
};

// ---- binary codes ------------------------------------------------------------------------------------------------

class CudaCodesHandle final : public DeviceHandle<CudaCodesHandle, cuda::DeviceCodes> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaCodesHandle",
                       {InstanceMethod<&CudaCodesHandle::Load>("load"),
                        InstanceMethod<&CudaCodesHandle::Hamming>("hammingTopK"),
                        InstanceMethod<&CudaCodesHandle::Sdc>("sdcTopK"),
                        InstanceMethod<&CudaCodesHandle::Size>("size"),
                        InstanceMethod("deviceBytes", &CudaCodesHandle::DeviceBytes),
                        InstanceMethod("lastKernelMs", &CudaCodesHandle::LastKernelMs),
                        InstanceMethod("release", &CudaCodesHandle::Release)});
  }
  using DeviceHandle::DeviceHandle;

 private:
  // (rows: Uint8Array, n, dim, planes, hasAlpha, msb, ids: Int32Array | undefined, l2: boolean, async). With l2
  // (residual rows only), SDC scores are -|q - d|^2: the rows' squared reconstruction norms are computed here.
  Napi::Value Load(const Napi::CallbackInfo& info) {
    expect_arity(info, 9, 9, "load");
    auto rows = typed_array<std::uint8_t>(info, 0, "rows");
    const std::size_t n = integer(info, 1, "n", 0, INT32_MAX);
    cuda::CodesSpec spec;
    spec.dim = integer(info, 2, "dim", 1, std::uint64_t{1} << 24);
    spec.planes = integer(info, 3, "planes", 1, binary::kMaxPlanes);
    spec.has_alpha = boolean(info, 4, "hasAlpha");
    spec.order = boolean(info, 5, "msb") ? binary::BitOrder::msb : binary::BitOrder::lsb;
    const std::size_t row = spec.planes * binary::code_bytes(spec.dim) + (spec.has_alpha ? 4 : 0);
    if (rows.ElementLength() != elements(info.Env(), {n, row}, "rows"))
      throw_range(info.Env(), "\"rows\" must hold " + str(n) + " rows of " + str(row) + " bytes");
    auto ids = optional_typed_array<std::int32_t>(info, 6, "ids");
    if (ids && ids->ElementLength() != n) throw_range(info.Env(), "\"ids\" must hold " + str(n) + " ids");
    const bool l2 = boolean(info, 7, "l2");
    if (l2 && !spec.has_alpha) throw_range(info.Env(), "l2 scores need residual rows (with their scales)");
    std::vector<Napi::Value> keep{rows};
    if (ids) keep.push_back(*ids);
    auto slot = fresh(info.Env());
    row_bytes_ = row;
    const std::int32_t* id_data = ids ? ids->Data() : nullptr;
    return dispatch(info, boolean(info, 8, "async"), "CudaBinaryIndex", [slot, spec, r = rows.Data(), n, row, id_data, l2] {
      std::vector<float> norms;
      if (l2) {
        norms.resize(n);
        for (std::size_t i = 0; i < n; ++i)
          norms[i] = static_cast<float>(binary::residual_squared_norm(r + i * row, spec.dim, spec.planes));
      }
      return cuda::DeviceCodes::create(spec, r, n, id_data, l2 ? norms.data() : nullptr, &slot->object);
    }, info.Env().Undefined(), keep);
  }

  // Query rows laid out like the loaded rows: exactly nq of them.
  Napi::Uint8Array query_rows(const Napi::CallbackInfo& info, std::size_t nq) const {
    auto queries = typed_array<std::uint8_t>(info, 0, "queries");
    if (queries.ElementLength() != elements(info.Env(), {nq, row_bytes_}, "queries"))
      throw_range(info.Env(), "\"queries\" must hold nq (" + str(nq) + ") rows of " + str(row_bytes_) + " bytes");
    return queries;
  }

  // (queries: Uint8Array, nq, k, async) -> { ids, distances }: rows as loaded; the first plane counts.
  Napi::Value Hamming(const Napi::CallbackInfo& info) {
    expect_arity(info, 4, 4, "hammingTopK");
    auto slot = loaded(info.Env(), "hammingTopK");
    const std::size_t nq = integer(info, 1, "nq", 0, INT32_MAX);
    auto queries = query_rows(info, nq);
    const std::size_t k = integer(info, 2, "k", 1, cuda::kMaxDeviceK);
    const std::size_t n = slot->object->size(), kk = std::min(k, n);
    auto ids = Napi::Int32Array::New(info.Env(), elements(info.Env(), {nq, kk}, "ids"));
    auto distances = Napi::Int32Array::New(info.Env(), nq * kk);
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("ids", ids);
    result.Set("distances", distances);
    return dispatch(info, boolean(info, 3, "async"), "hammingTopK",
                    [slot, q = queries.Data(), nq, stride = row_bytes_, k, i = ids.Data(), d = distances.Data()] {
                      return slot->object->hamming_topk(q, nq, stride, k, i, d);
                    },
                    result, {queries});
  }

  // (queries: Uint8Array of residual rows, nq, k, async) -> { ids, scores }
  Napi::Value Sdc(const Napi::CallbackInfo& info) {
    expect_arity(info, 4, 4, "sdcTopK");
    auto slot = loaded(info.Env(), "sdcTopK");
    const std::size_t nq = integer(info, 1, "nq", 0, INT32_MAX);
    auto queries = query_rows(info, nq);
    const std::size_t k = integer(info, 2, "k", 1, cuda::kMaxDeviceK);
    const std::size_t n = slot->object->size(), kk = std::min(k, n);
    auto ids = Napi::Int32Array::New(info.Env(), elements(info.Env(), {nq, kk}, "ids"));
    auto scores = Napi::Float32Array::New(info.Env(), nq * kk);
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("ids", ids);
    result.Set("scores", scores);
    return dispatch(info, boolean(info, 3, "async"), "sdcTopK",
                    [slot, q = queries.Data(), nq, k, i = ids.Data(), s = scores.Data()] {
                      return slot->object->sdc_topk(q, nq, k, i, s);
                    },
                    result, {queries});
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(loaded(info.Env(), "size")->object->size()));
  }

  std::size_t row_bytes_ = 0;
};

// ---- FDE encoding ------------------------------------------------------------------------------------------------

class CudaFdeHandle final : public DeviceHandle<CudaFdeHandle, cuda::DeviceFdeEncoder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaFdeHandle",
                       {InstanceMethod<&CudaFdeHandle::Load>("load"),
                        InstanceMethod<&CudaFdeHandle::Encode>("encode"),
                        InstanceMethod("deviceBytes", &CudaFdeHandle::DeviceBytes),
                        InstanceMethod("lastKernelMs", &CudaFdeHandle::LastKernelMs),
                        InstanceMethod("release", &CudaFdeHandle::Release)});
  }
  using DeviceHandle::DeviceHandle;

 private:
  // (encoder: FdeEncoderHandle, async)
  Napi::Value Load(const Napi::CallbackInfo& info) {
    expect_arity(info, 2, 2, "load");
    auto state = fde_encoder_state(info[0], "encoder");
    auto slot = fresh(info.Env());
    config_ = state->config;
    return dispatch(info, boolean(info, 1, "async"), "CudaFdeEncoder", [slot, state] {
      return cuda::DeviceFdeEncoder::create(state->config, state->matrices, &slot->object);
    }, info.Env().Undefined(), {info[0]});
  }

  // (tokens: Float32Array, lengths: Int32Array, document, async) -> Float32Array (count x outputDim)
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    expect_arity(info, 4, 4, "encode");
    auto slot = loaded(info.Env(), "encode");
    auto tokens = typed_array<float>(info, 0, "tokens");
    auto lengths = typed_array<std::int32_t>(info, 1, "lengths");
    const bool document = boolean(info, 2, "document");
    std::size_t total = 0;
    for (std::size_t i = 0; i < lengths.ElementLength(); ++i) {
      if (lengths[i] <= 0) throw_range(info.Env(), "\"lengths\"[" + str(i) + "] must be at least 1");
      total += static_cast<std::size_t>(lengths[i]);
    }
    if (tokens.ElementLength() != elements(info.Env(), {total, config_.dim}, "tokens"))
      throw_range(info.Env(), "\"tokens\" must hold the lengths' " + str(total) + " tokens of " + str(config_.dim) + " floats");
    const std::size_t count = lengths.ElementLength();
    auto out = Napi::Float32Array::New(info.Env(), elements(info.Env(), {count, config_.output_dim()}, "the encodings"));
    return dispatch(info, boolean(info, 3, "async"), document ? "encodeDocuments" : "encodeQueries",
                    [slot, t = tokens.Data(), l = lengths.Data(), count, document, o = out.Data()] {
                      return slot->object->encode(t, l, count, document, o);
                    },
                    out, {tokens, lengths});
  }

  fde::Config config_;
};

// ---- Chamfer scores ----------------------------------------------------------------------------------------------

class CudaMultiVectorsHandle final : public DeviceHandle<CudaMultiVectorsHandle, cuda::DeviceMultiVectors> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CudaMultiVectorsHandle",
                       {InstanceMethod<&CudaMultiVectorsHandle::Load>("load"),
                        InstanceMethod<&CudaMultiVectorsHandle::Chamfer>("chamfer"),
                        InstanceMethod<&CudaMultiVectorsHandle::TopK>("topK"),
                        InstanceMethod<&CudaMultiVectorsHandle::Size>("size"),
                        InstanceMethod("deviceBytes", &CudaMultiVectorsHandle::DeviceBytes),
                        InstanceMethod("lastKernelMs", &CudaMultiVectorsHandle::LastKernelMs),
                        InstanceMethod("release", &CudaMultiVectorsHandle::Release)});
  }
  using DeviceHandle::DeviceHandle;

 private:
  // Token rows with per-cloud counts: the total, after checking each count and the rows.
  static std::size_t token_rows(const Napi::CallbackInfo& info, const Napi::Float32Array& tokens,
                                const Napi::Int32Array& lengths, std::size_t dim, const char* name) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < lengths.ElementLength(); ++i) {
      if (lengths[i] <= 0) throw_range(info.Env(), std::string("\"") + name + "\" lengths[" + str(i) + "] must be at least 1");
      total += static_cast<std::size_t>(lengths[i]);
    }
    if (tokens.ElementLength() != elements(info.Env(), {total, dim}, name))
      throw_range(info.Env(), std::string("\"") + name + "\" must hold " + str(total) + " tokens of " + str(dim) + " floats");
    return total;
  }

  // (tokens: Float32Array, lengths: Int32Array, dim, bfloat16: boolean, async)
  Napi::Value Load(const Napi::CallbackInfo& info) {
    expect_arity(info, 5, 5, "load");
    auto tokens = typed_array<float>(info, 0, "tokens");
    auto lengths = typed_array<std::int32_t>(info, 1, "lengths");
    const std::size_t dim = integer(info, 2, "dim", 1, std::uint64_t{1} << 20);
    token_rows(info, tokens, lengths, dim, "tokens");
    const auto precision = boolean(info, 3, "bfloat16") ? cuda::ChamferPrecision::bfloat16 : cuda::ChamferPrecision::float32;
    auto slot = fresh(info.Env());
    dim_ = dim;
    return dispatch(info, boolean(info, 4, "async"), "CudaMultiVectorIndex",
                    [slot, t = tokens.Data(), l = lengths.Data(), count = lengths.ElementLength(), dim, precision] {
                      return cuda::DeviceMultiVectors::create(t, l, count, dim, precision, &slot->object);
                    },
                    info.Env().Undefined(), {tokens, lengths});
  }

  // (queries: Float32Array, queryLengths: Int32Array, async) -> Float32Array (nq x documents)
  Napi::Value Chamfer(const Napi::CallbackInfo& info) {
    expect_arity(info, 3, 3, "chamfer");
    auto slot = loaded(info.Env(), "chamfer");
    auto queries = typed_array<float>(info, 0, "queries");
    auto lengths = typed_array<std::int32_t>(info, 1, "queryLengths");
    token_rows(info, queries, lengths, dim_, "queries");
    const std::size_t nq = lengths.ElementLength();
    auto scores = Napi::Float32Array::New(info.Env(), elements(info.Env(), {nq, slot->object->size()}, "scores"));
    return dispatch(info, boolean(info, 2, "async"), "chamferScores",
                    [slot, q = queries.Data(), l = lengths.Data(), nq, s = scores.Data()] {
                      return slot->object->chamfer(q, l, nq, s);
                    },
                    scores, {queries, lengths});
  }

  // (queries: Float32Array, queryLengths: Int32Array, ids: Int32Array | undefined, k, async) -> { ids, scores }
  Napi::Value TopK(const Napi::CallbackInfo& info) {
    expect_arity(info, 5, 5, "topK");
    auto slot = loaded(info.Env(), "topK");
    auto queries = typed_array<float>(info, 0, "queries");
    auto lengths = typed_array<std::int32_t>(info, 1, "queryLengths");
    token_rows(info, queries, lengths, dim_, "queries");
    const std::size_t n = slot->object->size();
    auto ids = optional_typed_array<std::int32_t>(info, 2, "ids");
    if (ids && ids->ElementLength() != n) throw_range(info.Env(), "\"ids\" must hold one id per document (" + str(n) + ")");
    const std::size_t k = integer(info, 3, "k", 1, cuda::kMaxDeviceK);
    const std::size_t nq = lengths.ElementLength(), kk = std::min(k, n);
    auto out_ids = Napi::Int32Array::New(info.Env(), elements(info.Env(), {nq, kk}, "ids"));
    auto out_scores = Napi::Float32Array::New(info.Env(), nq * kk);
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("ids", out_ids);
    result.Set("scores", out_scores);
    std::vector<Napi::Value> keep{queries, lengths};
    if (ids) keep.push_back(*ids);
    return dispatch(info, boolean(info, 4, "async"), "chamferTopK",
                    [slot, q = queries.Data(), l = lengths.Data(), nq, i = ids ? ids->Data() : nullptr, k,
                     oi = out_ids.Data(), os = out_scores.Data()] {
                      return slot->object->chamfer_topk(q, l, nq, i, k, oi, os);
                    },
                    result, keep);
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(loaded(info.Env(), "size")->object->size()));
  }

  std::size_t dim_ = 0;
};

Napi::Value CudaProbe(const Napi::CallbackInfo& info) {
  expect_arity(info, 0, 0, "cudaProbe");
  const cuda::DeviceReport r = cuda::probe_devices();
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("deviceCount", r.device_count);
  o.Set("usable", r.usable);
  o.Set("name", r.name);
  o.Set("computeCapability", std::to_string(r.compute_major) + "." + std::to_string(r.compute_minor));
  o.Set("memoryBytes", Napi::Number::New(env, static_cast<double>(r.memory_bytes)));
  o.Set("driverVersion", r.driver_version);
  o.Set("runtimeVersion", r.runtime_version);
  o.Set("error", r.error);
  return o;
}

// (bytes, repeats) -> bytes read plus written per second of device-to-device copies.
Napi::Value CudaCopyBandwidth(const Napi::CallbackInfo& info) {
  expect_arity(info, 2, 2, "cudaCopyBandwidth");
  const std::size_t bytes = integer(info, 0, "bytes", 1, std::uint64_t{1} << 40);
  const int repeats = static_cast<int>(integer(info, 1, "repeats", 1, 1000));
  double rate = 0;
  const cuda::Result r = cuda::measure_copy_bandwidth(bytes, repeats, &rate);
  if (!r.ok()) throw_result(info.Env(), r, "cudaCopyBandwidth");
  return Napi::Number::New(info.Env(), rate);
}

}  // namespace

void register_cuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaProbe", Napi::Function::New(env, CudaProbe, "cudaProbe"));
  exports.Set("cudaCopyBandwidth", Napi::Function::New(env, CudaCopyBandwidth, "cudaCopyBandwidth"));
  exports.Set("CudaCodesHandle", CudaCodesHandle::Define(env));
  exports.Set("CudaFdeHandle", CudaFdeHandle::Define(env));
  exports.Set("CudaMultiVectorsHandle", CudaMultiVectorsHandle::Define(env));
}

}  // namespace tessera::napi
