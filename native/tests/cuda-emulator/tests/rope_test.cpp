// rope/apply.cu (detail::apply_rope) on the emulator against the CPU's rope::apply, bit for bit, at every SIMD level
// of this CPU: every dtype, layout, style, position type, shared and per-batch positions, tables and frequencies,
// positions small, large, fractional and negative, special values (zeros, subnormals, near-overflow), odd shapes
// (scalar paths) and aligned ones (16-byte paths), many chunks (a small chunk budget: bhsd rows split per head);
// the cos/sin table against rope::cos_sin over many angles; and the argument checks (the same verdicts, nothing
// written on a rejection).
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "attention/context.cuh"
#include "check.h"
#include "tessera/half.h"
#include "tessera/rope.h"
#include "tessera/runtime.h"

using namespace tessera;
using rope::DType;
using rope::Layout;
using rope::PositionType;
using rope::Style;

namespace {

check::Run* run = nullptr;
cuda::detail::AttentionContext* context = nullptr;

struct Dims {
  std::size_t batch, seq, heads, head_dim, rotary_dim;
};

// Shapes with and without scalar tails and 16-byte groups, rotary_dim below head_dim, one element pair.
const Dims kDims[] = {{3, 5, 3, 64, 64}, {1, 1, 1, 128, 128}, {2, 7, 2, 40, 24}, {3, 3, 5, 17, 6},
                      {1, 9, 9, 128, 32}, {2, 4, 3, 96, 96},  {3, 2, 1, 10, 10}, {1, 3, 2, 2, 2},
                      {2, 3, 3, 33, 20},  {1, 6, 4, 256, 128}};

enum class Positions { counting, large, fractional, negative, table_rows };

struct RopeCase {
  DType dtype;
  Layout layout;
  Style style;
  PositionType position_type;
  bool per_batch;
  Positions positions;
  Dims dims;
  double factor;
};

const char* name_of(DType d) { return d == DType::f32 ? "f32" : d == DType::f16 ? "f16" : "bf16"; }

std::string name_of(const RopeCase& c) {
  static const char* const positions[] = {"counting", "large", "fractional", "negative", "table rows"};
  static const char* const types[] = {"i32", "f32", "f64"};
  return check::format("%s %s %s positions %s %s%s b%zu s%zu h%zu d%zu rot%zu factor %g", name_of(c.dtype),
                       c.layout == Layout::bshd ? "bshd" : "bhsd", c.style == Style::neox ? "neox" : "interleaved",
                       types[static_cast<int>(c.position_type)], positions[static_cast<int>(c.positions)],
                       c.per_batch ? " per batch" : "", c.dims.batch, c.dims.seq, c.dims.heads, c.dims.head_dim,
                       c.dims.rotary_dim, c.factor);
}

std::size_t element_bytes(DType d) { return d == DType::f32 ? 4 : 2; }

float value_at(const std::vector<unsigned char>& bytes, std::size_t i, DType d) {
  if (d == DType::f32) {
    float f;
    std::memcpy(&f, &bytes[4 * i], 4);
    return f;
  }
  std::uint16_t h;
  std::memcpy(&h, &bytes[2 * i], 2);
  return d == DType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// Normal values, some large, with zeros, subnormals (of float32 and of float16) and values near overflow.
std::vector<unsigned char> make_data(DType dtype, std::size_t elements, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> special(0, 40);
  std::vector<unsigned char> bytes(elements * element_bytes(dtype));
  for (std::size_t i = 0; i < elements; ++i) {
    float v = normal(rng) * (special(rng) == 0 ? 1000.0f : 1.0f);
    const float specials[] = {0.0f, -0.0f, 1e-40f, 3e-6f, 65000.0f, 3e38f};
    if (const int s = special(rng); s >= 1 && s <= 6) v = specials[s - 1];
    if (dtype == DType::f32) {
      std::memcpy(&bytes[4 * i], &v, 4);
    } else {
      const std::uint16_t h = dtype == DType::f16 ? f32_to_f16(v) : f32_to_bf16(v);
      std::memcpy(&bytes[2 * i], &h, 2);
    }
  }
  return bytes;
}

// The positions in all three types (one of which the case uses).
struct PositionData {
  std::vector<std::int32_t> i32;
  std::vector<float> f32;
  std::vector<double> f64;
  rope::Positions p;
};

PositionData make_positions(const RopeCase& c, std::size_t table_rows, std::mt19937& rng) {
  const std::size_t n = c.per_batch ? c.dims.batch * c.dims.seq : c.dims.seq;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  PositionData d;
  for (std::size_t i = 0; i < n; ++i) {
    double x = 0;
    switch (c.positions) {
      case Positions::counting: x = static_cast<double>(i); break;
      case Positions::large: x = std::floor(u(rng) * 1e6); break;
      case Positions::fractional: x = u(rng) * 1e6; break;
      case Positions::negative: x = (u(rng) - 0.3) * 2e4; break;
      case Positions::table_rows: x = std::floor(u(rng) * static_cast<double>(table_rows)); break;
    }
    d.i32.push_back(static_cast<std::int32_t>(std::floor(x)));
    d.f32.push_back(static_cast<float>(x));
    d.f64.push_back(x);
  }
  d.p.type = c.position_type;
  d.p.per_batch = c.per_batch;
  d.p.data = c.position_type == PositionType::i32   ? static_cast<const void*>(d.i32.data())
             : c.position_type == PositionType::f32 ? static_cast<const void*>(d.f32.data())
                                                    : static_cast<const void*>(d.f64.data());
  return d;
}

bool is_nan(const std::vector<unsigned char>& bytes, std::size_t i, DType d) {
  return std::isnan(value_at(bytes, i, d));
}

void rope_case(const RopeCase& c, const char* level, unsigned seed) {
  const std::string name = std::string(level) + " " + name_of(c);
  if (!run->selected(name)) return;
  std::mt19937 rng(seed);
  const Dims& d = c.dims;
  const std::size_t half = d.rotary_dim / 2, elements = d.batch * d.seq * d.heads * d.head_dim, rows = 50;
  std::vector<unsigned char> cpu = make_data(c.dtype, elements, rng), dev = cpu;
  std::vector<double> inv_freq(half);
  for (std::size_t i = 0; i < half; ++i)
    inv_freq[i] = std::pow(10000.0, -2.0 * static_cast<double>(i) / static_cast<double>(d.rotary_dim)) *
                  (seed % 3 == 0 ? 0.37 : 1.0);
  std::vector<float> cos_table(rows * half), sin_table(rows * half);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (auto& x : cos_table) x = u(rng);
  for (auto& x : sin_table) x = u(rng);
  const PositionData positions = make_positions(c, rows, rng);
  rope::Angles angles;
  angles.attention_factor = c.factor;
  if (c.positions == Positions::table_rows) {
    angles.cos = cos_table.data();
    angles.sin = sin_table.data();
    angles.table_rows = rows;
  } else {
    angles.inv_freq = inv_freq.data();
  }
  const rope::Shape shape{d.batch, d.seq, d.heads, d.head_dim, d.rotary_dim, c.layout};
  const Status s = rope::apply(cpu.data(), c.dtype, shape, c.style, positions.p, angles);
  const cuda::Result r = cuda::detail::apply_rope(*context, dev.data(), c.dtype, shape, c.style, positions.p, angles);
  if (s != Status::ok || !r.ok())
    return run->record(name, false, check::format("cpu %s, device %s", status_name(s), r.message.c_str()));
  // Bit for bit; NaN outputs carry each machine's own payload.
  const std::size_t eb = element_bytes(c.dtype);
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < elements; ++i)
    if (std::memcmp(&cpu[i * eb], &dev[i * eb], eb) != 0 && !(is_nan(cpu, i, c.dtype) && is_nan(dev, i, c.dtype)) &&
        bad++ == 0)
      first = i;
  run->record(name, bad == 0,
              bad ? check::format("%zu of %zu differ, first element %zu (channel %zu): cpu %.9g device %.9g", bad,
                                  elements, first, first % d.head_dim, value_at(cpu, first, c.dtype),
                                  value_at(dev, first, c.dtype))
                  : "");
}

// Every dtype, layout, style, position type and kind, shared and per batch; the shapes and factors rotate.
void rope_matrix(const char* level, unsigned& seed) {
  int shape = 0;
  for (DType dtype : {DType::f32, DType::f16, DType::bf16})
    for (Layout layout : {Layout::bshd, Layout::bhsd})
      for (Style style : {Style::neox, Style::interleaved})
        for (PositionType type : {PositionType::i32, PositionType::f32, PositionType::f64})
          for (bool per_batch : {false, true})
            for (Positions kind : {Positions::counting, Positions::large, Positions::fractional, Positions::negative,
                                   Positions::table_rows}) {
              const double factor = seed % 4 == 0 ? 1.0 : seed % 4 == 1 ? 1.2345678901 : 0.7;
              rope_case({dtype, layout, style, type, per_batch, kind, kDims[shape++ % std::size(kDims)], factor},
                        level, seed++);
            }
}

// Rotating (1, 0) pairs gives (cos, sin) exactly (fma(1, c, -(0 s)) = c, fma(0, c, 1 s) = s): the device's table,
// compared with rope::cos_sin over many angles.
void table_case(std::size_t tokens) {
  const std::string name = check::format("cos/sin of %zu positions x 64 frequencies vs rope::cos_sin", tokens);
  if (!run->selected(name)) return;
  const std::size_t rot = 128, half = 64;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1e6);
  std::vector<double> positions(tokens), inv(half);
  for (auto& p : positions) p = u(rng);
  for (std::size_t i = 0; i < half; ++i) inv[i] = std::pow(10000.0, -2.0 * static_cast<double>(i) / rot);
  std::vector<float> data(tokens * rot);
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t i = 0; i < rot; ++i) data[t * rot + i] = i < half ? 1.0f : 0.0f;
  const rope::Positions p{positions.data(), PositionType::f64, false};
  rope::Angles a;
  a.inv_freq = inv.data();
  const cuda::Result r = cuda::detail::apply_rope(*context, data.data(), DType::f32,
                                                  rope::Shape{1, tokens, 1, rot, rot, Layout::bshd}, Style::neox, p, a);
  std::vector<float> c(tokens * half), s(tokens * half);
  const Status st = rope::cos_sin(p, tokens, inv.data(), half, 1.0, c.data(), s.data());
  if (!r.ok() || st != Status::ok) return run->record(name, false, r.message);
  std::size_t bad = 0;
  for (std::size_t t = 0; t < tokens; ++t)
    for (std::size_t i = 0; i < half; ++i)
      bad += (data[t * rot + i] != c[t * half + i]) + (data[t * rot + half + i] != s[t * half + i]);
  run->record(name, bad == 0, check::format("%zu of %zu values differ", bad, 2 * tokens * half));
}

// Bad arguments: the device rejects exactly what the CPU rejects, before writing anything.
void argument_cases() {
  std::vector<float> data(2 * 3 * 2 * 8, 1.5f);
  std::vector<std::int32_t> pos = {0, 1, 2, 3, 4, 5};
  std::vector<double> inv = {1.0, 0.5, 0.25, 0.125}, nan_inv = {1.0, NAN, 0.25, 0.125};
  std::vector<float> nan_pos = {0, 1, NAN}, fractional = {0, 1.5f, 2}, beyond = {0, 1, 7}, table(16, 0.5f);
  rope::Angles tables;
  tables.cos = tables.sin = table.data();
  tables.table_rows = 4;
  struct Call {
    const char* name;
    rope::Shape shape;
    rope::Positions p;
    rope::Angles a;
    void* data;
  };
  std::vector<Call> calls;
  auto call = [&](const char* name, auto change) {  // a valid call, changed
    Call c{name, rope::Shape{2, 3, 2, 8, 8, Layout::bshd}, rope::Positions{pos.data(), PositionType::i32, false},
           rope::Angles{}, data.data()};
    c.a.inv_freq = inv.data();
    change(c);
    calls.push_back(c);
  };
  auto f32_positions = [](const std::vector<float>& p) { return rope::Positions{p.data(), PositionType::f32, false}; };
  call("rotary_dim 0", [](Call& c) { c.shape.rotary_dim = 0; });
  call("rotary_dim odd", [](Call& c) { c.shape.rotary_dim = 7; });
  call("rotary_dim > head_dim", [](Call& c) { c.shape.rotary_dim = 10; });
  call("overflowing shape", [](Call& c) { c.shape.batch = c.shape.seq_len = std::size_t{1} << 40; });
  call("infinite factor", [](Call& c) { c.a.attention_factor = INFINITY; });
  call("two sources", [&](Call& c) { c.a.cos = c.a.sin = table.data(), c.a.table_rows = 4; });
  call("no source", [](Call& c) { c.a.inv_freq = nullptr; });
  call("cos only", [&](Call& c) { c.a = tables, c.a.sin = nullptr; });
  call("table rows 0", [&](Call& c) { c.a = tables, c.a.table_rows = 0; });
  call("NaN frequency", [&](Call& c) { c.a.inv_freq = nan_inv.data(); });
  call("no positions", [](Call& c) { c.p.data = nullptr; });
  call("NaN position", [&](Call& c) { c.p = f32_positions(nan_pos); });
  call("fractional table position", [&](Call& c) { c.p = f32_positions(fractional), c.a = tables; });
  call("table position beyond the rows", [&](Call& c) { c.p = f32_positions(beyond), c.a = tables; });
  call("no data", [](Call& c) { c.data = nullptr; });
  call("no heads, no data (fine)", [](Call& c) { c.shape.heads = 0, c.data = nullptr; });
  call("seq 0, no positions (fine)", [](Call& c) { c.shape.seq_len = 0, c.p.data = nullptr, c.data = nullptr; });
  call("no heads, bad positions", [&](Call& c) { c.shape.heads = 0, c.p = f32_positions(nan_pos), c.data = nullptr; });
  call("head_dim 0, rotary_dim 0", [](Call& c) { c.shape.head_dim = c.shape.rotary_dim = 0, c.data = nullptr; });
  for (const Call& c : calls) {
    const std::string name = std::string("arguments: ") + c.name;
    if (!run->selected(name)) continue;
    const std::vector<float> before = data;
    const Status s = rope::apply(c.data, DType::f32, c.shape, Style::neox, c.p, c.a);
    const bool cpu_wrote = data != before;
    data = before;
    const cuda::Result r = cuda::detail::apply_rope(*context, c.data, DType::f32, c.shape, Style::neox, c.p, c.a);
    const bool dev_wrote = data != before;
    data = before;
    run->record(name, s == r.status && (s == Status::ok || (!cpu_wrote && !dev_wrote)),
                check::format("cpu %s, device %s (%s)", status_name(s), status_name(r.status), r.message.c_str()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  check::Run checks("rope/apply.cu", argc, argv);
  run = &checks;
  {
    cuda::detail::AttentionContext ctx;  // gone before finish() looks for leaks
    if (!ctx.stream.create().ok()) return 2;
    context = &ctx;
    argument_cases();
    unsigned seed = 1;
    for (SimdLevel level : {SimdLevel::avx512_vpopcntdq, SimdLevel::avx512, SimdLevel::avx2, SimdLevel::scalar}) {
      if (!simd_level_available(level)) continue;
      set_simd_level(level);
      rope_matrix(simd_level_name(level), seed);
    }
    set_simd_level(detected_simd_level());
    table_case(1 << 16);
    const check::Tunable chunks("kChunkBudget", 4096);
    rope_matrix("chunks of 4 KiB", seed);
  }
  return checks.finish();
}
