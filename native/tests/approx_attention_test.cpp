#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <tuple>
#include <vector>

#include "tessera/approx_attention.h"
#include "tessera/rng.h"
#include "tessera/runtime.h"
#include "test_util.h"

using namespace tessera;
using test::normals;
namespace at = tessera::attention;

namespace {

// Float64 attention of q [nq, heads_q, dim] over every key of k [nk, heads_kv, dim] ('bshd', batch 1).
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                              std::size_t nq, std::size_t nk, std::size_t hq, std::size_t hkv, std::size_t dim,
                              std::size_t dim_v, double scale) {
  std::vector<double> out(nq * hq * dim_v, 0.0);
  for (std::size_t h = 0; h < hq; ++h)
    for (std::size_t i = 0; i < nq; ++i) {
      const std::size_t hk = h / (hq / hkv);
      std::vector<double> s(nk);
      double mx = -INFINITY;
      for (std::size_t j = 0; j < nk; ++j) {
        double dot = 0;
        for (std::size_t d = 0; d < dim; ++d) dot += static_cast<double>(q[(i * hq + h) * dim + d]) * k[(j * hkv + hk) * dim + d];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (std::size_t j = 0; j < nk; ++j)
        for (std::size_t d = 0; d < dim_v; ++d) out[(i * hq + h) * dim_v + d] += s[j] / sum * v[(j * hkv + hk) * dim_v + d];
    }
  return out;
}

double max_rel(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < b.size(); ++i) num = std::max(num, std::fabs(a[i] - b[i])), den = std::max(den, std::fabs(b[i]));
  return num / den;
}

}  // namespace

TEST_CASE("Squeezed Attention keeping every cluster equals float64 attention, on every level and thread count") {
  test::RuntimeGuard guard;
  const std::size_t nk = 203, nq = 5, hkv = 2, hq = 4, dim = 19, dim_v = 6;
  const auto k = normals(nk * hkv * dim, 1), v = normals(nk * hkv * dim_v, 2), q = normals(nq * hq * dim, 3);
  const double scale = 1 / std::sqrt(static_cast<double>(dim));
  const auto want = reference(q, k, v, nq, nk, hq, hkv, dim, dim_v, scale);
  at::SqueezedConfig c;
  c.heads_kv = hkv, c.seq_k = nk, c.head_dim = dim, c.head_dim_v = dim_v, c.clusters = 10, c.iterations = 5;
  std::vector<std::uint32_t> first_order;
  std::vector<float> first_out;
  for (SimdLevel level : test::levels()) {
    CAPTURE(simd_level_name(level));
    REQUIRE(set_simd_level(level) == Status::ok);
    for (std::size_t threads : {1, 3}) {
      REQUIRE(set_thread_count(threads) == Status::ok);
      std::unique_ptr<at::SqueezedIndex> index;
      REQUIRE(at::SqueezedIndex::build(k.data(), v.data(), c, &index) == Status::ok);
      at::SqueezedQuery query;
      query.heads_q = hq, query.seq_q = nq, query.scale = static_cast<float>(scale);
      std::vector<float> out(nq * hq * dim_v), lse(hq * nq);
      double kept = 0;
      REQUIRE(index->attend(q.data(), query, out.data(), lse.data(), &kept) == Status::ok);
      CHECK(kept == 1.0);
      CHECK(max_rel(out, want) < 1e-5);
      query.keep_fraction = 1;
      REQUIRE(index->attend(q.data(), query, out.data(), lse.data(), &kept) == Status::ok);
      CHECK(max_rel(out, want) < 1e-5);
      // The clustering is the same for any thread count at one level.
      if (threads == 1) {
        first_order = index->order(), first_out = out;
      } else {
        CHECK(index->order() == first_order);
        CHECK(out == first_out);
      }
      // Offsets cover the keys; every key appears once per head.
      for (std::size_t h = 0; h < hkv; ++h) {
        CHECK(index->offsets()[h * (c.clusters + 1)] == 0);
        CHECK(index->offsets()[h * (c.clusters + 1) + c.clusters] == nk);
        std::vector<std::uint32_t> o(index->order().begin() + h * nk, index->order().begin() + (h + 1) * nk);
        std::sort(o.begin(), o.end());
        for (std::size_t j = 0; j < nk; ++j) CHECK(o[j] == j);
      }
    }
  }
}

TEST_CASE("Squeezed Attention rejects bad arguments") {
  const auto k = normals(64 * 8, 4);
  at::SqueezedConfig c;
  c.heads_kv = 1, c.seq_k = 64, c.head_dim = 8, c.head_dim_v = 8, c.clusters = 4;
  std::unique_ptr<at::SqueezedIndex> index;
  CHECK(at::SqueezedIndex::build(k.data(), k.data(), c, nullptr) == Status::invalid_argument);
  CHECK(at::SqueezedIndex::build(nullptr, k.data(), c, &index) == Status::invalid_argument);
  for (auto bad : {+[](at::SqueezedConfig& x) { x.clusters = 0; }, +[](at::SqueezedConfig& x) { x.clusters = 65; },
                   +[](at::SqueezedConfig& x) { x.head_dim = 0; }, +[](at::SqueezedConfig& x) { x.head_dim_v = 257; },
                   +[](at::SqueezedConfig& x) { x.heads_kv = 0; },
                   +[](at::SqueezedConfig& x) { x.heads_kv = std::size_t{1} << 62; }}) {
    at::SqueezedConfig b = c;
    bad(b);
    CHECK(at::SqueezedIndex::build(k.data(), k.data(), b, &index) == Status::invalid_argument);
    CHECK(!index);
  }
  REQUIRE(at::SqueezedIndex::build(k.data(), k.data(), c, &index) == Status::ok);
  std::vector<float> q(2 * 8), out(2 * 8);
  at::SqueezedQuery query;
  query.heads_q = 1, query.seq_q = 2, query.scale = 1;
  CHECK(index->attend(q.data(), query, out.data(), nullptr, nullptr) == Status::ok);
  at::SqueezedQuery b = query;
  b.keep_fraction = 1.5;
  CHECK(index->attend(q.data(), b, out.data(), nullptr, nullptr) == Status::invalid_argument);
  b = query, b.threshold = -1;
  CHECK(index->attend(q.data(), b, out.data(), nullptr, nullptr) == Status::invalid_argument);
  b = query, b.scale = NAN;
  CHECK(index->attend(q.data(), b, out.data(), nullptr, nullptr) == Status::invalid_argument);
  b = query, b.seq_q = std::size_t{1} << 62;
  CHECK(index->attend(q.data(), b, out.data(), nullptr, nullptr) == Status::invalid_argument);
  CHECK(index->attend(nullptr, query, out.data(), nullptr, nullptr) == Status::invalid_argument);
}

TEST_CASE("HyperAttention: exact regimes on every level, a plan that is a permutation, thread-count independence") {
  test::RuntimeGuard guard;
  at::Shape s;
  s.batch = 2, s.heads_q = 2, s.heads_kv = 1, s.seq_q = 45, s.seq_k = 45, s.head_dim = 7, s.head_dim_v = 5;
  const auto q = normals(s.batch * s.heads_q * s.seq_q * s.head_dim, 5);
  const auto k = normals(s.batch * s.heads_kv * s.seq_k * s.head_dim, 6);
  const auto v = normals(s.batch * s.heads_kv * s.seq_k * s.head_dim_v, 7);
  const std::size_t n_out = s.batch * s.heads_q * s.seq_q * s.head_dim_v;
  at::HyperOptions o;
  o.scale = 0.4f, o.min_seq_len = 8, o.block_size = 64, o.sample_size = 0, o.lsh_bits = 4;
  for (SimdLevel level : test::levels()) {
    CAPTURE(simd_level_name(level));
    REQUIRE(set_simd_level(level) == Status::ok);
    for (bool causal : {false, true}) {
      at::Options e;
      e.scale = o.scale, e.causal = causal;
      std::vector<float> exact(n_out), got(n_out);
      REQUIRE(at::attend(q.data(), k.data(), v.data(), at::DType::f32, s, e, exact.data(), nullptr) == Status::ok);
      o.causal = causal;
      REQUIRE(at::hyper_attend(q.data(), k.data(), v.data(), s, o, got.data(), nullptr) == Status::ok);
      double err = 0;
      for (std::size_t i = 0; i < n_out; ++i) err = std::max(err, static_cast<double>(std::fabs(got[i] - exact[i])));
      CHECK(err < 1e-5);
    }
  }
  o.causal = false, o.block_size = 8, o.sample_size = 9;
  std::vector<std::uint32_t> qo(s.batch * s.heads_q * s.seq_q), ko(s.batch * s.heads_q * s.seq_k), sm(s.batch * s.heads_q * 9);
  REQUIRE(at::hyper_plan(q.data(), k.data(), s, o, qo.data(), ko.data(), sm.data()) == Status::ok);
  for (std::size_t id = 0; id < s.batch * s.heads_q; ++id) {
    std::vector<std::uint32_t> a(qo.begin() + id * s.seq_q, qo.begin() + (id + 1) * s.seq_q);
    std::sort(a.begin(), a.end());
    for (std::size_t i = 0; i < s.seq_q; ++i) CHECK(a[i] == i);
  }
  for (std::uint32_t t : sm) CHECK(t < s.seq_k);
  std::vector<float> one(n_out), three(n_out);
  REQUIRE(set_thread_count(1) == Status::ok);
  REQUIRE(at::hyper_attend(q.data(), k.data(), v.data(), s, o, one.data(), nullptr) == Status::ok);
  REQUIRE(set_thread_count(3) == Status::ok);
  REQUIRE(at::hyper_attend(q.data(), k.data(), v.data(), s, o, three.data(), nullptr) == Status::ok);
  CHECK(one == three);
}

TEST_CASE("HyperAttention's plan: stable sort by the Gray rank of the LSH sign pattern, samples from the stated stream") {
  at::Shape s;
  s.batch = 2, s.heads_q = 2, s.heads_kv = 1, s.seq_q = 300, s.seq_k = 257, s.head_dim = 24, s.head_dim_v = 24;
  s.layout = at::Layout::bhsd;
  const auto q = normals(s.batch * s.heads_q * s.seq_q * s.head_dim, 8);
  const auto k = normals(s.batch * s.heads_kv * s.seq_k * s.head_dim, 9);
  at::HyperOptions o;
  o.scale = 0.2f, o.min_seq_len = 100, o.block_size = 32, o.sample_size = 40, o.lsh_bits = 5, o.seed = 77;
  std::vector<std::uint32_t> qo(s.batch * s.heads_q * s.seq_q), ko(s.batch * s.heads_q * s.seq_k), sm(s.batch * s.heads_q * 40);
  REQUIRE(at::hyper_plan(q.data(), k.data(), s, o, qo.data(), ko.data(), sm.data()) == Status::ok);
  const auto proj = normals(s.head_dim * o.lsh_bits, rng::derive(o.seed, at::kHyperLshLabel));
  // The rank in the Gray sequence of x's sign pattern, or -1 when a projection is too close to 0 to be sure of.
  auto rank = [&](const float* x) -> long {
    std::uint32_t code = 0;
    for (std::size_t r = 0; r < o.lsh_bits; ++r) {
      double dot = 0;
      for (std::size_t d = 0; d < s.head_dim; ++d) dot += static_cast<double>(x[d]) * proj[d * o.lsh_bits + r];
      if (std::fabs(dot) < 1e-4) return -1;
      if (dot > 0) code |= 1u << r;
    }
    long g = -1;
    for (std::uint32_t i = 0; i < (1u << o.lsh_bits); ++i)
      if ((i ^ (i >> 1)) == code) g = i;
    return g;
  };
  std::size_t checked = 0;
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t h = 0; h < s.heads_q; ++h) {
      const std::size_t id = b * s.heads_q + h;
      for (auto [order, x, n, heads, head] : {std::tuple{qo.data() + id * s.seq_q, q.data(), s.seq_q, s.heads_q, h},
                                              std::tuple{ko.data() + id * s.seq_k, k.data(), s.seq_k, s.heads_kv, std::size_t{0}}}) {
        long last_rank = -1;
        std::uint32_t last_index = 0;
        for (std::size_t p = 0; p < n; ++p) {
          const long r = rank(x + ((b * heads + head) * n + order[p]) * s.head_dim);  // bhsd rows
          if (r < 0) continue;
          CHECK(r >= last_rank);                                 // sorted by bucket rank
          if (r == last_rank) CHECK(order[p] > last_index);      // stable within a bucket
          last_rank = r, last_index = order[p], ++checked;
        }
      }
      const std::uint64_t stream = rng::derive(rng::derive(o.seed, at::kHyperSampleLabel), (std::uint64_t{id} << 24) | 1);
      for (std::size_t t = 0; t < 40; ++t) CHECK(sm[id * 40 + t] == rng::to_below(rng::u64(stream, t), s.seq_k));
    }
  CHECK(checked > 2000);
}

TEST_CASE("HyperAttention rejects bad arguments") {
  at::Shape s;
  s.seq_q = 10, s.seq_k = 12, s.head_dim = 4, s.head_dim_v = 4;
  std::vector<float> x(64), out(64);
  at::HyperOptions o;
  o.scale = 1;
  CHECK(at::hyper_attend(x.data(), x.data(), x.data(), s, o, out.data(), nullptr) == Status::ok);
  at::HyperOptions b = o;
  b.causal = true;
  CHECK(at::hyper_attend(x.data(), x.data(), x.data(), s, b, out.data(), nullptr) == Status::invalid_argument);
  b = o, b.block_size = 0;
  CHECK(at::hyper_attend(x.data(), x.data(), x.data(), s, b, out.data(), nullptr) == Status::invalid_argument);
  b = o, b.lsh_bits = at::kMaxLshBits + 1;
  CHECK(at::hyper_attend(x.data(), x.data(), x.data(), s, b, out.data(), nullptr) == Status::invalid_argument);
  b = o, b.scale = INFINITY;
  CHECK(at::hyper_attend(x.data(), x.data(), x.data(), s, b, out.data(), nullptr) == Status::invalid_argument);
  CHECK(at::hyper_attend(x.data(), nullptr, x.data(), s, o, out.data(), nullptr) == Status::invalid_argument);
  CHECK(at::hyper_attend(x.data(), x.data(), x.data(), s, o, nullptr, nullptr) == Status::invalid_argument);
  at::Shape big = s;
  big.batch = std::size_t{1} << 40, big.heads_q = std::size_t{1} << 30, big.heads_kv = 1;
  CHECK(at::hyper_attend(x.data(), x.data(), x.data(), big, o, out.data(), nullptr) == Status::invalid_argument);
  // No plan for a call that would be exact.
  std::vector<std::uint32_t> a(64), c(64), d(512);
  CHECK(at::hyper_plan(x.data(), x.data(), s, o, a.data(), c.data(), d.data()) == Status::invalid_argument);
}
