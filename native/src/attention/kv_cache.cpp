// The key/value cache: appends with type conversion, eviction by moving the kept recent tokens down, and attention
// over the storage through tessera::attention::attend.
#include "tessera/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "tessera/half.h"
#include "tessera/runtime.h"

namespace tessera::attention {
namespace {

constexpr std::size_t kMaxTokens = std::size_t{1} << 24;  // attend's sequence limit

std::size_t bytes_of(DType t) noexcept { return t == DType::f32 ? 4 : 2; }

float load(const void* p, DType t, std::size_t i) noexcept {
  if (t == DType::f32) return static_cast<const float*>(p)[i];
  const std::uint16_t h = static_cast<const std::uint16_t*>(p)[i];
  return t == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
}

void store(void* p, DType t, std::size_t i, float x) noexcept {
  if (t == DType::f32) static_cast<float*>(p)[i] = x;
  else static_cast<std::uint16_t*>(p)[i] = t == DType::f16 ? f32_to_f16(x) : f32_to_bf16(x);
}

// n elements from one type to another (a plain copy when they match), over the pool for large n.
Status convert(const void* src, DType from, void* dst, DType to, std::size_t n) noexcept {
  if (from == to) {
    if (n > 0) std::memcpy(dst, src, n * bytes_of(from));
    return Status::ok;
  }
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) store(dst, to, i, load(src, from, i));
  };
  return parallel_for(n, 1 << 14, body);
}

}  // namespace

Status KvCache::validate(const KvCacheConfig& c) noexcept {
  if (c.layers == 0 || c.batch == 0 || c.heads_kv == 0) return Status::invalid_argument;
  if (c.head_dim == 0 || c.head_dim > kMaxHeadDim || c.head_dim_v == 0 || c.head_dim_v > kMaxHeadDim)
    return Status::invalid_argument;
  if (c.eviction == Eviction::none && (c.window != 0 || c.global_tokens != 0)) return Status::invalid_argument;
  if (c.eviction != Eviction::none && (c.window == 0 || c.window > kMaxTokens)) return Status::invalid_argument;
  if (c.eviction != Eviction::lambda && c.global_tokens != 0) return Status::invalid_argument;
  if (c.global_tokens > kMaxTokens) return Status::invalid_argument;
  std::size_t n = 0;
  if (!element_count({c.layers, c.batch, c.heads_kv, c.head_dim + c.head_dim_v}, &n)) return Status::invalid_argument;
  return Status::ok;
}

KvCache::KvCache(const KvCacheConfig& config) : config_(config), layers_(config.layers) {}

std::size_t KvCache::memory_bytes() const noexcept {
  std::size_t n = 0;
  for (const Layer& l : layers_) n += l.k.capacity() + l.v.capacity();
  return n;
}

std::size_t KvCache::max_queries(std::size_t layer) const noexcept {
  const Layer& l = layers_[layer];
  return l.position == l.stored ? l.stored : l.stored - kept_globals(l);
}

std::size_t KvCache::kept_globals(const Layer& l) const noexcept {
  return config_.eviction == Eviction::lambda ? std::min(config_.global_tokens, l.stored) : 0;
}

// Before `incoming` tokens arrive: when they would not fit, drop the recent tokens that none of the incoming queries
// can see (each sees the window - 1 tokens before it), moving the rest down behind the global tokens.
void KvCache::evict(Layer& l, std::size_t incoming) const {
  if (config_.eviction == Eviction::none || l.stored + incoming <= l.capacity) return;
  const std::size_t globals = kept_globals(l), recent = l.stored - globals;
  const std::size_t keep = std::min(recent, config_.window - 1);
  if (keep == recent) return;
  const std::size_t drop = recent - keep, eb = element_bytes();
  const std::size_t row_k = config_.heads_kv * config_.head_dim * eb, row_v = config_.heads_kv * config_.head_dim_v * eb;
  for (std::size_t b = 0; b < config_.batch; ++b) {
    std::uint8_t* kb = l.k.data() + b * l.capacity * row_k;
    std::uint8_t* vb = l.v.data() + b * l.capacity * row_v;
    std::memmove(kb + globals * row_k, kb + (globals + drop) * row_k, keep * row_k);
    std::memmove(vb + globals * row_v, vb + (globals + drop) * row_v, keep * row_v);
  }
  l.stored = globals + keep;
}

// Room for `tokens` tokens per batch row. With eviction the capacity is at least globals + 2 windows, so the moves
// of evict() happen about once per window of appended tokens; without, it grows geometrically.
void KvCache::reserve(Layer& l, std::size_t tokens) const {
  if (tokens <= l.capacity) return;
  std::size_t capacity = std::max(tokens, l.capacity + l.capacity / 2);
  if (config_.eviction != Eviction::none)
    capacity = std::max(tokens, config_.global_tokens + 2 * config_.window);
  capacity = std::min(std::max<std::size_t>(capacity, 16), std::max(tokens, kMaxTokens));
  const std::size_t eb = element_bytes();
  const std::size_t row_k = config_.heads_kv * config_.head_dim * eb, row_v = config_.heads_kv * config_.head_dim_v * eb;
  AlignedVector<std::uint8_t> k(config_.batch * capacity * row_k), v(config_.batch * capacity * row_v);
  for (std::size_t b = 0; b < config_.batch && l.stored > 0; ++b) {
    std::memcpy(k.data() + b * capacity * row_k, l.k.data() + b * l.capacity * row_k, l.stored * row_k);
    std::memcpy(v.data() + b * capacity * row_v, l.v.data() + b * l.capacity * row_v, l.stored * row_v);
  }
  l.k.swap(k);
  l.v.swap(v);
  l.capacity = capacity;
}

Status KvCache::append(std::size_t layer, const void* k, const void* v, DType input, std::size_t tokens) noexcept {
  if (layer >= layers_.size()) return Status::invalid_argument;
  if (tokens == 0) return Status::ok;
  if (!k || !v || tokens > kMaxTokens) return Status::invalid_argument;
  Layer& l = layers_[layer];
  if (l.position > std::numeric_limits<std::int32_t>::max() - tokens) return Status::invalid_argument;
  try {
    evict(l, tokens);
    if (l.stored + tokens > kMaxTokens) return Status::invalid_argument;  // eviction none past attend's limit
    reserve(l, l.stored + tokens);
  } catch (...) {
    return Status::out_of_memory;
  }
  const std::size_t per_k = config_.heads_kv * config_.head_dim, per_v = config_.heads_kv * config_.head_dim_v;
  const std::size_t eb = element_bytes(), ib = bytes_of(input);
  for (std::size_t b = 0; b < config_.batch; ++b) {
    const auto* ks = static_cast<const std::uint8_t*>(k) + b * tokens * per_k * ib;
    const auto* vs = static_cast<const std::uint8_t*>(v) + b * tokens * per_v * ib;
    std::uint8_t* kd = l.k.data() + (b * l.capacity + l.stored) * per_k * eb;
    std::uint8_t* vd = l.v.data() + (b * l.capacity + l.stored) * per_v * eb;
    Status s = convert(ks, input, kd, config_.dtype, tokens * per_k);
    if (s == Status::ok) s = convert(vs, input, vd, config_.dtype, tokens * per_v);
    if (s != Status::ok) return s;
  }
  l.stored += tokens;
  l.position += tokens;
  return Status::ok;
}

Status KvCache::attend(std::size_t layer, const void* q, DType input, std::size_t heads_q, std::size_t seq_q,
                       const KvAttendOptions& o, void* out, float* lse) const noexcept {
  if (layer >= layers_.size() || heads_q == 0 || heads_q % config_.heads_kv != 0) return Status::invalid_argument;
  const Layer& l = layers_[layer];
  const bool evicting = config_.eviction != Eviction::none;
  if (evicting && (o.window != 0 || o.global_tokens != 0 || o.alibi_slopes)) return Status::invalid_argument;
  // The queries are the newest tokens, so they must lie in the run of consecutive positions at the end of storage.
  if (seq_q > max_queries(layer)) return Status::invalid_argument;
  std::size_t n_q = 0, n_o = 0;
  if (!element_count({config_.batch, seq_q, heads_q, config_.head_dim}, &n_q) ||
      !element_count({config_.batch, seq_q, heads_q, config_.head_dim_v}, &n_o))
    return Status::invalid_argument;
  if (n_o == 0) return Status::ok;
  if (!q || !out) return Status::invalid_argument;

  Shape shape;
  shape.batch = config_.batch;
  shape.heads_q = heads_q;
  shape.heads_kv = config_.heads_kv;
  shape.seq_q = seq_q;
  shape.seq_k = l.capacity;  // rows are capacity apart; key_lengths says how many are valid
  shape.head_dim = config_.head_dim;
  shape.head_dim_v = config_.head_dim_v;
  shape.layout = Layout::bshd;
  Options a;
  a.scale = o.scale;
  a.temperature = o.temperature;
  a.softcap = o.softcap;
  a.causal = o.causal;
  a.window = evicting ? config_.window : o.window;
  a.global_tokens = evicting ? config_.global_tokens : o.global_tokens;
  a.alibi_slopes = o.alibi_slopes;
  try {
    const std::vector<std::int32_t> lengths(config_.batch, static_cast<std::int32_t>(l.stored));
    a.key_lengths = lengths.data();
    if (input == config_.dtype) return tessera::attention::attend(q, l.k.data(), l.v.data(), input, shape, a, out, lse);
    // Queries are converted to the storage type (as llama.cpp converts Q to its K cache's type) and the output back.
    std::vector<std::uint8_t> qs(n_q * element_bytes()), os(n_o * element_bytes());
    Status s = convert(q, input, qs.data(), config_.dtype, n_q);
    if (s == Status::ok) s = tessera::attention::attend(qs.data(), l.k.data(), l.v.data(), config_.dtype, shape, a, os.data(), lse);
    if (s == Status::ok) s = convert(os.data(), config_.dtype, out, input, n_o);
    return s;
  } catch (...) {
    return Status::out_of_memory;
  }
}

void KvCache::reset() noexcept {
  for (Layer& l : layers_) l.stored = l.position = 0;
}

}  // namespace tessera::attention
