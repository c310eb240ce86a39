// RoPE kernels, one implementation per instruction-set level. Internal to the core (tessera/rope.h is the API).
#pragma once

#include <cstddef>

#include "tessera/rope.h"
#include "tessera/runtime.h"

namespace tessera::rope::detail {

// cos[i] and sin[i] of position * inv_freq[i], times factor, for i < half: the angle formed and reduced modulo pi/2
// in float64 (Cody-Waite with a fused multiply-add), the polynomials evaluated in float64, rounded to float32.
using AnglesFn = void (*)(double position, const double* inv_freq, std::size_t half, double factor, float* cos,
                          float* sin);
AnglesFn angles(SimdLevel level) noexcept;

// Rotates the first 2 * half channels of one row (a head of one token) in place.
//  neox:        pairs (i, i + half) with cos[i], sin[i];
//  interleaved: pairs (2i, 2i + 1) with cos2 = (c0, c0, c1, c1, ...) and sin2 = (-s0, s0, -s1, s1, ...), so that
//               row' = row * cos2 + swap_pairs(row) * sin2.
using RotateFn = void (*)(void* row, std::size_t half, const float* cos, const float* sin);
RotateFn rotate(SimdLevel level, DType dtype, Style style) noexcept;

// The scalar paths, for other levels' tails and for tests.
void angles_scalar(double position, const double* inv_freq, std::size_t half, double factor, float* cos, float* sin);

}  // namespace tessera::rope::detail
