// FDE encoding on the device: the algorithm of tessera/fde.h, computed as the CPU path (native/src/fde/encode.cpp)
// computes it, operation for operation: bit for bit the AVX2 and AVX-512 paths, whose products are fused as here.
//
// A batch goes in chunks of consecutive clouds (tokens plus per-token scratch, and blocks, within kChunkBudget), each
// chunk in two or three kernels on the object's stream:
//   1. simhash_kernel: every token's partition in every repetition. A tiled product of the tokens with the SimHash
//      matrix whose dot products are fused multiply-add chains over the coordinates in order, as the CPU's are, so
//      the signs, hence the partitions, are the CPU's. Stored repetition-major (the next kernel reads them along
//      a cloud).
//   2. repetition_kernel: each thread block takes (cloud, repetition) items in turn. It counts the tokens of each
//      partition, sorts the cloud's tokens by partition (stably), finds each empty partition's nearest token
//      (documents) and writes the repetition's block. Every block element is owned by one thread, which sums its
//      partition's tokens in token order: deterministic, and rounded where the CPU rounds.
//   3. final_sketch_kernel (final_dim > 0): each output coordinate sums the block entries mapped to it, ascending.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "../common/util.cuh"
#include "tessera/fde.h"

namespace tessera::cuda {
namespace {

using fde::Projection;

constexpr int kThreads = 256;  // every kernel's block
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullWarp = 0xFFFFFFFFu;

// Device bytes per chunk, for the tokens with their partitions and sorted orders, and again for the clouds' blocks.
constexpr std::size_t kChunkBudget = std::size_t{256} << 20;
// A (cloud, repetition)'s partition table lives in shared memory up to this size (k <= 11 for documents, 12 for
// queries); larger ones in device memory, one per block of the grid, the grid small enough that they all fit
// kGlobalTableBudget.
constexpr std::size_t kSharedTableBytes = 32 * 1024;
constexpr std::size_t kGlobalTableBudget = std::size_t{64} << 20;
constexpr int kBlocksPerMultiprocessor = 8;  // repetition_kernel's grid: up to 2048 threads per multiprocessor

// simhash_kernel's tile: 64 tokens x 64 SimHash columns (whole repetitions), 16 coordinates at a time; a 16 x 16
// grid of threads, each with 4 x 4 dot products (tokens 16 apart, columns 16 apart).
constexpr int kHashTokens = 64, kHashColumns = 64, kHashDepth = 16, kHashLanes = 16, kHashMicro = 4;
static_assert(kHashLanes * kHashLanes == kThreads && kHashLanes * kHashMicro == kHashTokens &&
              kHashLanes * kHashMicro == kHashColumns, "simhash_kernel's thread grid covers its tile");

// The dense projection's partition sums: 16 partitions x 64 coordinates at a time in shared memory.
constexpr int kDenseGroup = 16, kDenseDepth = 64;

constexpr std::uint32_t kNoPartition = 0xFFFFFFFFu;               // a lane without a token
constexpr std::uint64_t kOneBitFarther = std::uint64_t{1} << 32;  // nearest keys: (Hamming distance << 32 | token)
constexpr std::uint64_t kNoToken = std::uint64_t{0xFFFF} << 32;   // farther than any pattern, even after 16 steps

// ---- shared by the kernels ---------------------------------------------------------------------------------------

// The partition whose Gray code is a sign pattern (prefix XOR from the most significant bit), as the CPU decodes.
__device__ std::uint32_t gray_decode(std::uint32_t bits) {
  for (std::uint32_t shift = 1; shift < 32; shift <<= 1) bits ^= bits >> shift;
  return bits;
}

__device__ std::uint32_t sign_pattern(std::uint32_t partition) { return partition ^ (partition >> 1); }

__device__ std::uint64_t least(std::uint64_t a, std::uint64_t b) { return a < b ? a : b; }

// ---- 1. SimHash --------------------------------------------------------------------------------------------------

struct HashShape {
  const float* tokens;          // n x dim
  const float* simhash;         // dim x (repetitions k): column r k + j is g_j of repetition r
  std::uint16_t* partitions;    // repetitions x n
  std::size_t n;
  int dim, k, repetitions;
  int repetitions_per_tile;     // whole repetitions in kHashColumns columns
};

__global__ void __launch_bounds__(kThreads) simhash_kernel(HashShape s) {
  __shared__ float x[kHashDepth][kHashTokens + 1];  // transposed; the + 1 spreads the transposing stores over banks
  __shared__ float g[kHashDepth][kHashColumns];
  __shared__ std::uint8_t positive[kHashTokens][kHashColumns + 4];  // + 4: consecutive tokens' rows on distinct banks
  const int tx = threadIdx.x % kHashLanes, ty = threadIdx.x / kHashLanes;
  const std::size_t token0 = static_cast<std::size_t>(blockIdx.x) * kHashTokens;
  const int repetition0 = static_cast<int>(blockIdx.y) * s.repetitions_per_tile;
  const int repetitions = min(s.repetitions_per_tile, s.repetitions - repetition0);
  const int columns = repetitions * s.k;
  const std::size_t rk = static_cast<std::size_t>(s.repetitions) * s.k;
  const float* tile_columns = s.simhash + static_cast<std::size_t>(repetition0) * s.k;

  // Each value a fused multiply-add chain from 0 over the coordinates in ascending order: the CPU's gemm.
  float dot[kHashMicro][kHashMicro] = {};
  for (int i0 = 0; i0 < s.dim; i0 += kHashDepth) {
    const int depth = min(kHashDepth, s.dim - i0);
    for (int e = threadIdx.x; e < kHashTokens * kHashDepth; e += kThreads) {
      const int t = e / kHashDepth, i = e % kHashDepth;
      const std::size_t token = token0 + t;
      x[i][t] = token < s.n && i < depth ? __ldg(&s.tokens[token * s.dim + i0 + i]) : 0.0f;
    }
    for (int e = threadIdx.x; e < kHashDepth * kHashColumns; e += kThreads) {
      const int i = e / kHashColumns, c = e % kHashColumns;
      g[i][c] = c < columns && i < depth ? __ldg(&tile_columns[static_cast<std::size_t>(i0 + i) * rk + c]) : 0.0f;
    }
    __syncthreads();
    for (int i = 0; i < depth; ++i)
#pragma unroll
      for (int a = 0; a < kHashMicro; ++a)
#pragma unroll
        for (int b = 0; b < kHashMicro; ++b)
          dot[a][b] = __fmaf_rn(x[i][ty + kHashLanes * a], g[i][tx + kHashLanes * b], dot[a][b]);
    __syncthreads();
  }
#pragma unroll
  for (int a = 0; a < kHashMicro; ++a)
#pragma unroll
    for (int b = 0; b < kHashMicro; ++b) positive[ty + kHashLanes * a][tx + kHashLanes * b] = dot[a][b] > 0.0f;  // NaN: 0
  __syncthreads();

  for (int e = threadIdx.x; e < kHashTokens * repetitions; e += kThreads) {
    const int t = e % kHashTokens, r = e / kHashTokens;
    const std::size_t token = token0 + t;
    if (token >= s.n) continue;
    std::uint32_t pattern = 0;  // bit j of repetition r, j = 0 the most significant
    for (int j = 0; j < s.k; ++j) pattern = pattern << 1 | positive[t][r * s.k + j];
    s.partitions[static_cast<std::size_t>(repetition0 + r) * s.n + token] = static_cast<std::uint16_t>(gray_decode(pattern));
  }
}

// ---- 2. partitions and blocks ------------------------------------------------------------------------------------

struct RepetitionShape {
  const float* tokens;              // the chunk's tokens, n x dim
  const std::size_t* offsets;       // the chunk's clouds: first tokens (indices in the whole batch), then the end
  std::size_t token_base;           // the chunk's first token in the whole batch
  std::size_t n;                    // tokens in the chunk: the row length of partitions and order
  std::size_t clouds;
  const std::uint16_t* partitions;  // repetitions x n; null when k = 0 (a single partition)
  std::uint32_t* order;             // repetitions x n: each cloud's token indices sorted by partition
  float* blocks;                    // clouds x block_dim
  std::uint8_t* tables;             // a table per resident block; null: tables in shared memory
  std::size_t block_dim;
  std::uint32_t partition_count, p;
  int dim, k, repetitions;
  bool document, fill;
  Projection projection;
  const std::uint32_t* sketch_start;       // count-sketch: repetitions x (p + 1) ranges of sketch_coordinate
  const std::uint32_t* sketch_coordinate;  // repetitions x dim input coordinates, grouped by output coordinate
  const float* sketch_sign;                // repetitions x dim
  const float* dense;                      // dense: repetitions x dim x p
};

// One (cloud, repetition)'s partitions, indexed by partition (nearest: by sign pattern).
struct Table {
  std::uint64_t* nearest;  // fill only: the least (Hamming distance << 32 | token) from the pattern to a token
  std::uint32_t* count;    // tokens per partition
  std::uint32_t* start;    // where the partition's tokens start in the sorted order
};

__host__ __device__ std::size_t table_bytes(std::uint32_t partitions, bool fill) {
  return static_cast<std::size_t>(partitions) * (2 * sizeof(std::uint32_t) + (fill ? sizeof(std::uint64_t) : 0));
}

__device__ Table table_at(std::uint8_t* memory, std::uint32_t partitions, bool fill) {
  auto* counts = reinterpret_cast<std::uint32_t*>(memory + (fill ? partitions * sizeof(std::uint64_t) : 0));
  return {fill ? reinterpret_cast<std::uint64_t*>(memory) : nullptr, counts, counts + partitions};
}

// One (cloud, repetition): its tokens, their partitions, their sorted order and its block.
struct Item {
  const float* tokens;              // n x dim
  const std::uint16_t* partitions;  // null: all in partition 0
  std::uint32_t* order;
  float* block;                     // partition_count x p
  std::uint32_t n;
  int repetition;

  __device__ std::uint32_t partition(std::uint32_t t) const { return partitions ? __ldg(&partitions[t]) : 0u; }
};

__device__ Item item_at(const RepetitionShape& s, std::size_t index) {
  const std::size_t cloud = index / s.repetitions;
  const int r = static_cast<int>(index % s.repetitions);
  const std::size_t first = s.offsets[cloud] - s.token_base;
  const std::size_t row = static_cast<std::size_t>(r) * s.n + first;
  return {s.tokens + first * s.dim,
          s.partitions ? s.partitions + row : nullptr,
          s.order + row,
          s.blocks + cloud * s.block_dim + static_cast<std::size_t>(r) * s.partition_count * s.p,
          static_cast<std::uint32_t>(s.offsets[cloud + 1] - s.offsets[cloud]),
          r};
}

__device__ void count_partitions(const Table& table, const Item& item, std::uint32_t partitions) {
  for (std::uint32_t g = threadIdx.x; g < partitions; g += kThreads) table.count[g] = 0;
  __syncthreads();
  for (std::uint32_t t = threadIdx.x; t < item.n; t += kThreads) atomicAdd(&table.count[item.partition(t)], 1u);
  __syncthreads();
}

// table.start[g] = count[0] + ... + count[g]: the end of partition g in the sorted order, which place_tokens moves
// to its start. Each thread sums a run of consecutive partitions; the runs' sums are scanned across the block.
__device__ void partition_ends(const Table& table, std::uint32_t partitions, std::uint32_t* warp_sums) {
  const std::uint32_t run = (partitions + kThreads - 1) / kThreads;
  const std::uint32_t begin = min(partitions, threadIdx.x * run), end = min(partitions, begin + run);
  std::uint32_t sum = 0;
  for (std::uint32_t g = begin; g < end; ++g) sum += table.count[g];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  std::uint32_t inclusive = sum;
  for (int d = 1; d < 32; d *= 2) {
    const std::uint32_t below = __shfl_up_sync(kFullWarp, inclusive, d);
    if (lane >= d) inclusive += below;
  }
  if (lane == 31) warp_sums[warp] = inclusive;
  __syncthreads();
  std::uint32_t running = inclusive - sum;
  for (int w = 0; w < warp; ++w) running += warp_sums[w];
  for (std::uint32_t g = begin; g < end; ++g) {
    running += table.count[g];
    table.start[g] = running;
  }
  __syncthreads();
}

// Warp 0 sorts the cloud's token indices by partition, stably (ascending within a partition, so a partition's
// first entry is its lowest token and its sums run in token order). Tokens are taken from the last backwards,
// 32 at a time; each goes just below its partition's cursor, after the later tokens of the same partition among
// the 32. The cursors start at the partitions' ends and finish at their starts.
__device__ void place_tokens(const Table& table, const Item& item) {
  const int lane = threadIdx.x % 32;
  const std::uint32_t later_lanes = ~((2u << lane) - 1);  // lanes above this one (none for lane 31: 2u << 31 = 0)
  for (std::int64_t base = (item.n - 1) / 32 * 32; base >= 0; base -= 32) {
    const std::uint32_t t = static_cast<std::uint32_t>(base) + lane;
    const bool real = t < item.n;
    const std::uint32_t g = real ? item.partition(t) : kNoPartition;
    const unsigned peers = __match_any_sync(kFullWarp, g);
    const unsigned later_peers = peers & later_lanes;
    if (real) item.order[table.start[g] - 1 - __popc(later_peers)] = t;
    __syncwarp();
    if (real && later_peers == 0) table.start[g] -= __popc(peers);  // the last of its peers moves the cursor
    __syncwarp();
  }
}

// table.nearest[pattern] = the least (Hamming distance, token) from the pattern to the cloud's tokens: among the
// nearest, the lowest token, as the CPU's nearest_tokens chooses. A Hamming distance transform: occupied patterns
// start at (0, their partition's first token), the others far; pass j relaxes every pattern from its neighbour
// across bit j. Distances add up bit by bit, so after the k passes every pattern has met every token at its exact
// distance (O(2^k k), whatever the token count).
__device__ void find_nearest(const Table& table, const Item& item, std::uint32_t partitions, int k) {
  for (std::uint32_t g = threadIdx.x; g < partitions; g += kThreads)
    table.nearest[sign_pattern(g)] = table.count[g] ? item.order[table.start[g]] : kNoToken;
  __syncthreads();
  for (int j = 0; j < k; ++j) {
    const std::uint32_t bit = 1u << j;
    for (std::uint32_t q = threadIdx.x; q < partitions / 2; q += kThreads) {
      const std::uint32_t low = (q >> j) << (j + 1) | (q & (bit - 1)), high = low | bit;
      const std::uint64_t a = table.nearest[low], b = table.nearest[high];
      table.nearest[low] = least(a, b + kOneBitFarther);
      table.nearest[high] = least(b, a + kOneBitFarther);
    }
    __syncthreads();
  }
}

// What partition g's block row sums and the factor applied to the sum: a non-empty partition's tokens in ascending
// order (documents: times the float reciprocal of the count, as the CPU averages; 1 keeps a single token as it
// is), an empty partition's nearest token when filling (projected, not averaged), or none (zeros).
struct Members {
  const std::uint32_t* sorted;  // null: the single token `nearest` (size 1) or none (size 0)
  std::uint32_t size;
  std::uint32_t nearest;
  float scale;

  __device__ std::uint32_t operator[](std::uint32_t i) const { return sorted ? sorted[i] : nearest; }
};

__device__ Members members_of(const RepetitionShape& s, const Table& table, const Item& item, std::uint32_t g) {
  const std::uint32_t count = table.count[g];
  if (count > 0) {
    const float scale = s.document && count > 1 ? __frcp_rn(__uint2float_rn(count)) : 1.0f;
    return {item.order + table.start[g], count, 0, scale};
  }
  if (s.fill) return {nullptr, 1, static_cast<std::uint32_t>(table.nearest[sign_pattern(g)]), 1.0f};
  return {nullptr, 0, 0, 1.0f};
}

// Repetition r's count-sketch: per output coordinate, the input coordinates that map to it, with their signs.
struct SketchRows {
  const std::uint32_t* start;
  const std::uint32_t* coordinate;
  const float* sign;

  // Coordinate c of token x projected: its inputs' signed sum in ascending input order (the CPU's sketch_columns).
  __device__ float project(const float* x, std::uint32_t c) const {
    const std::uint32_t end = __ldg(&start[c + 1]);
    float y = 0.0f;
    for (std::uint32_t e = __ldg(&start[c]); e < end; ++e) y = __fmaf_rn(__ldg(&x[__ldg(&coordinate[e])]), __ldg(&sign[e]), y);
    return y;
  }
};

// Count-sketch and identity: a thread per block element (partition g, coordinate c) adds up the projected
// coordinate of its partition's tokens in token order (the CPU's accumulate order), then applies the factor.
__device__ void write_summed_block(const RepetitionShape& s, const Table& table, const Item& item) {
  const bool sketch = s.projection == Projection::countsketch;
  const std::size_t r = item.repetition;
  const SketchRows rows = sketch ? SketchRows{s.sketch_start + r * (s.p + 1), s.sketch_coordinate + r * s.dim,
                                              s.sketch_sign + r * s.dim}
                                 : SketchRows{};
  const std::uint32_t elements = s.partition_count * s.p;
  for (std::uint32_t e = threadIdx.x; e < elements; e += kThreads) {
    const std::uint32_t g = e / s.p, c = e % s.p;
    const Members members = members_of(s, table, item, g);
    float sum = 0.0f;
    for (std::uint32_t i = 0; i < members.size; ++i) {
      const float* x = item.tokens + static_cast<std::size_t>(members[i]) * s.dim;
      sum = __fadd_rn(sum, sketch ? rows.project(x, c) : __ldg(&x[c]));
    }
    item.block[e] = __fmul_rn(sum, members.scale);
  }
}

// Dense: the partitions' token sums first (token order; kDenseGroup partitions x kDenseDepth coordinates at a
// time in shared memory), then each block element a fused multiply-add chain over the coordinates in order,
// carried from slice to slice in the block itself: the CPU's sum_and_project.
__device__ void write_projected_block(const RepetitionShape& s, const Table& table, const Item& item,
                                      float (*sums)[kDenseDepth]) {
  const float* projection = s.dense + static_cast<std::size_t>(item.repetition) * s.dim * s.p;
  for (std::uint32_t g0 = 0; g0 < s.partition_count; g0 += kDenseGroup) {
    for (int i0 = 0; i0 < s.dim; i0 += kDenseDepth) {
      const int depth = min(kDenseDepth, s.dim - i0);
      for (int e = threadIdx.x; e < kDenseGroup * kDenseDepth; e += kThreads) {
        const std::uint32_t g = g0 + e / kDenseDepth;
        const int i = e % kDenseDepth;
        float sum = 0.0f;
        if (g < s.partition_count && i < depth) {
          const Members members = members_of(s, table, item, g);
          for (std::uint32_t m = 0; m < members.size; ++m)
            sum = __fadd_rn(sum, __ldg(&item.tokens[static_cast<std::size_t>(members[m]) * s.dim + i0 + i]));
        }
        sums[e / kDenseDepth][i] = sum;
      }
      __syncthreads();
      const bool last_slice = i0 + depth == s.dim;
      for (std::uint32_t e = threadIdx.x; e < kDenseGroup * s.p; e += kThreads) {
        const std::uint32_t g = g0 + e / s.p, c = e % s.p;
        if (g >= s.partition_count) break;  // e ascends, and g with it
        const Members members = members_of(s, table, item, g);
        float& out = item.block[static_cast<std::size_t>(g) * s.p + c];
        if (members.size == 0) {
          if (i0 == 0) out = 0.0f;
          continue;
        }
        float acc = i0 == 0 ? 0.0f : out;
        for (int i = 0; i < depth; ++i)
          acc = __fmaf_rn(sums[e / s.p][i], __ldg(&projection[static_cast<std::size_t>(i0 + i) * s.p + c]), acc);
        out = last_slice ? __fmul_rn(acc, members.scale) : acc;
      }
      __syncthreads();
    }
  }
}

// Each block takes (cloud, repetition) items in turn, its partition table in shared memory or, for large k, in its
// own slice of device memory (so the grid is bounded by the number of such slices).
__global__ void __launch_bounds__(kThreads) repetition_kernel(RepetitionShape s) {
  extern __shared__ std::uint64_t shared_table[];
  __shared__ std::uint32_t warp_sums[kWarps];
  __shared__ float dense_sums[kDenseGroup][kDenseDepth];
  std::uint8_t* memory = s.tables ? s.tables + blockIdx.x * table_bytes(s.partition_count, s.fill)
                                  : reinterpret_cast<std::uint8_t*>(shared_table);
  const Table table = table_at(memory, s.partition_count, s.fill);
  const std::size_t items = s.clouds * s.repetitions;
  for (std::size_t index = blockIdx.x; index < items; index += gridDim.x) {
    const Item item = item_at(s, index);
    count_partitions(table, item, s.partition_count);
    partition_ends(table, s.partition_count, warp_sums);
    if (threadIdx.x < 32) place_tokens(table, item);
    __syncthreads();
    if (s.fill) find_nearest(table, item, s.partition_count, s.k);
    if (s.projection == Projection::dense) write_projected_block(s, table, item, dense_sums);
    else write_summed_block(s, table, item);
    __syncthreads();  // the next item reuses the table
  }
}

// ---- 3. the final count-sketch -----------------------------------------------------------------------------------

struct FinalShape {
  const float* blocks;         // clouds x block_dim
  const std::uint32_t* start;  // final_dim + 1 ranges of entry
  const std::uint32_t* entry;  // block coordinates grouped by output coordinate, ascending within a group
  const float* sign;
  std::size_t block_dim, final_dim, clouds;
  float* out;                  // clouds x final_dim
};

// out[b] = the sum of sign x block entry over the entries mapped to b, ascending: the CPU's order for each b.
__global__ void __launch_bounds__(kThreads) final_sketch_kernel(FinalShape s) {
  const std::size_t total = s.clouds * s.final_dim;
  for (std::size_t e = static_cast<std::size_t>(blockIdx.x) * kThreads + threadIdx.x; e < total;
       e += static_cast<std::size_t>(gridDim.x) * kThreads) {
    const std::size_t cloud = e / s.final_dim, b = e % s.final_dim;
    const float* block = s.blocks + cloud * s.block_dim;
    const std::uint32_t end = __ldg(&s.start[b + 1]);
    float sum = 0.0f;
    for (std::uint32_t i = __ldg(&s.start[b]); i < end; ++i)
      sum = __fadd_rn(sum, __fmul_rn(__ldg(&s.sign[i]), block[__ldg(&s.entry[i])]));
    s.out[e] = sum;
  }
}

// ---- host side ---------------------------------------------------------------------------------------------------

// The count-sketch's one ±1 per input coordinate (per repetition), grouped by output coordinate exactly as the CPU's
// derive() groups it: start[c]..start[c + 1] index the input coordinates, ascending, that go to output coordinate
// c. The column is a row's first non-zero (the last column when it has none), its sign that entry's.
struct CountSketch {
  std::vector<std::uint32_t> start, coordinate;
  std::vector<float> sign;
};

CountSketch group_countsketch(const fde::Config& c, const fde::Matrices& m) {
  const std::size_t p = c.p();
  CountSketch out;
  out.start.assign(c.repetitions * (p + 1), 0);
  out.coordinate.resize(c.repetitions * c.dim);
  out.sign.resize(c.repetitions * c.dim);
  std::vector<std::uint32_t> column(c.dim), next(p);
  for (std::size_t r = 0; r < c.repetitions; ++r) {
    std::uint32_t* start = &out.start[r * (p + 1)];
    const float* rows = &m.projection[r * c.dim * p];
    for (std::size_t i = 0; i < c.dim; ++i) {
      std::size_t col = 0;
      while (col + 1 < p && rows[i * p + col] == 0.0f) ++col;
      column[i] = static_cast<std::uint32_t>(col);
      ++start[col + 1];
    }
    for (std::size_t col = 0; col < p; ++col) start[col + 1] += start[col];
    std::copy(start, start + p, next.begin());
    for (std::size_t i = 0; i < c.dim; ++i) {
      const std::size_t e = r * c.dim + next[column[i]]++;
      out.coordinate[e] = static_cast<std::uint32_t>(i);
      out.sign[e] = rows[i * p + column[i]] < 0.0f ? -1.0f : 1.0f;
    }
  }
  return out;
}

// The final count-sketch grouped by output coordinate: start[b]..start[b + 1] index the block coordinates,
// ascending, that add into coordinate b, with their signs.
struct FinalSketch {
  std::vector<std::uint32_t> start, entry;
  std::vector<float> sign;
};

FinalSketch group_final_sketch(const fde::Config& c, const fde::Matrices& m) {
  const std::size_t n = c.block_dim();
  FinalSketch out;
  out.start.assign(c.final_dim + 1, 0);
  out.entry.resize(n);
  out.sign.resize(n);
  for (std::size_t t = 0; t < n; ++t) ++out.start[static_cast<std::size_t>(m.final_bucket[t]) + 1];
  for (std::size_t b = 0; b < c.final_dim; ++b) out.start[b + 1] += out.start[b];
  std::vector<std::uint32_t> next(out.start.begin(), out.start.end() - 1);
  for (std::size_t t = 0; t < n; ++t) {
    const std::uint32_t e = next[static_cast<std::size_t>(m.final_bucket[t])]++;
    out.entry[e] = static_cast<std::uint32_t>(t);
    out.sign[e] = m.final_sign[t];
  }
  return out;
}

// Consecutive clouds encoded together: at least one, however large.
struct Chunk {
  std::size_t first_cloud, clouds, first_token, tokens;
};

class DeviceFdeEncoderImpl final : public DeviceFdeEncoder {
 public:
  Result init(const fde::Config& config, const fde::Matrices& matrices) {
    c_ = config;
    if (Result r = stream_.create(); !r.ok()) return r;
    // The derived arrays stay alive until the stream has copied them.
    const CountSketch sketch = c_.projection == Projection::countsketch ? group_countsketch(c_, matrices) : CountSketch{};
    const FinalSketch final_sketch = c_.final_dim ? group_final_sketch(c_, matrices) : FinalSketch{};
    Result r = upload(simhash_, matrices.simhash, "the SimHash matrix");
    if (r.ok()) r = upload(sketch_start_, sketch.start, "the count-sketch");
    if (r.ok()) r = upload(sketch_coordinate_, sketch.coordinate, "the count-sketch");
    if (r.ok()) r = upload(sketch_sign_, sketch.sign, "the count-sketch");
    if (r.ok() && c_.projection == Projection::dense) r = upload(dense_, matrices.projection, "the dense projection");
    if (r.ok()) r = upload(final_start_, final_sketch.start, "the final projection");
    if (r.ok()) r = upload(final_entry_, final_sketch.entry, "the final projection");
    if (r.ok()) r = upload(final_sign_, final_sketch.sign, "the final projection");
    account();
    const Result synced = stream_.synchronize("uploading the FDE matrices");
    return r.ok() ? synced : r;
  }

  Result encode(const float* tokens, const std::int32_t* lengths, std::size_t count, bool is_document,
                float* out) noexcept override {
    return guarded([&]() -> Result {
      if (count == 0) return {};
      if (!tokens || !lengths || !out) return {Status::invalid_argument, "FDE encode: missing tokens, lengths or output"};
      std::vector<std::size_t> offsets(count + 1, 0);
      for (std::size_t i = 0; i < count; ++i) {
        if (lengths[i] <= 0)
          return {Status::invalid_argument, "FDE encode: cloud " + std::to_string(i) + " has no tokens (an empty cloud has no encoding)"};
        offsets[i + 1] = offsets[i] + static_cast<std::size_t>(lengths[i]);
      }
      const bool fill = is_document && c_.fill_empty && c_.simhash_bits > 0;
      std::lock_guard lock(mutex_);
      const std::vector<Chunk> chunks = plan_chunks(offsets);
      double kernel_ms = 0;
      Result r = prepare(chunks, offsets, fill);
      for (std::size_t i = 0; r.ok() && i < chunks.size(); ++i) {
        r = encode_chunk(chunks[i], tokens, is_document, fill, out);
        // Chunk by chunk (the copy back into pageable memory waits for the kernels anyway): a kernel's fault
        // surfaces here, the timer's events are complete, and after a failure nothing queued outlives the call.
        const Result synced = stream_.synchronize("FDE encoding");
        if (r.ok()) r = synced;
        if (r.ok()) kernel_ms += timer_.elapsed_ms();
      }
      last_ms_.store(kernel_ms, std::memory_order_relaxed);
      return r;
    });
  }

  std::size_t device_bytes() const noexcept override { return bytes_.load(std::memory_order_relaxed); }
  double last_kernel_ms() const noexcept override { return last_ms_.load(std::memory_order_relaxed); }

 private:
  template <class T>
  Result upload(DeviceMemory& to, const std::vector<T>& from, const char* what) {
    const std::size_t bytes = from.size() * sizeof(T);
    if (Result r = to.allocate(bytes, what); !r.ok()) return r;
    if (bytes == 0) return {};
    return cuda_check(cudaMemcpyAsync(to.get(), from.data(), bytes, cudaMemcpyHostToDevice, stream_.get()), what);
  }

  // Recorded after every allocation, so device_bytes() never waits for a call in progress.
  void account() {
    std::size_t total = 0;
    for (const DeviceMemory* m : {&simhash_, &sketch_start_, &sketch_coordinate_, &sketch_sign_, &dense_, &final_start_,
                                  &final_entry_, &final_sign_, &offsets_, &tokens_, &partitions_, &order_, &blocks_,
                                  &sketched_, &tables_})
      total += m->bytes();
    bytes_.store(total, std::memory_order_relaxed);
  }

  // Chunks whose tokens with their partition ids and sorted positions, and whose blocks (and final sketches), each
  // fit kChunkBudget.
  std::vector<Chunk> plan_chunks(const std::vector<std::size_t>& offsets) const {
    const std::size_t token_bytes = c_.dim * sizeof(float) +
        c_.repetitions * (sizeof(std::uint32_t) + (c_.simhash_bits ? sizeof(std::uint16_t) : 0));
    const std::size_t cloud_bytes = (c_.block_dim() + c_.final_dim) * sizeof(float);
    const std::size_t count = offsets.size() - 1;
    std::vector<Chunk> chunks;
    for (std::size_t first = 0; first < count;) {
      std::size_t end = first + 1;
      while (end < count && (offsets[end + 1] - offsets[first]) * token_bytes <= kChunkBudget &&
             (end + 1 - first) * cloud_bytes <= kChunkBudget)
        ++end;
      chunks.push_back({first, end - first, offsets[first], offsets[end] - offsets[first]});
      first = end;
    }
    return chunks;
  }

  // repetition_kernel's blocks: enough to fill the device, and with tables in device memory few enough that the
  // tables stay within kGlobalTableBudget.
  static std::size_t repetition_blocks(std::size_t items, std::size_t table) {
    std::size_t blocks = static_cast<std::size_t>(multiprocessor_count()) * kBlocksPerMultiprocessor;
    if (table > kSharedTableBytes) blocks = std::min(blocks, std::max<std::size_t>(1, kGlobalTableBudget / table));
    return std::min(blocks, items);
  }

  // Scratch for the largest chunk, reserved before anything is queued (a reserve that grows frees the old block,
  // which queued work must not be using), then the clouds' token offsets.
  Result prepare(const std::vector<Chunk>& chunks, const std::vector<std::size_t>& offsets, bool fill) {
    std::size_t tokens = 0, clouds = 0;
    for (const Chunk& chunk : chunks) {
      tokens = std::max(tokens, chunk.tokens);
      clouds = std::max(clouds, chunk.clouds);
    }
    const std::size_t repetitions = c_.repetitions;
    const std::size_t table = table_bytes(static_cast<std::uint32_t>(c_.partitions()), fill);
    Result r = offsets_.reserve(offsets.size() * sizeof(std::size_t), "the FDE token offsets");
    if (r.ok()) r = tokens_.reserve(tokens * c_.dim * sizeof(float), "the FDE tokens");
    if (r.ok() && c_.simhash_bits > 0)
      r = partitions_.reserve(repetitions * tokens * sizeof(std::uint16_t), "the tokens' FDE partitions");
    if (r.ok()) r = order_.reserve(repetitions * tokens * sizeof(std::uint32_t), "the tokens sorted by FDE partition");
    if (r.ok()) r = blocks_.reserve(clouds * c_.block_dim() * sizeof(float), "the FDE blocks");
    if (r.ok() && c_.final_dim) r = sketched_.reserve(clouds * c_.final_dim * sizeof(float), "the final FDE projections");
    if (r.ok() && table > kSharedTableBytes)
      r = tables_.reserve(repetition_blocks(clouds * repetitions, table) * table, "the FDE partition tables");
    account();
    if (!r.ok()) return r;
    return cuda_check(cudaMemcpyAsync(offsets_.get(), offsets.data(), offsets.size() * sizeof(std::size_t),
                                      cudaMemcpyHostToDevice, stream_.get()),
                      "copying the FDE token offsets");
  }

  Result encode_chunk(const Chunk& chunk, const float* tokens, bool document, bool fill, float* out) {
    if (Result r = cuda_check(cudaMemcpyAsync(tokens_.get(), tokens + chunk.first_token * c_.dim,
                                              chunk.tokens * c_.dim * sizeof(float), cudaMemcpyHostToDevice, stream_.get()),
                              "copying the FDE tokens to the device");
        !r.ok())
      return r;
    if (Result r = timer_.start(stream_.get()); !r.ok()) return r;
    if (c_.simhash_bits > 0)
      if (Result r = hash(chunk); !r.ok()) return r;
    if (Result r = write_blocks(chunk, document, fill); !r.ok()) return r;
    const float* result = blocks_.get<float>();
    if (c_.final_dim) {
      if (Result r = final_sketch(chunk); !r.ok()) return r;
      result = sketched_.get<float>();
    }
    if (Result r = timer_.stop(stream_.get()); !r.ok()) return r;
    const std::size_t out_dim = c_.output_dim();
    return cuda_check(cudaMemcpyAsync(out + chunk.first_cloud * out_dim, result, chunk.clouds * out_dim * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream_.get()),
                      "copying the FDEs to the host");
  }

  Result hash(const Chunk& chunk) {
    const int k = static_cast<int>(c_.simhash_bits);
    const int per_tile = std::max(1, kHashColumns / k);
    const HashShape shape{tokens_.get<float>(), simhash_.get<float>(), partitions_.get<std::uint16_t>(), chunk.tokens,
                          static_cast<int>(c_.dim), k, static_cast<int>(c_.repetitions), per_tile};
    const dim3 grid(static_cast<unsigned>(ceil_div(chunk.tokens, kHashTokens)),
                    static_cast<unsigned>(ceil_div(c_.repetitions, static_cast<std::size_t>(per_tile))));
    simhash_kernel<<<grid, kThreads, 0, stream_.get()>>>(shape);
    return launched("the FDE SimHash kernel");
  }

  Result write_blocks(const Chunk& chunk, bool document, bool fill) {
    RepetitionShape s{};
    s.tokens = tokens_.get<float>();
    s.offsets = offsets_.get<std::size_t>() + chunk.first_cloud;
    s.token_base = chunk.first_token;
    s.n = chunk.tokens;
    s.clouds = chunk.clouds;
    s.partitions = c_.simhash_bits > 0 ? partitions_.get<std::uint16_t>() : nullptr;
    s.order = order_.get<std::uint32_t>();
    s.blocks = blocks_.get<float>();
    s.block_dim = c_.block_dim();
    s.partition_count = static_cast<std::uint32_t>(c_.partitions());
    s.p = static_cast<std::uint32_t>(c_.p());
    s.dim = static_cast<int>(c_.dim);
    s.k = static_cast<int>(c_.simhash_bits);
    s.repetitions = static_cast<int>(c_.repetitions);
    s.document = document;
    s.fill = fill;
    s.projection = c_.projection;
    s.sketch_start = sketch_start_.get<std::uint32_t>();
    s.sketch_coordinate = sketch_coordinate_.get<std::uint32_t>();
    s.sketch_sign = sketch_sign_.get<float>();
    s.dense = dense_.get<float>();
    const std::size_t table = table_bytes(s.partition_count, fill);
    const bool in_shared = table <= kSharedTableBytes;
    s.tables = in_shared ? nullptr : tables_.get<std::uint8_t>();
    const auto blocks = static_cast<unsigned>(repetition_blocks(chunk.clouds * c_.repetitions, table));
    repetition_kernel<<<blocks, kThreads, in_shared ? table : 0, stream_.get()>>>(s);
    return launched("the FDE partition kernel");
  }

  Result final_sketch(const Chunk& chunk) {
    const FinalShape shape{blocks_.get<float>(), final_start_.get<std::uint32_t>(), final_entry_.get<std::uint32_t>(),
                           final_sign_.get<float>(), c_.block_dim(), c_.final_dim, chunk.clouds, sketched_.get<float>()};
    const std::size_t blocks = std::min(ceil_div(chunk.clouds * c_.final_dim, kThreads),
                                        static_cast<std::size_t>(multiprocessor_count()) * 32);
    final_sketch_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream_.get()>>>(shape);
    return launched("the FDE final projection kernel");
  }

  fde::Config c_;
  std::mutex mutex_;
  Stream stream_;
  KernelTimer timer_;
  std::atomic<double> last_ms_{0};  // read by last_kernel_ms() without waiting for a call in progress
  DeviceMemory simhash_, sketch_start_, sketch_coordinate_, sketch_sign_, dense_, final_start_, final_entry_,
      final_sign_;                                                                // the matrices
  DeviceMemory offsets_, tokens_, partitions_, order_, blocks_, sketched_, tables_;  // per call, reused
  std::atomic<std::size_t> bytes_{0};
};

}  // namespace

Result DeviceFdeEncoder::create(const fde::Config& config, const fde::Matrices& matrices,
                                std::unique_ptr<DeviceFdeEncoder>* out) noexcept {
  return guarded([&]() -> Result {
    if (!out) return {Status::invalid_argument, "DeviceFdeEncoder::create: no output"};
    if (!fde::valid(config)) return {Status::invalid_argument, "invalid FDE configuration"};
    if (!fde::matches(config, matrices))
      return {Status::invalid_argument, "the FDE matrices do not have the sizes the configuration needs"};
    auto encoder = std::make_unique<DeviceFdeEncoderImpl>();
    if (Result r = encoder->init(config, matrices); !r.ok()) return r;
    *out = std::move(encoder);
    return {};
  });
}

}  // namespace tessera::cuda
