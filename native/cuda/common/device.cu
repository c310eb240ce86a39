#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "tessera/cuda.h"

namespace tessera::cuda {
namespace {

constexpr int kProbeThreads = 64;

__global__ void probe_kernel(std::uint32_t* out) {
  out[threadIdx.x] = threadIdx.x * 2654435761u;  // Knuth's multiplicative hash: not something memory holds by chance
}

std::string describe(cudaError_t e, const char* what) {
  return std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

// Runs the probe kernel on the current device; an empty string means it wrote the expected values.
std::string run_probe() {
  std::uint32_t* d = nullptr;
  cudaError_t e = cudaMalloc(&d, kProbeThreads * sizeof(std::uint32_t));
  if (e != cudaSuccess) return describe(e, "cudaMalloc");
  probe_kernel<<<1, kProbeThreads>>>(d);
  e = cudaGetLastError();
  std::uint32_t host[kProbeThreads] = {};
  if (e == cudaSuccess) e = cudaMemcpy(host, d, sizeof host, cudaMemcpyDeviceToHost);
  cudaFree(d);
  if (e != cudaSuccess) return describe(e, "probe kernel");
  for (int i = 0; i < kProbeThreads; ++i)
    if (host[i] != static_cast<std::uint32_t>(i) * 2654435761u) return "probe kernel wrote wrong values";
  return {};
}

}  // namespace

DeviceReport probe_devices() noexcept {
  DeviceReport r;
  try {
    cudaDriverGetVersion(&r.driver_version);
    cudaRuntimeGetVersion(&r.runtime_version);
    cudaError_t e = cudaGetDeviceCount(&r.device_count);
    if (e != cudaSuccess) {
      r.device_count = 0;
      r.error = describe(e, "cudaGetDeviceCount");
      return r;
    }
    if (r.device_count == 0) {
      r.error = "no CUDA device";
      return r;
    }
    cudaDeviceProp p{};
    e = cudaGetDeviceProperties(&p, 0);
    if (e != cudaSuccess) {
      r.error = describe(e, "cudaGetDeviceProperties");
      return r;
    }
    r.name = p.name;
    r.compute_major = p.major;
    r.compute_minor = p.minor;
    r.memory_bytes = p.totalGlobalMem;
    r.error = run_probe();
    r.usable = r.error.empty();
  } catch (...) {
    r.usable = false;
    r.error = "out of memory while probing";
  }
  return r;
}

}  // namespace tessera::cuda
