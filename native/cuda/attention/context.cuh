// What the attention backend's kernels share per DeviceAttention object: its stream, a kernel timer and reusable
// device buffers, one group per source file (each file documents how it uses its group).
#pragma once

#include "../common/util.cuh"
#include "tessera/cuda_attention.h"

namespace tessera::cuda::detail {

struct AttentionContext {
  Stream stream;
  KernelTimer timer;
  double last_ms = 0;       // set by each call: its kernels' device time
  DeviceMemory rope[4];     // native/cuda/rope/apply.cu
  DeviceMemory flash[8];    // native/cuda/attention/flash.cu
  DeviceMemory merge[6];    // native/cuda/attention/merge.cu
};

// Each runs on context.stream, records its kernels between context.timer.start and stop, synchronizes, sets
// context.last_ms and returns (the caller holds the object's lock). Arguments as DeviceAttention's methods.
Result apply_rope(AttentionContext& context, void* data, rope::DType dtype, const rope::Shape& shape, rope::Style style,
                  const rope::Positions& positions, const rope::Angles& angles);
Result attend(AttentionContext& context, const void* q, const void* k, const void* v, attention::DType dtype,
              const attention::Shape& shape, const attention::Options& options, void* out, float* lse);
Result merge_states(AttentionContext& context, const float* out_a, const float* lse_a, const float* out_b,
                    const float* lse_b, const attention::MergeShape& shape, float* out, float* lse);

}  // namespace tessera::cuda::detail
