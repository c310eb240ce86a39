// Merging two attention states on the device: tessera::attention::merge_states (native/src/attention/attention.cpp)
// with its arguments checked as the CPU checks them and its arithmetic in its order.
//
// The rows go through the device in chunks with their LSEs, within kChunkBudget. Per chunk, on the context's stream:
//   1. weights_kernel, one thread per output row: m = max(a, b) of the row's LSEs (float64), w = e^(lse - m) for
//      both sides, the two weights w / (w_a + w_b) rounded to float32 and lse = m + log(w_a + w_b) rounded to
//      float32, written to the merged LSEs; the weights go to a per-row array. Both LSEs -infinity: weights (0, 0),
//      which no merged row has (its weights sum to about 1, or are NaN), and LSE -infinity.
//   2. combine_kernel, one thread per 4 floats of a row (per float when dim is not a multiple of 4): w_a x_a + w_b x_b
//      rounded as the CPU build rounds it, or zeros for a (0, 0) row; merged in place in the first input's buffer.
// A chunk's rows and LSEs are on the device before its results come back, and no other chunk reads them, so out and
// lse may alias the inputs.
//
// Parity: the float32 arithmetic is the CPU's operation for operation. exp and log are CUDA's float64 functions
// (within 1 ulp of the exact value, as glibc's are, which the CPU calls), so a float64 weight or LSE can differ from
// the CPU's in its last bit; after rounding to float32 the results differ only when that float64 lies within an ulp
// of a float32 rounding boundary (about once in 2^28 rows).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "context.cuh"
#include "tessera/memory.h"

namespace tessera::cuda::detail {
namespace {

using attention::Layout;

constexpr int kThreads = 256;  // both kernels' blocks
// Device bytes per chunk: both inputs' rows, the three LSE arrays and the weights (context.merge[0..5]).
constexpr std::size_t kChunkBudget = std::size_t{512} << 20;

// How the CPU build rounds w_a x_a + w_b x_b. GCC contracts it into fma(w_a, x_a, w_b x_b) on AArch64 (checked
// with GCC 12 at -O3); x86-64 builds target x86-64-v2, which has no FMA: two rounded products and a rounded sum.
#if defined(__aarch64__)
constexpr bool kCpuFusesCombine = true;
#else
constexpr bool kCpuFusesCombine = false;
#endif

struct WeightsArgs {
  const float* lse_a;
  const float* lse_b;
  float* lse;       // the merged LSEs
  float2* weights;  // per row: (w_a, w_b)
  std::size_t rows, heads, seq;
  bool bshd;
};

// The chunk's LSEs are [batches, heads, seq] (seq: the chunk's tokens per batch row) when bshd, and in row order when
// bhsd (there the LSE index of a row is the row's index).
__global__ void __launch_bounds__(kThreads) weights_kernel(WeightsArgs a) {
  const std::size_t i = std::size_t{blockIdx.x} * kThreads + threadIdx.x;
  if (i >= a.rows) return;
  // Row (b, t, h) of bshd: its LSE at (b, h, t).
  const std::size_t b = i / (a.heads * a.seq), rest = i % (a.heads * a.seq);
  const std::size_t li = a.bshd ? (b * a.heads + rest % a.heads) * a.seq + rest / a.heads : i;
  const double la = a.lse_a[li], lb = a.lse_b[li];
  const double m = la < lb ? lb : la;  // std::max(la, lb), NaN included
  if (isinf(m) && m < 0) {  // neither side saw a key
    a.weights[i] = make_float2(0.0f, 0.0f);
    a.lse[li] = -INFINITY;
    return;
  }
  const double wa = exp(__dsub_rn(la, m)), wb = exp(__dsub_rn(lb, m)), sum = __dadd_rn(wa, wb);
  a.weights[i] = make_float2(__double2float_rn(__ddiv_rn(wa, sum)), __double2float_rn(__ddiv_rn(wb, sum)));
  a.lse[li] = __double2float_rn(__dadd_rn(m, log(sum)));
}

__device__ float combine(float2 w, float xa, float xb, bool fused) {
  return fused ? __fmaf_rn(w.x, xa, __fmul_rn(w.y, xb)) : __fadd_rn(__fmul_rn(w.x, xa), __fmul_rn(w.y, xb));
}

struct CombineArgs {
  float* a;  // the chunk's rows of out_a, overwritten with the merged rows
  const float* b;
  const float2* weights;
  std::size_t vectors, vectors_per_row;  // of V floats
  bool fused;
};

template <int V>
__global__ void __launch_bounds__(kThreads) combine_kernel(CombineArgs a) {
  const std::size_t v = std::size_t{blockIdx.x} * kThreads + threadIdx.x;
  if (v >= a.vectors) return;
  const float2 w = a.weights[v / a.vectors_per_row];
  const bool empty = w.x == 0.0f && w.y == 0.0f;
  if constexpr (V == 4) {
    const float4 xa = __ldcs(reinterpret_cast<const float4*>(a.a) + v);
    const float4 xb = __ldcs(reinterpret_cast<const float4*>(a.b) + v);
    const float4 y = empty ? make_float4(0.0f, 0.0f, 0.0f, 0.0f)
                           : make_float4(combine(w, xa.x, xb.x, a.fused), combine(w, xa.y, xb.y, a.fused),
                                         combine(w, xa.z, xb.z, a.fused), combine(w, xa.w, xb.w, a.fused));
    __stcs(reinterpret_cast<float4*>(a.a) + v, y);
  } else {
    a.a[v] = empty ? 0.0f : combine(w, a.a[v], a.b[v], a.fused);
  }
}

// The CPU's checks (attention.cpp), in its order.
Result validate(const float* out_a, const float* lse_a, const float* out_b, const float* lse_b,
                const attention::MergeShape& s, const float* out, const float* lse, std::size_t* rows) {
  std::size_t total = 0;
  if (!element_count({s.batch, s.heads, s.seq}, rows) || !element_count({*rows, s.dim}, &total) || s.dim == 0)
    return {Status::invalid_argument, "merge_states: dim must be positive and the shape's element count must not overflow"};
  if (*rows > 0 && !(out_a && lse_a && out_b && lse_b && out && lse))
    return {Status::invalid_argument, "merge_states: missing input or output arrays"};
  return {};
}

// Output rows [first_row, first_row + rows) and their LSEs: `runs` runs of run_length LSEs, run r from LSE index
// lse_first + r * lse_stride, packed in order on the device. seq: the chunk's tokens per batch row (bshd).
struct Chunk {
  std::size_t first_row, rows, lse_first, runs, run_length, lse_stride, seq;
};

// Chunks of whole batch rows (every layout keeps a batch row's output rows, and its LSEs, contiguous) or, when one
// batch row does not fit, of consecutive rows (bhsd, whose LSEs are in row order) or consecutive tokens with all
// their heads (bshd, whose LSEs for them are one run per head).
std::vector<Chunk> plan_chunks(const attention::MergeShape& s, std::size_t rows) {
  const std::size_t row_bytes = 2 * s.dim * sizeof(float) + 3 * sizeof(float) + sizeof(float2);
  const std::size_t most = std::max<std::size_t>(1, kChunkBudget / row_bytes), batch_rows = s.heads * s.seq;
  std::vector<Chunk> chunks;
  if (most >= batch_rows) {
    const std::size_t step = most / batch_rows * batch_rows;
    for (std::size_t r = 0; r < rows; r += step) {
      const std::size_t n = std::min(step, rows - r);
      chunks.push_back({r, n, r, 1, n, 0, s.seq});
    }
  } else if (s.layout == Layout::bhsd) {
    for (std::size_t r = 0; r < rows; r += most) {
      const std::size_t n = std::min(most, rows - r);
      chunks.push_back({r, n, r, 1, n, 0, s.seq});
    }
  } else {
    const std::size_t tokens = std::max<std::size_t>(1, most / s.heads);
    for (std::size_t b = 0; b < s.batch; ++b)
      for (std::size_t t = 0; t < s.seq; t += tokens) {
        const std::size_t n = std::min(tokens, s.seq - t);
        chunks.push_back({(b * s.seq + t) * s.heads, n * s.heads, b * batch_rows + t, s.heads, n, s.seq, n});
      }
  }
  return chunks;
}

Result copy(void* to, const void* from, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t stream, const char* what) {
  return cuda_check(cudaMemcpyAsync(to, from, bytes, kind, stream), what);
}

// A chunk's LSEs between a host array and a packed device buffer.
Result copy_lse(const Chunk& c, const float* from_host, float* to_host, float* device, cudaStream_t stream) {
  for (std::size_t r = 0; r < c.runs; ++r) {
    const std::size_t host = c.lse_first + r * c.lse_stride, bytes = c.run_length * sizeof(float);
    float* packed = device + r * c.run_length;
    const Result result = from_host ? copy(packed, from_host + host, bytes, cudaMemcpyHostToDevice, stream,
                                           "copying LSEs to the device")
                                    : copy(to_host + host, packed, bytes, cudaMemcpyDeviceToHost, stream,
                                           "copying the merged LSEs to the host");
    if (!result.ok()) return result;
  }
  return {};
}

// One chunk: its LSEs and rows to the device, both kernels between the timer's events, the results back.
Result merge_chunk(AttentionContext& ctx, const float* out_a, const float* lse_a, const float* out_b,
                   const float* lse_b, const attention::MergeShape& s, const Chunk& c, float* out, float* lse) {
  const cudaStream_t stream = ctx.stream.get();
  auto* la = ctx.merge[0].get<float>();
  auto* lb = ctx.merge[1].get<float>();
  auto* merged_lse = ctx.merge[2].get<float>();
  auto* weights = ctx.merge[3].get<float2>();
  auto* a = ctx.merge[4].get<float>();
  auto* b = ctx.merge[5].get<float>();
  const std::size_t offset = c.first_row * s.dim, bytes = c.rows * s.dim * sizeof(float);
  Result r = copy_lse(c, lse_a, nullptr, la, stream);
  if (r.ok()) r = copy_lse(c, lse_b, nullptr, lb, stream);
  if (r.ok()) r = copy(a, out_a + offset, bytes, cudaMemcpyHostToDevice, stream, "copying attention states to the device");
  if (r.ok()) r = copy(b, out_b + offset, bytes, cudaMemcpyHostToDevice, stream, "copying attention states to the device");
  if (r.ok()) r = ctx.timer.start(stream);
  if (r.ok()) {
    const WeightsArgs args{la, lb, merged_lse, weights, c.rows, s.heads, c.seq, s.layout == Layout::bshd};
    weights_kernel<<<static_cast<unsigned>(ceil_div(c.rows, kThreads)), kThreads, 0, stream>>>(args);
    r = launched("the merge weights kernel");
  }
  if (r.ok()) {
    const std::size_t width = s.dim % 4 == 0 ? 4 : 1;  // 16-byte vectors need rows of whole vectors
    const CombineArgs args{a, b, weights, c.rows * s.dim / width, s.dim / width, kCpuFusesCombine};
    const auto blocks = static_cast<unsigned>(ceil_div(args.vectors, kThreads));
    if (width == 4)
      combine_kernel<4><<<blocks, kThreads, 0, stream>>>(args);
    else
      combine_kernel<1><<<blocks, kThreads, 0, stream>>>(args);
    r = launched("the merge kernel");
  }
  if (r.ok()) r = ctx.timer.stop(stream);
  if (r.ok()) r = copy(out + offset, a, bytes, cudaMemcpyDeviceToHost, stream, "copying merged states to the host");
  if (r.ok()) r = copy_lse(c, nullptr, lse, merged_lse, stream);
  return r;
}

}  // namespace

Result merge_states(AttentionContext& context, const float* out_a, const float* lse_a, const float* out_b,
                    const float* lse_b, const attention::MergeShape& shape, float* out, float* lse) {
  context.last_ms = 0;
  std::size_t rows = 0;
  if (Result r = validate(out_a, lse_a, out_b, lse_b, shape, out, lse, &rows); !r.ok()) return r;
  if (rows == 0) return {};
  const std::vector<Chunk> chunks = plan_chunks(shape, rows);
  std::size_t most = 0;
  for (const Chunk& c : chunks) most = std::max(most, c.rows);
  // Reserved before anything is queued: a reserve that grows frees the old block, which queued work must not use.
  const std::size_t lse_bytes = most * sizeof(float), row_bytes = most * shape.dim * sizeof(float);
  Result r = context.merge[0].reserve(lse_bytes, "the first LSEs");
  if (r.ok()) r = context.merge[1].reserve(lse_bytes, "the second LSEs");
  if (r.ok()) r = context.merge[2].reserve(lse_bytes, "the merged LSEs");
  if (r.ok()) r = context.merge[3].reserve(most * sizeof(float2), "the merge weights");
  if (r.ok()) r = context.merge[4].reserve(row_bytes, "the first attention states");
  if (r.ok()) r = context.merge[5].reserve(row_bytes, "the second attention states");
  double kernel_ms = 0;
  for (std::size_t i = 0; r.ok() && i < chunks.size(); ++i) {
    r = merge_chunk(context, out_a, lse_a, out_b, lse_b, shape, chunks[i], out, lse);
    // Chunk by chunk (the copies back into pageable memory wait for the kernels anyway): a kernel's fault surfaces
    // here and the timer's events are complete.
    const Result synced = context.stream.synchronize("merging attention states");
    if (r.ok()) r = synced;
    if (r.ok()) kernel_ms += context.timer.elapsed_ms();
  }
  context.last_ms = kernel_ms;
  return r;
}

}  // namespace tessera::cuda::detail
