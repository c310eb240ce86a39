// RoPE on the device: tessera::rope::apply (native/src/rope/apply.cpp) with its arguments checked as the CPU checks
// them and its arithmetic done operation for operation as the CPU's AVX2 and AVX-512 kernels do it (and its scalar
// code as GCC builds it for AArch64, where it contracts the same products into the same fused multiply-adds), so
// the results match theirs bit for bit.
//
// The host array goes through the device in chunks of whole tokens (every head of each token), each chunk with its
// cos/sin table within kChunkBudget. Per chunk, on the context's stream:
//   1. angles_kernel (inv_freq): the chunk's float32 cos/sin table, one row per token: theta = p f formed and
//      reduced modulo pi/2 in float64, the CPU's polynomials (native/src/rope/angles.cpp) evaluated with the same
//      fused multiply-adds, the quadrant applied, the factor multiplied in float64, rounded to float32. Tables
//      passed by the caller are gathered (and scaled in float32, as the CPU scales them) on the host instead:
//      selecting rows is all the CPU does with them.
//   2. rotate_kernel: each thread takes one group of pairs of one token and rotates it in every head_lanes-th head,
//      so its cos/sin are read once for up to kHeadsPerThread heads. The rotation is the AVX kernels' per element:
//      (a, b) -> (fma(a, c, -(b s)), fma(b, c, a s)), half types widened and rounded back to nearest even.
//      16-byte loads and stores when the rows and the rotary half allow; element by element otherwise.
//
// Where the CPU rounds the rotation differently, results can differ in the last bit of a float32 (or, rarely, of a
// half type): its scalar level on x86 (x86-64-v2 builds have no FMA: separate roundings) and its AVX2 level's
// scalar tails (f16/bf16 rows whose rotary half, neox, or rotary_dim, interleaved, is not a multiple of 8; f32
// interleaved likewise). The angles' float64 values can differ by an ulp between those paths too, which survives
// rounding to float32 only at a rounding boundary (no case in 8 million angles tested). NaN inputs give NaN
// outputs, whose payload bits follow each machine's own rules.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../attention/context.cuh"
#include "tessera/memory.h"

namespace tessera::cuda::detail {
namespace {

using rope::DType;
using rope::Layout;
using rope::PositionType;
using rope::Style;

constexpr int kThreads = 256;  // both kernels' blocks
constexpr int kHeadsPerThread = 8;  // rotate_kernel: heads sharing one thread's read of its cos/sin
// Device bytes per chunk: its rows, its table and its positions (context.rope[0..2]).
constexpr std::size_t kChunkBudget = std::size_t{512} << 20;
// Table rows are padded to 8 floats (32 bytes), so a group of up to 8 pairs reads its cos/sin with aligned loads.
constexpr std::size_t kTableAlign = 8;

// ---- 1. angles ---------------------------------------------------------------------------------------------------

// The CPU's constants (angles.cpp): 2/pi, pi/2 as a float64 head plus the tail it leaves out, and the Taylor
// coefficients of sin r = r + r^3 (S3 + r^2 (S5 + ...)) and cos r = 1 + r^2 (C2 + r^2 (C4 + ...)).
constexpr double kTwoOverPi = 0.63661977236758134308;
constexpr double kHalfPiHead = 1.5707963267948966;
constexpr double kHalfPiTail = 6.123233995736766036e-17;
constexpr double S3 = -1.0 / 6, S5 = 1.0 / 120, S7 = -1.0 / 5040, S9 = 1.0 / 362880, S11 = -1.0 / 39916800;
constexpr double C2 = -0.5, C4 = 1.0 / 24, C6 = -1.0 / 720, C8 = 1.0 / 40320, C10 = -1.0 / 3628800,
                 C12 = 1.0 / 479001600;

struct AnglesArgs {
  const double* positions;  // one per token of the chunk
  const double* inv_freq;   // half
  float* cos;               // [tokens, pitch]
  float* sin;
  std::size_t tokens, half, pitch;
  double factor;
};

// Item (token, pair): the CPU's angles_avx512 for one lane, with the same operations in the same order (every
// intrinsic rounds once, so nothing is left for the compiler to contract differently).
__global__ void __launch_bounds__(kThreads) angles_kernel(AnglesArgs a) {
  const std::size_t item = std::size_t{blockIdx.x} * kThreads + threadIdx.x;
  if (item >= a.tokens * a.half) return;
  const std::size_t token = item / a.half, i = item % a.half;
  const double theta = __dmul_rn(a.positions[token], a.inv_freq[i]);
  const double k = rint(__dmul_rn(theta, kTwoOverPi));  // nearest, ties to even, as nearbyint and roundscale
  const double r = __fma_rn(-k, kHalfPiTail, __fma_rn(-k, kHalfPiHead, theta));
  const double r2 = __dmul_rn(r, r);
  double s = __fma_rn(r2, S11, S9);
  s = __fma_rn(r2, s, S7);
  s = __fma_rn(r2, s, S5);
  s = __fma_rn(r2, s, S3);
  s = __fma_rn(__dmul_rn(r, r2), s, r);
  double c = __fma_rn(r2, C12, C10);
  c = __fma_rn(r2, c, C8);
  c = __fma_rn(r2, c, C6);
  c = __fma_rn(r2, c, C4);
  c = __fma_rn(r2, c, C2);
  c = __fma_rn(r2, c, 1.0);
  const double quadrant = __dsub_rn(k, __dmul_rn(4.0, floor(__dmul_rn(k, 0.25))));  // k mod 4, also for k < 0
  const bool odd = quadrant == 1.0 || quadrant == 3.0;
  double sv = odd ? c : s, cv = odd ? s : c;
  if (quadrant >= 2.0) sv = -sv;
  if (quadrant == 1.0 || quadrant == 2.0) cv = -cv;
  a.cos[token * a.pitch + i] = __double2float_rn(__dmul_rn(cv, a.factor));
  a.sin[token * a.pitch + i] = __double2float_rn(__dmul_rn(sv, a.factor));
}

// ---- 2. rotation -------------------------------------------------------------------------------------------------

// Storage types: widen to float32, round back to nearest even (hardware conversions, exact as the CPU's).
struct F32 {
  using T = float;
  static __device__ float widen(T v) { return v; }
  static __device__ T narrow(float v) { return v; }
};
struct F16 {
  using T = std::uint16_t;
  static __device__ float widen(T v) { return __half2float(__ushort_as_half(v)); }
  static __device__ T narrow(float v) { return __half_as_ushort(__float2half_rn(v)); }
};
struct BF16 {
  using T = std::uint16_t;
  static __device__ float widen(T v) { return __uint_as_float(static_cast<std::uint32_t>(v) << 16); }
  static __device__ T narrow(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
};

template <class T, int V>
union Pack {  // one 16-byte vector as its elements
  uint4 bits;
  T e[V];
};

// V consecutive elements of a row. A 16-byte vector (aligned: rows are a multiple of 16 bytes, chunks start at
// row boundaries) when V fills one; the data is read and written once, so the loads and stores stream past the
// cache (.cs), which keeps the table resident.
template <class E, int V>
__device__ void load_row(const typename E::T* p, float (&x)[V]) {
  if constexpr (V * sizeof(typename E::T) == 16) {
    Pack<typename E::T, V> v;
    v.bits = __ldcs(reinterpret_cast<const uint4*>(p));
#pragma unroll
    for (int k = 0; k < V; ++k) x[k] = E::widen(v.e[k]);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) x[k] = E::widen(p[k]);
  }
}

template <class E, int V>
__device__ void store_row(typename E::T* p, const float (&x)[V]) {
  if constexpr (V * sizeof(typename E::T) == 16) {
    Pack<typename E::T, V> v;
#pragma unroll
    for (int k = 0; k < V; ++k) v.e[k] = E::narrow(x[k]);
    __stcs(reinterpret_cast<uint4*>(p), v.bits);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) p[k] = E::narrow(x[k]);
  }
}

// P consecutive table entries, P-aligned (rows are kTableAlign floats apart, groups start at multiples of P).
template <int P>
__device__ void load_table(const float* p, float (&x)[P]) {
  if constexpr (P % 4 == 0) {
#pragma unroll
    for (int k = 0; k < P; k += 4) {
      const float4 v = __ldg(reinterpret_cast<const float4*>(p + k));
      x[k] = v.x, x[k + 1] = v.y, x[k + 2] = v.z, x[k + 3] = v.w;
    }
  } else if constexpr (P == 2) {
    const float2 v = __ldg(reinterpret_cast<const float2*>(p));
    x[0] = v.x, x[1] = v.y;
  } else {
    x[0] = __ldg(p);
  }
}

// The pair (a, b) rotated by (c, s) as the AVX kernels round it: a c - b s and b c + a s, each one fused
// multiply-add whose addend is the other product, rounded (_mm512_fmsub_ps(a, c, b s), _mm512_fmadd_ps(b, c, a s)).
__device__ void rotate_pair(float& a, float& b, float c, float s) {
  const float na = __fmaf_rn(a, c, -__fmul_rn(b, s));
  const float nb = __fmaf_rn(b, c, __fmul_rn(a, s));
  a = na, b = nb;
}

struct RotateArgs {
  void* data;  // the chunk's rows, in the call's layout
  const float* cos;
  const float* sin;
  std::size_t pitch;      // floats from one token's table row to the next
  std::size_t tokens;     // of the chunk
  std::size_t seq_block;  // bhsd: the chunk's tokens per batch row
  std::size_t heads, head_lanes, groups, head_dim, half;
  bool bshd;
};

// Item (token, head lane, group): a group is V channels of the first half and the V facing them (neox), or V/2
// adjacent pairs (interleaved); consecutive items are consecutive groups of a row, then consecutive heads.
template <class E, int V, Style S>
__global__ void __launch_bounds__(kThreads) rotate_kernel(RotateArgs a) {
  constexpr int P = S == Style::neox ? V : V / 2;  // pairs per group
  const std::size_t item = std::size_t{blockIdx.x} * kThreads + threadIdx.x;
  if (item >= a.tokens * a.head_lanes * a.groups) return;
  const std::size_t group = item % a.groups, rest = item / a.groups;
  const std::size_t lane = rest % a.head_lanes, token = rest / a.head_lanes;
  float c[P], s[P];
  load_table<P>(a.cos + token * a.pitch + group * P, c);
  load_table<P>(a.sin + token * a.pitch + group * P, s);
  // Rows of this token: first_row + h * head_step (bshd: [tokens, heads]; bhsd: [batch rows, heads, seq_block]).
  const std::size_t first_row =
      a.bshd ? token * a.heads : token / a.seq_block * a.heads * a.seq_block + token % a.seq_block;
  const std::size_t head_step = a.bshd ? 1 : a.seq_block;
  auto* rows = static_cast<typename E::T*>(a.data);
  for (std::size_t h = lane; h < a.heads; h += a.head_lanes) {
    typename E::T* row = rows + (first_row + h * head_step) * a.head_dim + group * V;
    if constexpr (S == Style::neox) {
      float x[V], y[V];
      load_row<E, V>(row, x);
      load_row<E, V>(row + a.half, y);
#pragma unroll
      for (int k = 0; k < V; ++k) rotate_pair(x[k], y[k], c[k], s[k]);
      store_row<E, V>(row, x);
      store_row<E, V>(row + a.half, y);
    } else {
      float x[V];
      load_row<E, V>(row, x);
#pragma unroll
      for (int k = 0; k < P; ++k) rotate_pair(x[2 * k], x[2 * k + 1], c[k], s[k]);
      store_row<E, V>(row, x);
    }
  }
}

// ---- host --------------------------------------------------------------------------------------------------------

std::size_t element_bytes(DType dtype) { return dtype == DType::f32 ? 4 : 2; }

double position_at(const rope::Positions& p, std::size_t index) {
  switch (p.type) {
    case PositionType::i32: return static_cast<const std::int32_t*>(p.data)[index];
    case PositionType::f32: return static_cast<const float*>(p.data)[index];
    default: return static_cast<const double*>(p.data)[index];
  }
}

Result invalid(const std::string& message) { return {Status::invalid_argument, "RoPE: " + message}; }

// The CPU's checks (apply.cpp: the shape, angles_valid, positions_valid, then the data), in its order, so the two
// backends accept and reject the same calls; each with a message saying what is wrong.
Result validate(const void* data, const rope::Shape& shape, const rope::Positions& positions,
                const rope::Angles& angles, std::size_t* elements) {
  const std::size_t rot = shape.rotary_dim, half = rot / 2;
  if (rot == 0 || rot % 2 != 0 || rot > shape.head_dim)
    return invalid("rotary_dim (" + std::to_string(rot) + ") must be even, nonzero and at most head_dim (" +
                   std::to_string(shape.head_dim) + ")");
  std::size_t tokens = 0, heads_dims = 0;
  if (!element_count({shape.batch, shape.seq_len}, &tokens) || !element_count({shape.heads, shape.head_dim}, &heads_dims) ||
      !element_count({tokens, heads_dims}, elements))
    return invalid("the shape's element count overflows");
  if (!std::isfinite(angles.attention_factor)) return invalid("attention_factor must be finite");
  const bool frequencies = angles.inv_freq != nullptr, tables = angles.cos != nullptr || angles.sin != nullptr;
  if (frequencies == tables) return invalid("pass exactly one source of angles: inv_freq, or cos and sin tables");
  if (tables && !(angles.cos && angles.sin && angles.table_rows > 0))
    return invalid("cos and sin tables need both arrays and table_rows > 0");
  for (std::size_t i = 0; frequencies && i < half; ++i)
    if (!std::isfinite(angles.inv_freq[i])) return invalid("inv_freq[" + std::to_string(i) + "] is not finite");
  const std::size_t count = positions.per_batch ? tokens : shape.seq_len;
  if (count > 0 && positions.data == nullptr) return invalid("no positions");
  for (std::size_t i = 0; i < count; ++i) {
    const double v = position_at(positions, i);
    if (!std::isfinite(v)) return invalid("position " + std::to_string(i) + " is not finite");
    if (tables && !(v >= 0 && v < static_cast<double>(angles.table_rows) && v == std::floor(v)))
      return invalid("position " + std::to_string(i) + " is not an integer row of the tables, in [0, " +
                     std::to_string(angles.table_rows) + ")");
  }
  if (*elements > 0 && data == nullptr) return invalid("no data");
  return {};
}

// A chunk's tokens, in order: token j < batches * seq_block is the call's token first + (j / seq_block) seq +
// j % seq_block. bshd: any run of tokens (batches = 1). bhsd: whole batch rows (seq_block = seq), or part of one.
struct Chunk {
  std::size_t first, batches, seq_block;
  std::size_t tokens() const { return batches * seq_block; }
};

// What every chunk of one call shares.
struct Call {
  DType dtype;
  Style style;
  rope::Shape shape;
  rope::Positions positions;
  rope::Angles angles;
  std::size_t half, pitch, row_bytes;
  bool vectorized;  // 16-byte groups: rows a multiple of 16 bytes, the rotary half a multiple of a group's pairs
};

Call plan_call(DType dtype, const rope::Shape& shape, Style style, const rope::Positions& positions,
               const rope::Angles& angles) {
  const std::size_t half = shape.rotary_dim / 2, row_bytes = shape.head_dim * element_bytes(dtype);
  const std::size_t vector = 16 / element_bytes(dtype), pairs = style == Style::neox ? vector : vector / 2;
  return {dtype, style, shape, positions, angles, half, ceil_div(half, kTableAlign) * kTableAlign, row_bytes,
          row_bytes % 16 == 0 && half % pairs == 0};
}

// Chunks of as many tokens as fit kChunkBudget with their table rows and positions (at least one token).
std::vector<Chunk> plan_chunks(const Call& c) {
  const rope::Shape& s = c.shape;
  const std::size_t token_bytes = s.heads * c.row_bytes + 2 * c.pitch * sizeof(float) + sizeof(double);
  const std::size_t most = std::max<std::size_t>(1, kChunkBudget / token_bytes);
  std::vector<Chunk> chunks;
  if (s.layout == Layout::bshd) {
    const std::size_t tokens = s.batch * s.seq_len;
    for (std::size_t t = 0; t < tokens; t += most) chunks.push_back({t, 1, std::min(most, tokens - t)});
  } else if (most >= s.seq_len) {
    const std::size_t per_chunk = most / s.seq_len;
    for (std::size_t b = 0; b < s.batch; b += per_chunk)
      chunks.push_back({b * s.seq_len, std::min(per_chunk, s.batch - b), s.seq_len});
  } else {
    for (std::size_t b = 0; b < s.batch; ++b)
      for (std::size_t q = 0; q < s.seq_len; q += most)
        chunks.push_back({b * s.seq_len + q, 1, std::min(most, s.seq_len - q)});
  }
  return chunks;
}

// The call's token for a chunk's token j, and the index of its position.
std::size_t token_of(const Call& c, const Chunk& chunk, std::size_t j) {
  return chunk.first + j / chunk.seq_block * c.shape.seq_len + j % chunk.seq_block;
}
std::size_t position_index(const Call& c, std::size_t token) {
  return c.positions.per_batch ? token : token % c.shape.seq_len;
}

// Copies a chunk's rows between the host array and the device buffer (packed in chunk order): one contiguous run
// for bshd and for whole bhsd batch rows; for part of a bhsd batch row, one run per head.
Result copy_rows(const Call& c, const Chunk& chunk, char* host, char* device, bool to_device, cudaStream_t stream) {
  const rope::Shape& s = c.shape;
  const bool per_head = s.layout == Layout::bhsd && chunk.seq_block < s.seq_len;
  const std::size_t runs = per_head ? s.heads : 1;
  const std::size_t run_bytes = chunk.tokens() * s.heads * c.row_bytes / runs;
  const std::size_t b = chunk.first / s.seq_len, q = chunk.first % s.seq_len;
  const std::size_t host_start = s.layout == Layout::bshd ? chunk.first * s.heads : (b * s.heads * s.seq_len + q);
  for (std::size_t h = 0; h < runs; ++h) {
    char* h_ptr = host + (host_start + h * s.seq_len) * c.row_bytes;
    char* d_ptr = device + h * run_bytes;
    const cudaError_t e = to_device ? cudaMemcpyAsync(d_ptr, h_ptr, run_bytes, cudaMemcpyHostToDevice, stream)
                                    : cudaMemcpyAsync(h_ptr, d_ptr, run_bytes, cudaMemcpyDeviceToHost, stream);
    if (Result r = cuda_check(e, to_device ? "copying the RoPE data to the device" : "copying the RoPE data to the host");
        !r.ok())
      return r;
  }
  return {};
}

// Host staging of one chunk's angle inputs: its positions as float64 (inv_freq), or its rows of the caller's
// tables, scaled by the factor in float32 when it is not 1 (tables).
struct Staging {
  std::vector<double> positions;
  std::vector<float> cos, sin;
};

void stage(const Call& c, const Chunk& chunk, Staging& st) {
  const std::size_t n = chunk.tokens();
  if (c.angles.inv_freq) {
    for (std::size_t j = 0; j < n; ++j) st.positions[j] = position_at(c.positions, position_index(c, token_of(c, chunk, j)));
    return;
  }
  const bool scaled = c.angles.attention_factor != 1.0;
  const auto factor = static_cast<float>(c.angles.attention_factor);
  for (std::size_t j = 0; j < n; ++j) {
    const auto row = static_cast<std::size_t>(position_at(c.positions, position_index(c, token_of(c, chunk, j))));
    const float* cos = c.angles.cos + row * c.half;
    const float* sin = c.angles.sin + row * c.half;
    float* to_cos = st.cos.data() + j * c.pitch;
    float* to_sin = st.sin.data() + j * c.pitch;
    for (std::size_t i = 0; i < c.half; ++i) {
      to_cos[i] = scaled ? cos[i] * factor : cos[i];
      to_sin[i] = scaled ? sin[i] * factor : sin[i];
    }
  }
}

template <class E, int V, Style S>
Result launch_rotate(RotateArgs a, cudaStream_t stream) {
  constexpr std::size_t kPairs = S == Style::neox ? V : V / 2;
  a.groups = a.half / kPairs;
  const std::size_t blocks = ceil_div(a.tokens * a.head_lanes * a.groups, kThreads);
  rotate_kernel<E, V, S><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(a);
  return launched("the RoPE rotation kernel");
}

// 16-byte groups when the call allows them, else one pair (neox) or one adjacent pair (interleaved) per item.
template <class E, Style S>
Result launch_rotate(const RotateArgs& a, bool vectorized, cudaStream_t stream) {
  constexpr int kVector = 16 / sizeof(typename E::T);
  constexpr int kScalar = S == Style::neox ? 1 : 2;
  return vectorized ? launch_rotate<E, kVector, S>(a, stream) : launch_rotate<E, kScalar, S>(a, stream);
}

template <class E>
Result launch_rotate(const RotateArgs& a, Style style, bool vectorized, cudaStream_t stream) {
  return style == Style::neox ? launch_rotate<E, Style::neox>(a, vectorized, stream)
                              : launch_rotate<E, Style::interleaved>(a, vectorized, stream);
}

// The chunk's angle inputs to the device: its positions (inv_freq), or its gathered cos and sin rows (tables).
Result upload_angles(AttentionContext& ctx, const Call& c, std::size_t n, const Staging& st, float* cos, float* sin) {
  const cudaStream_t stream = ctx.stream.get();
  if (c.angles.inv_freq)
    return cuda_check(cudaMemcpyAsync(ctx.rope[2].get(), st.positions.data(), n * sizeof(double),
                                      cudaMemcpyHostToDevice, stream),
                      "copying the RoPE positions to the device");
  const std::size_t bytes = n * c.pitch * sizeof(float);
  Result r = cuda_check(cudaMemcpyAsync(cos, st.cos.data(), bytes, cudaMemcpyHostToDevice, stream),
                        "copying the RoPE cos table to the device");
  if (r.ok())
    r = cuda_check(cudaMemcpyAsync(sin, st.sin.data(), bytes, cudaMemcpyHostToDevice, stream),
                   "copying the RoPE sin table to the device");
  return r;
}

Result launch_angles(AttentionContext& ctx, const Call& c, std::size_t n, float* cos, float* sin) {
  const AnglesArgs args{ctx.rope[2].get<double>(), ctx.rope[3].get<double>(), cos, sin, n, c.half, c.pitch,
                        c.angles.attention_factor};
  angles_kernel<<<static_cast<unsigned>(ceil_div(n * c.half, kThreads)), kThreads, 0, ctx.stream.get()>>>(args);
  return launched("the RoPE angles kernel");
}

Result launch_rotate(AttentionContext& ctx, const Call& c, const Chunk& chunk, const float* cos, const float* sin) {
  const rope::Shape& s = c.shape;
  const RotateArgs args{ctx.rope[0].get(), cos, sin, c.pitch, chunk.tokens(), chunk.seq_block, s.heads,
                        ceil_div(s.heads, kHeadsPerThread), 0, s.head_dim, c.half, s.layout == Layout::bshd};
  switch (c.dtype) {
    case DType::f32: return launch_rotate<F32>(args, c.style, c.vectorized, ctx.stream.get());
    case DType::f16: return launch_rotate<F16>(args, c.style, c.vectorized, ctx.stream.get());
    default: return launch_rotate<BF16>(args, c.style, c.vectorized, ctx.stream.get());
  }
}

// One chunk: its angle inputs and rows to the device, the kernels between the timer's events, the rows back.
Result rotate_chunk(AttentionContext& ctx, const Call& c, const Chunk& chunk, char* data, Staging& st) {
  const cudaStream_t stream = ctx.stream.get();
  const std::size_t n = chunk.tokens();
  auto* cos = ctx.rope[1].get<float>();
  float* sin = cos + n * c.pitch;
  stage(c, chunk, st);
  Result r = upload_angles(ctx, c, n, st, cos, sin);
  if (r.ok()) r = copy_rows(c, chunk, data, ctx.rope[0].get<char>(), true, stream);
  if (r.ok()) r = ctx.timer.start(stream);
  if (r.ok() && c.angles.inv_freq) r = launch_angles(ctx, c, n, cos, sin);
  if (r.ok()) r = launch_rotate(ctx, c, chunk, cos, sin);
  if (r.ok()) r = ctx.timer.stop(stream);
  if (r.ok()) r = copy_rows(c, chunk, data, ctx.rope[0].get<char>(), false, stream);
  return r;
}

// Device and host scratch for the largest chunk, reserved before anything is queued (a reserve that grows frees
// the old block, which queued work must not be using), and the frequencies, which every chunk shares.
Result prepare(AttentionContext& ctx, const Call& c, const std::vector<Chunk>& chunks, Staging& st) {
  std::size_t most = 0;
  for (const Chunk& chunk : chunks) most = std::max(most, chunk.tokens());
  Result r = ctx.rope[0].reserve(most * c.shape.heads * c.row_bytes, "the RoPE data");
  if (r.ok()) r = ctx.rope[1].reserve(2 * most * c.pitch * sizeof(float), "the RoPE cos/sin table");
  if (!r.ok()) return r;
  if (!c.angles.inv_freq) {
    st.cos.resize(most * c.pitch), st.sin.resize(most * c.pitch);
    return {};
  }
  st.positions.resize(most);
  r = ctx.rope[2].reserve(most * sizeof(double), "the RoPE positions");
  if (r.ok()) r = ctx.rope[3].reserve(c.half * sizeof(double), "the RoPE frequencies");
  if (!r.ok()) return r;
  return cuda_check(cudaMemcpyAsync(ctx.rope[3].get(), c.angles.inv_freq, c.half * sizeof(double),
                                    cudaMemcpyHostToDevice, ctx.stream.get()),
                    "copying the RoPE frequencies to the device");
}

}  // namespace

Result apply_rope(AttentionContext& context, void* data, DType dtype, const rope::Shape& shape, Style style,
                  const rope::Positions& positions, const rope::Angles& angles) {
  context.last_ms = 0;
  std::size_t elements = 0;
  if (Result r = validate(data, shape, positions, angles, &elements); !r.ok()) return r;
  if (elements == 0) return {};
  const Call call = plan_call(dtype, shape, style, positions, angles);
  const std::vector<Chunk> chunks = plan_chunks(call);
  Staging staging;
  Result r = prepare(context, call, chunks, staging);
  double kernel_ms = 0;
  for (std::size_t i = 0; r.ok() && i < chunks.size(); ++i) {
    r = rotate_chunk(context, call, chunks[i], static_cast<char*>(data), staging);
    // Chunk by chunk (the copy back into pageable memory waits for the kernels anyway): a kernel's fault surfaces
    // here, the timer's events are complete, and the staging buffers are free for the next chunk.
    const Result synced = context.stream.synchronize("RoPE on the device");
    if (r.ok()) r = synced;
    if (r.ok()) kernel_ms += context.timer.elapsed_ms();
  }
  context.last_ms = kernel_ms;
  return r;
}

}  // namespace tessera::cuda::detail
