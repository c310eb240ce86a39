// Bindings of the CUDA backend (compiled into the CUDA addon only).
#include "addon.h"
#include "args.h"
#include "tessera/cuda.h"

namespace tessera::napi {
namespace {

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

}  // namespace

void register_cuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaProbe", Napi::Function::New(env, CudaProbe, "cudaProbe"));
}

}  // namespace tessera::napi
