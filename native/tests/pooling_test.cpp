// The pooling heads (tessera/pooling.h) and their matrix product, against float64 references written here from the
// definitions, on every dispatch level this CPU runs; argument checks. Bound: |got - want| <= 1e-5 max |want|.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "attention/matmul.h"
#include "tessera/pooling.h"
#include "test_util.h"

using namespace tessera;
using test::normals;
namespace pl = tessera::pooling;

namespace {

std::vector<float> scaled(std::size_t n, std::uint64_t seed, float scale, float shift = 0) {
  auto v = normals(n, seed);
  for (float& x : v) x = x * scale + shift;
  return v;
}

// max |got - want| / max |want| (the absolute error when want is all zeros); NaN gives infinity.
double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double scale = 0, worst = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double d = std::fabs(got[i] - want[i]);
    if (!(d <= 1e300)) return INFINITY;
    worst = std::max(worst, d);
  }
  return scale == 0 ? worst : worst / scale;
}

std::vector<double> linear(const std::vector<double>& x, const float* w, const float* b, std::size_t in, std::size_t out) {
  std::vector<double> y(out);
  for (std::size_t o = 0; o < out; ++o) {
    double s = b ? b[o] : 0;
    for (std::size_t i = 0; i < in; ++i) s += static_cast<double>(w[o * in + i]) * x[i];
    y[o] = s;
  }
  return y;
}

std::vector<double> layer_norm(const std::vector<double>& x, const float* w, const float* b, double eps) {
  const double n = static_cast<double>(x.size());
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= n;
  for (double v : x) var += (v - mean) * (v - mean);
  var /= n;
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + eps) * w[i] + b[i];
  return y;
}

void l2(std::vector<double>& row) {
  double s = 0;
  for (double v : row) s += v * v;
  if (s == 0) return;
  const double n = std::max(std::sqrt(s), 1e-12);
  for (double& v : row) v /= n;
}

}  // namespace

TEST_CASE("pooling matmul: both B layouts, bias, strides, every level, any thread count") {
  test::RuntimeGuard guard;
  struct Case { std::size_t m, k, n; };
  for (Case c : {Case{1, 1, 1}, Case{7, 13, 5}, Case{130, 33, 70}, Case{3, 300, 129}}) {
    const std::size_t lda = c.k + 3, ldb_n = c.n + 2, ldb_t = c.k + 1, ldc = c.n + 5;
    const auto a = normals(c.m * lda, 1), bn = normals(c.k * ldb_n, 2), bt = normals(c.n * ldb_t, 3), bias = normals(c.n, 4);
    for (bool transposed : {false, true}) {
      std::vector<double> want(c.m * ldc, 0.0);
      for (std::size_t i = 0; i < c.m; ++i)
        for (std::size_t j = 0; j < c.n; ++j) {
          double s = bias[j];
          for (std::size_t kk = 0; kk < c.k; ++kk)
            s += static_cast<double>(a[i * lda + kk]) * (transposed ? bt[j * ldb_t + kk] : bn[kk * ldb_n + j]);
          want[i * ldc + j] = s;
        }
      std::vector<float> first;
      for (SimdLevel level : test::levels()) {
        REQUIRE(set_simd_level(level) == Status::ok);
        for (bool threaded : {true, false}) {
          std::vector<float> got(c.m * ldc, 0.0f);  // the gaps between rows stay 0, as in want
          REQUIRE(attention::detail::matmul(a.data(), lda, transposed ? bt.data() : bn.data(), transposed ? ldb_t : ldb_n,
                                            transposed, bias.data(), got.data(), ldc, c.m, c.k, c.n, threaded) == Status::ok);
          INFO("level " << simd_level_name(level) << " m " << c.m << " k " << c.k << " n " << c.n);
          CHECK(relative_error(got, want) <= 1e-5);
          if (threaded) first = got;
          else CHECK(got == first);  // the same chains of FMAs, whoever runs them
        }
      }
    }
  }
}

TEST_CASE("pool_tokens: mean, cls, last with masks and lengths; zeros for empty rows; checks") {
  test::RuntimeGuard guard;
  const std::size_t batch = 4, seq = 9, dim = 21;
  const auto h = normals(batch * seq * dim, 10);
  std::vector<std::uint8_t> mask(batch * seq);
  for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = (i * 7 + 3) % 5 < 3;
  std::fill(mask.begin() + seq, mask.begin() + 2 * seq, 0);  // row 1 empty
  std::vector<std::int32_t> left(batch * seq, 0);            // left padding: the last 2b + 1 positions
  for (std::size_t b = 0; b < batch; ++b) std::fill(left.begin() + b * seq + seq - (2 * b + 1), left.begin() + (b + 1) * seq, 1);
  const std::vector<std::int32_t> lengths = {9, 0, 1, 5};
  for (SimdLevel level : test::levels()) {
    REQUIRE(set_simd_level(level) == Status::ok);
    for (pl::Mode mode : {pl::Mode::mean, pl::Mode::cls, pl::Mode::last})
      for (int variant = 0; variant < 4; ++variant)
        for (bool normalize : {false, true}) {
          pl::TokenMask m;
          if (variant == 1) m.mask_u8 = mask.data();
          if (variant == 2) m.mask_i32 = left.data();
          if (variant == 3) m.lengths = lengths.data();
          auto valid = [&](std::size_t b, std::size_t t) {
            return variant == 1 ? mask[b * seq + t] != 0 : variant == 2 ? left[b * seq + t] != 0
                 : variant == 3 ? t < static_cast<std::size_t>(lengths[b]) : true;
          };
          std::vector<double> want(batch * dim, 0.0);
          for (std::size_t b = 0; b < batch; ++b) {
            std::vector<std::size_t> picks;
            for (std::size_t t = 0; t < seq; ++t)
              if (valid(b, t)) picks.push_back(t);
            if (mode != pl::Mode::mean && !picks.empty()) picks = {mode == pl::Mode::cls ? picks.front() : picks.back()};
            std::vector<double> row(dim, 0.0);
            for (std::size_t t : picks)
              for (std::size_t d = 0; d < dim; ++d) row[d] += h[(b * seq + t) * dim + d] / static_cast<double>(picks.size());
            if (normalize) l2(row);
            std::copy(row.begin(), row.end(), want.begin() + b * dim);
          }
          std::vector<float> out(batch * dim, NAN);
          REQUIRE(pl::pool_tokens(h.data(), batch, seq, dim, mode, m, normalize, out.data()) == Status::ok);
          INFO("mode " << static_cast<int>(mode) << " variant " << variant << " normalize " << normalize);
          CHECK(relative_error(out, want) <= 1e-6);
        }
  }
  std::vector<float> out(batch * dim);
  pl::TokenMask both;
  both.mask_u8 = mask.data(), both.lengths = lengths.data();
  CHECK(pl::pool_tokens(h.data(), batch, seq, dim, pl::Mode::mean, both, false, out.data()) == Status::invalid_argument);
  pl::TokenMask bad;
  const std::vector<std::int32_t> too_long = {10, 0, 0, 0};
  bad.lengths = too_long.data();
  CHECK(pl::pool_tokens(h.data(), batch, seq, dim, pl::Mode::mean, bad, false, out.data()) == Status::invalid_argument);
  CHECK(pl::pool_tokens(h.data(), batch, seq, 0, pl::Mode::mean, {}, false, out.data()) == Status::invalid_argument);
  CHECK(pl::pool_tokens(h.data(), batch, seq, dim, static_cast<pl::Mode>(7), {}, false, out.data()) == Status::invalid_argument);
  CHECK(pl::pool_tokens(h.data(), batch, seq, dim, pl::Mode::mean, {}, false, nullptr) == Status::invalid_argument);
  CHECK(pl::pool_tokens(h.data(), SIZE_MAX / 2, 4, dim, pl::Mode::mean, {}, false, out.data()) == Status::invalid_argument);
  std::vector<float> in_place(h);
  CHECK(pl::pool_tokens(in_place.data(), batch, seq, dim, pl::Mode::mean, {}, false, in_place.data()) == Status::invalid_argument);
  CHECK(pl::pool_tokens(nullptr, 0, seq, dim, pl::Mode::mean, {}, false, nullptr) == Status::ok);
  std::vector<float> z(2 * dim, NAN);
  CHECK(pl::pool_tokens(nullptr, 2, 0, dim, pl::Mode::last, {}, true, z.data()) == Status::ok);
  CHECK(std::all_of(z.begin(), z.end(), [](float v) { return v == 0.0f; }));
}

namespace {

struct Latent {
  pl::LatentShape s;
  std::vector<float> latents, nw, nb, cw, cb, q, kv, o, ob, fw, fb, fi, fib, fo, fob;
  pl::LatentWeights weights() const {
    pl::LatentWeights w;
    w.latents = latents.data(), w.norm_weight = nw.data(), w.norm_bias = nb.data();
    w.context_norm_weight = cw.data(), w.context_norm_bias = cb.data(), w.to_q = q.data(), w.to_kv = kv.data();
    w.to_out = o.data(), w.to_out_bias = ob.empty() ? nullptr : ob.data(), w.ff_norm_weight = fw.data();
    w.ff_norm_bias = fb.data(), w.ff_in = fi.data(), w.ff_in_bias = fib.data(), w.ff_out = fo.data();
    w.ff_out_bias = fob.data();
    return w;
  }
};

Latent make_latent(pl::LatentShape s, std::uint64_t seed, bool out_bias) {
  Latent l;
  l.s = s;
  const std::size_t d = s.dim, inner = s.heads * s.head_dim, ff = s.ff_dim;
  const float in_scale = 1.0f / std::sqrt(static_cast<float>(d));
  l.latents = normals(s.num_latents * d, seed);
  l.nw = scaled(d, seed + 1, 0.1f, 1), l.nb = scaled(d, seed + 2, 0.1f);
  l.cw = scaled(d, seed + 3, 0.1f, 1), l.cb = scaled(d, seed + 4, 0.1f);
  l.q = scaled(inner * d, seed + 5, in_scale), l.kv = scaled(2 * inner * d, seed + 6, in_scale);
  l.o = scaled(d * inner, seed + 7, 1.0f / std::sqrt(static_cast<float>(inner)));
  if (out_bias) l.ob = scaled(d, seed + 8, 0.1f);
  l.fw = scaled(d, seed + 9, 0.1f, 1), l.fb = scaled(d, seed + 10, 0.1f);
  l.fi = scaled(2 * ff * d, seed + 11, in_scale), l.fib = scaled(2 * ff, seed + 12, 0.1f);
  l.fo = scaled(d * ff, seed + 13, 1.0f / std::sqrt(static_cast<float>(ff))), l.fob = scaled(d, seed + 14, 0.1f);
  return l;
}

// NV-Embed's LatentAttentionModel.forward (modeling_nvembed.py), token by token in float64.
std::vector<double> latent_reference(const std::vector<float>& h, const Latent& l, const std::vector<std::int32_t>& lengths,
                                     bool normalize) {
  const auto& s = l.s;
  const std::size_t d = s.dim, inner = s.heads * s.head_dim, ff = s.ff_dim;
  std::vector<std::vector<double>> keys, values;
  for (std::size_t j = 0; j < s.num_latents; ++j) {
    std::vector<double> x(l.latents.begin() + j * d, l.latents.begin() + (j + 1) * d);
    const auto kv = linear(layer_norm(x, l.cw.data(), l.cb.data(), 1e-5), l.kv.data(), nullptr, d, 2 * inner);
    keys.emplace_back(kv.begin(), kv.begin() + inner);
    values.emplace_back(kv.begin() + inner, kv.end());
  }
  std::vector<double> out(s.batch * d, 0.0);
  for (std::size_t b = 0; b < s.batch; ++b) {
    std::vector<double> sum(d, 0.0);
    const std::size_t n = static_cast<std::size_t>(lengths[b]);
    for (std::size_t t = 0; t < n; ++t) {
      std::vector<double> x(h.begin() + (b * s.seq + t) * d, h.begin() + (b * s.seq + t + 1) * d);
      const auto q = linear(layer_norm(x, l.nw.data(), l.nb.data(), 1e-5), l.q.data(), nullptr, d, inner);
      std::vector<double> o(inner, 0.0);
      for (std::size_t head = 0; head < s.heads; ++head) {
        const std::size_t c0 = head * s.head_dim;
        std::vector<double> score(s.num_latents);
        double m = -INFINITY, z = 0;
        for (std::size_t j = 0; j < s.num_latents; ++j) {
          double dot = 0;
          for (std::size_t c = 0; c < s.head_dim; ++c) dot += q[c0 + c] * keys[j][c0 + c];
          score[j] = dot / std::sqrt(static_cast<double>(s.head_dim));
          m = std::max(m, score[j]);
        }
        for (double& v : score) z += v = std::exp(v - m);
        for (std::size_t j = 0; j < s.num_latents; ++j)
          for (std::size_t c = 0; c < s.head_dim; ++c) o[c0 + c] += score[j] / z * values[j][c0 + c];
      }
      auto y = linear(o, l.o.data(), l.ob.empty() ? nullptr : l.ob.data(), inner, d);
      for (std::size_t i = 0; i < d; ++i) y[i] += x[i];
      const auto g = linear(layer_norm(y, l.fw.data(), l.fb.data(), 1e-5), l.fi.data(), l.fib.data(), d, 2 * ff);
      std::vector<double> act(ff);
      for (std::size_t j = 0; j < ff; ++j) act[j] = g[j] * 0.5 * g[ff + j] * (1 + std::erf(g[ff + j] / std::sqrt(2.0)));
      const auto z = linear(act, l.fo.data(), l.fob.data(), ff, d);
      for (std::size_t i = 0; i < d; ++i) sum[i] += z[i] + y[i];
    }
    if (n > 0)
      for (double& v : sum) v /= static_cast<double>(n);
    if (normalize) l2(sum);
    std::copy(sum.begin(), sum.end(), out.begin() + b * d);
  }
  return out;
}

}  // namespace

TEST_CASE("latent_attention_pool: the tiled kernel and wide heads against float64, every level; checks") {
  test::RuntimeGuard guard;
  struct Case { std::size_t batch, seq, dim, heads, head_dim, latents, ff; bool bias; };
  for (Case c : {Case{3, 6, 19, 2, 13, 5, 23, true}, Case{2, 3, 16, 2, 264, 4, 8, false}, Case{1, 1, 1, 1, 1, 1, 1, false}}) {
    pl::LatentShape s;
    s.batch = c.batch, s.seq = c.seq, s.dim = c.dim, s.heads = c.heads, s.head_dim = c.head_dim;
    s.num_latents = c.latents, s.ff_dim = c.ff;
    const Latent l = make_latent(s, 40 + c.dim, c.bias);
    const auto h = normals(c.batch * c.seq * c.dim, 50 + c.seq);
    std::vector<std::int32_t> lengths(c.batch);
    for (std::size_t b = 0; b < c.batch; ++b) lengths[b] = static_cast<std::int32_t>((c.seq - b % (c.seq + 1)) * (b != 1));
    pl::TokenMask m;
    m.lengths = lengths.data();
    for (bool normalize : {true, false}) {
      const auto want = latent_reference(h, l, lengths, normalize);
      for (SimdLevel level : test::levels()) {
        REQUIRE(set_simd_level(level) == Status::ok);
        std::vector<float> out(c.batch * c.dim, NAN);
        REQUIRE(pl::latent_attention_pool(h.data(), s, l.weights(), m, 1e-5f, normalize, out.data()) == Status::ok);
        INFO("level " << simd_level_name(level) << " head_dim " << c.head_dim << " normalize " << normalize);
        CHECK(relative_error(out, want) <= 1e-5);
      }
    }
  }
  pl::LatentShape s;
  s.batch = 1, s.seq = 2, s.dim = 4, s.heads = 1, s.head_dim = 4, s.num_latents = 2, s.ff_dim = 3;
  const Latent l = make_latent(s, 1, false);
  const auto h = normals(8, 2);
  std::vector<float> out(4);
  CHECK(pl::latent_attention_pool(h.data(), s, l.weights(), {}, 1e-5f, true, out.data()) == Status::ok);
  CHECK(pl::latent_attention_pool(h.data(), s, l.weights(), {}, 0.0f, true, out.data()) == Status::invalid_argument);
  auto missing = l.weights();
  missing.ff_in = nullptr;
  CHECK(pl::latent_attention_pool(h.data(), s, missing, {}, 1e-5f, true, out.data()) == Status::invalid_argument);
  pl::LatentShape huge = s;
  huge.heads = SIZE_MAX / 4;
  CHECK(pl::latent_attention_pool(h.data(), huge, l.weights(), {}, 1e-5f, true, out.data()) == Status::invalid_argument);
  pl::LatentShape zero = s;
  zero.ff_dim = 0;
  CHECK(pl::latent_attention_pool(h.data(), zero, l.weights(), {}, 1e-5f, true, out.data()) == Status::invalid_argument);
}

TEST_CASE("attentive_stats_pool: speechbrain's order of operations in float64, every level; checks") {
  test::RuntimeGuard guard;
  struct Case { std::size_t batch, channels, frames, attention; };
  for (Case c : {Case{3, 11, 29, 6}, Case{1, 1, 1, 1}, Case{2, 33, 70, 17}})
    for (bool global : {true, false}) {
      const std::size_t C = c.channels, A = c.attention, L = c.frames, in = global ? 3 * C : C;
      const auto x = normals(c.batch * C * L, 60 + C);
      const auto tw = scaled(A * in, 61, 1.0f / std::sqrt(static_cast<float>(in))), tb = scaled(A, 62, 0.1f);
      const auto bm = scaled(A, 63, 0.2f), bw = scaled(A, 65, 0.2f, 1), bb = scaled(A, 66, 0.1f);
      auto bv = scaled(A, 64, 0.3f);
      for (float& v : bv) v = 0.5f + std::fabs(v);
      const auto cw = scaled(C * A, 67, 1.5f / std::sqrt(static_cast<float>(A))), cb = scaled(C, 68, 0.1f);
      std::vector<std::int32_t> lengths(c.batch);
      for (std::size_t b = 0; b < c.batch; ++b) lengths[b] = b == 1 ? 0 : static_cast<std::int32_t>(L - b);
      std::vector<double> want(c.batch * 2 * C, 0.0);
      const double eps = 1e-12, bn_eps = 1e-5;
      for (std::size_t b = 0; b < c.batch; ++b) {
        const std::size_t n = static_cast<std::size_t>(lengths[b]);
        if (n == 0) continue;
        auto xv = [&](std::size_t ch, std::size_t t) { return static_cast<double>(x[(b * C + ch) * L + t]); };
        std::vector<double> mu(C, 0.0), sd(C, 0.0);
        for (std::size_t ch = 0; ch < C; ++ch) {
          for (std::size_t t = 0; t < n; ++t) mu[ch] += xv(ch, t) / static_cast<double>(n);
          for (std::size_t t = 0; t < n; ++t) sd[ch] += (xv(ch, t) - mu[ch]) * (xv(ch, t) - mu[ch]) / static_cast<double>(n);
          sd[ch] = std::sqrt(std::max(sd[ch], eps));
        }
        std::vector<std::vector<double>> e(C, std::vector<double>(n));
        for (std::size_t t = 0; t < n; ++t) {
          std::vector<double> input(in);
          for (std::size_t ch = 0; ch < C; ++ch) {
            input[ch] = xv(ch, t);
            if (global) input[C + ch] = mu[ch], input[2 * C + ch] = sd[ch];
          }
          auto hv = linear(input, tw.data(), tb.data(), in, A);
          for (std::size_t a = 0; a < A; ++a)
            hv[a] = std::tanh((std::max(hv[a], 0.0) - bm[a]) / std::sqrt(bv[a] + bn_eps) * bw[a] + bb[a]);
          const auto ev = linear(hv, cw.data(), cb.data(), A, C);
          for (std::size_t ch = 0; ch < C; ++ch) e[ch][t] = ev[ch];
        }
        for (std::size_t ch = 0; ch < C; ++ch) {
          const double m = *std::max_element(e[ch].begin(), e[ch].end());
          double z = 0, mean = 0, var = 0;
          for (double& v : e[ch]) z += v = std::exp(v - m);
          for (std::size_t t = 0; t < n; ++t) mean += e[ch][t] / z * xv(ch, t);
          for (std::size_t t = 0; t < n; ++t) var += e[ch][t] / z * (xv(ch, t) - mean) * (xv(ch, t) - mean);
          want[b * 2 * C + ch] = mean, want[b * 2 * C + C + ch] = std::sqrt(std::max(var, eps));
        }
      }
      pl::StatsShape s;
      s.batch = c.batch, s.channels = C, s.frames = L, s.attention_channels = A, s.global_context = global;
      pl::StatsWeights w;
      w.tdnn_weight = tw.data(), w.tdnn_bias = tb.data(), w.bn_mean = bm.data(), w.bn_var = bv.data();
      w.bn_weight = bw.data(), w.bn_bias = bb.data(), w.conv_weight = cw.data(), w.conv_bias = cb.data();
      for (SimdLevel level : test::levels()) {
        REQUIRE(set_simd_level(level) == Status::ok);
        std::vector<float> out(want.size(), NAN);
        REQUIRE(pl::attentive_stats_pool(x.data(), s, w, lengths.data(), 1e-12f, 1e-5f, out.data()) == Status::ok);
        INFO("level " << simd_level_name(level) << " C " << C << " global " << global);
        CHECK(relative_error(out, want) <= 1e-5);
      }
      std::vector<float> out(want.size());
      CHECK(pl::attentive_stats_pool(x.data(), s, w, lengths.data(), -1.0f, 1e-5f, out.data()) == Status::invalid_argument);
      std::vector<std::int32_t> bad(lengths);
      bad[0] = static_cast<std::int32_t>(L + 1);
      CHECK(pl::attentive_stats_pool(x.data(), s, w, bad.data(), 1e-12f, 1e-5f, out.data()) == Status::invalid_argument);
      pl::StatsWeights missing = w;
      missing.conv_bias = nullptr;
      CHECK(pl::attentive_stats_pool(x.data(), s, missing, nullptr, 1e-12f, 1e-5f, out.data()) == Status::invalid_argument);
    }
}

TEST_CASE("target_attention: DIN's activation unit in float64 for each activation and normalisation; checks") {
  test::RuntimeGuard guard;
  const std::size_t B = 3, N = 2, T = 17, H = 11, h1 = 9, h2 = 5;
  const auto q = normals(B * N * H, 70), k = normals(B * T * H, 71);
  const auto w1 = scaled(4 * H * h1, 72, 1.0f / std::sqrt(4.0f * H)), b1 = scaled(h1, 73, 0.1f);
  const auto w2 = scaled(h1 * h2, 74, 1.0f / std::sqrt(static_cast<float>(h1))), b2 = scaled(h2, 75, 0.1f);
  const auto w3 = scaled(h2, 76, 1.0f), b3 = scaled(1, 77, 0.1f);
  const auto p1 = scaled(h1, 78, 0.2f), p2 = scaled(h2, 79, 0.2f);
  const std::vector<std::int32_t> lengths = {17, 0, 4};
  pl::TargetShape s;
  s.batch = B, s.items = N, s.seq = T, s.dim = H, s.hidden1 = h1, s.hidden2 = h2;
  pl::TargetWeights w;
  w.w1 = w1.data(), w.b1 = b1.data(), w.w2 = w2.data(), w.b2 = b2.data(), w.w3 = w3.data(), w.b3 = b3.data();
  w.prelu1 = p1.data(), w.prelu2 = p2.data();
  for (pl::Activation act : {pl::Activation::sigmoid, pl::Activation::relu, pl::Activation::prelu})
    for (bool softmax : {true, false}) {
      auto activate = [&](double v, const float* slopes, std::size_t u) {
        return act == pl::Activation::sigmoid ? 1 / (1 + std::exp(-v)) : act == pl::Activation::relu ? std::max(v, 0.0)
             : v > 0 ? v : slopes[u] * v;
      };
      std::vector<double> want(B * N * H, 0.0);
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t i = 0; i < N; ++i) {
          const std::size_t n = static_cast<std::size_t>(lengths[b]);
          std::vector<double> score(n);
          for (std::size_t t = 0; t < n; ++t) {
            std::vector<double> f(4 * H);
            for (std::size_t d = 0; d < H; ++d) {
              const double qd = q[(b * N + i) * H + d], kd = k[(b * T + t) * H + d];
              f[d] = qd, f[H + d] = kd, f[2 * H + d] = qd - kd, f[3 * H + d] = qd * kd;
            }
            std::vector<double> z1(h1), z2(h2);
            for (std::size_t u = 0; u < h1; ++u) {
              double acc = b1[u];
              for (std::size_t j = 0; j < 4 * H; ++j) acc += f[j] * w1[j * h1 + u];  // TF Dense: kernel [in, out]
              z1[u] = activate(acc, p1.data(), u);
            }
            for (std::size_t u = 0; u < h2; ++u) {
              double acc = b2[u];
              for (std::size_t j = 0; j < h1; ++j) acc += z1[j] * w2[j * h2 + u];
              z2[u] = activate(acc, p2.data(), u);
            }
            double sc = b3[0];
            for (std::size_t u = 0; u < h2; ++u) sc += z2[u] * w3[u];
            score[t] = softmax ? sc / std::sqrt(static_cast<double>(H)) : sc;
          }
          if (softmax && n > 0) {
            const double m = *std::max_element(score.begin(), score.end());
            double z = 0;
            for (double& v : score) z += v = std::exp(v - m);
            for (double& v : score) v /= z;
          }
          for (std::size_t t = 0; t < n; ++t)
            for (std::size_t d = 0; d < H; ++d) want[(b * N + i) * H + d] += score[t] * k[(b * T + t) * H + d];
        }
      for (SimdLevel level : test::levels()) {
        REQUIRE(set_simd_level(level) == Status::ok);
        std::vector<float> out(want.size(), NAN);
        REQUIRE(pl::target_attention(q.data(), k.data(), s, w, lengths.data(), act, softmax, out.data()) == Status::ok);
        INFO("level " << simd_level_name(level) << " activation " << static_cast<int>(act) << " softmax " << softmax);
        CHECK(relative_error(out, want) <= 1e-5);
      }
    }
  std::vector<float> out(B * N * H);
  pl::TargetWeights no_slopes = w;
  no_slopes.prelu2 = nullptr;
  CHECK(pl::target_attention(q.data(), k.data(), s, no_slopes, nullptr, pl::Activation::prelu, true, out.data()) ==
        Status::invalid_argument);
  CHECK(pl::target_attention(q.data(), k.data(), s, no_slopes, nullptr, pl::Activation::relu, true, out.data()) == Status::ok);
  const std::vector<std::int32_t> bad = {18, 0, 0};
  CHECK(pl::target_attention(q.data(), k.data(), s, w, bad.data(), pl::Activation::relu, true, out.data()) ==
        Status::invalid_argument);
  CHECK(pl::target_attention(q.data(), k.data(), s, w, nullptr, static_cast<pl::Activation>(9), true, out.data()) ==
        Status::invalid_argument);
  pl::TargetShape zero = s;
  zero.hidden2 = 0;
  CHECK(pl::target_attention(q.data(), k.data(), zero, w, nullptr, pl::Activation::relu, true, out.data()) ==
        Status::invalid_argument);
}
