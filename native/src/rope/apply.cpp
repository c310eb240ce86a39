// RoPE in place: checks, then per token (batch row, sequence index) its cos/sin row, shared by all of its heads.
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"
#include "tessera/memory.h"
#include "tessera/rope.h"
#include "tessera/runtime.h"

namespace tessera::rope {
namespace {

std::size_t element_bytes(DType dtype) { return dtype == DType::f32 ? 4 : 2; }

double position_at(const Positions& p, std::size_t index) {
  switch (p.type) {
    case PositionType::i32: return static_cast<const std::int32_t*>(p.data)[index];
    case PositionType::f32: return static_cast<const float*>(p.data)[index];
    default: return static_cast<const double*>(p.data)[index];
  }
}

// Every position finite; with tables, also a whole row index.
bool positions_valid(const Positions& p, std::size_t count, std::size_t table_rows) {
  if (count > 0 && p.data == nullptr) return false;
  for (std::size_t i = 0; i < count; ++i) {
    const double v = position_at(p, i);
    if (!std::isfinite(v)) return false;
    if (table_rows > 0 && !(v >= 0 && v < static_cast<double>(table_rows) && v == std::floor(v))) return false;
  }
  return true;
}

bool angles_valid(const Angles& a, std::size_t half) {
  if (!std::isfinite(a.attention_factor)) return false;
  const bool frequencies = a.inv_freq != nullptr, tables = a.cos != nullptr || a.sin != nullptr;
  if (frequencies == tables) return false;  // exactly one source
  if (tables) return a.cos != nullptr && a.sin != nullptr && a.table_rows > 0;
  for (std::size_t i = 0; i < half; ++i)
    if (!std::isfinite(a.inv_freq[i])) return false;
  return true;
}

// Per thread: one token's cos/sin (and, for the interleaved style, their duplicated and signed forms).
struct Scratch {
  std::vector<float> cos, sin, cos2, sin2;
};

}  // namespace

Status apply(void* data, DType dtype, const Shape& shape, Style style, const Positions& positions,
             const Angles& angles) noexcept {
  const std::size_t rot = shape.rotary_dim, half = rot / 2;
  if (rot == 0 || rot % 2 != 0 || rot > shape.head_dim) return Status::invalid_argument;
  std::size_t tokens = 0, heads_dims = 0, elements = 0;
  if (!element_count({shape.batch, shape.seq_len}, &tokens) || !element_count({shape.heads, shape.head_dim}, &heads_dims) ||
      !element_count({tokens, heads_dims}, &elements))
    return Status::invalid_argument;
  if (!angles_valid(angles, half)) return Status::invalid_argument;
  const std::size_t position_count = positions.per_batch ? tokens : shape.seq_len;
  if (!positions_valid(positions, position_count, angles.inv_freq ? 0 : angles.table_rows))
    return Status::invalid_argument;
  if (elements == 0) return Status::ok;
  if (data == nullptr) return Status::invalid_argument;

  const SimdLevel level = active_simd_level();
  const detail::AnglesFn angles_of = detail::angles(level);
  const detail::RotateFn rotate = detail::rotate(level, dtype, style);
  const std::size_t bytes = element_bytes(dtype), row_bytes = shape.head_dim * bytes;
  const bool interleaved = style == Style::interleaved;
  const bool scaled_tables = !angles.inv_freq && angles.attention_factor != 1.0;
  auto* base = static_cast<char*>(data);
  try {
    const std::size_t grain = grain_for_bytes(heads_dims * bytes, std::size_t{1} << 16);
    const std::size_t slots = slots_for(tokens, grain);
    std::vector<Scratch> scratch(slots);
    for (Scratch& s : scratch) {
      s.cos.resize(half), s.sin.resize(half);
      if (interleaved) s.cos2.resize(rot), s.sin2.resize(rot);
    }
    auto body = [&](std::size_t begin, std::size_t end, std::size_t slot) {
      Scratch& s = scratch[slot];
      for (std::size_t t = begin; t < end; ++t) {
        const std::size_t b = t / shape.seq_len, q = t % shape.seq_len;
        const double p = position_at(positions, positions.per_batch ? t : q);
        const float* cos = s.cos.data();
        const float* sin = s.sin.data();
        if (angles.inv_freq) {
          angles_of(p, angles.inv_freq, half, angles.attention_factor, s.cos.data(), s.sin.data());
        } else {
          const std::size_t row = static_cast<std::size_t>(p) * half;
          cos = angles.cos + row, sin = angles.sin + row;
          if (scaled_tables) {
            const auto factor = static_cast<float>(angles.attention_factor);
            for (std::size_t i = 0; i < half; ++i) s.cos[i] = cos[i] * factor, s.sin[i] = sin[i] * factor;
            cos = s.cos.data(), sin = s.sin.data();
          }
        }
        if (interleaved) {
          for (std::size_t i = 0; i < half; ++i) {
            s.cos2[2 * i] = s.cos2[2 * i + 1] = cos[i];
            s.sin2[2 * i] = -sin[i];
            s.sin2[2 * i + 1] = sin[i];
          }
          cos = s.cos2.data(), sin = s.sin2.data();
        }
        for (std::size_t h = 0; h < shape.heads; ++h) {
          const std::size_t row = shape.layout == Layout::bshd ? t * shape.heads + h
                                                               : (b * shape.heads + h) * shape.seq_len + q;
          rotate(base + row * row_bytes, half, cos, sin);
        }
      }
    };
    return parallel_for(tokens, grain, body, slots);
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status cos_sin(const Positions& positions, std::size_t count, const double* inv_freq, std::size_t half,
               double attention_factor, float* cos, float* sin) noexcept {
  if (half == 0 || !inv_freq || !std::isfinite(attention_factor)) return Status::invalid_argument;
  for (std::size_t i = 0; i < half; ++i)
    if (!std::isfinite(inv_freq[i])) return Status::invalid_argument;
  if (!positions_valid(positions, count, 0)) return Status::invalid_argument;
  std::size_t total = 0;
  if (!element_count({count, half}, &total)) return Status::invalid_argument;
  if (count == 0) return Status::ok;
  if (!cos || !sin) return Status::invalid_argument;
  const detail::AnglesFn angles_of = detail::angles(active_simd_level());
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t t = begin; t < end; ++t)
      angles_of(position_at(positions, t), inv_freq, half, attention_factor, cos + t * half, sin + t * half);
  };
  return parallel_for(count, grain_for_bytes(half * 8, std::size_t{1} << 15), body);
}

}  // namespace tessera::rope
