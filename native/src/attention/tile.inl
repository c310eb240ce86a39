// The attention work unit, written once over a SIMD "ops" type V and compiled per instruction-set level: each
// level's file includes this inside its own namespace, after defining V, under its target pragma.
//
// A unit is one block of kQueryBlock queries of one (batch, query head). The queries are transposed once into
// lanes (qt: head_dim x queries), so a tile of scores is computed keys x queries (st) and the online softmax keeps
// its running max m, sum l and rescale factor per lane: no horizontal reductions in the key loop. Per key tile:
//   st = K_tile qt  ->  (+bias, ALiBi, softcap, /temperature)  ->  mask  ->  m' = max(m, column max),
//   p = e^(st - m'),  l = e^(m - m') l + sum p,  o = e^(m - m') o + p^T V_tile.
// Only tiles that intersect some query's visible keys are visited, so causal and banded masks skip the rest.

constexpr std::size_t kVecs = kQueryBlock / V::W;  // vectors across a query block
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// e^x within about 4 ulp (2.1e-7 relative) for x >= -87, exactly 0 below (so masked scores, -inf, give 0); NaN stays
// NaN. The argument is split as n ln2 + r with ln2 in two parts (the first with trailing zero bits, so n * first is
// exact), and e^r on |r| <= ln2/2 is a degree-5 polynomial fitted for relative error (Remez; 7.5e-8 in exact
// arithmetic): two multiply-adds fewer than the Taylor series of the same accuracy, and the exponential is most of
// the work beside the two products when the head size is 64.
inline typename V::reg exp_v(typename V::reg x) {
  const auto n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  auto r = V::fma(n, V::set1(-0.693145751953125f), x);
  r = V::fma(n, V::set1(-1.428606765330187045e-06f), r);
  auto p = V::set1(0.0082976551982714186f);
  p = V::fma(p, r, V::set1(0.041915381977922723f));
  p = V::fma(p, r, V::set1(0.16667574726749988f));
  p = V::fma(p, r, V::set1(0.49998894851472441f));
  p = V::fma(p, r, V::set1(0.99999969199228336f));
  p = V::fma(p, r, V::set1(1.0000000716546416f));
  return V::select(V::lt(x, V::set1(-87.0f)), V::zero(), V::ldexp(p, n));
}

// tanh y = t / (t + 2) with t = e^(2|y|) - 1, the sign restored; t comes from e^r - 1's polynomial (no constant
// term), so small |y| keeps full relative accuracy. |y| beyond 9 is 1 in float32.
inline typename V::reg tanh_v(typename V::reg y) {
  const auto x = V::min(V::mul(V::abs(y), V::set1(2.0f)), V::set1(18.0f));
  const auto n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  auto r = V::fma(n, V::set1(-0.693145751953125f), x);
  r = V::fma(n, V::set1(-1.428606765330187045e-06f), r);
  auto q = V::set1(1.0f / 5040);
  q = V::fma(q, r, V::set1(1.0f / 720));
  q = V::fma(q, r, V::set1(1.0f / 120));
  q = V::fma(q, r, V::set1(1.0f / 24));
  q = V::fma(q, r, V::set1(1.0f / 6));
  q = V::fma(q, r, V::set1(0.5f));
  q = V::fma(q, r, V::set1(1.0f));
  q = V::mul(q, r);                                                            // e^r - 1
  const auto scale = V::ldexp(V::set1(1.0f), n);                               // 2^n
  const auto t = V::add(V::mul(scale, q), V::sub(scale, V::set1(1.0f)));       // e^x - 1 = 2^n (e^r - 1) + 2^n - 1
  const auto th = V::div(t, V::add(t, V::set1(2.0f)));
  return V::select(V::lt(y, V::zero()), V::sub(V::zero(), th), th);
}

// The row of (batch b, head h, token) in a tensor with these strides: const for inputs, writable for the output.
template <class Byte>
inline Byte* at(Byte* base, const Plan& p, const Strides& s, std::size_t b, std::size_t h, std::size_t token) {
  return base + (b * s.batch + h * s.head + token * s.token) * p.element_bytes;
}

// Visible keys of each query lane: [lo, hi) and [0, global). Returns the union over the block's queries.
struct Range {
  std::size_t lo = 0, hi = 0, global = 0;
};

inline Range bounds(const Plan& p, std::size_t b, std::size_t i0, std::size_t rows, Lanes& s) {
  const Shape& sh = p.shape;
  const Options& o = p.options;
  const long length = o.key_lengths ? o.key_lengths[b] : static_cast<long>(sh.seq_k);
  Range all{sh.seq_k, 0, 0};
  for (std::size_t r = 0; r < kQueryBlock; ++r) {
    long lo = 0, hi = 0, global = 0;
    const long pos = static_cast<long>(i0 + r) + length - static_cast<long>(sh.seq_q);  // aligned to the valid keys
    if (r < rows) {
      hi = length;
      if (o.causal) hi = std::min(hi, pos + 1);
      if (o.window > 0) {
        const long w = static_cast<long>(o.window);
        lo = std::max(lo, pos - w + 1);
        if (!o.causal) hi = std::min(hi, pos + w);
      }
      if (o.segments) {
        if (pos < 0) {
          hi = lo;
        } else {  // the segment holding pos: the last offset at or below it
          const std::int32_t* end = o.segments + o.segment_count + 1;
          const std::int32_t* next = std::upper_bound(o.segments, end, static_cast<std::int32_t>(pos));
          lo = std::max(lo, static_cast<long>(next[-1]));
          hi = std::min(hi, next == end ? hi : static_cast<long>(*next));
        }
      }
      global = static_cast<long>(o.global_tokens);
      if (o.anchor) global = std::max(global, 1L);
      if (o.causal) global = std::min(global, pos + 1);
      global = std::max(0L, std::min(global, length));
      if (hi < lo) hi = lo;
      if (hi > lo) all.lo = std::min(all.lo, static_cast<std::size_t>(lo)), all.hi = std::max(all.hi, static_cast<std::size_t>(hi));
      all.global = std::max(all.global, static_cast<std::size_t>(global));
    }
    s.lo[r] = static_cast<float>(lo);
    s.hi[r] = static_cast<float>(hi);
    s.global[r] = static_cast<float>(global);
    s.position[r] = static_cast<float>(pos);
  }
  if (all.hi <= all.lo) all.lo = all.hi = 0;
  return all;
}

// st rows c0 .. c0 + R - 1 (keys) = kb rows . qt; tile_max (per lane) takes their maximum on the way.
template <int R>
inline void scores(const float* kb, std::size_t dim, const float* qt, float* st, std::size_t c0, float* tile_max) {
  typename V::reg acc[R][kVecs];
  for (int r = 0; r < R; ++r)
    for (std::size_t l = 0; l < kVecs; ++l) acc[r][l] = V::zero();
  for (std::size_t d = 0; d < dim; ++d) {
    typename V::reg qv[kVecs];
    for (std::size_t l = 0; l < kVecs; ++l) qv[l] = V::load(qt + d * kQueryBlock + l * V::W);
    for (int r = 0; r < R; ++r) {
      const auto kv = V::set1(kb[(c0 + r) * dim + d]);
      for (std::size_t l = 0; l < kVecs; ++l) acc[r][l] = V::fma(kv, qv[l], acc[r][l]);
    }
  }
  for (std::size_t l = 0; l < kVecs; ++l) {
    auto m = V::load(tile_max + l * V::W);
    for (int r = 0; r < R; ++r) {
      V::store(st + (c0 + r) * kQueryBlock + l * V::W, acc[r][l]);
      m = V::max(m, acc[r][l]);
    }
    V::store(tile_max + l * V::W, m);
  }
}

// o rows r0 .. r0 + R - 1, vectors [d0, d0 + N W) += p^T times vb rows, with probability (key c, row r) at
// st[c KS + r RS]: keys x queries (KS = kQueryBlock, RS = 1) for query lanes, rows x keys for the row kernel.
template <int R, int N, std::size_t KS = kQueryBlock, std::size_t RS = 1>
inline void accumulate(const float* st, const float* vb, std::size_t vstride, std::size_t keys, float* o,
                       std::size_t r0, std::size_t d0) {
  typename V::reg acc[R][N];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < N; ++q) acc[r][q] = V::load(o + (r0 + r) * vstride + d0 + q * V::W);
  for (std::size_t c = 0; c < keys; ++c) {
    typename V::reg vv[N];
    for (int q = 0; q < N; ++q) vv[q] = V::load(vb + c * vstride + d0 + q * V::W);
    for (int r = 0; r < R; ++r) {
      const auto pv = V::set1(st[c * KS + (r0 + r) * RS]);
      for (int q = 0; q < N; ++q) acc[r][q] = V::fma(pv, vv[q], acc[r][q]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < N; ++q) V::store(o + (r0 + r) * vstride + d0 + q * V::W, acc[r][q]);
}

template <int R, std::size_t KS = kQueryBlock, std::size_t RS = 1>
inline void accumulate_rows(const float* st, const float* vb, std::size_t vstride, std::size_t keys, float* o,
                            std::size_t r0) {
  std::size_t d0 = 0;
  for (; d0 + 4 * V::W <= vstride; d0 += 4 * V::W) accumulate<R, 4, KS, RS>(st, vb, vstride, keys, o, r0, d0);
  switch ((vstride - d0) / V::W) {
    case 3: accumulate<R, 3, KS, RS>(st, vb, vstride, keys, o, r0, d0); break;
    case 2: accumulate<R, 2, KS, RS>(st, vb, vstride, keys, o, r0, d0); break;
    case 1: accumulate<R, 1, KS, RS>(st, vb, vstride, keys, o, r0, d0); break;
    default: break;
  }
}

// Scores of keys [j0, j0 + keys) for every lane: product, bias / ALiBi / softcap / temperature, mask.
// Returns true when L.alpha already holds each lane's maximum score of the tile (nothing changed the scores after
// the product).
inline bool score_tile(const Plan& p, std::size_t b, std::size_t h, std::size_t i0, std::size_t rows, std::size_t j0,
                       std::size_t keys, Lanes& L, Scratch& s) {
  const std::size_t dim = p.shape.head_dim;
  float* tile_max = L.alpha.data();  // free until softmax_tile: the raw scores' per-lane maximum
  std::fill(L.alpha.begin(), L.alpha.end(), kNegInf);
  std::size_t c = 0;
  for (; c + V::kRows <= keys; c += V::kRows) scores<V::kRows>(s.kb.data(), dim, L.qt.data(), s.st.data(), c, tile_max);
  // The remaining keys in one pass over the queries, not one pass each.
  for (; c + 4 <= keys && 4 < V::kRows; c += 4) scores<4>(s.kb.data(), dim, L.qt.data(), s.st.data(), c, tile_max);
  for (; c + 2 <= keys && 2 < V::kRows; c += 2) scores<2>(s.kb.data(), dim, L.qt.data(), s.st.data(), c, tile_max);
  for (; c < keys; ++c) scores<1>(s.kb.data(), dim, L.qt.data(), s.st.data(), c, tile_max);
  const Options& o = p.options;
  if (p.transform) {
    // softcap(scale q.k) first, then the biases (as ONNX and Gemma 2 order them: a large negative bias still hides
    // its key), then 1 / temperature.
    if (o.softcap > 0) {
      const auto cap = V::set1(o.softcap), inverse_cap = V::set1(1.0f / o.softcap);
      for (std::size_t k = 0; k < keys; ++k)
        for (std::size_t l = 0; l < kVecs; ++l) {
          float* cell = s.st.data() + k * kQueryBlock + l * V::W;
          V::store(cell, V::mul(cap, tanh_v(V::mul(V::load(cell), inverse_cap))));
        }
    }
    if (o.bias) {
      const std::size_t bb = o.bias_batch == 1 ? 0 : b, bh = o.bias_heads == 1 ? 0 : h;
      const float* rows_bias = o.bias + ((bb * o.bias_heads + bh) * p.shape.seq_q + i0) * p.shape.seq_k + j0;
      for (std::size_t k = 0; k < keys; ++k)
        for (std::size_t r = 0; r < rows; ++r) s.st[k * kQueryBlock + r] += rows_bias[r * p.shape.seq_k + k];
    }
    const auto slope = V::set1(o.alibi_slopes ? -o.alibi_slopes[h] : 0.0f);
    const auto post = V::set1(p.post_scale);
    for (std::size_t k = 0; k < keys; ++k) {
      const auto j = V::set1(static_cast<float>(j0 + k));
      for (std::size_t l = 0; l < kVecs; ++l) {
        float* cell = s.st.data() + k * kQueryBlock + l * V::W;
        auto x = V::load(cell);
        if (o.alibi_slopes) x = V::fma(slope, V::abs(V::sub(V::load(L.position.data() + l * V::W), j)), x);
        V::store(cell, V::mul(x, post));
      }
    }
  }
  // Mask, unless every query of the block sees the whole tile.
  bool whole = true;
  for (std::size_t r = 0; r < rows && whole; ++r) {
    const float lo = L.lo[r], hi = L.hi[r], global = L.global[r];
    whole = (lo <= static_cast<float>(j0) && hi >= static_cast<float>(j0 + keys)) || global >= static_cast<float>(j0 + keys);
  }
  if (whole) return !p.transform;
  for (std::size_t k = 0; k < keys; ++k) {
    const auto j = V::set1(static_cast<float>(j0 + k));
    for (std::size_t l = 0; l < kVecs; ++l) {
      float* cell = s.st.data() + k * kQueryBlock + l * V::W;
      const auto visible = V::mor(V::mand(V::ge(j, V::load(L.lo.data() + l * V::W)), V::lt(j, V::load(L.hi.data() + l * V::W))),
                                  V::lt(j, V::load(L.global.data() + l * V::W)));
      V::store(cell, V::select(visible, V::load(cell), V::set1(kNegInf)));
    }
  }
  return false;
}

// The online softmax over one tile of `keys` keys: probabilities in place, running statistics, o rescaled.
inline void softmax_tile(std::size_t keys, std::size_t rows, std::size_t dim_v_padded, bool have_max, Lanes& L,
                         Scratch& s) {
  for (std::size_t l = 0; l < kVecs; ++l) {
    auto tile_max = have_max ? V::load(L.alpha.data() + l * V::W) : V::set1(kNegInf);
    if (!have_max)
      for (std::size_t k = 0; k < keys; ++k) tile_max = V::max(tile_max, V::load(s.st.data() + k * kQueryBlock + l * V::W));
    const auto m_old = V::load(L.m.data() + l * V::W);
    const auto m_new = V::max(m_old, tile_max);
    // A lane that has seen no visible key keeps m = -inf: subtract 0 instead, so e^(-inf - 0) = 0, not NaN.
    const auto ref = V::select(V::lt(m_new, V::set1(-3.0e38f)), V::zero(), m_new);
    const auto alpha = exp_v(V::sub(m_old, ref));
    auto sum = V::zero();
    for (std::size_t k = 0; k < keys; ++k) {
      float* cell = s.st.data() + k * kQueryBlock + l * V::W;
      const auto e = exp_v(V::sub(V::load(cell), ref));
      V::store(cell, e);
      sum = V::add(sum, e);
    }
    V::store(L.l.data() + l * V::W, V::fma(alpha, V::load(L.l.data() + l * V::W), sum));
    V::store(L.m.data() + l * V::W, m_new);
    V::store(L.alpha.data() + l * V::W, alpha);
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const float a = L.alpha[r];
    if (a == 1.0f) continue;
    float* row = L.o.data() + r * dim_v_padded;
    const auto av = V::set1(a);
    for (std::size_t d = 0; d < dim_v_padded; d += V::W) V::store(row + d, V::mul(V::load(row + d), av));
  }
}

void run_unit(const Plan& p, std::size_t unit, Scratch& s) {
  const Shape& sh = p.shape;
  const std::size_t qg = unit % p.query_blocks, h = (unit / p.query_blocks) % sh.heads_q;
  const std::size_t b = unit / (p.query_blocks * sh.heads_q), kvh = h / p.group;
  const std::size_t dim = sh.head_dim, dim_v = sh.head_dim_v;
  const std::size_t vstride = (dim_v + V::W - 1) / V::W * V::W;
  // The unit's query blocks: queries transposed into lanes and scaled (padding lanes zero), fresh statistics.
  std::size_t first[kSubBlocks], rows[kSubBlocks], used = 0;
  Range ranges[kSubBlocks];
  Range all{sh.seq_k, 0, 0};
  for (std::size_t sb = 0; sb < p.sub_blocks; ++sb) {
    first[sb] = (qg * p.sub_blocks + sb) * kQueryBlock;
    rows[sb] = first[sb] < sh.seq_q ? std::min(kQueryBlock, sh.seq_q - first[sb]) : 0;
    if (rows[sb] == 0) continue;
    used = sb + 1;
    Lanes& L = s.blocks[sb];
    std::fill(L.qt.begin(), L.qt.end(), 0.0f);
    for (std::size_t r = 0; r < rows[sb]; ++r) {
      V::load_row(s.row.data(), at(p.q, p, p.qs, b, h, first[sb] + r), dim, p.dtype);
      for (std::size_t d = 0; d < dim; ++d) L.qt[d * kQueryBlock + r] = s.row[d] * p.q_scale;
    }
    std::fill(L.o.begin(), L.o.end(), 0.0f);
    std::fill(L.m.begin(), L.m.end(), kNegInf);
    std::fill(L.l.begin(), L.l.end(), 0.0f);
    ranges[sb] = bounds(p, b, first[sb], rows[sb], L);
    if (ranges[sb].hi > ranges[sb].lo) all.lo = std::min(all.lo, ranges[sb].lo), all.hi = std::max(all.hi, ranges[sb].hi);
    all.global = std::max(all.global, ranges[sb].global);
  }
  if (all.hi <= all.lo) all.lo = all.hi = 0;
  // Does block sb see any key of [j0, j1)?
  auto touches = [&](std::size_t sb, std::size_t j0, std::size_t j1) {
    const Range& r = ranges[sb];
    return (r.hi > r.lo && j0 < r.hi && r.lo < j1) || j0 < r.global;
  };
  auto tile = [&](std::size_t j0, std::size_t keys) {
    for (std::size_t k = 0; k < keys; ++k) {
      V::load_row(s.kb.data() + k * dim, at(p.k, p, p.ks, b, kvh, j0 + k), dim, p.dtype);
      float* vrow = s.vb.data() + k * vstride;
      V::load_row(vrow, at(p.v, p, p.vs, b, kvh, j0 + k), dim_v, p.dtype);
      std::fill(vrow + dim_v, vrow + vstride, 0.0f);
    }
    for (std::size_t sb = 0; sb < used; ++sb) {
      if (!touches(sb, j0, j0 + keys)) continue;
      Lanes& L = s.blocks[sb];
      const bool have_max = score_tile(p, b, h, first[sb], rows[sb], j0, keys, L, s);
      softmax_tile(keys, rows[sb], vstride, have_max, L, s);
      std::size_t r = 0;
      for (; r + V::kPvRows <= rows[sb]; r += V::kPvRows) accumulate_rows<V::kPvRows>(s.st.data(), s.vb.data(), vstride, keys, L.o.data(), r);
      for (; r < rows[sb]; ++r) accumulate_rows<1>(s.st.data(), s.vb.data(), vstride, keys, L.o.data(), r);
    }
  };
  auto sweep = [&](std::size_t from, std::size_t to) {
    for (std::size_t j0 = from; j0 < to; j0 += kKeyBlock) tile(j0, std::min(kKeyBlock, to - j0));
  };
  // The union of [0, global) and [lo, hi), in key order.
  if (all.global >= all.lo) {
    sweep(0, std::max(all.global, all.hi));
  } else {
    sweep(0, all.global);
    sweep(all.lo, all.hi);
  }
  for (std::size_t sb = 0; sb < used; ++sb) {
    Lanes& L = s.blocks[sb];
    for (std::size_t r = 0; r < rows[sb]; ++r) {
      const float l = L.l[r];
      float* row = L.o.data() + r * vstride;
      const float inverse = l > 0.0f ? 1.0f / l : 0.0f;
      for (std::size_t d = 0; d < dim_v; ++d) row[d] *= inverse;
      V::store_row(at(p.out, p, p.os, b, h, first[sb] + r), row, dim_v, p.dtype);
      if (p.lse) p.lse[(b * sh.heads_q + h) * sh.seq_q + first[sb] + r] = l > 0.0f ? L.m[r] + std::log(l) : kNegInf;
    }
  }
}


// ---- the row kernel: few query rows per key/value head (decoding) ------------------------------------------------
//
// With one query per head (a decode step), query lanes would be 1 of 64 useful. Here a unit is one (batch, key/value
// head) holding every query row that reads it (its group of query heads x seq_q queries, at most kMaxRows), so each
// key/value tile is brought in once for all of them. Scores are dot products along head_dim (one horizontal sum per
// key and row), stored rows x keys; the softmax runs along the keys of each row.

// The dot products of rows [r0, r0 + R) (q rows of `dim`) with the tile's `keys` keys, into st (rows x kKeyBlock).
template <int R>
inline void row_scores(const float* qr, const float* kb, std::size_t dim, std::size_t keys, float* st, std::size_t r0) {
  for (std::size_t c = 0; c < keys; ++c) {
    const float* key = kb + c * dim;
    typename V::reg acc[R];
    for (int r = 0; r < R; ++r) acc[r] = V::zero();
    std::size_t d = 0;
    for (; d + V::W <= dim; d += V::W) {
      const auto kv = V::load(key + d);
      for (int r = 0; r < R; ++r) acc[r] = V::fma(V::load(qr + (r0 + r) * dim + d), kv, acc[r]);
    }
    for (int r = 0; r < R; ++r) {
      float x = V::hsum(acc[r]);
      for (std::size_t t = d; t < dim; ++t) x += qr[(r0 + r) * dim + t] * key[t];
      st[(r0 + r) * kKeyBlock + c] = x;
    }
  }
}

void run_rows_unit(const Plan& p, std::size_t unit, Scratch& s) {
  const Shape& sh = p.shape;
  const Options& o = p.options;
  const std::size_t b = unit / sh.heads_kv, kvh = unit % sh.heads_kv;
  const std::size_t dim = sh.head_dim, dim_v = sh.head_dim_v, rows = p.group * sh.seq_q;
  const std::size_t vstride = (dim_v + V::W - 1) / V::W * V::W;
  Lanes& L = s.blocks[0];  // lanes 0 .. seq_q - 1: each query's visible range; rows r = g seq_q + i below
  float* qr = L.qt.data();  // rows x dim, scaled
  float* st = s.st.data();  // rows x kKeyBlock
  auto head_of = [&](std::size_t r) { return kvh * p.group + r / sh.seq_q; };
  for (std::size_t r = 0; r < rows; ++r) {
    V::load_row(qr + r * dim, at(p.q, p, p.qs, b, head_of(r), r % sh.seq_q), dim, p.dtype);
    for (std::size_t d = 0; d < dim; ++d) qr[r * dim + d] *= p.q_scale;
  }
  std::fill(L.o.begin(), L.o.begin() + rows * vstride, 0.0f);
  std::fill(L.m.begin(), L.m.end(), kNegInf);
  std::fill(L.l.begin(), L.l.end(), 0.0f);
  Range all = bounds(p, b, 0, sh.seq_q, L);
  auto tile = [&](std::size_t j0, std::size_t keys) {
    for (std::size_t k = 0; k < keys; ++k) {
      V::load_row(s.kb.data() + k * dim, at(p.k, p, p.ks, b, kvh, j0 + k), dim, p.dtype);
      float* vrow = s.vb.data() + k * vstride;
      V::load_row(vrow, at(p.v, p, p.vs, b, kvh, j0 + k), dim_v, p.dtype);
      std::fill(vrow + dim_v, vrow + vstride, 0.0f);
    }
    std::size_t r = 0;
    for (; r + 4 <= rows; r += 4) row_scores<4>(qr, s.kb.data(), dim, keys, st, r);
    for (; r < rows; ++r) row_scores<1>(qr, s.kb.data(), dim, keys, st, r);
    for (r = 0; r < rows; ++r) {
      const std::size_t h = head_of(r), i = r % sh.seq_q;
      float* row = st + r * kKeyBlock;
      const float lo = L.lo[i], hi = L.hi[i], global = L.global[i], position = L.position[i];
      if (p.transform) {
        const std::size_t bb = o.bias_batch == 1 ? 0 : b, bh = o.bias_heads == 1 ? 0 : h;
        const float* bias = o.bias ? o.bias + ((bb * o.bias_heads + bh) * sh.seq_q + i) * sh.seq_k + j0 : nullptr;
        const float slope = o.alibi_slopes ? o.alibi_slopes[h] : 0.0f;
        for (std::size_t c = 0; c < keys; ++c) {
          float x = row[c];
          if (o.softcap > 0) x = o.softcap * std::tanh(x / o.softcap);
          if (bias) x += bias[c];
          if (o.alibi_slopes) x -= slope * std::fabs(position - static_cast<float>(j0 + c));
          row[c] = x * p.post_scale;
        }
      }
      const bool whole = (lo <= static_cast<float>(j0) && hi >= static_cast<float>(j0 + keys)) || global >= static_cast<float>(j0 + keys);
      for (std::size_t c = 0; c < kKeyBlock; ++c) {
        const float j = static_cast<float>(j0 + c);
        if (c >= keys || (!whole && !((j >= lo && j < hi) || j < global))) row[c] = kNegInf;
      }
      // The online softmax along this row's keys.
      float tile_max = kNegInf;
      for (std::size_t c = 0; c < keys; ++c) tile_max = std::max(tile_max, row[c]);
      const float m_old = L.m[r], m_new = std::max(m_old, tile_max);
      const float ref = m_new < -3.0e38f ? 0.0f : m_new;  // nothing visible yet: e^(-inf - 0) = 0, not NaN
      const float alpha = std::exp(m_old - ref);
      auto sum = V::zero();
      for (std::size_t c = 0; c < kKeyBlock; c += V::W) {
        const auto e = exp_v(V::sub(V::load(row + c), V::set1(ref)));
        V::store(row + c, e);
        sum = V::add(sum, e);
      }
      L.l[r] = alpha * L.l[r] + V::hsum(sum);
      L.m[r] = m_new;
      if (alpha != 1.0f) {
        float* orow = L.o.data() + r * vstride;
        for (std::size_t d = 0; d < vstride; d += V::W) V::store(orow + d, V::mul(V::load(orow + d), V::set1(alpha)));
      }
    }
    for (r = 0; r + V::kPvRows <= rows; r += V::kPvRows)
      accumulate_rows<V::kPvRows, 1, kKeyBlock>(st, s.vb.data(), vstride, keys, L.o.data(), r);
    for (; r < rows; ++r) accumulate_rows<1, 1, kKeyBlock>(st, s.vb.data(), vstride, keys, L.o.data(), r);
  };
  auto sweep = [&](std::size_t from, std::size_t to) {
    for (std::size_t j0 = from; j0 < to; j0 += kKeyBlock) tile(j0, std::min(kKeyBlock, to - j0));
  };
  if (all.global >= all.lo) {
    sweep(0, std::max(all.global, all.hi));
  } else {
    sweep(0, all.global);
    sweep(all.lo, all.hi);
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t h = head_of(r), i = r % sh.seq_q;
    const float l = L.l[r];
    float* orow = L.o.data() + r * vstride;
    const float inverse = l > 0.0f ? 1.0f / l : 0.0f;
    for (std::size_t d = 0; d < dim_v; ++d) orow[d] *= inverse;
    V::store_row(at(p.out, p, p.os, b, h, i), orow, dim_v, p.dtype);
    if (p.lse) p.lse[(b * sh.heads_q + h) * sh.seq_q + i] = l > 0.0f ? L.m[r] + std::log(l) : kNegInf;
  }
}
