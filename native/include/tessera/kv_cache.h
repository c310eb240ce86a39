// A key/value cache for incremental decoding: per layer, keys and values of every batch row appended token by token
// (or a chunk at a time), attended by the newest queries with the masks of tessera/attention.h.
//
// Eviction keeps memory bounded for long generations:
//   - none:    every token is kept;
//   - sliding: the last `window` tokens (Mistral-style sliding-window attention);
//   - lambda:  the first `global_tokens` tokens plus the last `window` (LM-Infinite's Λ-shaped mask, Han et al. 2023,
//              arXiv 2308.16137; StreamingLLM's "attention sinks" are the same shape).
// Storage is [batch, capacity, heads_kv, dim] per layer with the kept tokens contiguous and in order: the global
// tokens first, then the recent ones. Because the kept recent tokens are consecutive positions, the window mask in
// storage coordinates equals the window mask in absolute positions, so attention runs on the storage directly.
// Eviction moves the recent tokens down when the buffer fills, about once per `window` appended tokens, so the cost
// per token is O(1) amortized and memory is O(global_tokens + window + the largest chunk appended).
//
// Not thread-safe: one caller at a time per cache (the bindings serialize an async attend against appends).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tessera/attention.h"
#include "tessera/memory.h"
#include "tessera/status.h"

namespace tessera::attention {

enum class Eviction { none, sliding, lambda };

struct KvCacheConfig {
  std::size_t layers = 1, batch = 1, heads_kv = 1, head_dim = 0, head_dim_v = 0;
  DType dtype = DType::f32;  // storage
  Eviction eviction = Eviction::none;
  std::size_t window = 0;         // sliding and lambda: tokens kept behind (and including) the newest query
  std::size_t global_tokens = 0;  // lambda: the first tokens, kept for ever
};

// What a query block may add to the cache's own mask: scores, temperature, cap, ALiBi (eviction none only: after
// eviction, storage distances are not token distances for the global tokens), and a tighter window.
struct KvAttendOptions {
  float scale = 0, temperature = 1, softcap = 0;
  bool causal = true;
  std::size_t window = 0, global_tokens = 0;  // eviction none only; the cache's own otherwise
  const float* alibi_slopes = nullptr;       // [heads_q], eviction none only
};

class KvCache {
 public:
  // invalid_argument for a zero size, head sizes above kMaxHeadDim, a window of 0 with eviction, or globals without
  // lambda eviction.
  static Status validate(const KvCacheConfig& config) noexcept;
  explicit KvCache(const KvCacheConfig& config);  // config must validate

  const KvCacheConfig& config() const noexcept { return config_; }
  // Tokens appended to `layer` since the last reset (its next token's position), and tokens it keeps now.
  std::size_t position(std::size_t layer) const noexcept { return layers_[layer].position; }
  std::size_t stored(std::size_t layer) const noexcept { return layers_[layer].stored; }
  std::size_t memory_bytes() const noexcept;
  // The most queries attend() takes for `layer`: the newest tokens at consecutive positions in storage (all of
  // them until something is evicted, then those after the global tokens).
  std::size_t max_queries(std::size_t layer) const noexcept;

  // Appends `tokens` tokens to every batch row of `layer`: k is [batch, tokens, heads_kv, head_dim] and v
  // [batch, tokens, heads_kv, head_dim_v] in `input` (converted to the storage type). Evicts what the newest
  // `tokens` queries can no longer see.
  Status append(std::size_t layer, const void* k, const void* v, DType input, std::size_t tokens) noexcept;

  // The newest seq_q tokens' queries, q [batch, seq_q, heads_q, head_dim] in `input` (converted to the storage
  // type), attend to `layer`: out [batch, seq_q, heads_q, head_dim_v] in the same type as q; lse [batch, heads_q,
  // seq_q] (optional). seq_q must not exceed max_queries(layer).
  Status attend(std::size_t layer, const void* q, DType input, std::size_t heads_q, std::size_t seq_q,
                const KvAttendOptions& options, void* out, float* lse) const noexcept;

  // Forgets every token of every layer (keeps the memory for reuse).
  void reset() noexcept;

 private:
  struct Layer {
    AlignedVector<std::uint8_t> k, v;
    std::size_t capacity = 0, stored = 0, position = 0;
  };

  std::size_t element_bytes() const noexcept { return config_.dtype == DType::f32 ? 4 : 2; }
  std::size_t kept_globals(const Layer& l) const noexcept;
  void evict(Layer& l, std::size_t incoming) const;
  void reserve(Layer& l, std::size_t tokens) const;

  KvCacheConfig config_;
  std::vector<Layer> layers_;
};

}  // namespace tessera::attention
