// Exact attention on the device: FlashAttention-2's forward pass (Dao 2023) on the tensor cores, for f16 and bf16
// data, with the semantics of the CPU's attention::attend (tessera/attention.h: layouts, grouped heads, bottom-right
// alignment, causal / window / global-token / anchor / segment / key-length masks, scale, temperature, LSE).
//
// Data. q, k and v go to the device with every row (one token of one head) padded with zeros to kDim elements, the
// kernel's head size: 64, 128, 192 or 256, the smallest that holds both head_dim and head_dim_v. Zero columns add
// exact zeros to q.k and produce zero output columns that are never copied back, so padding changes no result and
// the kernels need no column bounds. The output comes back the same way, the LSE as is.
//
// Kernel (one block = 4 warps = one tile of kBlockM query rows of one (batch, head set); see Decoding for head
// sets). Each warp owns kRowsPerWarp consecutive rows (one or two 16-row m-tiles). The queries stay in shared memory;
// key and value tiles of kBlockN keys pass through one shared buffer each, loaded with cp.async while the other is in
// use:
//   wait for K(t); barrier; start loading V(t);
//   S = Q K(t)^T (mma.sync m16n8k16, float32 accumulators; fragments by ldmatrix);
//   mask S when the tile is only partly visible; online softmax in registers (FlashAttention-2: unnormalised O);
//   wait for V(t); barrier; start loading K(t + 1);
//   O += P V(t), P rounded to the data's type (its accumulator layout is the next product's A-fragment layout).
// so each load overlaps the other product and the softmax. Shared rows are 16-byte chunks XOR-swizzled by row, so
// ldmatrix reads and cp.async writes are bank-conflict free. Shared memory per block: (kBlockM + 2 kBlockN) kDim
// 16-bit words (32, 64, 72 and 96 KiB for the four sizes).
//
// Instantiations (x f16, bf16), all with 64-key tiles:
//   kDim 64, 128: 128 queries (2 m-tiles per warp): the tuned head sizes. Two m-tiles per warp let each K and V
//             fragment read from shared memory feed two products, halving shared-memory traffic per FLOP; the
//             accumulators (O 64 or 128 floats, S 64) fit the 255 registers without spilling (128-key tiles, as
//             FlashAttention-2 uses for 64, spill).
//   kDim 192, 256: 64 queries (1 m-tile per warp): the general path for every other head size (the O accumulators
//             of two m-tiles would not fit in registers); sizes up to 128 pad into the tuned kernels.
//   kDim 64, 128 with at most 64 rows per head set (seq_q x pack <= 64: decoding): 64 queries, 1 m-tile per warp.
//             With 16 rows or fewer only warp 0 computes, one m-tile where the 128-query tile's warp 0 has two.
//
// Masks and block skipping. Every query row i (position p = i + n - seq_q, n its batch's valid keys) sees the keys
// [lo, hi) and [0, global) (row_keys, the CPU's bounds). Over consecutive rows lo and hi never decrease, the rows
// that see no interval come first, and each nonempty row's hi is at least the next row's lo (p + 1 >= lo(p + 1)),
// so the rows' intervals cover one interval with no gaps: a block visits exactly the key tiles that meet it or
// [0, max global), i.e. the tiles in which some query of the block sees some key. Inside the loop each warp votes
// per tile: a warp none of whose rows sees a key of the tile skips both products; a warp all of whose rows see the
// whole tile skips the element mask; only the others mask (a causal diagonal, a window's edges, segment borders, the
// last keys). A Λ mask (4 global tokens + a 4096-token causal window) costs a block the window's 65 or 66 tiles plus
// tile 0: at 16k tokens, 7487 block-tiles per head where a causal pass takes 16512 and a dense one 32768.
// Blocks are numbered heaviest first: the last query tiles (the longest causal rows) of every head are dispatched
// before the earlier ones, so short blocks fill the tail of the grid. A warp none of whose rows is a query (the
// block's last tile) computes nothing; it still loads its share of every tile.
//
// Decoding (seq_q below a query tile: one new token, or a few, against a long KV cache) gets three changes:
//   - Head sets. When seq_q < kBlockM, the `group` query heads that share a KV head (grouped-query attention) form
//     one head set of seq_q x group rows, position-major (row r: position r / group of head r % group), so one block
//     reads each K and V tile once for all of them instead of once per head; otherwise every query head is its own
//     set (pack = 1). A tile's rows still hold nondecreasing consecutive positions: the masks' argument holds.
//   - Short tiles: the 64-query configurations above when a set's rows fit in one.
//   - Split KV (Flash-Decoding). When the grid (query tiles x batch x head sets) is below one wave of resident
//     blocks (occupancy x multiprocessors), each block's visited key tiles, in visiting order, are cut into S
//     near-equal contiguous chunks, one block each (blockIdx.y), with S from choose_splits (the wave count times the
//     chunk length plus one tile of fixed cost, minimised; chunks of at least 4 tiles): the grid grows S-fold, to
//     about one wave. A split block writes its rows normalised in float32 with their LSE in base 2
//     to scratch; combine_splits then merges the S partial states per row by the log-sum-exp rule of
//     attention::merge_states (a chunk in which the row sees no key has LSE -inf and weight 0; a row that sees no
//     key at all gets zeros and LSE -inf, as in one pass), rounds to the data type and writes the LSE. Both kernels
//     run between the timer's events. Each chunk's softmax has its own maximum, so P's rounding and the summation
//     order differ from one pass, with the same error bounds.
//
// Scores. q.k on the tensor cores: exact products of the 16-bit values, summed in float32. The softmax runs in base
// 2 with c = |scale| log2(e) / temperature applied by one fused multiply-add per score (p = 2^(s c - m c), m the
// running row maximum of the raw products); a negative scale negates the queries (exact), a zero scale zeroes them
// (then c = 1: every score is 0, as the CPU's). Rows with no visible key give zeros and LSE -infinity; the LSE is
// (m c + log2 l) ln 2, with m c rounded to float32 once per maximum (online_softmax: so l does not drift). Results
// differ from the CPU's float32 path by P's rounding to 16 bits before P V (as in FlashAttention) and by summation
// order.
//
// FLOPs, for the caller's rates: 4 * batch * heads_q * seq_q * visible_keys * head_dim, visible_keys the mean keys a
// query sees (seq_k without a mask, about seq_k / 2 causal, about the window with a window); padding and masked-out
// entries of partly visible tiles are computed but not counted.
//
// Device buffers (context.flash): [0] q, [1] k, [2] v, [3] out (padded rows), [4] lse, [5] key lengths then
// segment offsets (int32); when split, [6] the partial outputs (S x batch x heads_q x seq_q rows of kDim floats) and
// [7] their LSEs (float32, base 2).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "context.cuh"
#include "tessera/memory.h"

namespace tessera::cuda {
namespace {

using attention::DType;
using attention::Layout;
using detail::AttentionContext;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr unsigned kFullWarp = 0xFFFFFFFFu;
constexpr std::size_t kMaxSequence = std::size_t{1} << 24;  // the CPU's limit: positions are exact int32 values
constexpr int kMaxWindow = 1 << 25;  // |p - j| < 2^25 for all positions, so a wider window is the same as this one
constexpr std::size_t kMinChunkTiles = 4;  // key tiles per chunk of a split block, at least (see choose_splits)
constexpr std::size_t kMaxSplits = 256;    // chunks per block, at most: the combine reads them one by one

// A kernel's tile sizes: kDim the padded head size (q, k and v rows), kRowsPerWarp 16 or 32 (m-tiles of 16 rows),
// kBlockN keys per tile.
template <int Dim, int RowsPerWarp, int BlockN>
struct Config {
  static constexpr int kDim = Dim, kRowsPerWarp = RowsPerWarp, kBlockN = BlockN;
  static constexpr int kMTiles = RowsPerWarp / 16;
  static constexpr int kBlockM = kWarps * RowsPerWarp;
  static constexpr int kSTiles = BlockN / 8;  // n8 tiles of a row of scores
  static constexpr int kOTiles = Dim / 8;     // n8 tiles of a row of outputs
  static constexpr std::size_t kSharedBytes = std::size_t{kBlockM + 2 * BlockN} * Dim * sizeof(std::uint16_t);
  static_assert(Dim % 64 == 0, "rows are whole groups of 8 swizzled 16-byte chunks");
};
using Dim64 = Config<64, 32, 64>;
using Dim128 = Config<128, 32, 64>;
using Dim64Short = Config<64, 16, 64>;
using Dim128Short = Config<128, 16, 64>;
using Dim192 = Config<192, 16, 64>;
using Dim256 = Config<256, 16, 64>;

struct Bf16 {
  static constexpr bool kBf16 = true;
};
struct F16 {
  static constexpr bool kBf16 = false;
};

struct Strides {
  long long batch, head, token;  // elements of the padded device rows
};

struct Params {
  const std::uint16_t* q;
  const std::uint16_t* k;
  const std::uint16_t* v;
  std::uint16_t* out;
  float* lse;                       // null: not wanted
  Strides qs, ks, vs, os;           // k and v share a layout but not their head counts with q
  const std::int32_t* key_lengths;  // null: seq_k keys in every batch
  const std::int32_t* segments;     // null: no segments; else segment_count + 1 offsets
  int segment_count;
  int heads_q, group, seq_q, seq_k;
  int pack;       // query heads per head set: group (the query heads of one KV head; see the header) or 1
  int rows;       // query rows per head set: seq_q x pack
  int head_sets;  // heads_q / pack
  int query_tiles, batch_sets;  // the grid: query_tiles x batch_sets (batch x head_sets) blocks, x splits
  int splits;     // 1: each block writes out and lse; else each handles one chunk of its key tiles (blockIdx.y)
  long long partial_rows;  // batch x heads_q x seq_q: the rows of one split's partial results
  float* partial_out;      // [splits][partial_rows][kDim], normalised, rows in the LSE's order; splits > 1 only
  float* partial_lse;      // [splits][partial_rows], base 2
  int window;                    // 0: none; else min(window, kMaxWindow)
  int global_tokens;             // global tokens, at least 1 with the anchor (the anchor is key 0)
  bool causal;
  int query_sign;    // 1: queries as given; -1: negated (a negative scale); 0: zeroed (a zero scale)
  float score_log2;  // c: a raw product times c is the score in base 2
};

// ---- PTX: one instruction per function ---------------------------------------------------------------------------

// D += A B, A a 16 x 16 row-major fragment, B a 16 x 8 column-major one, D float32 (PTX ISA "mma.m16n8k16").
__device__ __forceinline__ void mma_bf16(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                         std::uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void mma_f16(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                        std::uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 matrices of 16-bit words; lane l gives the shared address of row l % 8 of matrix l / 8 and receives
// words 2 (l % 4) and 2 (l % 4) + 1 of row l / 4 of each.
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], std::uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// The same, transposed: lane l receives column l / 4, rows 2 (l % 4) and 2 (l % 4) + 1, of each matrix.
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], std::uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}

// 16 bytes from device to shared memory, asynchronously; zeros instead when !valid (no byte is read).
__device__ __forceinline__ void copy_async16(std::uint32_t address, const void* global, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(address), "l"(__cvta_generic_to_global(global)),
               "r"(valid ? 16 : 0)
               : "memory");
}

__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;" ::: "memory"); }

// Waits until at most N of this thread's committed copy groups are still in flight.
template <int N>
__device__ __forceinline__ void wait_copies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// Two floats rounded to nearest even into one word of two 16-bit values, lo in the low half.
__device__ __forceinline__ std::uint32_t pack_bf16(float lo, float hi) {
  std::uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

__device__ __forceinline__ std::uint32_t pack_f16(float lo, float hi) {
  std::uint32_t r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// 2^x, about 2 ulp; results below 2^-126 flush to zero (exp2f without fast math adds a denormal fix-up around the
// same instruction, per score).
__device__ __forceinline__ float exp2_approx(float x) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}

template <class T>
__device__ __forceinline__ void mma(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1) {
  if constexpr (T::kBf16)
    mma_bf16(d, a, b0, b1);
  else
    mma_f16(d, a, b0, b1);
}

template <class T>
__device__ __forceinline__ std::uint32_t pack(float lo, float hi) {
  if constexpr (T::kBf16)
    return pack_bf16(lo, hi);
  else
    return pack_f16(lo, hi);
}

// ---- masks -------------------------------------------------------------------------------------------------------

// The keys one query row sees: [lo, hi) and [0, global) (tessera/attention.h; the CPU's bounds, in int32).
struct RowKeys {
  int lo, hi, global;
};

__device__ RowKeys row_keys(const Params& p, int b, int i) {
  const int length = p.key_lengths ? p.key_lengths[b] : p.seq_k;
  const int position = i + length - p.seq_q;  // bottom-right: the queries are the last seq_q of the valid keys
  int lo = 0, hi = length;
  if (p.causal) hi = min(hi, position + 1);
  if (p.window > 0) {
    lo = max(lo, position - p.window + 1);
    if (!p.causal) hi = min(hi, position + p.window);
  }
  if (p.segments) {
    if (position < 0) {
      hi = lo;
    } else {  // the segment [offsets[first], offsets[last]) holding the position (< length <= seq_k, the last offset)
      int first = 0, last = p.segment_count;
      while (last - first > 1) {
        const int middle = (first + last) / 2;
        if (p.segments[middle] <= position)
          first = middle;
        else
          last = middle;
      }
      lo = max(lo, p.segments[first]);
      hi = min(hi, p.segments[last]);
    }
  }
  int global = p.global_tokens;
  if (p.causal) global = min(global, position + 1);
  global = max(0, min(global, length));
  return {lo, max(lo, hi), global};
}

__device__ __forceinline__ bool sees_any(const RowKeys& r, int j0, int j1) {
  return max(r.lo, j0) < min(r.hi, j1) || r.global > j0;
}

__device__ __forceinline__ bool sees_all(const RowKeys& r, int j0, int j1) {
  return (r.lo <= j0 && r.hi >= j1) || r.global >= j1;
}

// The key tiles a block visits, in order: [0, first_end), then [second_begin, end); at(n) is the n-th of them.
struct KeyTiles {
  int first_end, second_begin, end;
  __device__ int count() const { return first_end + end - second_begin; }
  __device__ int at(int n) const { return n < first_end ? n : n - first_end + second_begin; }
};

// The union of the block's rows' keys (see the header: one interval plus [0, global)) as tiles of block_n keys.
__device__ KeyTiles block_tiles(const RowKeys& mine, int block_n) {
  __shared__ int spans[3][kWarps];
  const bool interval = mine.hi > mine.lo;
  int lo = interval ? mine.lo : INT_MAX, hi = interval ? mine.hi : 0, global = mine.global;
  for (int offset = 16; offset > 0; offset /= 2) {
    lo = min(lo, __shfl_xor_sync(kFullWarp, lo, offset));
    hi = max(hi, __shfl_xor_sync(kFullWarp, hi, offset));
    global = max(global, __shfl_xor_sync(kFullWarp, global, offset));
  }
  const int warp = static_cast<int>(threadIdx.x) / 32;
  if (threadIdx.x % 32 == 0) spans[0][warp] = lo, spans[1][warp] = hi, spans[2][warp] = global;
  __syncthreads();
  for (int w = 0; w < kWarps; ++w) {
    lo = min(lo, spans[0][w]);
    hi = max(hi, spans[1][w]);
    global = max(global, spans[2][w]);
  }
  const int global_end = (global + block_n - 1) / block_n;
  if (hi <= lo) return {global_end, global_end, global_end};
  const int first = lo / block_n, last = (hi + block_n - 1) / block_n;
  if (global_end >= first) {
    const int end = max(global_end, last);
    return {end, end, end};
  }
  return {global_end, first, last};
}

// ---- tiles in shared memory --------------------------------------------------------------------------------------

// Word offset of (row, col) in a tile of kDim-word rows, col a multiple of 8: 16-byte chunk c of a row is stored at
// c ^ (row % 8), so the 8 rows one ldmatrix matrix reads (same column) lie in 8 different bank groups.
template <int kDim>
__device__ __forceinline__ int swizzle(int row, int col) {
  return row * kDim + (((col >> 3) ^ (row & 7)) << 3);
}

// Where this lane's ldmatrix rows lie in a swizzled tile (shared-space byte addresses). Lane l addresses `row` of a
// 16-row group (row % 8 == l % 8) and chunk `bit` (0 or 1) of a chunk pair. The swizzle flips only the low 3 bits of
// a chunk, by row % 8, so the fragment at rows row0 + 0..15 and chunks chunk0 + 0..1 (row0 % 8 == 0, chunk0 even)
// is one of four per-lane addresses plus a constant: no address arithmetic in the unrolled product loops.
template <int kDim>
struct LaneRows {
  std::uint32_t address[4];  // by (chunk0 % 8) / 2
  __device__ LaneRows(std::uint32_t tile, int row, int bit) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      address[i] = tile + static_cast<std::uint32_t>(swizzle<kDim>(row, (2 * i + bit) * 8)) * 2;
  }
  __device__ __forceinline__ std::uint32_t at(int row0, int chunk0) const {
    return address[(chunk0 % 8) / 2] + static_cast<std::uint32_t>(row0 * kDim + chunk0 / 8 * 64) * 2;
  }
};

// A thread copies 16-byte chunk threadIdx.x % kChunks of tile rows r0, r0 + kThreads / kChunks, ...: this is r0,
// or `rows` (nothing) for the threads left over when kChunks does not divide kThreads (kDim 192: 5 rows per pass,
// 8 threads idle).
template <int kDim>
__device__ int first_copied_row(int rows) {
  constexpr int kChunks = kDim / 8, kRowsPerPass = kThreads / kChunks;
  const int r = static_cast<int>(threadIdx.x) / kChunks;
  return r < kRowsPerPass ? r : rows;
}

// Starts copying rows [first, first + kRows) of a matrix into a tile, row r at matrix + offset(r) (elements); rows
// at or after `rows` become zeros: no value of a missing key reaches P V (0 x garbage could be NaN).
template <int kRows, int kDim, class Offset>
__device__ void load_tile(std::uint32_t tile, const std::uint16_t* matrix, Offset offset, int first, int rows) {
  constexpr int kChunks = kDim / 8, kRowsPerPass = kThreads / kChunks;
  const int c = static_cast<int>(threadIdx.x) % kChunks, r0 = first_copied_row<kDim>(kRows);
#pragma unroll 1  // unrolled, the compiler keeps every row's addresses in registers across the key loop
  for (int r = r0; r < kRows; r += kRowsPerPass) {
    const bool valid = first + r < rows;
    const std::uint16_t* source = valid ? matrix + offset(first + r) + c * 8 : matrix;
    copy_async16(tile + static_cast<std::uint32_t>(swizzle<kDim>(r, c * 8)) * 2, source, valid);
  }
}

// Negates (sign -1) or zeroes (sign 0) the query chunks this thread loaded (load_tile's), once they have landed.
template <int kRows, int kDim>
__device__ void condition_queries(std::uint16_t* tile, int sign) {
  constexpr int kChunks = kDim / 8, kRowsPerPass = kThreads / kChunks;
  const std::uint32_t flip = sign < 0 ? 0x80008000u : 0u, keep = sign == 0 ? 0u : 0xFFFFFFFFu;
  const int c = static_cast<int>(threadIdx.x) % kChunks;
  for (int r = first_copied_row<kDim>(kRows); r < kRows; r += kRowsPerPass) {
    auto* words = reinterpret_cast<std::uint32_t*>(tile + swizzle<kDim>(r, c * 8));
    for (int w = 0; w < 4; ++w) words[w] = (words[w] ^ flip) & keep;
  }
}

// ---- the products and the softmax (one warp, its rows) -----------------------------------------------------------

template <class Cfg>
using Scores = float[Cfg::kMTiles][Cfg::kSTiles][4];
template <class Cfg>
using Outputs = float[Cfg::kMTiles][Cfg::kOTiles][4];
template <class Cfg>
using RowStats = float[Cfg::kMTiles][2];  // rows g and g + 8 of each m-tile (g = lane / 4)
template <class Cfg>
using Probabilities = std::uint32_t[Cfg::kMTiles][Cfg::kBlockN / 16][4];  // P as A fragments, one per 16 keys

// The lanes' ldmatrix rows. Q (A fragments): lanes 0-15 address rows 0-15 of an m-tile at column 16 ks, lanes
// 16-31 the same rows 8 columns on. K: K's rows are B's columns, so K row-major is B column-major; one x4 gives two
// n8 tiles (lanes 0-7 and 8-15: keys 0-7 at both halves of the k-step; lanes 16-31: keys 8-15). V row-major is B
// row-major: ldmatrix.trans turns each 8 x 8 block into B's column fragments; lanes 0-7 / 8-15 address keys 0-7 /
// 8-15 of the k-step at dims 16 nd + 0-7, lanes 16-31 the same keys at dims + 8-15.
template <class Cfg>
struct Fragments {
  LaneRows<Cfg::kDim> q, k, v;
  __device__ Fragments(std::uint32_t q_warp_tile, std::uint32_t k_tile, std::uint32_t v_tile, int lane)
      : q(q_warp_tile, lane & 15, lane >> 4),
        k(k_tile, (lane & 7) + (lane >> 4) * 8, (lane >> 3) & 1),
        v(v_tile, (lane & 7) + ((lane >> 3) & 1) * 8, lane >> 4) {}
};

// s = Q K^T for the warp's rows and the tile's keys (raw products).
template <class Cfg, class T>
__device__ void compute_scores(const Fragments<Cfg>& f, Scores<Cfg>& s) {
#pragma unroll
  for (int mi = 0; mi < Cfg::kMTiles; ++mi)
#pragma unroll
    for (int ni = 0; ni < Cfg::kSTiles; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[mi][ni][e] = 0.0f;
#pragma unroll
  for (int ks = 0; ks < Cfg::kDim / 16; ++ks) {
    std::uint32_t a[Cfg::kMTiles][4];
#pragma unroll
    for (int mi = 0; mi < Cfg::kMTiles; ++mi)
      ldmatrix_x4(a[mi], f.q.at(mi * 16, ks * 2));
#pragma unroll
    for (int nj = 0; nj < Cfg::kSTiles / 2; ++nj) {
      std::uint32_t b[4];
      ldmatrix_x4(b, f.k.at(nj * 16, ks * 2));
#pragma unroll
      for (int mi = 0; mi < Cfg::kMTiles; ++mi) {
        mma<T>(s[mi][2 * nj], a[mi], b[0], b[1]);
        mma<T>(s[mi][2 * nj + 1], a[mi], b[2], b[3]);
      }
    }
  }
}

// -inf for the keys its row does not see. Score e of n-tile ni is row g + 8 (e / 2), key j0 + 8 ni + 2 (lane % 4) +
// e % 2; the row's bounds come from the lane that holds them (lane r holds the warp's row r % kRowsPerWarp).
template <class Cfg>
__device__ void mask_scores(Scores<Cfg>& s, const RowKeys& mine, int j0) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
#pragma unroll
  for (int mi = 0; mi < Cfg::kMTiles; ++mi)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int holder = mi * 16 + half * 8 + lane / 4;
      const RowKeys row{__shfl_sync(kFullWarp, mine.lo, holder), __shfl_sync(kFullWarp, mine.hi, holder),
                        __shfl_sync(kFullWarp, mine.global, holder)};
#pragma unroll
      for (int ni = 0; ni < Cfg::kSTiles; ++ni)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = j0 + ni * 8 + (lane % 4) * 2 + e;
          if (!((j >= row.lo && j < row.hi) || j < row.global)) s[mi][ni][half * 2 + e] = -INFINITY;
        }
    }
}

// The online softmax over one tile: s becomes 2^(s c - r) with m the new running maximum and r = m c rounded to
// float32 (the reference), l (this lane's part of the row sum) and O are rescaled by 2^(r_old - r). The references
// are rounded products on both sides (__fmul_rn: no contraction into an fma), so alpha is exactly 1 when the maximum
// did not move; against the unrounded m c it would be 2^(m c - r), off by the rounding residual on every tile, and
// the LSE would drift by up to half an ulp of m c per tile. A row that has seen no key keeps m = -inf and uses 0 as
// its reference, so its masked scores give 2^-inf = 0 rather than NaN. O's rows are rescaled only when the maximum of
// one of the warp's rows in the same position moved (multiplying by exactly 1 changes nothing): after the first
// tiles, maxima rarely move.
template <class Cfg>
__device__ void online_softmax(Scores<Cfg>& s, RowStats<Cfg>& m, RowStats<Cfg>& l, Outputs<Cfg>& o, float c) {
#pragma unroll
  for (int mi = 0; mi < Cfg::kMTiles; ++mi)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float top = m[mi][half];
#pragma unroll
      for (int ni = 0; ni < Cfg::kSTiles; ++ni) top = fmaxf(top, fmaxf(s[mi][ni][half * 2], s[mi][ni][half * 2 + 1]));
      top = fmaxf(top, __shfl_xor_sync(kFullWarp, top, 1));  // the row's 4 lanes
      top = fmaxf(top, __shfl_xor_sync(kFullWarp, top, 2));
      const float reference = top == -INFINITY ? 0.0f : __fmul_rn(top, c);
      const float alpha = exp2_approx(__fmul_rn(m[mi][half], c) - reference);
      m[mi][half] = top;
      float sum = 0.0f;
#pragma unroll
      for (int ni = 0; ni < Cfg::kSTiles; ++ni)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = s[mi][ni][half * 2 + e];
          x = exp2_approx(fmaf(x, c, -reference));
          sum += x;
        }
      l[mi][half] = fmaf(l[mi][half], alpha, sum);
      if (__any_sync(kFullWarp, alpha != 1.0f))
#pragma unroll
        for (int ni = 0; ni < Cfg::kOTiles; ++ni) o[mi][ni][half * 2] *= alpha, o[mi][ni][half * 2 + 1] *= alpha;
    }
}

// P rounded to the data type as the A fragments of P V: the accumulator layout of S (rows g, g + 8; keys 2t, 2t + 1
// of each n8 tile) is the A-fragment layout, two n8 tiles per 16-key step. Half the registers of S, which is dead
// from here: the product's loop then has room for its fragments.
template <class Cfg, class T>
__device__ void round_probabilities(const Scores<Cfg>& s, Probabilities<Cfg>& a) {
#pragma unroll
  for (int mi = 0; mi < Cfg::kMTiles; ++mi)
#pragma unroll
    for (int kk = 0; kk < Cfg::kBlockN / 16; ++kk) {
      a[mi][kk][0] = pack<T>(s[mi][2 * kk][0], s[mi][2 * kk][1]);
      a[mi][kk][1] = pack<T>(s[mi][2 * kk][2], s[mi][2 * kk][3]);
      a[mi][kk][2] = pack<T>(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
      a[mi][kk][3] = pack<T>(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
    }
}

// O += P V.
template <class Cfg, class T>
__device__ void accumulate_values(const Probabilities<Cfg>& a, const Fragments<Cfg>& f, Outputs<Cfg>& o) {
#pragma unroll
  for (int kk = 0; kk < Cfg::kBlockN / 16; ++kk)
#pragma unroll
    for (int nd = 0; nd < Cfg::kDim / 16; ++nd) {
      std::uint32_t b[4];
      ldmatrix_x4_trans(b, f.v.at(kk * 16, nd * 2));
#pragma unroll
      for (int mi = 0; mi < Cfg::kMTiles; ++mi) {
        mma<T>(o[mi][2 * nd], a[mi][kk], b[0], b[1]);
        mma<T>(o[mi][2 * nd + 1], a[mi][kk], b[2], b[3]);
      }
    }
}

// out = O / l, lse = (r + log2 l) ln 2 with r = m c rounded, the reference of l (online_softmax); l = 0 (nothing
// visible) gives zeros and -inf, a NaN l (NaN or infinite inputs) NaN. One pass rounds out to the data type; a split
// pass writes it in float32, and lse in base 2 (without the ln 2), to its partial rows for combine_splits. Block row
// `row` is position row / pack of head h0 + row % pack.
template <class Cfg, class T>
__device__ void write_rows(const Params& p, int b, int h0, int first_row, const Outputs<Cfg>& o, const RowStats<Cfg>& m,
                           const RowStats<Cfg>& l) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
#pragma unroll
  for (int mi = 0; mi < Cfg::kMTiles; ++mi)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float total = l[mi][half];
      total += __shfl_xor_sync(kFullWarp, total, 1);
      total += __shfl_xor_sync(kFullWarp, total, 2);
      const int row = first_row + mi * 16 + half * 8 + lane / 4;
      if (row >= p.rows) continue;
      const int i = row / p.pack, h = h0 + row % p.pack;
      const long long index = (static_cast<long long>(b) * p.heads_q + h) * p.seq_q + i;  // the LSE's order
      const float inverse = total == 0.0f ? 0.0f : 1.0f / total;
      const float lse2 = total == 0.0f ? -INFINITY : __fmul_rn(m[mi][half], p.score_log2) + log2f(total);
      if (p.splits > 1) {
        const long long partial = blockIdx.y * p.partial_rows + index;
        float* out = p.partial_out + partial * Cfg::kDim + (lane % 4) * 2;
#pragma unroll
        for (int ni = 0; ni < Cfg::kOTiles; ++ni)
          *reinterpret_cast<float2*>(out + ni * 8) =
              make_float2(o[mi][ni][half * 2] * inverse, o[mi][ni][half * 2 + 1] * inverse);
        if (lane % 4 == 0) p.partial_lse[partial] = lse2;
        continue;
      }
      std::uint16_t* out = p.out + b * p.os.batch + h * p.os.head + i * p.os.token + (lane % 4) * 2;
#pragma unroll
      for (int ni = 0; ni < Cfg::kOTiles; ++ni)
        *reinterpret_cast<std::uint32_t*>(out + ni * 8) =
            pack<T>(o[mi][ni][half * 2] * inverse, o[mi][ni][half * 2 + 1] * inverse);
      if (p.lse && lane % 4 == 0) p.lse[index] = lse2 * 0.69314718055994531f;
    }
}

// ---- the kernel --------------------------------------------------------------------------------------------------

template <class Cfg, class T>
__global__ void __launch_bounds__(kThreads, 2) flash_forward(const Params p) {
  extern __shared__ __align__(128) unsigned char shared_memory[];
  const auto q_tile = static_cast<std::uint32_t>(__cvta_generic_to_shared(shared_memory));
  const std::uint32_t k_tile = q_tile + Cfg::kBlockM * Cfg::kDim * 2, v_tile = k_tile + Cfg::kBlockN * Cfg::kDim * 2;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int bs = static_cast<int>(blockIdx.x % static_cast<unsigned>(p.batch_sets));
  const int query_tile = p.query_tiles - 1 - static_cast<int>(blockIdx.x / static_cast<unsigned>(p.batch_sets));
  const int b = bs / p.head_sets, h0 = bs % p.head_sets * p.pack, kv_head = h0 / p.group;
  const int first_row = query_tile * Cfg::kBlockM, warp_row0 = warp * Cfg::kRowsPerWarp;

  // Each lane holds the bounds of one of its warp's rows, for the votes and the mask. Rows past the last query take
  // the last query's bounds: their results are never stored and the block's union of bounds stays the same; a warp
  // of only such rows computes nothing (`live`).
  const RowKeys mine = row_keys(p, b, min(first_row + warp_row0 + lane % Cfg::kRowsPerWarp, p.rows - 1) / p.pack);
  const KeyTiles tiles = block_tiles(mine, Cfg::kBlockN);
  const bool live = first_row + warp_row0 < p.rows;
  // The block's chunk of its tiles: all of them in one pass, else the blockIdx.y-th of `splits` near-equal runs.
  const int visited = tiles.count(), split = static_cast<int>(blockIdx.y);
  const int chunk_begin = visited * split / p.splits, chunk_end = visited * (split + 1) / p.splits;

  // Keys past the batch row's valid length are loaded as zeros, never read: they are invisible anyway, and an
  // unwritten KV cache may hold NaN or infinities there, which zero probabilities times V would turn into NaN.
  const int valid_keys = p.key_lengths ? p.key_lengths[b] : p.seq_k;
  const std::uint16_t* q = p.q + b * p.qs.batch + h0 * p.qs.head;
  const std::uint16_t* k = p.k + b * p.ks.batch + kv_head * p.ks.head;
  const std::uint16_t* v = p.v + b * p.vs.batch + kv_head * p.vs.head;
  const auto query_offset = [pack = p.pack, token = p.qs.token, head = p.qs.head](int row) {
    return row / pack * token + row % pack * head;
  };
  const auto k_offset = [token = p.ks.token](int key) { return key * token; };
  const auto v_offset = [token = p.vs.token](int key) { return key * token; };
  Outputs<Cfg> o;
  RowStats<Cfg> m, l;
#pragma unroll
  for (int mi = 0; mi < Cfg::kMTiles; ++mi) {
#pragma unroll
    for (int ni = 0; ni < Cfg::kOTiles; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mi][ni][e] = 0.0f;
    m[mi][0] = m[mi][1] = -INFINITY;
    l[mi][0] = l[mi][1] = 0.0f;
  }

  const Fragments<Cfg> fragments(q_tile + warp_row0 * Cfg::kDim * 2, k_tile, v_tile, lane);
  if (chunk_begin < chunk_end) {
    load_tile<Cfg::kBlockM, Cfg::kDim>(q_tile, q, query_offset, first_row, p.rows);
    commit_copies();
    load_tile<Cfg::kBlockN, Cfg::kDim>(k_tile, k, k_offset, tiles.at(chunk_begin) * Cfg::kBlockN, valid_keys);
    commit_copies();
    if (p.query_sign != 1) {  // on this thread's own chunks: the loop's first barrier publishes them
      wait_copies<1>();
      condition_queries<Cfg::kBlockM, Cfg::kDim>(reinterpret_cast<std::uint16_t*>(shared_memory), p.query_sign);
    }
  }
  for (int n = chunk_begin; n < chunk_end; ++n) {
    const int j0 = tiles.at(n) * Cfg::kBlockN, j1 = j0 + Cfg::kBlockN;
    wait_copies<0>();
    __syncthreads();  // K(tile) is in; every warp is done with V(previous)
    load_tile<Cfg::kBlockN, Cfg::kDim>(v_tile, v, v_offset, j0, valid_keys);
    commit_copies();
    // Warp-uniform votes: skip the tile when no row of the warp sees a key of it, the mask when every row sees all.
    const bool touched = live && __any_sync(kFullWarp, sees_any(mine, j0, j1));
    Probabilities<Cfg> probabilities;
    if (touched) {
      Scores<Cfg> s;
      compute_scores<Cfg, T>(fragments, s);
      if (!__all_sync(kFullWarp, sees_all(mine, j0, j1))) mask_scores<Cfg>(s, mine, j0);
      online_softmax<Cfg>(s, m, l, o, p.score_log2);
      round_probabilities<Cfg, T>(s, probabilities);
    }
    wait_copies<0>();
    __syncthreads();  // V(tile) is in; every warp is done with K(tile)
    if (n + 1 < chunk_end) {
      load_tile<Cfg::kBlockN, Cfg::kDim>(k_tile, k, k_offset, tiles.at(n + 1) * Cfg::kBlockN, valid_keys);
      commit_copies();
    }
    if (touched) accumulate_values<Cfg, T>(probabilities, fragments, o);
  }
  write_rows<Cfg, T>(p, b, h0, first_row + warp_row0, o, m, l);
}

// The split passes' partial rows merged by attention::merge_states' rule, in base 2: out = sum_s w_s out_s / sum_s w_s
// with w_s = 2^(lse_s - M), M the largest lse_s, and lse = (M + log2 sum_s w_s) ln 2. A chunk in which the row sees
// no key has lse -inf and a zero row: weight 0. When no chunk sees a key, M = -inf: zeros and lse -inf, as one pass
// gives; a NaN lse (NaN or infinite inputs) makes the row NaN, as in one pass (fmaxf alone would drop it). One thread
// per 4 columns of a row.
template <int kDim, class T>
__global__ void __launch_bounds__(kThreads) combine_splits(const Params p) {
  constexpr int kVectors = kDim / 4;
  const long long vector = static_cast<long long>(blockIdx.x) * kThreads + threadIdx.x;
  if (vector >= p.partial_rows * kVectors) return;
  const long long row = vector / kVectors;
  const int column = static_cast<int>(vector % kVectors) * 4;
  float top = -INFINITY;
  bool nan = false;
  for (int s = 0; s < p.splits; ++s) {
    const float x = p.partial_lse[s * p.partial_rows + row];
    top = fmaxf(top, x);
    nan |= x != x;
  }
  if (nan) top = NAN;
  float sum = 0.0f, y[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (top != -INFINITY)
    for (int s = 0; s < p.splits; ++s) {
      const long long partial = s * p.partial_rows + row;
      const float w = exp2f(p.partial_lse[partial] - top);
      const float4 x = *reinterpret_cast<const float4*>(p.partial_out + partial * kDim + column);
      sum += w;
      y[0] = fmaf(w, x.x, y[0]), y[1] = fmaf(w, x.y, y[1]), y[2] = fmaf(w, x.z, y[2]), y[3] = fmaf(w, x.w, y[3]);
    }
  const float inverse = sum == 0.0f ? 0.0f : 1.0f / sum;
  const int i = static_cast<int>(row % p.seq_q), bh = static_cast<int>(row / p.seq_q);
  std::uint16_t* out = p.out + bh / p.heads_q * p.os.batch + bh % p.heads_q * p.os.head + i * p.os.token + column;
  *reinterpret_cast<uint2*>(out) = make_uint2(pack<T>(y[0] * inverse, y[1] * inverse),
                                              pack<T>(y[2] * inverse, y[3] * inverse));
  if (p.lse && column == 0) p.lse[row] = top == -INFINITY ? -INFINITY : (top + log2f(sum)) * 0.69314718055994531f;
}

// ---- host --------------------------------------------------------------------------------------------------------

Result invalid(const std::string& message) { return {Status::invalid_argument, "attention: " + message}; }
Result unsupported(const char* what) {
  return {Status::unsupported, std::string(what) + " is not implemented on the device"};
}

// What the device does not do, so the caller can run the CPU path instead; checked before anything else.
Result device_scope(DType dtype, const attention::Options& o) {
  if (dtype == DType::f32) return unsupported("float32 data");
  if (dtype != DType::f16 && dtype != DType::bf16) return invalid("unknown dtype");
  if (o.softcap != 0) return unsupported("softcap");
  if (o.alibi_slopes) return unsupported("ALiBi");
  if (o.bias) return unsupported("a dense bias");
  return {};
}

// The CPU's argument checks (native/src/attention/attention.cpp), with messages.
Result validate(const attention::Shape& s, const attention::Options& o) {
  if (s.batch == 0 || s.heads_q == 0 || s.heads_kv == 0 || s.heads_q % s.heads_kv != 0)
    return invalid("batch, heads_q and heads_kv must be positive and heads_q a multiple of heads_kv");
  constexpr std::size_t kMaxDim = attention::kMaxHeadDim;
  if (s.head_dim == 0 || s.head_dim > kMaxDim || s.head_dim_v == 0 || s.head_dim_v > kMaxDim)
    return invalid("head_dim and head_dim_v must be in [1, " + std::to_string(attention::kMaxHeadDim) + "]");
  if (s.seq_q > kMaxSequence || s.seq_k > kMaxSequence) return invalid("seq_q and seq_k must be at most 2^24");
  std::size_t n = 0;
  for (const std::size_t heads : {s.heads_q, s.heads_kv})
    for (const std::size_t seq : {s.seq_q, s.seq_k})  // padded rows: at most kMaxHeadDim elements
      if (!element_count({s.batch, heads, seq, kMaxDim}, &n)) return invalid("the tensors are too large");
  if (!std::isfinite(o.scale)) return invalid("scale must be finite");
  if (!std::isfinite(o.temperature) || !(o.temperature > 0)) return invalid("temperature must be positive and finite");
  if (o.global_tokens > 0 && o.window == 0) return invalid("global_tokens needs a window (the Λ mask)");
  if (o.key_lengths)
    for (std::size_t b = 0; b < s.batch; ++b)
      if (o.key_lengths[b] < 0 || static_cast<std::size_t>(o.key_lengths[b]) > s.seq_k)
        return invalid("key_lengths must be in [0, seq_k]");
  if (o.segments) {
    if (o.segment_count == 0 || o.segments[0] != 0 || static_cast<std::size_t>(o.segments[o.segment_count]) != s.seq_k)
      return invalid("segments must run from 0 to seq_k");
    for (std::size_t i = 0; i < o.segment_count; ++i)
      if (o.segments[i + 1] <= o.segments[i]) return invalid("segment offsets must increase");
  } else if (o.anchor) {
    return invalid("the anchor needs segments (it is a packed row's shared first token)");
  }
  return {};
}

// The kernel's padded head size: the smallest of 64, 128, 192, 256 that holds head_dim and head_dim_v.
int kernel_dim(const attention::Shape& s) {
  const std::size_t d = s.head_dim > s.head_dim_v ? s.head_dim : s.head_dim_v;
  return static_cast<int>(ceil_div(d, 64) * 64);
}

Strides device_strides(Layout layout, std::size_t heads, std::size_t seq, std::size_t dim) {
  const auto h = static_cast<long long>(heads), n = static_cast<long long>(seq), d = static_cast<long long>(dim);
  if (layout == Layout::bshd) return {n * h * d, d, h * d};
  return {h * n * d, n * d, d};
}

// `rows` host rows of `width` 16-bit words into device rows of `pitch` words whose other words are zero.
Result upload_rows(void* device, const void* host, std::size_t rows, std::size_t width, std::size_t pitch,
                   cudaStream_t stream, const char* what) {
  if (width == pitch)
    return cuda_check(cudaMemcpyAsync(device, host, rows * width * 2, cudaMemcpyHostToDevice, stream), what);
  if (Result r = cuda_check(cudaMemsetAsync(device, 0, rows * pitch * 2, stream), what); !r.ok()) return r;
  return cuda_check(
      cudaMemcpy2DAsync(device, pitch * 2, host, width * 2, width * 2, rows, cudaMemcpyHostToDevice, stream), what);
}

Result download_rows(void* host, const void* device, std::size_t rows, std::size_t width, std::size_t pitch,
                     cudaStream_t stream, const char* what) {
  if (width == pitch)
    return cuda_check(cudaMemcpyAsync(host, device, rows * width * 2, cudaMemcpyDeviceToHost, stream), what);
  return cuda_check(
      cudaMemcpy2DAsync(host, width * 2, device, pitch * 2, width * 2, rows, cudaMemcpyDeviceToHost, stream), what);
}

// At most how many key tiles of block_n keys a block visits, for sizing splits: `keys` keys, the block's rows at most
// `positions` consecutive positions, each seeing at most one window (2 window - 1 keys without causal; a window's
// keys can start inside a tile) and the global tokens.
std::size_t key_tiles_bound(const Params& p, std::size_t keys, std::size_t positions, int block_n) {
  const std::size_t n = static_cast<std::size_t>(block_n), all = ceil_div(keys, n);
  if (p.window == 0) return all;
  const std::size_t window = static_cast<std::size_t>(p.window);
  const std::size_t span = (p.causal ? window : 2 * window - 1) + positions - 1;
  return std::min(all, ceil_div(span, n) + 1 + ceil_div(static_cast<std::size_t>(p.global_tokens), n));
}

// How many chunks each block's key tiles are split into (see the header): 1 when the grid fills a wave of resident
// blocks; else the smallest S, chunks of at least kMinChunkTiles tiles, that minimises the estimated time
// waves(S) x (ceil(tiles / S) + 1) in tile steps, the 1 for a block's fixed costs (the query load, its partial rows,
// its share of the combine).
int choose_splits(std::size_t blocks, std::size_t resident, std::size_t tiles) {
  if (blocks >= resident) return 1;
  std::size_t best = 1, best_time = tiles + 1;
  for (std::size_t splits = 2; splits <= kMaxSplits && splits * kMinChunkTiles <= tiles; ++splits) {
    const std::size_t time = ceil_div(blocks * splits, resident) * (ceil_div(tiles, splits) + 1);
    if (time < best_time) best = splits, best_time = time;
  }
  return static_cast<int>(best);
}

// One call's kernels in one configuration: packs the query heads of a KV head into each block when one head's queries
// do not fill a query tile (decoding), chooses the splits and reserves their scratch, then runs on the timer the
// attention kernel and, when split, the combine.
template <class Cfg, class T>
Result run(AttentionContext& context, Params p, const attention::Shape& s, std::size_t keys) {
  const std::size_t group = s.heads_q / s.heads_kv;
  const std::size_t pack = s.seq_q < Cfg::kBlockM && s.seq_q * group <= kMaxSequence ? group : 1;
  const std::size_t rows = s.seq_q * pack, sets = s.batch * (s.heads_q / pack);
  const std::size_t tiles = ceil_div(rows, Cfg::kBlockM);  // tiles x sets <= INT_MAX: checked by attend
  p.pack = static_cast<int>(pack);
  p.rows = static_cast<int>(rows);
  p.head_sets = static_cast<int>(s.heads_q / pack);
  p.query_tiles = static_cast<int>(tiles);
  p.batch_sets = static_cast<int>(sets);
  const auto kernel = flash_forward<Cfg, T>;
  if (Result r = cuda_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(Cfg::kSharedBytes)),
                            "the attention kernel's shared memory");
      !r.ok())
    return r;
  int per_multiprocessor = 0;
  if (Result r = cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_multiprocessor, kernel, kThreads,
                                                                          Cfg::kSharedBytes),
                            "the attention kernel's occupancy");
      !r.ok())
    return r;
  const std::size_t resident = static_cast<std::size_t>(per_multiprocessor) * multiprocessor_count();
  const std::size_t positions = std::min(s.seq_q, Cfg::kBlockM / pack + 1);
  p.splits = choose_splits(tiles * sets, resident, key_tiles_bound(p, keys, positions, Cfg::kBlockN));
  if (p.splits > 1) {
    p.partial_rows = static_cast<long long>(s.batch * s.heads_q * s.seq_q);
    const std::size_t all_rows = static_cast<std::size_t>(p.splits) * s.batch * s.heads_q * s.seq_q;
    Result r = context.flash[6].reserve(all_rows * Cfg::kDim * sizeof(float), "the attention's partial outputs");
    if (r.ok()) r = context.flash[7].reserve(all_rows * sizeof(float), "the attention's partial LSEs");
    if (!r.ok()) return r;
    p.partial_out = context.flash[6].get<float>();
    p.partial_lse = context.flash[7].get<float>();
  }

  const cudaStream_t stream = context.stream.get();
  Result r = context.timer.start(stream);
  if (r.ok()) {
    const dim3 grid(static_cast<unsigned>(tiles * sets), static_cast<unsigned>(p.splits));
    kernel<<<grid, kThreads, Cfg::kSharedBytes, stream>>>(p);
    r = launched("the flash attention kernel");
  }
  if (r.ok() && p.splits > 1) {
    const auto combine = combine_splits<Cfg::kDim, T>;
    const std::size_t vectors = static_cast<std::size_t>(p.partial_rows) * (Cfg::kDim / 4);
    combine<<<static_cast<unsigned>(ceil_div(vectors, kThreads)), kThreads, 0, stream>>>(p);
    r = launched("the flash attention split combine kernel");
  }
  if (r.ok()) r = context.timer.stop(stream);
  return r;
}

// The configuration for the padded head size; the 64-query tiles for 64 and 128 when all the rows of a block's heads
// fit one (short_rows: seq_q x the heads packed per block <= 64).
template <class T>
Result run_for_dim(int dim, bool short_rows, AttentionContext& context, const Params& p, const attention::Shape& s,
                   std::size_t keys) {
  switch (dim) {
    case 64: return short_rows ? run<Dim64Short, T>(context, p, s, keys) : run<Dim64, T>(context, p, s, keys);
    case 128: return short_rows ? run<Dim128Short, T>(context, p, s, keys) : run<Dim128, T>(context, p, s, keys);
    case 192: return run<Dim192, T>(context, p, s, keys);
    default: return run<Dim256, T>(context, p, s, keys);
  }
}

// The kernel's arguments but the score scale, for the device buffers (context.flash: see the header).
void set_arguments(const attention::Shape& s, const attention::Options& o, int dim, DeviceMemory* buffers, bool lse,
                   Params* out) {
  Params& p = *out;
  const std::size_t lengths = o.key_lengths ? s.batch : 0;
  auto* ints = buffers[5].get<std::int32_t>();
  p.q = buffers[0].get<std::uint16_t>();
  p.k = buffers[1].get<std::uint16_t>();
  p.v = buffers[2].get<std::uint16_t>();
  p.out = buffers[3].get<std::uint16_t>();
  p.lse = lse ? buffers[4].get<float>() : nullptr;
  p.qs = p.os = device_strides(s.layout, s.heads_q, s.seq_q, dim);
  p.ks = p.vs = device_strides(s.layout, s.heads_kv, s.seq_k, dim);
  p.key_lengths = o.key_lengths ? ints : nullptr;
  p.segments = o.segments ? ints + lengths : nullptr;
  p.segment_count = static_cast<int>(o.segment_count);
  p.heads_q = static_cast<int>(s.heads_q);
  p.group = static_cast<int>(s.heads_q / s.heads_kv);
  p.seq_q = static_cast<int>(s.seq_q);
  p.seq_k = static_cast<int>(s.seq_k);
  p.window = static_cast<int>(o.window < static_cast<std::size_t>(kMaxWindow) ? o.window : kMaxWindow);
  const std::size_t global = o.anchor && o.global_tokens == 0 ? 1 : o.global_tokens;
  p.global_tokens = static_cast<int>(global < s.seq_k ? global : s.seq_k);  // the rows clamp it to their lengths
  p.causal = o.causal;
}

// c and the query sign for Params: scores are scale / temperature x q.k, in base 2 (see the header).
Result score_scale(const attention::Options& o, Params* p) {
  const double c = std::fabs(static_cast<double>(o.scale)) / o.temperature * 1.4426950408889634;
  if (!(c <= 3.0e38)) return unsupported("a scale / temperature above 2^127");
  p->score_log2 = static_cast<float>(c);
  p->query_sign = o.scale < 0 ? -1 : 1;
  if (p->score_log2 == 0.0f) p->query_sign = 0, p->score_log2 = 1.0f;  // every score 0
  return {};
}

}  // namespace

namespace detail {

Result attend(AttentionContext& context, const void* q, const void* k, const void* v, attention::DType dtype,
              const attention::Shape& shape, const attention::Options& options, void* out, float* lse) {
  context.last_ms = 0;
  const attention::Shape& s = shape;
  const attention::Options& o = options;
  if (Result r = device_scope(dtype, o); !r.ok()) return r;
  if (Result r = validate(s, o); !r.ok()) return r;
  if (s.seq_q == 0) return {};  // nothing to compute (every other extent is positive)
  if (!q || !out || (s.seq_k > 0 && (!k || !v))) return invalid("q, k, v and out must not be null");
  if (ceil_div(s.seq_q, 64) * s.batch * s.heads_q > INT_MAX)  // blocks of 64 queries (or 128) in one launch
    return invalid("batch x heads_q x seq_q / 64 must be below 2^31");
  Params p{};
  if (Result r = score_scale(o, &p); !r.ok()) return r;

  const int dim = kernel_dim(s);
  const std::size_t q_rows = s.batch * s.heads_q * s.seq_q, k_rows = s.batch * s.heads_kv * s.seq_k;
  const std::size_t row_bytes = static_cast<std::size_t>(dim) * 2;
  const std::size_t lengths = o.key_lengths ? s.batch : 0, offsets = o.segments ? o.segment_count + 1 : 0;
  DeviceMemory* buffers = context.flash;
  Result r = buffers[0].reserve(q_rows * row_bytes, "the attention queries");
  if (r.ok()) r = buffers[1].reserve(k_rows * row_bytes, "the attention keys");
  if (r.ok()) r = buffers[2].reserve(k_rows * row_bytes, "the attention values");
  if (r.ok()) r = buffers[3].reserve(q_rows * row_bytes, "the attention output");
  if (r.ok() && lse) r = buffers[4].reserve(q_rows * sizeof(float), "the attention LSE");
  if (r.ok()) r = buffers[5].reserve((lengths + offsets) * sizeof(std::int32_t), "the attention mask offsets");
  if (!r.ok()) return r;

  const cudaStream_t stream = context.stream.get();
  auto* mask_ints = buffers[5].get<std::int32_t>();
  r = upload_rows(buffers[0].get(), q, q_rows, s.head_dim, dim, stream, "copying the queries to the device");
  if (r.ok() && k_rows > 0)
    r = upload_rows(buffers[1].get(), k, k_rows, s.head_dim, dim, stream, "copying the keys to the device");
  if (r.ok() && k_rows > 0)
    r = upload_rows(buffers[2].get(), v, k_rows, s.head_dim_v, dim, stream, "copying the values to the device");
  if (r.ok() && lengths > 0)
    r = cuda_check(cudaMemcpyAsync(mask_ints, o.key_lengths, lengths * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                   stream),
                   "copying the key lengths to the device");
  if (r.ok() && offsets > 0)
    r = cuda_check(cudaMemcpyAsync(mask_ints + lengths, o.segments, offsets * sizeof(std::int32_t),
                                   cudaMemcpyHostToDevice, stream),
                   "copying the segments to the device");
  if (!r.ok()) return r;

  set_arguments(s, o, dim, buffers, lse != nullptr, &p);
  std::size_t keys = o.key_lengths ? 0 : s.seq_k;  // the most keys of a batch row, for sizing splits
  for (std::size_t b = 0; b < lengths; ++b) keys = std::max(keys, static_cast<std::size_t>(o.key_lengths[b]));
  const bool short_rows = s.seq_q * (s.heads_q / s.heads_kv) <= 64;
  r = dtype == DType::bf16 ? run_for_dim<Bf16>(dim, short_rows, context, p, s, keys)
                           : run_for_dim<F16>(dim, short_rows, context, p, s, keys);
  if (r.ok())
    r = download_rows(out, p.out, q_rows, s.head_dim_v, dim, stream, "copying the attention output to the host");
  if (r.ok() && lse)
    r = cuda_check(cudaMemcpyAsync(lse, p.lse, q_rows * sizeof(float), cudaMemcpyDeviceToHost, stream),
                   "copying the attention LSE to the host");
  if (r.ok()) r = context.stream.synchronize("the flash attention kernel");
  if (!r.ok()) return r;
  context.last_ms = context.timer.elapsed_ms();
  return {};
}

}  // namespace detail
}  // namespace tessera::cuda
