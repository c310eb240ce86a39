// Bindings of the attention backend on the device: RoPE, attention and the LSE merge, with exactly the arguments
// (and checks) of the CPU bindings (calls.h), run on one process-wide DeviceAttention.
#include <memory>
#include <mutex>

#include "addon.h"
#include "calls.h"
#include "cuda_async.h"
#include "tessera/cuda_attention.h"

namespace tessera::napi {
namespace {

// The device object, created on first use. Its own mutex serializes calls; a failed creation (no device) is
// retried next time, so the error says why each time.
std::shared_ptr<cuda::DeviceAttention> device_attention(Napi::Env env, const char* name) {
  static std::mutex mutex;
  static std::shared_ptr<cuda::DeviceAttention> shared;
  std::lock_guard lock(mutex);
  if (!shared) {
    std::unique_ptr<cuda::DeviceAttention> created;
    const cuda::Result r = cuda::DeviceAttention::create(&created);
    if (!r.ok()) throw_result(env, r, name);
    shared = std::move(created);
  }
  return shared;
}

std::vector<Napi::Value> values(const std::vector<Napi::Object>& objects) { return {objects.begin(), objects.end()}; }

template <bool Async>
Napi::Value Attend(const Napi::CallbackInfo& info) {
  const char* name = Async ? "cudaAttentionAsync" : "cudaAttention";
  AttendCall c = parse_attend(info, name);
  auto device = device_attention(info.Env(), name);
  return dispatch(info, Async, name,
                  [device, q = c.q.bytes, k = c.k.bytes, v = c.v.bytes, dtype = c.dtype, shape = c.shape,
                   options = c.options, out = c.out.bytes, lse = c.lse ? c.lse->Data() : nullptr] {
                    return device->attend(q, k, v, dtype, shape, options, out, lse);
                  },
                  c.out.array, values(inputs_of(c)));
}

template <bool Async>
Napi::Value ApplyRope(const Napi::CallbackInfo& info) {
  const char* name = Async ? "cudaApplyRopeAsync" : "cudaApplyRope";
  ApplyCall c = parse_apply(info, name);
  auto device = device_attention(info.Env(), name);
  return dispatch(info, Async, name,
                  [device, bytes = c.bytes, dtype = c.dtype, shape = c.shape, style = c.style,
                   positions = c.positions.positions, angles = c.angles] {
                    return device->apply_rope(bytes, dtype, shape, style, positions, angles);
                  },
                  c.data, values(inputs_of(c)));
}

template <bool Async>
Napi::Value MergeStates(const Napi::CallbackInfo& info) {
  const char* name = Async ? "cudaMergeAttentionStatesAsync" : "cudaMergeAttentionStates";
  MergeCall c = parse_merge(info, name);
  auto device = device_attention(info.Env(), name);
  return dispatch(info, Async, name,
                  [device, a = c.out_a.Data(), la = c.lse_a.Data(), b = c.out_b.Data(), lb = c.lse_b.Data(),
                   shape = c.shape, out = c.out.Data(), lse = c.lse.Data()] {
                    return device->merge_states(a, la, b, lb, shape, out, lse);
                  },
                  info.Env().Undefined(), {c.out_a, c.lse_a, c.out_b, c.lse_b, c.out, c.lse});
}

Napi::Value LastKernelMs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), device_attention(info.Env(), "cudaAttentionLastKernelMs")->last_kernel_ms());
}

}  // namespace

void register_cuda_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaAttention", Napi::Function::New(env, Attend<false>, "cudaAttention"));
  exports.Set("cudaAttentionAsync", Napi::Function::New(env, Attend<true>, "cudaAttentionAsync"));
  exports.Set("cudaApplyRope", Napi::Function::New(env, ApplyRope<false>, "cudaApplyRope"));
  exports.Set("cudaApplyRopeAsync", Napi::Function::New(env, ApplyRope<true>, "cudaApplyRopeAsync"));
  exports.Set("cudaMergeAttentionStates", Napi::Function::New(env, MergeStates<false>, "cudaMergeAttentionStates"));
  exports.Set("cudaMergeAttentionStatesAsync", Napi::Function::New(env, MergeStates<true>, "cudaMergeAttentionStatesAsync"));
  exports.Set("cudaAttentionLastKernelMs", Napi::Function::New(env, LastKernelMs, "cudaAttentionLastKernelMs"));
}

}  // namespace tessera::napi
