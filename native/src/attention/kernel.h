// Exact attention: the plan one call shares across its work units, and the per-level unit runners. Internal.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tessera/attention.h"
#include "tessera/memory.h"
#include "tessera/runtime.h"

namespace tessera::attention::detail {

// Queries per work unit (one block of a (batch, head) pair) and keys per tile: the queries sit in SIMD lanes, so the
// softmax statistics are lane-wise and the key loop needs no horizontal reductions.
constexpr std::size_t kQueryBlock = 64;
constexpr std::size_t kKeyBlock = 64;

struct Strides {
  std::size_t batch, head, token;  // in elements
};

struct Plan {
  const std::uint8_t* q;
  const std::uint8_t* k;
  const std::uint8_t* v;
  std::uint8_t* out;
  float* lse;
  DType dtype;
  std::size_t element_bytes;
  Shape shape;
  Options options;
  std::size_t group;  // query heads per key/value head
  Strides qs, ks, vs, os;
  float q_scale;     // multiplies q (scale, and 1 / temperature when nothing comes between)
  float post_scale;  // 1 / temperature, applied after bias and softcap (1 when folded into q_scale)
  bool transform;    // bias, ALiBi or softcap between q.k and the softmax
  std::size_t sub_blocks;    // query blocks per unit (<= kSubBlocks)
  std::size_t query_blocks;  // units per (batch, head): groups of sub_blocks query blocks
  bool rows;                 // the row kernel (see kMaxRows)
};

// A unit covers up to kSubBlocks query blocks of one (batch, head), so each key/value tile brought into cache serves
// up to kSubBlocks x kQueryBlock queries (fewer when the call has too few units to keep every thread busy).
constexpr std::size_t kSubBlocks = 8;

// Calls with at most this many query rows per key/value head (group x seq_q: decoding) run the row kernel, one unit
// per (batch, key/value head), instead of query lanes that would be mostly empty.
constexpr std::size_t kMaxRows = 16;

// One query block's state.
struct Lanes {
  AlignedVector<float> qt;  // head_dim x kQueryBlock: scaled queries, transposed
  AlignedVector<float> o;   // kQueryBlock x head_dim_v: unnormalised outputs
  AlignedVector<float> lo, hi, global, position, m, l, alpha;  // per query lane
};

// Per-thread scratch, reused across units.
struct Scratch {
  Lanes blocks[kSubBlocks];
  AlignedVector<float> st;   // kKeyBlock x kQueryBlock: scores, then probabilities (keys x queries)
  AlignedVector<float> kb;   // kKeyBlock x head_dim: the tile's keys, contiguous float32
  AlignedVector<float> vb;   // kKeyBlock x head_dim_v: the tile's values, contiguous float32
  AlignedVector<float> row;  // one row, widened
};

void prepare(Scratch& s, const Plan& p);

using UnitRunner = void (*)(const Plan& plan, std::size_t unit, Scratch& scratch);
UnitRunner unit_runner(SimdLevel level, bool rows) noexcept;

// The per-level runners (attention_x86.cpp, attention_scalar.cpp).
void run_unit_scalar(const Plan& plan, std::size_t unit, Scratch& scratch);
void run_rows_unit_scalar(const Plan& plan, std::size_t unit, Scratch& scratch);
#if defined(__x86_64__) || defined(_M_X64)
void run_unit_avx2(const Plan& plan, std::size_t unit, Scratch& scratch);
void run_unit_avx512(const Plan& plan, std::size_t unit, Scratch& scratch);
void run_rows_unit_avx2(const Plan& plan, std::size_t unit, Scratch& scratch);
void run_rows_unit_avx512(const Plan& plan, std::size_t unit, Scratch& scratch);
#endif

}  // namespace tessera::attention::detail
