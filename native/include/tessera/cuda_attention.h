// The CUDA backend of the positions and attention modules: RoPE, exact (flash) attention and state merging on
// the device.
//
// Only the CUDA addon links this. Like the retrieval backend (tessera/cuda_retrieval.h, whose Result it shares),
// the API is host-side: host arrays go in and come out, each object owns its device memory and one stream, calls
// on one object are serialized, and every call returns when its results are on the host. Arguments follow the CPU
// functions exactly (tessera/rope.h, tessera/attention.h), so a binding can send the same call to either backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "tessera/attention.h"
#include "tessera/cuda_retrieval.h"
#include "tessera/rope.h"

namespace tessera::cuda {

class DeviceAttention {
 public:
  static Result create(std::unique_ptr<DeviceAttention>* out) noexcept;
  virtual ~DeviceAttention() = default;

  // rope::apply on the device, in place on the host array `data`: every style, dtype, layout, position type and
  // angle source of the CPU path. Angles are formed and reduced in float64 exactly as the CPU does, so results
  // match it bit for bit (half types rounded to nearest even the same way).
  virtual Result apply_rope(void* data, rope::DType dtype, const rope::Shape& shape, rope::Style style,
                            const rope::Positions& positions, const rope::Angles& angles) noexcept = 0;

  // attention::attend on the device. f16 and bf16 run on the tensor cores (mma.sync, any sm_80+ GPU) with float32
  // accumulation and softmax; head dims 64 and 128 take the tuned kernels, other dims up to kMaxHeadDim a general
  // one. Masks skip whole key blocks that no query of a block can see (causal, window, global tokens, segments).
  // Options the device does not implement (softcap, ALiBi, a dense bias, f32 data) return Status::unsupported
  // with a message saying which, so the caller can run the CPU path instead.
  virtual Result attend(const void* q, const void* k, const void* v, attention::DType dtype,
                        const attention::Shape& shape, const attention::Options& options, void* out,
                        float* lse) noexcept = 0;

  // attention::merge_states on the device.
  virtual Result merge_states(const float* out_a, const float* lse_a, const float* out_b, const float* lse_b,
                              const attention::MergeShape& shape, float* out, float* lse) noexcept = 0;

  // Milliseconds of the last call's kernels (CUDA events; host copies excluded).
  virtual double last_kernel_ms() const noexcept = 0;
};

}  // namespace tessera::cuda
