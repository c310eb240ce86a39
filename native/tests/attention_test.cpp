#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "tessera/attention.h"
#include "tessera/half.h"
#include "tessera/kv_cache.h"
#include "tessera/rng.h"
#include "test_util.h"

using namespace tessera;
using test::normals;
namespace at = tessera::attention;

namespace {

std::size_t index(const at::Shape& s, std::size_t heads, std::size_t seq, std::size_t dim, std::size_t b,
                  std::size_t h, std::size_t t, std::size_t d) {
  return s.layout == at::Layout::bshd ? ((b * seq + t) * heads + h) * dim + d : ((b * heads + h) * seq + t) * dim + d;
}

// Attention in float64, straight from the definition in tessera/attention.h.
void reference(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
               const at::Shape& s, const at::Options& o, std::vector<double>& out, std::vector<double>& lse) {
  out.assign(s.batch * s.heads_q * s.seq_q * s.head_dim_v, 0.0);
  lse.assign(s.batch * s.heads_q * s.seq_q, -INFINITY);
  const std::size_t group = s.heads_q / s.heads_kv;
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t h = 0; h < s.heads_q; ++h)
      for (std::size_t i = 0; i < s.seq_q; ++i) {
        const long length = o.key_lengths ? o.key_lengths[b] : static_cast<long>(s.seq_k);
        const long p = static_cast<long>(i) + length - static_cast<long>(s.seq_q);
        std::vector<double> logit(s.seq_k, -INFINITY);
        double mx = -INFINITY;
        for (std::size_t j = 0; j < s.seq_k; ++j) {
          const long jj = static_cast<long>(j);
          bool main = jj < length;
          if (o.causal) main = main && jj <= p;
          if (o.window) main = main && (o.causal ? p - jj < static_cast<long>(o.window) : std::labs(p - jj) < static_cast<long>(o.window));
          if (o.segments) {
            long doc_p = -1, doc_j = -1;
            for (std::size_t d = 0; d < o.segment_count; ++d) {
              if (p >= o.segments[d] && p < o.segments[d + 1]) doc_p = static_cast<long>(d);
              if (jj >= o.segments[d] && jj < o.segments[d + 1]) doc_j = static_cast<long>(d);
            }
            main = main && doc_p >= 0 && doc_p == doc_j;
          }
          bool prefix = (jj < static_cast<long>(o.global_tokens) || (o.anchor && jj == 0)) && jj < length;
          if (o.causal) prefix = prefix && jj <= p;
          if (!main && !prefix) continue;
          double dot = 0;
          for (std::size_t d = 0; d < s.head_dim; ++d)
            dot += q[index(s, s.heads_q, s.seq_q, s.head_dim, b, h, i, d)] * k[index(s, s.heads_kv, s.seq_k, s.head_dim, b, h / group, j, d)];
          double x = o.scale * dot;
          if (o.softcap > 0) x = o.softcap * std::tanh(x / o.softcap);
          if (o.bias) {
            const std::size_t bb = o.bias_batch == 1 ? 0 : b, bh = o.bias_heads == 1 ? 0 : h;
            x += o.bias[((bb * o.bias_heads + bh) * s.seq_q + i) * s.seq_k + j];
          }
          if (o.alibi_slopes) x -= o.alibi_slopes[h] * std::fabs(static_cast<double>(p - jj));
          x /= o.temperature;
          logit[j] = x;
          mx = std::max(mx, x);
        }
        if (mx == -INFINITY) continue;
        double sum = 0;
        for (std::size_t j = 0; j < s.seq_k; ++j) sum += std::exp(logit[j] - mx);
        lse[(b * s.heads_q + h) * s.seq_q + i] = mx + std::log(sum);
        for (std::size_t j = 0; j < s.seq_k; ++j) {
          const double w = std::exp(logit[j] - mx) / sum;
          if (w == 0) continue;
          for (std::size_t d = 0; d < s.head_dim_v; ++d)
            out[index(s, s.heads_q, s.seq_q, s.head_dim_v, b, h, i, d)] += w * v[index(s, s.heads_kv, s.seq_k, s.head_dim_v, b, h / group, j, d)];
        }
      }
}

struct Tensor {
  std::vector<std::uint8_t> bytes;
  std::vector<double> values;  // what the storage holds, widened
};

Tensor make(std::size_t n, std::uint64_t seed, at::DType t) {
  const auto f = normals(n, seed);
  Tensor out;
  out.values.resize(n);
  out.bytes.resize(n * (t == at::DType::f32 ? 4 : 2));
  for (std::size_t i = 0; i < n; ++i) {
    if (t == at::DType::f32) {
      std::memcpy(&out.bytes[i * 4], &f[i], 4);
      out.values[i] = f[i];
    } else {
      const std::uint16_t h = t == at::DType::f16 ? f32_to_f16(f[i]) : f32_to_bf16(f[i]);
      std::memcpy(&out.bytes[i * 2], &h, 2);
      out.values[i] = t == at::DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
  }
  return out;
}

double read(const std::vector<std::uint8_t>& bytes, std::size_t i, at::DType t) {
  if (t == at::DType::f32) {
    float f;
    std::memcpy(&f, &bytes[i * 4], 4);
    return f;
  }
  std::uint16_t h;
  std::memcpy(&h, &bytes[i * 2], 2);
  return t == at::DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// Runs one case on every level and checks it against the float64 reference: |out - ref| <= 2e-6 (1 + |ref|) for
// float32 storage (plus one rounding of the output type for half storage); lse to 2e-6 (1 + |lse|); fully masked
// rows exactly zero with lse = -inf.
void check_case(at::Shape s, at::Options o, at::DType t, std::uint64_t seed) {
  test::RuntimeGuard guard;
  const auto q = make(s.batch * s.heads_q * s.seq_q * s.head_dim, seed, t);
  const auto k = make(s.batch * s.heads_kv * s.seq_k * s.head_dim, seed + 1, t);
  const auto v = make(s.batch * s.heads_kv * s.seq_k * s.head_dim_v, seed + 2, t);
  std::vector<double> want, want_lse;
  reference(q.values, k.values, v.values, s, o, want, want_lse);
  const double unit = t == at::DType::f32 ? 0 : t == at::DType::f16 ? 1.0 / 1024 : 1.0 / 128;
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    std::vector<std::uint8_t> out(want.size() * (t == at::DType::f32 ? 4 : 2), 0xFF);  // poisoned: NaN patterns
    std::vector<float> lse(want_lse.size(), NAN);
    REQUIRE(at::attend(q.bytes.data(), k.bytes.data(), v.bytes.data(), t, s, o, out.data(), lse.data()) == Status::ok);
    for (std::size_t i = 0; i < want.size(); ++i) {
      const double got = read(out, i, t);
      INFO("level " << simd_level_name(level) << " element " << i);
      REQUIRE(std::fabs(got - want[i]) <= 2e-6 * (1 + std::fabs(want[i])) + unit * std::fabs(want[i]));
    }
    for (std::size_t i = 0; i < want_lse.size(); ++i) {
      if (std::isinf(want_lse[i])) REQUIRE((std::isinf(lse[i]) && lse[i] < 0));
      else REQUIRE(std::fabs(lse[i] - want_lse[i]) <= 2e-6 * (1 + std::fabs(want_lse[i])));
    }
  }
}

}  // namespace

TEST_CASE("attention equals a float64 reference: shapes, layouts, GQA, head sizes, tails, every level") {
  const at::Shape shapes[] = {
      {1, 1, 1, 1, 1, 1, 1, at::Layout::bshd},      {2, 4, 2, 5, 7, 16, 16, at::Layout::bhsd},
      {1, 3, 1, 70, 130, 24, 8, at::Layout::bshd},  {1, 2, 2, 65, 64, 128, 128, at::Layout::bshd},
      {2, 8, 2, 3, 200, 64, 64, at::Layout::bhsd},  {1, 1, 1, 129, 129, 256, 256, at::Layout::bhsd},
      {1, 2, 1, 33, 0, 8, 8, at::Layout::bshd},
  };
  std::uint64_t seed = 10;
  for (const auto& s : shapes) {
    at::Options o;
    o.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
    check_case(s, o, at::DType::f32, seed += 3);
    o.causal = true;
    check_case(s, o, at::DType::f32, seed += 3);
  }
}

TEST_CASE("attention masks: causal with fewer queries, windows, Λ, key lengths, segments with anchor") {
  std::uint64_t seed = 100;
  // Query lanes (many queries), then the row kernel (a few rows per key/value head, as in decoding).
  for (const std::size_t few : {0, 1}) {
  const at::Shape s{2, 2, 1, few ? std::size_t{3} : 40, 300, 32, 32, at::Layout::bshd};
  at::Options o;
  o.scale = 0.2f;
  o.causal = true, o.window = 37;
  check_case(s, o, at::DType::f32, seed++);
  o.global_tokens = 5;  // LM-Infinite's Λ
  check_case(s, o, at::DType::f32, seed++);
  o = {};
  o.scale = 0.2f, o.window = 20;  // bidirectional band
  check_case(s, o, at::DType::f32, seed++);
  const std::int32_t lengths[] = {0, 211};
  o = {};
  o.scale = 0.2f, o.key_lengths = lengths, o.causal = true;
  check_case(s, o, at::DType::f32, seed++);
  const at::Shape packed{1, 2, 2, few ? std::size_t{7} : 150, 150, 16, 16, at::Layout::bhsd};
  const std::int32_t docs[] = {0, 1, 50, 51, 149, 150};
  o = {};
  o.scale = 0.25f, o.segments = docs, o.segment_count = 5, o.causal = true, o.anchor = true;
  check_case(packed, o, at::DType::f32, seed++);
  o.causal = false, o.anchor = false;
  check_case(packed, o, at::DType::f32, seed++);
  const at::Shape longer{1, 1, 1, few ? std::size_t{12} : 100, few ? std::size_t{5} : 40, 8, 8, at::Layout::bshd};  // more queries than keys: the first ones see none
  o = {};
  o.scale = 0.3f, o.causal = true;
  check_case(longer, o, at::DType::f32, seed++);
  }
}

TEST_CASE("attention logits: bias broadcast, ALiBi, softcap, temperature; half storage") {
  std::uint64_t seed = 200;
  for (const std::size_t seq_q : {19, 4}) {  // query lanes, then the row kernel
  const at::Shape s{2, 3, 3, seq_q, 77, 40, 24, at::Layout::bhsd};
  const auto bias = normals(1 * 3 * seq_q * 77, 9);
  const float slopes[] = {0.5f, 0.125f, 0.03125f};
  at::Options o;
  o.scale = 0.4f, o.bias = bias.data(), o.bias_batch = 1, o.bias_heads = 3;
  check_case(s, o, at::DType::f32, seed++);
  o.alibi_slopes = slopes, o.softcap = 3.0f, o.temperature = 0.7f, o.causal = true;
  check_case(s, o, at::DType::f32, seed++);
  o = {};
  o.scale = 0.3f, o.temperature = 1.6f;
  check_case(s, o, at::DType::f16, seed++);
  o.causal = true, o.softcap = 5.0f;
  check_case(s, o, at::DType::bf16, seed++);
  }
}

TEST_CASE("attention is identical for any thread count and rejects bad arguments") {
  test::RuntimeGuard guard;
  const at::Shape s{1, 4, 2, 200, 300, 64, 64, at::Layout::bshd};
  const auto q = normals(200 * 4 * 64, 1), k = normals(300 * 2 * 64, 2), v = normals(300 * 2 * 64, 3);
  at::Options o;
  o.scale = 0.125f, o.causal = true;
  std::vector<float> one(200 * 4 * 64), many(one.size());
  REQUIRE(set_thread_count(1) == Status::ok);
  REQUIRE(at::attend(q.data(), k.data(), v.data(), at::DType::f32, s, o, one.data(), nullptr) == Status::ok);
  for (std::size_t threads : {2, 3, 64}) {
    REQUIRE(set_thread_count(threads) == Status::ok);
    REQUIRE(at::attend(q.data(), k.data(), v.data(), at::DType::f32, s, o, many.data(), nullptr) == Status::ok);
    CHECK(std::memcmp(one.data(), many.data(), one.size() * 4) == 0);
  }
  auto rejects = [&](at::Shape bad, at::Options opt) {
    CHECK(at::attend(q.data(), k.data(), v.data(), at::DType::f32, bad, opt, many.data(), nullptr) == Status::invalid_argument);
  };
  at::Shape bad = s;
  bad.heads_kv = 3;  // 4 query heads do not group over 3
  rejects(bad, o);
  bad = s, bad.head_dim = 257;
  rejects(bad, o);
  bad = s, bad.batch = std::size_t{1} << 62;
  rejects(bad, o);
  at::Options opt = o;
  opt.scale = NAN;
  rejects(s, opt);
  opt = o, opt.temperature = 0;
  rejects(s, opt);
  opt = o, opt.global_tokens = 4;  // without a window
  rejects(s, opt);
  const std::int32_t too_long[] = {301};
  opt = o, opt.key_lengths = too_long;
  rejects(s, opt);
  const std::int32_t unsorted[] = {0, 200, 100, 300};
  opt = o, opt.segments = unsorted, opt.segment_count = 3;
  rejects(s, opt);
  opt = o, opt.anchor = true;  // an anchor needs segments
  rejects(s, opt);
}

TEST_CASE("merging two attention states over a key split equals attention over all keys") {
  const at::Shape s{2, 3, 3, 17, 90, 16, 16, at::Layout::bshd};
  const auto q = normals(2 * 17 * 3 * 16, 4), k = normals(2 * 90 * 3 * 16, 5), v = normals(2 * 90 * 3 * 16, 6);
  at::Options o;
  o.scale = 0.25f;
  std::vector<float> full(2 * 17 * 3 * 16), full_lse(2 * 3 * 17);
  REQUIRE(at::attend(q.data(), k.data(), v.data(), at::DType::f32, s, o, full.data(), full_lse.data()) == Status::ok);
  // Keys 0..29 and 30..89 as two calls (bshd: a key range is a contiguous slice per batch row only, so copy).
  auto slice = [&](const std::vector<float>& x, std::size_t from, std::size_t to) {
    std::vector<float> out;
    for (std::size_t b = 0; b < 2; ++b)
      out.insert(out.end(), x.begin() + static_cast<long>((b * 90 + from) * 48), x.begin() + static_cast<long>((b * 90 + to) * 48));
    return out;
  };
  at::Shape a = s, c = s;
  a.seq_k = 30, c.seq_k = 60;
  std::vector<float> oa(full.size()), la(full_lse.size()), oc(full.size()), lc(full_lse.size());
  const auto ka = slice(k, 0, 30), va = slice(v, 0, 30), kc = slice(k, 30, 90), vc = slice(v, 30, 90);
  REQUIRE(at::attend(q.data(), ka.data(), va.data(), at::DType::f32, a, o, oa.data(), la.data()) == Status::ok);
  REQUIRE(at::attend(q.data(), kc.data(), vc.data(), at::DType::f32, c, o, oc.data(), lc.data()) == Status::ok);
  const at::MergeShape ms{2, 3, 17, 16, at::Layout::bshd};
  REQUIRE(at::merge_states(oa.data(), la.data(), oc.data(), lc.data(), ms, oa.data(), la.data()) == Status::ok);  // in place
  for (std::size_t i = 0; i < full.size(); ++i) REQUIRE(std::fabs(oa[i] - full[i]) <= 2e-6 * (1 + std::fabs(full[i])));
  for (std::size_t i = 0; i < full_lse.size(); ++i) REQUIRE(std::fabs(la[i] - full_lse[i]) <= 2e-6 * (1 + std::fabs(full_lse[i])));
  // Both sides empty: zeros and -inf.
  std::vector<float> empty_lse(full_lse.size(), -INFINITY), merged(full.size(), NAN), merged_lse(full_lse.size());
  REQUIRE(at::merge_states(oa.data(), empty_lse.data(), oc.data(), empty_lse.data(), ms, merged.data(), merged_lse.data()) == Status::ok);
  CHECK(std::all_of(merged.begin(), merged.end(), [](float x) { return x == 0.0f; }));
  CHECK(std::all_of(merged_lse.begin(), merged_lse.end(), [](float x) { return std::isinf(x) && x < 0; }));
}

TEST_CASE("a KV cache with eviction attends like the Λ / sliding mask over the whole history") {
  const std::size_t heads_q = 4, heads_kv = 2, dim = 20, total = 90;
  const std::vector<std::size_t> chunks = {7, 1, 1, 1, 12, 1, 1, 30, 1, 1, 1, 1, 32};
  for (const at::Eviction eviction : {at::Eviction::none, at::Eviction::sliding, at::Eviction::lambda}) {
    at::KvCacheConfig c;
    c.layers = 1, c.batch = 2, c.heads_kv = heads_kv, c.head_dim = dim, c.head_dim_v = dim;
    c.eviction = eviction;
    c.window = eviction == at::Eviction::none ? 0 : 9;
    c.global_tokens = eviction == at::Eviction::lambda ? 4 : 0;
    REQUIRE(at::KvCache::validate(c) == Status::ok);
    at::KvCache cache(c);
    const std::vector<float> q = normals(c.batch * total * heads_q * dim, 1), k = normals(c.batch * total * heads_kv * dim, 2),
                             v = normals(c.batch * total * heads_kv * dim, 3);
    // The reference: every token's query over the whole history with the cache's mask in absolute positions.
    at::Shape full;
    full.batch = c.batch, full.heads_q = heads_q, full.heads_kv = heads_kv, full.seq_q = total, full.seq_k = total;
    full.head_dim = dim, full.head_dim_v = dim;
    at::Options mask;
    mask.scale = 0.2f, mask.causal = true, mask.window = c.window, mask.global_tokens = c.global_tokens;
    std::vector<double> want, want_lse;
    reference(std::vector<double>(q.begin(), q.end()), std::vector<double>(k.begin(), k.end()),
              std::vector<double>(v.begin(), v.end()), full, mask, want, want_lse);
    auto rows = [&](const std::vector<float>& x, std::size_t heads, std::size_t from, std::size_t n) {
      std::vector<float> out(c.batch * n * heads * dim);
      for (std::size_t b = 0; b < c.batch; ++b)
        std::copy_n(x.begin() + ((b * total + from) * heads) * dim, n * heads * dim, out.begin() + b * n * heads * dim);
      return out;
    };
    std::size_t at_token = 0;
    for (const std::size_t n : chunks) {
      const auto kk = rows(k, heads_kv, at_token, n), vv = rows(v, heads_kv, at_token, n), qq = rows(q, heads_q, at_token, n);
      REQUIRE(cache.append(0, kk.data(), vv.data(), at::DType::f32, n) == Status::ok);
      at::KvAttendOptions o;
      o.scale = 0.2f;
      std::vector<float> out(qq.size(), std::numeric_limits<float>::quiet_NaN());  // poisoned
      REQUIRE(cache.attend(0, qq.data(), at::DType::f32, heads_q, n, o, out.data(), nullptr) == Status::ok);
      double err = 0;
      for (std::size_t b = 0; b < c.batch; ++b)
        for (std::size_t t = 0; t < n; ++t)
          for (std::size_t x = 0; x < heads_q * dim; ++x)
            err = std::max(err, std::fabs(out[(b * n + t) * heads_q * dim + x] - want[((b * total + at_token + t) * heads_q) * dim + x]));
      CHECK(err < 2e-6);
      at_token += n;
      CHECK(cache.position(0) == at_token);
      if (eviction != at::Eviction::none) CHECK(cache.stored(0) <= c.global_tokens + 2 * c.window + 32);
    }
    REQUIRE(at_token == total);
    // Queries beyond the kept run, a bad layer, and an evicting cache given its own mask are refused.
    std::vector<float> out(c.batch * 64 * heads_q * dim);
    at::KvAttendOptions o;
    o.scale = 0.2f;
    if (eviction != at::Eviction::none)
      CHECK(cache.attend(0, q.data(), at::DType::f32, heads_q, cache.max_queries(0) + 1, o, out.data(), nullptr) ==
            Status::invalid_argument);
    CHECK(cache.attend(1, q.data(), at::DType::f32, heads_q, 1, o, out.data(), nullptr) == Status::invalid_argument);
    CHECK(cache.attend(0, q.data(), at::DType::f32, 3, 1, o, out.data(), nullptr) == Status::invalid_argument);
  }
  at::KvCacheConfig bad;
  bad.head_dim = bad.head_dim_v = 8;
  bad.eviction = at::Eviction::sliding;
  CHECK(at::KvCache::validate(bad) == Status::invalid_argument);  // no window
  bad.window = 4, bad.global_tokens = 2;
  CHECK(at::KvCache::validate(bad) == Status::invalid_argument);  // globals need lambda
}
