// IEEE binary16 and bfloat16 conversions (tessera/half.h).
#include <bit>
#include <cstdint>

#include "tessera/half.h"

namespace tessera {

float f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float32
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) | sign);
  }
  if (exponent == 31) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));  // infinity or NaN
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));        // rebias 15 -> 127
}

std::uint16_t f32_to_f16(float f) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t x = bits & 0x7FFFFFFFu;
  if (x >= 0x7F800000u) return sign | (x > 0x7F800000u ? 0x7E00u : 0x7C00u);  // NaN (quiet) or infinity
  if (x >= 0x477FF000u) return sign | 0x7C00u;  // 65520 and up round to infinity (65504 is the largest half)
  if (x < 0x38800000u) {                        // below 2^-14: a subnormal half, or zero
    if (x < 0x33000000u) return sign;           // below 2^-25, half the smallest subnormal: rounds to zero
    const std::uint32_t exponent = x >> 23, mantissa = (x & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126 - exponent;  // value / 2^-24 = mantissa * 2^(exponent - 126)
    std::uint32_t q = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (q & 1u))) ++q;  // may carry into the smallest normal: still right
    return static_cast<std::uint16_t>(sign | q);
  }
  const std::uint32_t rebiased = x - (112u << 23);  // exponent 127 -> 15, mantissa still 23 bits
  std::uint32_t q = rebiased >> 13;
  const std::uint32_t rest = rebiased & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (q & 1u))) ++q;  // a carry into the exponent is the right rounding
  return static_cast<std::uint16_t>(sign | q);
}

float bf16_to_f32(std::uint16_t h) noexcept { return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16); }

std::uint16_t f32_to_bf16(float f) noexcept {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  return static_cast<std::uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace tessera
