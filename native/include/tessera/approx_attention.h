// Approximate attention for long contexts, built on the exact core (tessera/attention.h).
//
// Squeezed Attention (Hooper et al., "Squeezed Attention: Accelerating Long Context Length LLM Inference",
// arXiv 2411.09688; reference code SqueezeAILab/SqueezedAttention): the keys of a FIXED context (a document, a system
// prompt) are clustered offline per key/value head; at query time each query scores the centroids, estimates every
// key's softmax mass through its cluster, p ≈ exp(s_c) / Σ_k N_k exp(s_k), and attends exactly to the keys of the
// clusters it keeps. The LSE it returns lets the caller merge with exact attention over the rest of the keys.
//
// HyperAttention (Han et al., "HyperAttention: Long-context Attention in Near-Linear Time", arXiv 2310.05869;
// reference code insuhan/hyper-attn): sortLSH groups queries and keys into buckets of a Gray-coded angular LSH, exact
// attention runs on the block diagonal of the sorted matrix, and a uniform sample of key columns (reweighted by
// n_keys / samples) estimates the rest; the two states merge through their LSEs. Causal attention splits
// recursively into two causal halves and one non-causal HyperAttention block.
//
// Both are float32 only. Random choices come from Tessera's generator (tessera/rng.h), so results depend on the seed
// and never on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tessera/attention.h"
#include "tessera/status.h"

namespace tessera::attention {

// ---- Squeezed Attention ----------------------------------------------------------------------------------------

struct SqueezedConfig {
  std::size_t heads_kv = 1, seq_k = 0, head_dim = 0, head_dim_v = 0;
  std::size_t clusters = 1;     // per head, 1 ... seq_k
  std::size_t iterations = 25;  // Lloyd iterations after k-means++ seeding (stops early when nothing moves)
  std::uint64_t seed = 42;
};

struct SqueezedQuery {
  std::size_t heads_q = 1, seq_q = 0;
  float scale = 0;
  // keep_fraction > 0: the clusters with the largest estimates, best first, until at least that fraction of the
  // keys is kept. Otherwise threshold: clusters whose per-key estimate exceeds it (0 keeps every cluster).
  double threshold = 0;
  double keep_fraction = 0;
};

class SqueezedIndex {
 public:
  // keys [seq_k, heads_kv, head_dim] and values [seq_k, heads_kv, head_dim_v] ('bshd', batch 1), float32. Per head:
  // k-means++ seeding from the generator, then Lloyd iterations on the L2-normalised keys; each centroid is then the
  // mean of its cluster's un-normalised keys, and keys/values are stored reordered so each cluster is a contiguous
  // range. Clusters left empty stay as empty ranges.
  static Status build(const float* keys, const float* values, const SqueezedConfig& config,
                      std::unique_ptr<SqueezedIndex>* out) noexcept;

  // q [seq_q, heads_q, head_dim] ('bshd'); out [seq_q, heads_q, head_dim_v]; lse (optional) [heads_q, seq_q];
  // *kept_fraction (optional): kept keys / seq_k averaged over queries and heads. Query head h reads key head
  // h / (heads_q / heads_kv). A query that keeps no key gets zeros and lse = -infinity.
  Status attend(const float* q, const SqueezedQuery& query, float* out, float* lse, double* kept_fraction) const noexcept;

  const SqueezedConfig& config() const noexcept { return config_; }
  // Per head, clusters + 1 offsets into the reordered keys (cluster c is [offsets[c], offsets[c + 1])).
  const std::vector<std::uint32_t>& offsets() const noexcept { return offsets_; }
  // Per head, seq_k original key indices in stored order.
  const std::vector<std::uint32_t>& order() const noexcept { return order_; }
  // Per head, clusters x head_dim centroids (means of the un-normalised keys; zeros for an empty cluster).
  const std::vector<float>& centroids() const noexcept { return centroids_; }
  std::size_t memory_bytes() const noexcept;

 private:
  SqueezedConfig config_;
  std::vector<std::uint32_t> offsets_, order_;
  std::vector<float> centroids_;
  std::vector<float> keys_t_;  // per head, per cluster: its keys as one head_dim x size block, transposed (one GEMM)
  std::vector<float> values_;  // per head, seq_k x head_dim_v, reordered
};

// ---- HyperAttention --------------------------------------------------------------------------------------------

struct HyperOptions {
  float scale = 0;
  bool causal = false;  // needs seq_q == seq_k
  std::size_t block_size = 256, sample_size = 256, lsh_bits = 7, min_seq_len = 4096;
  std::uint64_t seed = 42;
};

constexpr std::size_t kMaxLshBits = 16;

// The random choices, from Tessera's generator (tessera/rng.h), for reproduction outside Tessera:
// - LSH projections: P = fill_normal(derive(seed, kHyperLshLabel), 0, ., head_dim x lsh_bits), P[d * lsh_bits + r],
//   shared by every head; row x gets code c = sum_r [x.P_r > 0] 2^r (float32 dot, d in order) and is sorted by the rank
//   of c in the reflected Gray sequence (g(i) = i ^ (i >> 1)), so neighbouring ranks differ in one sign bit.
// - samples of (batch b, query head h) at recursion node n (1 = the whole non-causal problem; node m's causal halves are
//   2m and 2m + 1): sorted key position t = below(u64(derive(derive(seed, kHyperSampleLabel), (b heads_q + h) << 24 | n),
//   t), n_k) for t < sample_size.
constexpr std::uint64_t kHyperLshLabel = 0x4859504C53480000ull;     // "HYPLSH"
constexpr std::uint64_t kHyperSampleLabel = 0x48595053414D0000ull;  // "HYPSAM"

// q, k, v, out in `shape`'s layout, float32; lse (optional) [batch, heads_q, seq_q]. Exact attention (the core's
// attend) when seq_q or seq_k is below min_seq_len. Otherwise, per (batch, query head):
//   non-causal: queries and keys stably sorted by LSH bucket; key block b = sorted keys [b B, min((b + 1) B, n_k)),
//   B = block_size, nb = ceil(n_k / B) blocks; query block b = sorted queries [floor(b n_q / nb), floor((b + 1) n_q /
//   nb)); exact attention within each block pair; when nb > 1 and sample_size > 0, sample_size sorted key positions
//   drawn uniformly with replacement, each hidden from the queries of its own block, whose LSE gets
//   + log(n_k / sample_size); the two states merged (merge_states) and the rows put back in their order.
//   causal: n = seq_q = seq_k; when n <= min_seq_len exact causal attention, else with h = ceil(n / 2): queries
//   [0, h) causal over keys [0, h) (recursively), queries [h, n) causal over keys [h, n) (recursively) merged with the
//   non-causal HyperAttention of queries [h, n) over keys [0, h).
Status hyper_attend(const float* q, const float* k, const float* v, const Shape& shape, const HyperOptions& options,
                    float* out, float* lse) noexcept;

// What the non-causal algorithm would choose for each (batch, query head), for tests: the sorted order of the queries
// [batch, heads_q, seq_q] and keys [batch, heads_q, seq_k] (original indices by sorted position) and the sampled
// sorted key positions [batch, heads_q, sample_size]. invalid_argument when the call would be exact or causal.
Status hyper_plan(const float* q, const float* k, const Shape& shape, const HyperOptions& options,
                  std::uint32_t* query_order, std::uint32_t* key_order, std::uint32_t* samples) noexcept;

}  // namespace tessera::attention
