// Exact attention on the CPU, tiled with an online softmax (FlashAttention-2's algorithm: Dao 2023), for long
// contexts: memory O(seq x head_dim), never O(seq^2); banded masks cost seq x window.
//
// For query row i of a (batch b, query head h) and key j, with the query aligned at position p = i + n - seq_q, n the
// row's valid keys (key_lengths[b], else seq_k): bottom-right, as FlashAttention aligns when seq_q != seq_k and as
// its variable-length kernels align each sequence (the queries are the last seq_q tokens of the valid keys):
//   s = (softcap(scale * q.k) + bias) / temperature,  softcap(x) = cap tanh(x / cap) when cap > 0,
//   bias = the dense bias [b|1, h|1, i, j] - slope_h |p - j| (ALiBi). The cap comes before the bias as in ONNX's
//   Attention and Gemma 2, so a large negative (or -inf) bias still hides its key;
// then keys outside the mask get -inf; out = softmax(s) V, and lse = log(sum_j exp(s_j)) (natural log).
// The mask keeps key j when j < key_lengths[b] and
//   - causal: j <= p;  window w > 0: p - j < w (causal) or |p - j| < w (not causal);
//   - segments: j lies in the document (segment) that contains p;
//   - or j < global_tokens (LM-Infinite's global branch; with causal, still j <= p), or j == 0 with anchor
//     (AnchorAttention: the row's first token is visible to every query).
// A query with no visible key gets zeros and lse = -infinity. Grouped-query attention: query head h reads key/value
// head h / (heads_q / heads_kv).
//
// Arithmetic is float32 (half storage is widened on load and rounded to nearest even on store); exp and tanh are
// evaluated to about 2 ulp, so outputs agree with a float64 reference to about 1e-6 relative.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tessera/status.h"

namespace tessera::attention {

enum class Layout { bshd, bhsd };  // q/out [batch, seq, heads, dim] or [batch, heads, seq, dim]; k and v alike
enum class DType { f32, f16, bf16 };

struct Shape {
  std::size_t batch = 1, heads_q = 1, heads_kv = 1, seq_q = 0, seq_k = 0, head_dim = 0, head_dim_v = 0;
  Layout layout = Layout::bshd;
};

struct Options {
  float scale = 0;  // the caller's choice (1 / sqrt(head_dim) is the usual one)
  float temperature = 1;
  float softcap = 0;  // 0: none
  bool causal = false;
  std::size_t window = 0;         // 0: none
  std::size_t global_tokens = 0;  // with window
  bool anchor = false;
  const std::int32_t* key_lengths = nullptr;  // [batch], each in [0, seq_k]
  const std::int32_t* segments = nullptr;     // segment_count + 1 offsets, 0 = o_0 < o_1 < ... = seq_k
  std::size_t segment_count = 0;
  const float* alibi_slopes = nullptr;  // [heads_q]
  const float* bias = nullptr;          // [bias_batch, bias_heads, seq_q, seq_k], float32
  std::size_t bias_batch = 1, bias_heads = 1;
};

constexpr std::size_t kMaxHeadDim = 256;

// out: the query layout with head_dim_v; lse (optional): [batch, heads_q, seq_q] float32. Every argument is checked
// first (invalid_argument); threaded over (batch, head, block of queries); identical for any thread count.
Status attend(const void* q, const void* k, const void* v, DType dtype, const Shape& shape, const Options& options,
              void* out, float* lse) noexcept;

// Merges two attention states over disjoint key sets (split-KV, RingAttention, SelfExtend's two passes): rows of
// `dim` floats with their natural-log LSEs; lse_index(row) maps an output row to its LSE (outputs and LSEs may be laid
// out differently). out = (e^(a - m) out_a + e^(b - m) out_b) / (e^(a - m) + e^(b - m)), lse = m + log(...),
// m = max(a, b); both -infinity gives zeros and -infinity. out/lse may alias the inputs.
struct MergeShape {
  std::size_t batch = 1, heads = 1, seq = 0, dim = 0;
  Layout layout = Layout::bshd;
};
Status merge_states(const float* out_a, const float* lse_a, const float* out_b, const float* lse_b,
                    const MergeShape& shape, float* out, float* lse) noexcept;

}  // namespace tessera::attention
