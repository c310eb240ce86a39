// IEEE binary16 and bfloat16 conversions, portable, rounding to nearest even (what F16C's vcvtps2ph and the AVX-512
// kernels do, so every level stores the same half words). NaN stays NaN (quiet).
#pragma once

#include <cstdint>

namespace tessera {

float f16_to_f32(std::uint16_t h) noexcept;
std::uint16_t f32_to_f16(float f) noexcept;
float bf16_to_f32(std::uint16_t h) noexcept;
std::uint16_t f32_to_bf16(float f) noexcept;

}  // namespace tessera
