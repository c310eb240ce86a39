// Chamfer (MaxSim) scores on the device: score[q][d] = sum over query q's tokens a of the largest <q_a, t> over
// document d's tokens t, as fde::chamfer_scores computes them (native/src/fde/chamfer.cpp).
//
// Layout. Documents are cut into tiles of 8 tokens (each document padded with zero tokens to a whole number of
// tiles), queries into m-tiles of 16 tokens (each query padded likewise), and dims are padded with zeros (32 for
// bfloat16, 4 for float32), on both sides, so padding adds exact zeros to every dot product. Tiles are stored in
// the order the kernels' lanes read them, so every load is one contiguous 16-byte piece per lane:
//   bfloat16: within each 32-dim chunk, lane 4g + t holds dims 8t .. 8t + 7 of token g (an m-tile: of rows g and
//             g + 8, in two halves). Those 8 values are the lane's operands of two m16n8k16 steps: mma.sync pairs
//             A's column k with B's row k for every k, so the order of the dims within a chunk is free, and this
//             one makes every fragment a slice of one 16-byte load (see mma_chunk).
//   float32:  [dim / 4][token][4]: lane 4g + t reads rows g and g + 8 and tokens 2t and 2t + 1 as float4s.
// A warp scores 32 query tokens (two m-tiles: a "slot") against its documents' tiles; each lane owns the dot
// products of the mma accumulator layout (rows g and g + 8 of each m-tile, tokens 2t and 2t + 1 of each tile) and
// keeps their running maxima over the document's tokens in registers; when a document ends, the warp reduces the
// maxima over its lanes and sums each m-tile's rows, so nothing per token pair ever reaches device memory. Each
// m-tile's sum goes to a partial-score matrix (m-tiles x documents); a last kernel adds a query's m-tiles in order
// (deterministic: no atomics anywhere).
//
// Kernels:
//   shared_docs_kernel<C> (bfloat16, dims <= 128: C = 1..4 chunks). The query fragments live in registers for the
//     whole kernel. A block is S <= 8 warps with S different slots that stream the same chunk of documents through
//     a shared-memory ring (cp.async, kStages stages of kPassTiles tiles): one 16-byte piece per lane per chunk of
//     each tile, conflict-free, feeding 4 mma.sync for 2 m-tiles x 2 k-steps. Blocks of one chunk but different
//     slot groups have consecutive indices, so they run together and all but the first read the chunk from L2.
//   slot_kernel<Bf16Math> (bfloat16, dims > 128) and slot_kernel<F32Math> (float32, any dim): a block's 8 warps
//     share one slot (its query read through L1, fragments rebuilt per 32 or 4 dims) and each walks its own chunk of
//     documents straight from device memory, 4 tiles at a time. float32 products are fused multiply-add chains on the
//     CUDA cores: per 4 dims a lane loads 4 query float4s (used 8 times: 2 tokens x 4 tiles) and 2 per tile (used 4
//     times), a 4 x 2 register tile per document tile.
//   sum_partials_kernel: scores[q][d] = the sum of query q's m-tiles' partial scores, in m-tile order.
//
// Work per call, for the caller's rates (Q = query tokens, T = document tokens, all summed; MT = m-tiles, padded
// tokens are computed but not counted):
//   FLOPs = 2 * dim * Q * T
//   device-memory bytes ~= docs + 32 * Dp * MT (bf16 queries; 64 * Dp * MT for float32) + 4 * count * (2 * MT + nq)
//     where docs = 16 * Dp * tiles (bfloat16, Dp = dim rounded up to 32; read from DRAM about once per query batch,
//     from L2 by the further slot groups) or 32 * Dp * tiles (float32, Dp = dim rounded up to 4; read once per slot,
//     from L2 after the first), tiles = sum over documents of ceil(length / 8). Over PCIe: the queries up (same
//     sizes) and 4 * nq * count bytes of scores down.
//   Example (1 query of 32 tokens, 100k documents of 100 tokens, dim 128, bfloat16): 81.9 GFLOP, 2.66 GB of tiles.
//
// Accuracy. float32: each dot product is a float32 fused multiply-add chain over the dims in order, |error| <=
// gamma_dim * sum_i |q_i d_i| (gamma_n = n u / (1 - n u), u = 2^-24), like the CPU's. bfloat16: see shared_docs_kernel.
// Either way the maxima are then summed in float32 in a fixed order (16 rows by a butterfly, then m-tiles in order)
// that differs from the CPU's token order, so scores agree with it to rounding, not bit for bit.
//
// NaN, as the CPU's max (std::max(best, s) keeps best when s is NaN): a NaN dot product never wins a maximum (fmaxf
// returns its other operand), a query token whose every dot product with a document is NaN contributes -infinity,
// and the sum then follows IEEE arithmetic (-inf plus +inf is NaN). bfloat16 rounding keeps NaN and infinities, and
// rounds finite values above the largest bfloat16 to infinity.
#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "../common/row_topk.cuh"
#include "../common/util.cuh"
#include "tessera/half.h"

namespace tessera::cuda {
namespace {

constexpr unsigned kFullWarp = 0xFFFFFFFFu;
constexpr int kTileTokens = 8;   // a document tile: the n of m16n8k16
constexpr int kMTileRows = 16;   // a query m-tile: the m of m16n8k16
constexpr int kSlotMTiles = 2;   // m-tiles per warp: 32 query tokens
constexpr int kChunkDims = 32;   // bfloat16 dims per 16-byte lane piece (two k-steps of 16)
constexpr int kQuadDims = 4;     // float32 dims per float4
constexpr int kMaxWarps = 8;     // every kernel's largest block: 256 threads
constexpr int kFastChunks = 4;   // shared_docs_kernel holds up to 4 chunks (128 dims) of query fragments in registers

// shared_docs_kernel's ring: 3 stages of 2 tiles (12 KiB at dim 128), so a 1-warp block keeps 8 KiB of reads in
// flight and 16 of them fill an H100's shared memory; slot_kernel takes 4 tiles per step.
constexpr int kStages = 3;
constexpr int kPassTiles = 2;
constexpr int kSlotPassTiles = 4;

// Host-side sizes: documents are split into chunks of about kChunkBytes of tiles (a block's or warp's unit of work,
// small enough for ~10 waves on 100k documents), uploaded in pieces of kUploadBytes; a call scores its queries in
// batches whose partial scores and scores fit kScratchFloats, whose m-tiles fit kQueryBytes and kMaxBatchMTiles (a
// bound on the grid).
constexpr std::size_t kChunkBytes = std::size_t{128} << 10;
constexpr std::size_t kUploadBytes = std::size_t{32} << 20;
constexpr std::size_t kScratchFloats = std::size_t{64} << 20;
constexpr std::size_t kQueryBytes = std::size_t{64} << 20;
constexpr std::size_t kMaxBatchMTiles = 4096;
constexpr std::size_t kMaxDim = std::size_t{1} << 20;  // keeps the kernels' int offsets within a tile far from overflow

// ---- device: what every kernel shares ---------------------------------------------------------------------------

// The documents as the kernels see them. Chunks are runs of whole documents; tile_start[d] is document d's first
// tile (tile_start[count] the total).
struct DocTable {
  const std::int32_t* lengths;
  const std::int64_t* tile_start;
  const std::int32_t* chunk_doc;  // chunks + 1 entries
  int chunks;
  std::int64_t count;
};

struct ScoreArgs {
  DocTable docs;
  const void* doc_tiles;
  const void* query_tiles;         // slots * 2 m-tiles; an odd count is padded with a zero m-tile
  const std::int32_t* mtile_rows;  // real rows of each m-tile (0 for the padding one)
  int slots;                       // m-tile pairs
  int groups;                      // shared_docs_kernel: blocks (slot groups) per chunk
  int units;                       // 32-dim chunks (bfloat16) or float4 quads (float32) per token
  float* partial;                  // m-tiles x count
};

// Where a warp's finished documents go: its slot's two m-tiles' rows of the partial scores.
struct SlotOutput {
  float* partial;
  std::int64_t count;
  int mtile;    // the slot's first m-tile
  int rows[2];  // real query rows of each m-tile; 0: nothing to write
};

__device__ SlotOutput slot_output(const ScoreArgs& a, int slot) {
  SlotOutput out{a.partial, a.docs.count, 2 * slot, {0, 0}};
  if (slot < a.slots) {
    out.rows[0] = __ldg(a.mtile_rows + 2 * slot);
    out.rows[1] = __ldg(a.mtile_rows + 2 * slot + 1);
  }
  return out;
}

// One warp's walk through a chunk of documents, one tile at a time, in order; the state is the same in every lane.
class Walker {
 public:
  __device__ Walker(const DocTable& table, int chunk)
      : lengths_(table.lengths), doc_(__ldg(table.chunk_doc + chunk)), end_(__ldg(table.chunk_doc + chunk + 1)) {
    first_tile_ = __ldg(table.tile_start + doc_);
    end_tile_ = __ldg(table.tile_start + end_);
    begin(__ldg(lengths_ + doc_));
  }
  __device__ std::int64_t first_tile() const { return first_tile_; }
  __device__ std::int64_t end_tile() const { return end_tile_; }

  // Takes the next tile's dot products (acc[m][i]: the mma accumulator layout of m-tile m) into the running maxima;
  // after the document's last tile, writes its partial scores and moves to the next document.
  __device__ void fold(float (&acc)[kSlotMTiles][4], const SlotOutput& out, int lane) {
    if (tiles_left_ == 1) mask_padding(acc, lane);
#pragma unroll
    for (int m = 0; m < kSlotMTiles; ++m) {
      best_[m][0] = fmaxf(best_[m][0], fmaxf(acc[m][0], acc[m][1]));
      best_[m][1] = fmaxf(best_[m][1], fmaxf(acc[m][2], acc[m][3]));
    }
    if (--tiles_left_ > 0) return;
    finish(out, lane);
    if (++doc_ < end_) begin(next_length_);
  }

 private:
  __device__ void begin(int length) {
    tiles_left_ = (length + kTileTokens - 1) / kTileTokens;
    last_tokens_ = length - kTileTokens * (tiles_left_ - 1);
    next_length_ = doc_ + 1 < end_ ? __ldg(lengths_ + doc_ + 1) : 0;  // read now, used a document later
#pragma unroll
    for (int m = 0; m < kSlotMTiles; ++m) best_[m][0] = best_[m][1] = -INFINITY;
  }

  // The last tile's padding tokens (columns >= last_tokens_) must never be a maximum. A select, not arithmetic:
  // their dot products may be NaN (infinity times a zero pad).
  __device__ void mask_padding(float (&acc)[kSlotMTiles][4], int lane) const {
    const int column = 2 * (lane & 3);
#pragma unroll
    for (int m = 0; m < kSlotMTiles; ++m) {
      if (column >= last_tokens_) acc[m][0] = acc[m][2] = -INFINITY;
      if (column + 1 >= last_tokens_) acc[m][1] = acc[m][3] = -INFINITY;
    }
  }

  // Maxima over the quad's columns (lanes 4g .. 4g + 3 hold the same rows), then each m-tile's real rows summed over
  // the 8 row groups; lane 0 writes.
  __device__ void finish(const SlotOutput& out, int lane) const {
    const int g = lane >> 2;
#pragma unroll
    for (int m = 0; m < kSlotMTiles; ++m) {
      float upper = best_[m][0], lower = best_[m][1];
      upper = fmaxf(upper, __shfl_xor_sync(kFullWarp, upper, 1));
      upper = fmaxf(upper, __shfl_xor_sync(kFullWarp, upper, 2));
      lower = fmaxf(lower, __shfl_xor_sync(kFullWarp, lower, 1));
      lower = fmaxf(lower, __shfl_xor_sync(kFullWarp, lower, 2));
      float sum = (g < out.rows[m] ? upper : 0.0f) + (g + 8 < out.rows[m] ? lower : 0.0f);
      sum += __shfl_xor_sync(kFullWarp, sum, 4);
      sum += __shfl_xor_sync(kFullWarp, sum, 8);
      sum += __shfl_xor_sync(kFullWarp, sum, 16);
      if (lane == 0 && out.rows[m] > 0) out.partial[(out.mtile + m) * out.count + doc_] = sum;
    }
  }

  const std::int32_t* lengths_;
  int doc_, end_;
  std::int64_t first_tile_ = 0, end_tile_ = 0;
  int tiles_left_ = 0, last_tokens_ = 0, next_length_ = 0;
  float best_[kSlotMTiles][2];  // rows g and g + 8 of each m-tile, over this lane's columns so far
};

// ---- device: bfloat16 on the tensor cores -----------------------------------------------------------------------

// D += A B for a 16 x 16 bfloat16 A (row-major fragment), a 16 x 8 B (column-major), float32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&d)[4], std::uint32_t a0, std::uint32_t a1, std::uint32_t a2,
                                         std::uint32_t a3, std::uint32_t b0, std::uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One lane's 32 dims of an m-tile: dims 8t .. 8t + 7 of rows g (upper) and g + 8 (lower).
struct QueryChunk {
  uint4 upper, lower;
};

// The two k-steps of a 32-dim chunk. In a step, lane (g, t) supplies A[g][2t, 2t+1], A[g+8][2t, 2t+1],
// A[g][2t+8, 2t+9], A[g+8][2t+8, 2t+9] and B[2t, 2t+1][g], B[2t+8, 2t+9][g]: the same four k for A and B, so taking
// them from dims 8t + 0..3 (step 1) and 8t + 4..7 (step 2) of both sides pairs every dim of the chunk exactly once.
__device__ __forceinline__ void mma_chunk(float (&acc)[4], const QueryChunk& a, const uint4& b) {
  mma_bf16(acc, a.upper.x, a.lower.x, a.upper.y, a.lower.y, b.x, b.y);
  mma_bf16(acc, a.upper.z, a.lower.z, a.upper.w, a.lower.w, b.z, b.w);
}

// A slot's chunk c: m-tiles are [chunk][half][lane] pieces, 64 per chunk.
__device__ __forceinline__ QueryChunk query_chunk(const uint4* mtile, int c, int lane) {
  return {__ldg(mtile + c * 64 + lane), __ldg(mtile + c * 64 + 32 + lane)};
}

__device__ __forceinline__ void copy_async16(void* shared, const void* global) {
  const auto address = static_cast<std::uint32_t>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(address), "l"(__cvta_generic_to_global(global))
               : "memory");
}
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wait_copies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// The block copies tiles [first, min(first + kPassTiles, end)) into a ring stage, 16 bytes per thread per step.
__device__ void issue_pass(uint4* stage, const uint4* tiles, std::int64_t first, std::int64_t end, int tile_vecs) {
  const std::int64_t n = end - first;
  const int pieces = n <= 0 ? 0 : static_cast<int>(n < kPassTiles ? n : kPassTiles) * tile_vecs;
  const uint4* source = tiles + first * tile_vecs;
  for (int i = threadIdx.x; i < pieces; i += blockDim.x) copy_async16(stage + i, source + i);
  commit_copies();  // even when empty: wait_copies counts groups
}

// Error bound (bfloat16). Inputs are rounded to bfloat16 (8 significant bits, unit roundoff u = 2^-8), so each
// input is x (1 + e), |e| <= u, and a product of two carries (1 + u)^2 - 1 = 2^-7 + 2^-16 relative error at most; the
// product of two 8-bit significands is exact in float32. The tensor cores add the products into float32 accumulators
// but, unlike round-to-nearest (2^-24 per addition), align and truncate (Fasi et al., "Numerical behavior of NVIDIA
// tensor cores", 2021): take 2^-23 per addition. Recursive summation of n = dim products (the zero pads add exactly)
// then errs by at most g = n 2^-23 / (1 - n 2^-23) times the sum of the rounded products' magnitudes, itself at most
// (1 + 2^-7 + 2^-16) sum_i |q_i d_i|. Per dot product:
//   |error| <= (2^-7 + 2^-16 + g (1 + 2^-7 + 2^-16)) sum_i |q_i d_i| <= (2^-7 + 2^-16 + 1.01 dim 2^-23) sum_i |q_i d_i|
// (the last form for dim <= 16384). So the brief's (2^-7 + 2^-16 + dim 2^-24) holds only with round-to-nearest
// accumulation and dim small enough to hide the (1 + 2^-7) factor, and cuda_retrieval.h's 2^-7 is the leading term,
// exceeded only by inputs whose rounding errors all reach u with the same sign (random data stay far below it). A
// maximum over document tokens is then off by at most the larger of the bounds for the true best token and for the
// token the device found best: the device's maximum is at least its value of the true best (>= true best - its
// bound) and equals its value of the found token (<= that token's true value + its bound <= true best + its bound).
// A score is off by at most the sum over query tokens of those two bounds, plus float32 rounding of the sum.
template <int C>
__global__ void __launch_bounds__(kMaxWarps * 32, 2) shared_docs_kernel(const ScoreArgs a) {
  extern __shared__ uint4 ring[];  // kStages x kPassTiles tiles of 32 C pieces
  constexpr int kTileVecs = 32 * C;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int chunk = blockIdx.x / a.groups;
  const int slot = (blockIdx.x % a.groups) * static_cast<int>(blockDim.x >> 5) + warp;
  const auto* tiles = static_cast<const uint4*>(a.doc_tiles);

  Walker walker(a.docs, chunk);
  const std::int64_t first = walker.first_tile(), end = walker.end_tile();
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s)
    issue_pass(ring + s * kPassTiles * kTileVecs, tiles, first + s * kPassTiles, end, kTileVecs);

  // Warps past the last slot only help copy.
  const SlotOutput out = slot_output(a, slot);
  const bool active = out.rows[0] > 0;
  QueryChunk query[kSlotMTiles][C];
  if (active) {
    const auto* mtiles = static_cast<const uint4*>(a.query_tiles) + std::int64_t{2} * slot * 2 * kTileVecs;
#pragma unroll
    for (int m = 0; m < kSlotMTiles; ++m)
#pragma unroll
      for (int c = 0; c < C; ++c) query[m][c] = query_chunk(mtiles + m * 2 * kTileVecs, c, lane);
  }

  const int passes = static_cast<int>((end - first + kPassTiles - 1) / kPassTiles);
  for (int p = 0; p < passes; ++p) {
    wait_copies<kStages - 2>();  // this thread's pieces of pass p are in
    __syncthreads();             // everyone's are, and everyone is done with pass p - 1, whose stage is refilled next
    issue_pass(ring + (p + kStages - 1) % kStages * kPassTiles * kTileVecs, tiles,
               first + std::int64_t{p + kStages - 1} * kPassTiles, end, kTileVecs);
    if (!active) continue;
    const uint4* stage = ring + p % kStages * kPassTiles * kTileVecs;
    const int ntiles = static_cast<int>(min(std::int64_t{kPassTiles}, end - first - std::int64_t{p} * kPassTiles));
    float acc[kPassTiles][kSlotMTiles][4] = {};
#pragma unroll
    for (int c = 0; c < C; ++c)
#pragma unroll
      for (int j = 0; j < kPassTiles; ++j)
        if (j < ntiles) {
          const uint4 b = stage[j * kTileVecs + c * 32 + lane];
          mma_chunk(acc[j][0], query[0][c], b);
          mma_chunk(acc[j][1], query[1][c], b);
        }
#pragma unroll
    for (int j = 0; j < kPassTiles; ++j)
      if (j < ntiles) walker.fold(acc[j], out, lane);
  }
}

// ---- device: one slot per block, documents straight from device memory -------------------------------------------

// bfloat16 dims > 128: the fragments come from the query (L1-resident: one slot per block) chunk by chunk.
struct Bf16Math {
  using Vec = uint4;
  __host__ __device__ static int tile_vecs(int chunks) { return 32 * chunks; }  // 8 tokens x 64 bytes per chunk
  __device__ static void score(float (&acc)[kSlotPassTiles][kSlotMTiles][4], const uint4* query,
                               const uint4* tiles, int ntiles, int chunks, int lane) {
    const int tile_vecs = Bf16Math::tile_vecs(chunks), mtile_vecs = 2 * tile_vecs;
#pragma unroll 1  // unrolling spills: the 4 tiles' loads are the memory parallelism
    for (int c = 0; c < chunks; ++c) {
      const QueryChunk q0 = query_chunk(query, c, lane), q1 = query_chunk(query + mtile_vecs, c, lane);
#pragma unroll
      for (int j = 0; j < kSlotPassTiles; ++j)
        if (j < ntiles) {
          const uint4 b = __ldg(tiles + j * tile_vecs + c * 32 + lane);
          mma_chunk(acc[j][0], q0, b);
          mma_chunk(acc[j][1], q1, b);
        }
    }
  }
};

// float32 on the CUDA cores: per 4 dims, lane (g, t) loads rows g and g + 8 of both m-tiles and tokens 2t and 2t + 1
// of each tile, and adds their 4 x 2 products per tile to fused multiply-add chains in dim order.
struct F32Math {
  using Vec = float4;
  __host__ __device__ static int tile_vecs(int quads) { return kTileTokens * quads; }
  __device__ static float dot4(const float4& a, const float4& b, float sum) {
    return fmaf(a.w, b.w, fmaf(a.z, b.z, fmaf(a.y, b.y, fmaf(a.x, b.x, sum))));
  }
  __device__ static void score(float (&acc)[kSlotPassTiles][kSlotMTiles][4], const float4* query,
                               const float4* tiles, int ntiles, int quads, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const int tile_vecs = F32Math::tile_vecs(quads), mtile_vecs = kMTileRows * quads;
    for (int k = 0; k < quads; ++k) {
      float4 q[kSlotMTiles][2];
#pragma unroll
      for (int m = 0; m < kSlotMTiles; ++m) {
        q[m][0] = __ldg(query + m * mtile_vecs + k * kMTileRows + g);
        q[m][1] = __ldg(query + m * mtile_vecs + k * kMTileRows + g + 8);
      }
#pragma unroll
      for (int j = 0; j < kSlotPassTiles; ++j)
        if (j < ntiles) {
          const float4 d0 = __ldg(tiles + j * tile_vecs + k * kTileTokens + 2 * t);
          const float4 d1 = __ldg(tiles + j * tile_vecs + k * kTileTokens + 2 * t + 1);
#pragma unroll
          for (int m = 0; m < kSlotMTiles; ++m) {
            acc[j][m][0] = dot4(q[m][0], d0, acc[j][m][0]);
            acc[j][m][1] = dot4(q[m][0], d1, acc[j][m][1]);
            acc[j][m][2] = dot4(q[m][1], d0, acc[j][m][2]);
            acc[j][m][3] = dot4(q[m][1], d1, acc[j][m][3]);
          }
        }
    }
  }
};

// Block b: slot b % slots, chunks 8 (b / slots) .. + 7, one per warp (consecutive blocks share chunks: L2 reuse).
template <class Math>
__global__ void __launch_bounds__(kMaxWarps * 32, 2) slot_kernel(const ScoreArgs a) {
  using Vec = typename Math::Vec;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int slot = blockIdx.x % a.slots;
  const int chunk = blockIdx.x / a.slots * kMaxWarps + warp;
  if (chunk >= a.docs.chunks) return;
  const int tile_vecs = Math::tile_vecs(a.units);  // an m-tile is twice that
  const auto* tiles = static_cast<const Vec*>(a.doc_tiles);
  const auto* query = static_cast<const Vec*>(a.query_tiles) + std::int64_t{slot} * kSlotMTiles * 2 * tile_vecs;
  const SlotOutput out = slot_output(a, slot);
  Walker walker(a.docs, chunk);
  for (std::int64_t tile = walker.first_tile(); tile < walker.end_tile(); tile += kSlotPassTiles) {
    const int ntiles = static_cast<int>(min(std::int64_t{kSlotPassTiles}, walker.end_tile() - tile));
    float acc[kSlotPassTiles][kSlotMTiles][4] = {};
    Math::score(acc, query, tiles + tile * tile_vecs, ntiles, a.units, lane);
#pragma unroll
    for (int j = 0; j < kSlotPassTiles; ++j)
      if (j < ntiles) walker.fold(acc[j], out, lane);
  }
}

// scores[q][d] = query q's m-tiles' partial scores, summed in m-tile order.
__global__ void sum_partials_kernel(const float* partial, const std::int32_t* query_mtiles, std::int64_t count,
                                    std::int64_t n, float* scores) {
  const std::int64_t stride = std::int64_t{gridDim.x} * blockDim.x;
  for (std::int64_t i = std::int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += stride) {
    const std::int64_t q = i / count, d = i - q * count;
    const int first = __ldg(query_mtiles + q), last = __ldg(query_mtiles + q + 1);
    float sum = partial[first * count + d];
    for (int mt = first + 1; mt < last; ++mt) sum += partial[mt * count + d];
    scores[i] = sum;
  }
}

// ---- host: layouts ------------------------------------------------------------------------------------------------

// Where (row r of a tile of `rows` rows, dims i .. i + kRun - 1) go in a tile, i a multiple of kRun.
struct Bf16Layout {
  using Element = std::uint16_t;
  static constexpr std::size_t kRun = 8;
  static std::size_t padded_dim(std::size_t dim) { return ceil_div(dim, kChunkDims) * kChunkDims; }
  static std::size_t units(std::size_t padded) { return padded / kChunkDims; }
  static std::size_t offset(std::size_t r, std::size_t rows, std::size_t i) {
    const std::size_t chunk = i / kChunkDims, quarter = i % kChunkDims / kRun;
    const std::size_t halves = rows / kTileTokens, half = r / kTileTokens, g = r % kTileTokens;
    return ((chunk * halves + half) * 32 + 4 * g + quarter) * kRun;
  }
  static Element convert(float x) { return f32_to_bf16(x); }
};

struct F32Layout {
  using Element = float;
  static constexpr std::size_t kRun = kQuadDims;
  static std::size_t padded_dim(std::size_t dim) { return ceil_div(dim, kQuadDims) * kQuadDims; }
  static std::size_t units(std::size_t padded) { return padded / kQuadDims; }
  static std::size_t offset(std::size_t r, std::size_t rows, std::size_t i) { return (i / kRun * rows + r) * kRun; }
  static Element convert(float x) { return x; }
};

// Writes n <= rows token rows of dim floats into a zeroed tile of `rows` rows.
template <class Layout>
void pack_rows(const float* source, std::size_t n, std::size_t dim, std::size_t rows,
               typename Layout::Element* tile) {
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t i = 0; i < dim; i += Layout::kRun) {
      typename Layout::Element* out = tile + Layout::offset(r, rows, i);
      const std::size_t run = std::min(Layout::kRun, dim - i);
      for (std::size_t j = 0; j < run; ++j) out[j] = Layout::convert(source[r * dim + i + j]);
    }
}

std::size_t tiles_of(std::int32_t length, std::size_t rows) { return ceil_div(static_cast<std::size_t>(length), rows); }

Result invalid(std::string message) { return {Status::invalid_argument, std::move(message)}; }

// Each length must be positive: a cloud without tokens has no maximum.
Result check_lengths(const std::int32_t* lengths, std::size_t n, const char* what) {
  for (std::size_t i = 0; i < n; ++i)
    if (lengths[i] <= 0)
      return invalid(std::string("Chamfer scores: ") + what + " " + std::to_string(i) + " has " +
                     std::to_string(lengths[i]) + " tokens (at least 1 is needed)");
  return {};
}

// A call's queries [first, first + n) as m-tiles: query q's m-tiles begin at mtile_start[q - first].
struct QueryBatch {
  std::size_t first = 0, n = 0;
  std::vector<std::int32_t> mtile_start;
  std::size_t mtiles() const { return static_cast<std::size_t>(mtile_start.back()); }
  std::size_t slots() const { return ceil_div(mtiles(), kSlotMTiles); }
};

class MultiVectors final : public DeviceMultiVectors {
 public:
  MultiVectors(std::size_t dim, ChamferPrecision precision)
      : dim_(dim),
        precision_(precision),
        padded_dim_(precision == ChamferPrecision::bfloat16 ? Bf16Layout::padded_dim(dim)
                                                            : F32Layout::padded_dim(dim)) {}

  Result init(const float* tokens, const std::int32_t* lengths, std::size_t count) {
    if (Result r = stream_.create(); !r.ok()) return r;
    count_ = count;
    if (count == 0) return {};
    plan_chunks(lengths);
    if (Result r = upload_tables(lengths); !r.ok()) return r;
    Result r = precision_ == ChamferPrecision::bfloat16 ? upload_docs<Bf16Layout>(tokens, lengths)
                                                        : upload_docs<F32Layout>(tokens, lengths);
    if (r.ok() && uses_shared_docs()) r = prefer_shared_memory();
    if (!r.ok()) return r;
    count_bytes();
    return stream_.synchronize("uploading the Chamfer documents");
  }

  Result chamfer(const float* queries, const std::int32_t* query_lengths, std::size_t nq,
                 float* scores) noexcept override {
    return guarded([&]() -> Result {
      std::lock_guard lock(mutex_);
      if (nq > 0 && (!queries || !query_lengths)) return invalid("Chamfer scores: no queries or query lengths");
      if (nq > 0 && count_ > 0 && !scores) return invalid("Chamfer scores: no output");
      return score_queries(queries, query_lengths, nq, Output{scores, nullptr});
    });
  }

  Result chamfer_topk(const float* queries, const std::int32_t* query_lengths, std::size_t nq, const std::int32_t* ids,
                      std::size_t k, std::int32_t* out_ids, float* out_scores) noexcept override {
    return guarded([&]() -> Result {
      std::lock_guard lock(mutex_);
      if (k == 0 || k > kMaxDeviceK) return invalid("Chamfer top-k: k must be 1 to " + std::to_string(kMaxDeviceK));
      if (nq > 0 && (!queries || !query_lengths)) return invalid("Chamfer top-k: no queries or query lengths");
      if (nq > 0 && count_ > 0 && (!out_ids || !out_scores)) return invalid("Chamfer top-k: no output");
      const std::int32_t* device_ids = nullptr;
      if (ids && count_ > 0) {
        if (Result r = ids_.reserve(count_ * sizeof(std::int32_t), "the document ids"); !r.ok()) return r;
        if (Result r = upload(ids_.get(), ids, count_ * sizeof(std::int32_t)); !r.ok()) return r;
        device_ids = ids_.get<std::int32_t>();
      }
      const TopK topk{device_ids, k, out_ids, out_scores};
      return score_queries(queries, query_lengths, nq, Output{nullptr, &topk});
    });
  }

  std::size_t size() const noexcept override { return count_; }
  std::size_t dim() const noexcept override { return dim_; }
  std::size_t device_bytes() const noexcept override { return bytes_.load(std::memory_order_relaxed); }
  double last_kernel_ms() const noexcept override { return last_ms_.load(std::memory_order_relaxed); }

 private:
  // Where a batch's scores go: all of them to the host, or the device's top-k of each row.
  struct TopK {
    const std::int32_t* device_ids;  // nullptr: positions
    std::size_t k;
    std::int32_t* ids;
    float* scores;
  };
  struct Output {
    float* scores;
    const TopK* topk;
  };

  // Scores the queries batch by batch into `out`; last_kernel_ms covers the scoring kernels of every batch.
  Result score_queries(const float* queries, const std::int32_t* query_lengths, std::size_t nq, const Output& out) {
    if (Result r = check_lengths(query_lengths, nq, "query"); !r.ok()) return r;
    double kernel_ms = 0;
    Result r;
    const float* source = queries;
    for (std::size_t first = 0; r.ok() && count_ > 0 && first < nq;) {
      const QueryBatch batch = next_batch(query_lengths, nq, first);
      r = precision_ == ChamferPrecision::bfloat16 ? score_batch<Bf16Layout>(source, query_lengths, batch, out)
                                                   : score_batch<F32Layout>(source, query_lengths, batch, out);
      if (r.ok()) kernel_ms += timer_.elapsed_ms();
      for (std::size_t q = batch.first; q < batch.first + batch.n; ++q)
        source += static_cast<std::size_t>(query_lengths[q]) * dim_;
      first += batch.n;
    }
    count_bytes();
    last_ms_.store(kernel_ms, std::memory_order_relaxed);
    return r;
  }

  // Everything held, documents and scratch; kept in an atomic so that reading it never waits for a call.
  void count_bytes() {
    std::size_t bytes = 0;
    for (const DeviceMemory* m : {&tiles_, &lengths_, &tile_start_, &chunk_doc_, &queries_, &mtile_rows_,
                                  &query_mtiles_, &partial_, &scores_, &ids_})
      bytes += m->bytes();
    bytes_.store(bytes + topk_.device_bytes(), std::memory_order_relaxed);
  }

  std::size_t units() const {
    return precision_ == ChamferPrecision::bfloat16 ? Bf16Layout::units(padded_dim_) : F32Layout::units(padded_dim_);
  }
  std::size_t element_bytes() const { return precision_ == ChamferPrecision::bfloat16 ? 2 : 4; }
  std::size_t tile_bytes() const { return kTileTokens * padded_dim_ * element_bytes(); }
  std::size_t mtile_bytes() const { return kMTileRows * padded_dim_ * element_bytes(); }
  bool uses_shared_docs() const {
    return precision_ == ChamferPrecision::bfloat16 && units() <= static_cast<std::size_t>(kFastChunks);
  }

  // Chunks of whole documents with at least target tiles each (the last may have fewer), so at most target
  // documents: balanced work units whatever the lengths.
  void plan_chunks(const std::int32_t* lengths) {
    const std::size_t target = std::max<std::size_t>(kTileTokens, kChunkBytes / tile_bytes());
    tile_start_host_.assign(count_ + 1, 0);
    chunk_doc_host_.assign(1, 0);
    std::size_t in_chunk = 0;
    for (std::size_t d = 0; d < count_; ++d) {
      const std::size_t tiles = tiles_of(lengths[d], kTileTokens);
      tile_start_host_[d + 1] = tile_start_host_[d] + static_cast<std::int64_t>(tiles);
      in_chunk += tiles;
      if (in_chunk >= target || d + 1 == count_) {
        chunk_doc_host_.push_back(static_cast<std::int32_t>(d + 1));
        in_chunk = 0;
      }
    }
  }

  Result upload_tables(const std::int32_t* lengths) {
    Result r = lengths_.allocate(count_ * sizeof(std::int32_t), "the Chamfer document lengths");
    if (r.ok()) r = tile_start_.allocate(tile_start_host_.size() * sizeof(std::int64_t), "the Chamfer tile offsets");
    if (r.ok()) r = chunk_doc_.allocate(chunk_doc_host_.size() * sizeof(std::int32_t), "the Chamfer chunks");
    if (r.ok()) r = tiles_.allocate(static_cast<std::size_t>(tile_start_host_.back()) * tile_bytes(),
                                    "the Chamfer documents");
    if (r.ok()) r = upload(lengths_.get(), lengths, count_ * sizeof(std::int32_t));
    if (r.ok()) r = upload(tile_start_.get(), tile_start_host_.data(), tile_start_host_.size() * sizeof(std::int64_t));
    if (r.ok()) r = upload(chunk_doc_.get(), chunk_doc_host_.data(), chunk_doc_host_.size() * sizeof(std::int32_t));
    return r;
  }

  // Pageable copies: cudaMemcpyAsync returns once the host buffer has been read, so it may be refilled at once.
  Result upload(void* device, const void* host, std::size_t bytes) {
    return cuda_check(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream_.get()), "Chamfer upload");
  }

  // Documents packed on the host (rounded once to bfloat16 there), in pieces of whole documents of about
  // kUploadBytes of tiles.
  template <class Layout>
  Result upload_docs(const float* tokens, const std::int32_t* lengths) {
    const std::size_t tile_elements = kTileTokens * padded_dim_;
    std::vector<typename Layout::Element> staging;
    const float* source = tokens;
    for (std::size_t first = 0; first < count_;) {
      std::size_t end = first + 1;
      while (end < count_ && static_cast<std::size_t>(tile_start_host_[end + 1] - tile_start_host_[first]) *
                                     tile_bytes() <= kUploadBytes)
        ++end;
      const auto base = static_cast<std::size_t>(tile_start_host_[first]);
      staging.assign((static_cast<std::size_t>(tile_start_host_[end]) - base) * tile_elements, {});
      for (std::size_t d = first; d < end; ++d) {
        const auto n = static_cast<std::size_t>(lengths[d]);
        for (std::size_t t = 0; t < n; t += kTileTokens) {
          const std::size_t tile = static_cast<std::size_t>(tile_start_host_[d]) - base + t / kTileTokens;
          pack_rows<Layout>(source + t * dim_, std::min<std::size_t>(kTileTokens, n - t), dim_, kTileTokens,
                            staging.data() + tile * tile_elements);
        }
        source += n * dim_;
      }
      if (Result r = upload(tiles_.get<char>() + base * tile_bytes(), staging.data(),
                            staging.size() * sizeof(typename Layout::Element));
          !r.ok())
        return r;
      first = end;
    }
    return {};
  }

  // The shared-docs kernel's blocks are small: ask for the largest shared-memory carveout so 16 fit on an SM.
  Result prefer_shared_memory() const {
    return cuda_check(cudaFuncSetAttribute(shared_docs_kernel_for(units()),
                                           cudaFuncAttributePreferredSharedMemoryCarveout,
                                           cudaSharedmemCarveoutMaxShared),
                      "the Chamfer kernel's shared-memory carveout");
  }

  using Kernel = void (*)(ScoreArgs);
  static Kernel shared_docs_kernel_for(std::size_t chunks) {
    constexpr Kernel kernels[kFastChunks] = {shared_docs_kernel<1>, shared_docs_kernel<2>, shared_docs_kernel<3>,
                                             shared_docs_kernel<4>};
    return kernels[chunks - 1];
  }

  // Queries from `first` while the batch's m-tiles, partial scores and scores stay within the scratch bounds (at
  // least one query, whatever its size).
  QueryBatch next_batch(const std::int32_t* lengths, std::size_t nq, std::size_t first) const {
    QueryBatch batch;
    batch.first = first;
    batch.mtile_start.push_back(0);
    std::size_t mtiles = 0;
    for (std::size_t q = first; q < nq; ++q) {
      const std::size_t next = mtiles + tiles_of(lengths[q], kMTileRows);
      const std::size_t padded = ceil_div(next, kSlotMTiles) * kSlotMTiles;
      const bool fits = next <= kMaxBatchMTiles && padded * mtile_bytes() <= kQueryBytes &&
                        (padded + q - first + 1) * count_ <= kScratchFloats;
      if (!fits && q > first) break;
      mtiles = next;
      batch.mtile_start.push_back(static_cast<std::int32_t>(mtiles));
      ++batch.n;
    }
    return batch;
  }

  template <class Layout>
  Result score_batch(const float* queries, const std::int32_t* lengths, const QueryBatch& batch, const Output& out) {
    const std::size_t padded_mtiles = batch.slots() * kSlotMTiles;
    const std::size_t mtile_elements = kMTileRows * padded_dim_;
    std::vector<typename Layout::Element> packed(padded_mtiles * mtile_elements);
    std::vector<std::int32_t> rows(padded_mtiles, 0);
    const float* source = queries;
    for (std::size_t i = 0; i < batch.n; ++i) {
      const auto n = static_cast<std::size_t>(lengths[batch.first + i]);
      for (std::size_t t = 0; t < n; t += kMTileRows) {
        const std::size_t mtile = static_cast<std::size_t>(batch.mtile_start[i]) + t / kMTileRows;
        rows[mtile] = static_cast<std::int32_t>(std::min<std::size_t>(kMTileRows, n - t));
        pack_rows<Layout>(source + t * dim_, static_cast<std::size_t>(rows[mtile]), dim_, kMTileRows,
                          packed.data() + mtile * mtile_elements);
      }
      source += n * dim_;
    }
    const std::size_t packed_bytes = packed.size() * sizeof(typename Layout::Element);
    Result r = queries_.reserve(packed_bytes, "the Chamfer queries");
    if (r.ok()) r = mtile_rows_.reserve(rows.size() * sizeof(std::int32_t), "the Chamfer query tiles");
    if (r.ok()) r = query_mtiles_.reserve(batch.mtile_start.size() * sizeof(std::int32_t), "the Chamfer query tiles");
    if (r.ok()) r = partial_.reserve(batch.mtiles() * count_ * sizeof(float), "the Chamfer partial scores");
    if (r.ok()) r = scores_.reserve(batch.n * count_ * sizeof(float), "the Chamfer scores");
    if (r.ok()) r = upload(queries_.get(), packed.data(), packed_bytes);
    if (r.ok()) r = upload(mtile_rows_.get(), rows.data(), rows.size() * sizeof(std::int32_t));
    if (r.ok())
      r = upload(query_mtiles_.get(), batch.mtile_start.data(), batch.mtile_start.size() * sizeof(std::int32_t));
    if (r.ok()) r = timer_.start(stream_.get());
    if (r.ok()) r = launch_scores(batch);
    if (r.ok()) r = launch_sum(batch);
    if (r.ok()) r = timer_.stop(stream_.get());
    if (r.ok() && out.topk) {  // the top-k kernels run on the device scores and synchronize the stream
      const std::size_t kk = std::min(out.topk->k, count_);
      return topk_.run(stream_.get(), scores_.get<float>(), batch.n, count_, out.topk->device_ids, out.topk->k,
                       out.topk->ids + batch.first * kk, out.topk->scores + batch.first * kk);
    }
    if (r.ok())
      r = cuda_check(cudaMemcpyAsync(out.scores + batch.first * count_, scores_.get(), batch.n * count_ * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream_.get()),
                     "copying the Chamfer scores to the host");
    if (!r.ok()) return r;
    return stream_.synchronize("Chamfer scores");  // a kernel's fault surfaces here, as this call's error
  }

  ScoreArgs score_args(const QueryBatch& batch) const {
    const DocTable docs{lengths_.get<std::int32_t>(), tile_start_.get<std::int64_t>(), chunk_doc_.get<std::int32_t>(),
                        chunks(), static_cast<std::int64_t>(count_)};
    return {docs,
            tiles_.get(),
            queries_.get(),
            mtile_rows_.get<std::int32_t>(),
            static_cast<int>(batch.slots()),
            0,
            static_cast<int>(units()),
            partial_.get<float>()};
  }
  int chunks() const { return static_cast<int>(chunk_doc_host_.size() - 1); }

  Result launch_scores(const QueryBatch& batch) {
    ScoreArgs args = score_args(batch);
    const auto slots = static_cast<std::size_t>(args.slots), chunks = static_cast<std::size_t>(args.docs.chunks);
    if (!uses_shared_docs()) {
      const std::size_t blocks = ceil_div(chunks, kMaxWarps) * slots;
      if (blocks > INT_MAX) return invalid("Chamfer scores: too many documents times query tokens for one launch");
      if (precision_ == ChamferPrecision::bfloat16)
        slot_kernel<Bf16Math><<<static_cast<unsigned>(blocks), kMaxWarps * 32, 0, stream_.get()>>>(args);
      else
        slot_kernel<F32Math><<<static_cast<unsigned>(blocks), kMaxWarps * 32, 0, stream_.get()>>>(args);
      return launched("the Chamfer kernel");
    }
    // Slots in groups of at most 8 (one block each), as even as possible: 9 slots are 5 + 4 warps, not 8 + 1.
    const std::size_t groups = ceil_div(slots, kMaxWarps), warps = ceil_div(slots, groups);
    const std::size_t blocks = chunks * groups;
    if (blocks > INT_MAX) return invalid("Chamfer scores: too many documents times query tokens for one launch");
    args.groups = static_cast<int>(groups);
    const std::size_t shared = kStages * kPassTiles * tile_bytes();
    shared_docs_kernel_for(units())<<<static_cast<unsigned>(blocks), static_cast<unsigned>(warps * 32), shared,
                                      stream_.get()>>>(args);
    return launched("the Chamfer tensor-core kernel");
  }

  Result launch_sum(const QueryBatch& batch) {
    constexpr int kThreads = 256;
    const std::size_t n = batch.n * count_;
    const std::size_t blocks = std::min<std::size_t>(ceil_div(n, kThreads), std::size_t{8} * multiprocessor_count());
    sum_partials_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream_.get()>>>(
        partial_.get<float>(), query_mtiles_.get<std::int32_t>(), static_cast<std::int64_t>(count_),
        static_cast<std::int64_t>(n), scores_.get<float>());
    return launched("the Chamfer sum kernel");
  }

  const std::size_t dim_;
  const ChamferPrecision precision_;
  const std::size_t padded_dim_;
  std::size_t count_ = 0;
  std::vector<std::int64_t> tile_start_host_;
  std::vector<std::int32_t> chunk_doc_host_;

  std::mutex mutex_;
  Stream stream_;
  KernelTimer timer_;
  std::atomic<std::size_t> bytes_{0};
  std::atomic<double> last_ms_{0};  // read by last_kernel_ms() without waiting for a call in progress
  DeviceMemory tiles_, lengths_, tile_start_, chunk_doc_;                     // the documents
  DeviceMemory queries_, mtile_rows_, query_mtiles_, partial_, scores_;      // per-call scratch, reused
  DeviceMemory ids_;                                                          // top-k: the caller's ids
  RowTopK topk_;
};

}  // namespace

Result DeviceMultiVectors::create(const float* tokens, const std::int32_t* lengths, std::size_t count,
                                  std::size_t dim, ChamferPrecision precision,
                                  std::unique_ptr<DeviceMultiVectors>* out) noexcept {
  return guarded([&]() -> Result {
    if (!out) return invalid("DeviceMultiVectors::create: no output");
    if (dim == 0) return invalid("Chamfer documents: dim must be at least 1");
    if (dim > kMaxDim) return invalid("Chamfer documents: dim above " + std::to_string(kMaxDim) + " on the device");
    if (precision != ChamferPrecision::float32 && precision != ChamferPrecision::bfloat16)
      return invalid("Chamfer documents: unknown precision");
    if (count > static_cast<std::size_t>(INT_MAX)) return invalid("Chamfer documents: more than 2^31 - 1 documents");
    if (count > 0 && (!tokens || !lengths)) return invalid("Chamfer documents: no tokens or lengths");
    if (Result r = check_lengths(lengths, count, "document"); !r.ok()) return r;
    auto store = std::make_unique<MultiVectors>(dim, precision);
    if (Result r = store->init(tokens, lengths, count); !r.ok()) return r;
    *out = std::move(store);
    return {};
  });
}

}  // namespace tessera::cuda
