// attention/flash.cu (detail::attend) on the emulator against a float64 reference, within the error of a
// low-precision baseline (float32 scores and softmax, P rounded to the data type before P V: FlashAttention's
// rounding), and its LSE against the CPU's attention::attend; rows that see no key exactly zero with LSE -inf, rows
// that see a NaN score NaN; and the work the kernel does (16-byte copies and mma instructions) exactly what skipping
// the tiles no query of a block sees leaves. Masks: causal, windows, Λ (global tokens), segments with the anchor, key
// lengths (0 included, NaN past them), all at once; grouped heads, both layouts, padded and mixed head dims, negative
// and zero scales, decoding (query heads packed per block, key tiles split across blocks); then the options the
// device does not implement and bad arguments.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "attention/context.cuh"
#include "check.h"
#include "tessera/attention.h"
#include "tessera/half.h"

using namespace tessera;
using attention::DType;
using attention::Layout;

namespace {

check::Run* run = nullptr;

struct Case {
  std::string name;
  attention::Shape s;
  attention::Options o;
  std::vector<std::int32_t> key_lengths, segments;
  bool lse = true;
  float q_gain = 1.0f;  // multiplies q: a peakier softmax
  unsigned seed = 1;
  bool nan_beyond_lengths = false;  // keys and values past each batch's key length NaN (an unwritten KV cache)
  long nan_key = -1;                 // >= 0: that key NaN (in every batch and head): the rows that see it are NaN
};

float decode(std::uint16_t h, DType t) { return t == DType::bf16 ? bf16_to_f32(h) : f16_to_f32(h); }
std::uint16_t encode(float f, DType t) { return t == DType::bf16 ? f32_to_bf16(f) : f32_to_f16(f); }

// A row's index in a [batch, seq, heads] or [batch, heads, seq] tensor.
std::size_t row_of(const attention::Shape& s, std::size_t heads, std::size_t seq, std::size_t b, std::size_t h,
                   std::size_t t) {
  return s.layout == Layout::bshd ? (b * seq + t) * heads + h : (b * heads + h) * seq + t;
}

// tessera/attention.h's mask, brute force: whether query i of batch b sees key j.
bool visible(const Case& c, std::size_t b, long i, long j) {
  const attention::Shape& s = c.s;
  const attention::Options& o = c.o;
  const long length = o.key_lengths ? o.key_lengths[b] : static_cast<long>(s.seq_k);
  if (j < 0 || j >= length) return false;
  const long p = i + length - static_cast<long>(s.seq_q);  // bottom-right aligned
  bool base = true;
  if (o.causal && j > p) base = false;
  if (o.window > 0) {
    const long w = static_cast<long>(o.window);
    if (o.causal ? !(p - j < w) : !(std::labs(p - j) < w)) base = false;
  }
  if (o.segments) {
    long seg_p = -1, seg_j = -1;
    for (std::size_t k = 0; k < o.segment_count; ++k) {
      if (o.segments[k] <= p && p < o.segments[k + 1]) seg_p = static_cast<long>(k);
      if (o.segments[k] <= j && j < o.segments[k + 1]) seg_j = static_cast<long>(k);
    }
    if (seg_p < 0 || seg_p != seg_j) base = false;
  }
  bool extra = j < static_cast<long>(o.global_tokens) || (o.anchor && j == 0);
  if (o.causal && j > p) extra = false;
  return base || extra;
}

// ---- the work the kernel must do ------------------------------------------------------------------------------------

struct Work {
  long copies = 0, mma = 0;  // 16-byte cp.async per thread, mma.sync per warp
};

// The kernel's configuration (flash.cu: Config, run, run_for_dim), from the shape.
struct Tiling {
  long dim, block_m, rows_per_warp, pack;
  static constexpr long kBlockN = 64, kWarps = 4;
};

Tiling tiling_of(const attention::Shape& s) {
  const long dim = static_cast<long>((std::max(s.head_dim, s.head_dim_v) + 63) / 64 * 64);
  const long group = static_cast<long>(s.heads_q / s.heads_kv), seq_q = static_cast<long>(s.seq_q);
  const bool short_rows = seq_q * group <= 64;
  const long rows_per_warp = dim <= 128 && !short_rows ? 32 : 16;
  const long block_m = Tiling::kWarps * rows_per_warp;
  return {dim, block_m, rows_per_warp, seq_q < block_m ? group : 1};
}

// Blocks are query tiles of a head set (pack query heads of one KV head, rows position-major); each visits the key
// tiles some row of it sees, cut into `splits` chunks (one block each): the queries are loaded once per nonempty
// chunk, each visited tile's keys and values once; a warp multiplies a tile when one of its rows sees a key of it.
Work expected_work(const Case& c, long splits) {
  const attention::Shape& s = c.s;
  const Tiling t = tiling_of(s);
  const long bn = Tiling::kBlockN, seq_k = static_cast<long>(s.seq_k);
  const long rows = static_cast<long>(s.seq_q) * t.pack, sets = static_cast<long>(s.heads_q) / t.pack;
  const long key_tiles = (seq_k + bn - 1) / bn;
  const long mma_per_warp_tile = 2 * (t.rows_per_warp / 16) * (bn / 8) * (t.dim / 16);  // S = Q K^T, then O += P V
  auto sees_tile = [&](std::size_t b, long first_row, long last_row, long tile) {
    for (long r = first_row; r < last_row; ++r)
      for (long j = tile * bn; j < (tile + 1) * bn; ++j)
        if (visible(c, b, r / t.pack, j)) return true;
    return false;
  };
  Work w;
  for (std::size_t b = 0; b < s.batch; ++b)
    for (long set = 0; set < sets; ++set)  // the head sets of a batch see the same keys
      for (long first = 0; first < rows; first += t.block_m) {
        long visited = 0;
        for (long tile = 0; tile < key_tiles; ++tile) {
          if (!sees_tile(b, first, std::min(first + t.block_m, rows), tile)) continue;
          ++visited;
          for (long warp = 0; warp < Tiling::kWarps; ++warp) {
            const long warp_first = first + warp * t.rows_per_warp;
            if (warp_first < rows && sees_tile(b, warp_first, std::min(warp_first + t.rows_per_warp, rows), tile))
              w.mma += mma_per_warp_tile;
          }
        }
        w.copies += std::min(splits, visited) * t.block_m * t.dim / 8 + visited * 2 * bn * t.dim / 8;
      }
  return w;
}

// ---- accuracy -------------------------------------------------------------------------------------------------------

struct Errors {
  double device = 0, baseline = 0, lse = 0, cpu_lse = 0;  // largest absolute errors against the float64 reference
  long empty_rows = 0, nan_rows = 0, wrong_rows = 0;      // rows that see no key, or a NaN score; those wrong
};

double worse(double a, double e) { return std::isnan(a) || std::isnan(e) ? NAN : std::max(a, e); }

struct Tensors {
  std::vector<std::uint16_t> q, k, v;
};

// One query row's scaled scores against its keys, -inf where it sees none: in float64, and as the low-precision
// baseline computes them (float32 fused products).
struct RowScores {
  std::vector<double> exact;
  std::vector<float> baseline;
  bool any = false;  // some key visible
};

RowScores row_scores(const Case& c, DType dt, const Tensors& t, std::size_t b, std::size_t h, std::size_t i) {
  const attention::Shape& s = c.s;
  const double scale = static_cast<double>(c.o.scale) / c.o.temperature;
  const std::size_t group = s.heads_q / s.heads_kv, qr = row_of(s, s.heads_q, s.seq_q, b, h, i);
  RowScores r{std::vector<double>(s.seq_k, -INFINITY), std::vector<float>(s.seq_k, -INFINITY)};
  for (std::size_t j = 0; j < s.seq_k; ++j) {
    if (!visible(c, b, static_cast<long>(i), static_cast<long>(j))) continue;
    r.any = true;
    const std::size_t kr = row_of(s, s.heads_kv, s.seq_k, b, h / group, j);
    double dot = 0;
    float dot32 = 0;
    for (std::size_t d = 0; d < s.head_dim; ++d) {
      const float a = decode(t.q[qr * s.head_dim + d], dt), x = decode(t.k[kr * s.head_dim + d], dt);
      dot += static_cast<double>(a) * x;
      dot32 = std::fma(a, x, dot32);
    }
    r.exact[j] = dot * scale;
    r.baseline[j] = dot32 * static_cast<float>(scale);
  }
  return r;
}

// One query row of one head against the float64 reference and the low-precision baseline (float32 softmax, P
// rounded to the data type before P V): a row that sees no key must be zeros with LSE -inf, one that sees a NaN
// score NaN, any other within twice the baseline's error.
void row_errors(const Case& c, DType dt, const Tensors& t, const std::uint16_t* dev_row, float dev_lse, float cpu_lse,
                std::size_t b, std::size_t h, std::size_t i, Errors& e) {
  const attention::Shape& s = c.s;
  const RowScores scores = row_scores(c, dt, t, b, h, i);
  const std::vector<double>& score = scores.exact;
  const std::vector<float>& score32 = scores.baseline;
  if (!scores.any) {
    ++e.empty_rows;
    bool ok = !c.lse || (std::isinf(dev_lse) && dev_lse < 0);
    for (std::size_t d = 0; d < s.head_dim_v; ++d) ok &= dev_row[d] == 0;
    e.wrong_rows += !ok;
    return;
  }
  double m = -INFINITY, l = 0;
  float m32 = -INFINITY, l32 = 0;
  for (std::size_t j = 0; j < s.seq_k; ++j) m = std::max(m, score[j]), m32 = std::max(m32, score32[j]);
  for (std::size_t j = 0; j < s.seq_k; ++j)
    if (score[j] != -INFINITY) l += std::exp(score[j] - m), l32 += std::exp(score32[j] - m32);
  if (std::isnan(l)) {
    ++e.nan_rows;
    bool ok = !c.lse || std::isnan(dev_lse);
    for (std::size_t d = 0; d < s.head_dim_v; ++d) ok &= std::isnan(decode(dev_row[d], dt));
    e.wrong_rows += !ok;
    return;
  }
  const double lse = m + std::log(l);
  if (c.lse) e.lse = worse(e.lse, std::fabs(dev_lse - lse));
  e.cpu_lse = worse(e.cpu_lse, std::fabs(cpu_lse - lse));
  const std::size_t group = s.heads_q / s.heads_kv;
  for (std::size_t d = 0; d < s.head_dim_v; ++d) {
    double o = 0;
    float o32 = 0;
    for (std::size_t j = 0; j < s.seq_k; ++j) {
      if (score[j] == -INFINITY) continue;
      const float x = decode(t.v[row_of(s, s.heads_kv, s.seq_k, b, h / group, j) * s.head_dim_v + d], dt);
      o += std::exp(score[j] - m) / l * x;
      o32 = std::fma(decode(encode(std::exp(score32[j] - m32) / l32, dt), dt), x, o32);
    }
    e.device = worse(e.device, std::fabs(decode(dev_row[d], dt) - o));
    e.baseline = worse(e.baseline, std::fabs(decode(encode(o32, dt), dt) - o));
  }
}

// Normal q, k and v, with the case's NaN keys and values.
Tensors make_tensors(const Case& c, DType dt) {
  const attention::Shape& s = c.s;
  std::mt19937 rng(c.seed);
  std::normal_distribution<float> normal;
  const std::size_t nq = s.batch * s.heads_q * s.seq_q, nk = s.batch * s.heads_kv * s.seq_k;
  Tensors t{std::vector<std::uint16_t>(nq * s.head_dim), std::vector<std::uint16_t>(nk * s.head_dim),
            std::vector<std::uint16_t>(nk * s.head_dim_v)};
  for (auto& x : t.q) x = encode(normal(rng) * c.q_gain, dt);
  for (auto& x : t.k) x = encode(normal(rng), dt);
  for (auto& x : t.v) x = encode(normal(rng), dt);
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t h = 0; h < s.heads_kv; ++h) {
      if (c.nan_key >= 0)
        t.k[row_of(s, s.heads_kv, s.seq_k, b, h, static_cast<std::size_t>(c.nan_key)) * s.head_dim] = encode(NAN, dt);
      const std::size_t valid = c.nan_beyond_lengths ? static_cast<std::size_t>(c.key_lengths[b]) : s.seq_k;
      for (std::size_t j = valid; j < s.seq_k; ++j) {
        const std::size_t r = row_of(s, s.heads_kv, s.seq_k, b, h, j);
        std::fill_n(t.k.begin() + r * s.head_dim, s.head_dim, encode(NAN, dt));
        std::fill_n(t.v.begin() + r * s.head_dim_v, s.head_dim_v, encode(NAN, dt));
      }
    }
  return t;
}

void attention_case(Case c, DType dt) {
  const std::string name = c.name + (dt == DType::bf16 ? " bf16" : " f16");
  if (!run->selected(name)) return;
  const attention::Shape& s = c.s;
  if (!c.key_lengths.empty()) c.o.key_lengths = c.key_lengths.data();
  if (!c.segments.empty()) c.o.segments = c.segments.data(), c.o.segment_count = c.segments.size() - 1;
  const Tensors t = make_tensors(c, dt);
  const std::size_t rows = s.batch * s.heads_q * s.seq_q;
  std::vector<std::uint16_t> cpu(rows * s.head_dim_v), dev(rows * s.head_dim_v, 0x7E00);
  std::vector<float> cpu_lse(rows), dev_lse(rows, 12345.0f);
  if (attention::attend(t.q.data(), t.k.data(), t.v.data(), dt, s, c.o, cpu.data(), cpu_lse.data()) != Status::ok)
    return run->record(name, false, "attention::attend failed");
  cuda::detail::AttentionContext ctx;
  if (!ctx.stream.create().ok()) return run->record(name, false, "no stream");
  emu::clear_launch_log();
  const long mma_before = emu::counters().mma, copies_before = emu::counters().async_copies;
  const cuda::Result r = cuda::detail::attend(ctx, t.q.data(), t.k.data(), t.v.data(), dt, s, c.o, dev.data(),
                                              c.lse ? dev_lse.data() : nullptr);
  if (!r.ok()) return run->record(name, false, r.message);

  Errors e;
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t h = 0; h < s.heads_q; ++h)
      for (std::size_t i = 0; i < s.seq_q; ++i) {
        const std::size_t li = (b * s.heads_q + h) * s.seq_q + i;
        row_errors(c, dt, t, dev.data() + row_of(s, s.heads_q, s.seq_q, b, h, i) * s.head_dim_v, dev_lse[li],
                   cpu_lse[li], b, h, i, e);
      }
  // The attention kernel's grid is (blocks, splits); a split call adds the combine kernel.
  const auto& launches = emu::launch_log();
  const long splits = launches.empty() ? 1 : launches.front().grid.y;
  const Work want = expected_work(c, splits);
  const Work got{emu::counters().async_copies - copies_before, emu::counters().mma - mma_before};
  const bool work_ok = want.copies == got.copies && want.mma == got.mma &&
                       static_cast<long>(launches.size()) == (splits > 1 ? 2 : 1);
  const bool accurate = e.device <= 2 * e.baseline + 1e-5 && (!c.lse || e.lse <= 2 * e.cpu_lse + 1e-5);
  const std::string detail = check::format(
      "error %.2e (baseline %.2e), lse %.1e (cpu %.1e), empty rows %ld, NaN rows %ld, wrong %ld; splits %ld, copies "
      "%ld (expected %ld), mma %ld (expected %ld)",
      e.device, e.baseline, e.lse, e.cpu_lse, e.empty_rows, e.nan_rows, e.wrong_rows, splits, got.copies, want.copies,
      got.mma, want.mma);
  run->record(name, e.wrong_rows == 0 && accurate && work_ok, detail);
}

// ---- the cases ------------------------------------------------------------------------------------------------------

Case make(const char* name, std::size_t batch, std::size_t hq, std::size_t hkv, std::size_t sq, std::size_t sk,
          std::size_t d, std::size_t dv, Layout layout = Layout::bshd) {
  Case c;
  c.name = name;
  c.s = attention::Shape{batch, hq, hkv, sq, sk, d, dv, layout};
  c.o.scale = 1.0f / std::sqrt(static_cast<float>(d));
  return c;
}

std::vector<Case> cases() {
  std::vector<Case> all;
  auto add = [&](Case c, auto change) {
    change(c);
    all.push_back(std::move(c));
  };
  auto none = [](Case&) {};
  add(make("plain d64", 1, 2, 1, 100, 100, 64, 64), none);
  add(make("causal d128 gqa bhsd", 2, 4, 2, 200, 200, 128, 128, Layout::bhsd), [](Case& c) { c.o.causal = true; });
  add(make("causal sq<sk d40 (padded to 64)", 1, 2, 2, 37, 150, 40, 40), [](Case& c) { c.o.causal = true; });
  add(make("causal sq>sk (empty rows) d64", 1, 2, 1, 150, 100, 64, 64), [](Case& c) { c.o.causal = true; });
  add(make("window 17 causal d96 (padded to 128)", 1, 2, 1, 200, 200, 96, 96),
      [](Case& c) { c.o.causal = true, c.o.window = 17; });
  add(make("window 30 bidirectional d64 bhsd", 1, 3, 1, 180, 190, 64, 64, Layout::bhsd),
      [](Case& c) { c.o.window = 30; });
  add(make("lambda g4 w16 causal d64", 1, 2, 1, 200, 200, 64, 64),
      [](Case& c) { c.o.causal = true, c.o.window = 16, c.o.global_tokens = 4; });
  add(make("lambda g4 w40 bidirectional d128", 1, 2, 2, 150, 200, 128, 128),
      [](Case& c) { c.o.window = 40, c.o.global_tokens = 4; });
  add(make("lambda g4 w64 causal 768 d64", 1, 1, 1, 768, 768, 64, 64),
      [](Case& c) { c.o.causal = true, c.o.window = 64, c.o.global_tokens = 4; });
  add(make("segments causal anchor d64", 1, 2, 1, 200, 200, 64, 64), [](Case& c) {
    c.o.causal = true, c.o.anchor = true;
    c.segments = {0, 1, 50, 51, 130, 200};
  });
  add(make("segments bidirectional d128 sq<sk", 1, 2, 1, 120, 200, 128, 128),
      [](Case& c) { c.segments = {0, 70, 71, 150, 200}; });
  add(make("key lengths {0, 77} causal", 2, 2, 1, 60, 100, 64, 64), [](Case& c) {
    c.o.causal = true;
    c.key_lengths = {0, 77};
  });
  add(make("key lengths {3, 100} bidirectional bhsd", 2, 2, 2, 90, 100, 64, 64, Layout::bhsd),
      [](Case& c) { c.key_lengths = {3, 100}; });
  add(make("key lengths {70, 30}, NaN beyond them", 2, 2, 1, 20, 100, 64, 64), [](Case& c) {
    c.key_lengths = {70, 30};
    c.nan_beyond_lengths = true;
  });
  add(make("NaN key 40 causal", 1, 2, 1, 150, 150, 64, 64), [](Case& c) {
    c.o.causal = true;
    c.nan_key = 40;
  });
  add(make("temperature 0.7, peaky d64", 1, 2, 1, 130, 130, 64, 64), [](Case& c) {
    c.o.temperature = 0.7f;
    c.q_gain = 3.0f;
  });
  add(make("negative scale causal d64", 1, 2, 1, 70, 70, 64, 64),
      [](Case& c) { c.o.causal = true, c.o.scale = -0.2f; });
  add(make("scale 0 causal d64", 1, 1, 1, 70, 90, 64, 64), [](Case& c) { c.o.causal = true, c.o.scale = 0.0f; });
  add(make("d192 causal", 1, 2, 1, 100, 100, 192, 192), [](Case& c) { c.o.causal = true; });
  add(make("d200 dv160 (padded to 256) bhsd", 1, 2, 1, 80, 90, 200, 160, Layout::bhsd), none);
  add(make("d64 dv128 (padded to 128) window", 1, 2, 1, 100, 100, 64, 128),
      [](Case& c) { c.o.window = 20, c.o.causal = true; });
  add(make("d1 dv3", 1, 2, 1, 33, 40, 1, 3), [](Case& c) { c.o.causal = true; });
  add(make("seq_k 0", 1, 2, 1, 20, 0, 64, 64), none);
  add(make("every mask: causal window global segments anchor key lengths", 2, 2, 1, 150, 200, 64, 64), [](Case& c) {
    c.o.causal = true, c.o.window = 25, c.o.global_tokens = 3, c.o.anchor = true;
    c.segments = {0, 60, 61, 140, 200};
    c.key_lengths = {200, 170};
  });
  add(make("every mask bidirectional, key length 0, d80", 2, 2, 2, 100, 160, 80, 80), [](Case& c) {
    c.o.window = 33, c.o.global_tokens = 2;
    c.segments = {0, 100, 160};
    c.key_lengths = {0, 150};
  });
  add(make("causal sq100 sk130 d128 (offset 30)", 1, 2, 1, 100, 130, 128, 128), [](Case& c) { c.o.causal = true; });
  add(make("window 50 causal sq90 sk331 bhsd", 1, 1, 1, 90, 331, 64, 64, Layout::bhsd), [](Case& c) {
    c.o.causal = true, c.o.window = 50;
    c.seed = 7;
  });
  add(make("causal 512 d128 (upper tiles skipped)", 1, 1, 1, 512, 512, 128, 128), [](Case& c) { c.o.causal = true; });
  add(make("lambda g4 w512 causal 4096 d64", 1, 1, 1, 4096, 4096, 64, 64),
      [](Case& c) { c.o.causal = true, c.o.window = 512, c.o.global_tokens = 4; });
  // Decoding: query heads packed per block (grouped heads), short tiles, key tiles split across blocks.
  add(make("decode sq1 gqa 4:1 no lse", 2, 4, 1, 1, 200, 128, 128), [](Case& c) { c.lse = false; });
  add(make("decode sq1 gqa 8:1 sk2000 (split)", 1, 8, 1, 1, 2000, 128, 128), none);
  add(make("decode sq1 NaN key 1234 sk2000 (split)", 1, 2, 1, 1, 2000, 64, 64), [](Case& c) { c.nan_key = 1234; });
  // The last row sees only the last key, NaN: every chunk but the last has no key for it (LSE -inf).
  add(make("decode sq2 segments, NaN last key alone (split)", 1, 2, 1, 2, 2000, 64, 64), [](Case& c) {
    c.segments = {0, 1999, 2000};
    c.nan_key = 1999;
  });
  add(make("decode sq3 gqa 4:2 causal sk1500 d64 (split)", 2, 4, 2, 3, 1500, 64, 64),
      [](Case& c) { c.o.causal = true; });
  add(make("decode sq2 key lengths {0, 900, 1300} (split)", 3, 2, 1, 2, 1300, 64, 64),
      [](Case& c) { c.key_lengths = {0, 900, 1300}; });
  add(make("decode sq1 window 300 g2 sk1800 bhsd (split)", 1, 2, 2, 1, 1800, 96, 96, Layout::bhsd),
      [](Case& c) { c.o.window = 300, c.o.global_tokens = 2; });
  add(make("decode sq20 gqa 4:1 d256 sk1000 (split)", 1, 4, 1, 20, 1000, 256, 256), [](Case& c) { c.o.causal = true; });
  add(make("prefill sq40 gqa 2:1 sk1200 (split, 2 m-tiles)", 1, 2, 1, 40, 1200, 64, 64),
      [](Case& c) { c.o.causal = true; });
  return all;
}

void expect_status(const char* name, Status want, DType dt, const attention::Shape& s, const attention::Options& o) {
  const std::string full = std::string("arguments: ") + name;
  if (!run->selected(full)) return;
  std::vector<std::uint16_t> buffer(1 << 16);
  std::vector<float> lse(1 << 12);
  cuda::detail::AttentionContext ctx;
  ctx.stream.create();
  const cuda::Result r = cuda::detail::attend(ctx, buffer.data(), buffer.data(), buffer.data(), dt, s, o,
                                              buffer.data(), lse.data());
  run->record(full, r.status == want, check::format("%s: %s", status_name(r.status), r.message.c_str()));
}

void argument_cases() {
  attention::Shape s;
  s.seq_q = s.seq_k = 4, s.head_dim = s.head_dim_v = 8;
  attention::Options o;
  o.scale = 1;
  auto with = [&](auto change) {
    attention::Options changed = o;
    change(changed);
    return changed;
  };
  float slopes[1] = {0.5f};
  std::vector<float> bias(16);
  std::int32_t too_long[1] = {5};
  expect_status("f32 unsupported", Status::unsupported, DType::f32, s, o);
  expect_status("softcap unsupported", Status::unsupported, DType::bf16, s, with([](auto& x) { x.softcap = 30; }));
  expect_status("ALiBi unsupported", Status::unsupported, DType::f16, s,
                with([&](auto& x) { x.alibi_slopes = slopes; }));
  expect_status("bias unsupported", Status::unsupported, DType::bf16, s, with([&](auto& x) { x.bias = bias.data(); }));
  attention::Shape wide = s, uneven = s;
  wide.head_dim = 300;
  uneven.heads_q = 3, uneven.heads_kv = 2;
  expect_status("head_dim 300", Status::invalid_argument, DType::bf16, wide, o);
  expect_status("heads 3 over 2", Status::invalid_argument, DType::bf16, uneven, o);
  expect_status("global tokens without a window", Status::invalid_argument, DType::bf16, s,
                with([](auto& x) { x.global_tokens = 2; }));
  expect_status("anchor without segments", Status::invalid_argument, DType::bf16, s,
                with([](auto& x) { x.anchor = true; }));
  expect_status("key length above seq_k", Status::invalid_argument, DType::bf16, s,
                with([&](auto& x) { x.key_lengths = too_long; }));
  expect_status("temperature 0", Status::invalid_argument, DType::bf16, s, with([](auto& x) { x.temperature = 0; }));
}

}  // namespace

int main(int argc, char** argv) {
  check::Run checks("attention/flash.cu", argc, argv);
  run = &checks;
  argument_cases();
  for (const Case& c : cases())
    for (DType dt : {DType::bf16, DType::f16}) attention_case(c, dt);
  return checks.finish();
}
