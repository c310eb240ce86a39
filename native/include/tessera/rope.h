// Rotary position embeddings (RoPE; Su et al., "RoFormer", 2021) applied in place to query or key tensors.
//
// For a token at position p and rotary pair i < rotary_dim / 2 the angle is p * inv_freq[i]; the pair (x_a, x_b)
// becomes (x_a cos - x_b sin, x_b cos + x_a sin), cos and sin multiplied by the attention factor (YaRN's and
// LongRoPE's magnitude correction: Hugging Face scales both). The pairs are (i, i + rotary_dim / 2) in the NeoX
// style (Hugging Face's rotate_half, ONNX interleaved = 0) and (2i, 2i + 1) in the interleaved style (GPT-J, Meta's
// original LLaMA, ONNX interleaved = 1). Channels past rotary_dim are left untouched.
//
// Precision: angles are formed and reduced modulo pi/2 in float64, so the phase stays exact to about 1e-16 relative
// at any position a float64 holds ("When Precision Meets Position", Wang et al. 2024: float32 angles are off by
// 3e-2 rad at position 10^6); cos and sin are then evaluated in float64 and rounded to float32, so each is within
// 1e-7 of the true value. Rotation arithmetic is float32 (half types are widened, rotated, rounded to nearest even).
//
// Alternatively the caller passes cos and sin tables of [rows, rotary_dim / 2] floats indexed by position, as ONNX's
// RotaryEmbedding takes them; positions must then be integers in [0, rows).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tessera/status.h"

namespace tessera::rope {

enum class Layout { bshd, bhsd };  // [batch, seq, heads, head_dim] or [batch, heads, seq, head_dim], row-major
enum class Style { neox, interleaved };
enum class DType { f32, f16, bf16 };  // half types are stored as 16-bit words
enum class PositionType { i32, f32, f64 };

struct Shape {
  std::size_t batch = 1, seq_len = 0, heads = 0, head_dim = 0, rotary_dim = 0;
  Layout layout = Layout::bshd;
};

// seq_len positions shared by every batch row, or batch * seq_len (row-major [batch, seq]).
struct Positions {
  const void* data = nullptr;
  PositionType type = PositionType::i32;
  bool per_batch = false;
};

// Exactly one source of angles: inv_freq (rotary_dim / 2 float64 values), or cos and sin tables.
struct Angles {
  const double* inv_freq = nullptr;
  const float* cos = nullptr;
  const float* sin = nullptr;
  std::size_t table_rows = 0;
  double attention_factor = 1.0;
};

// Rotates `data` (its shape's element count of `dtype`) in place. Every argument is checked before anything is
// written: invalid_argument for a bad shape (rotary_dim odd, zero or above head_dim; sizes that overflow), a
// non-finite position or factor, a table position that is not an integer in [0, rows), or missing angles.
// Threaded over tokens; the result is identical for any thread count and, per element, for every SIMD level.
Status apply(void* data, DType dtype, const Shape& shape, Style style, const Positions& positions,
             const Angles& angles) noexcept;

// The tables apply() uses: cos[t * half + i] and sin[t * half + i] of positions[t] * inv_freq[i] (times factor),
// for t < count, i < half, with the same float64 angles.
Status cos_sin(const Positions& positions, std::size_t count, const double* inv_freq, std::size_t half,
               double attention_factor, float* cos, float* sin) noexcept;

}  // namespace tessera::rope
