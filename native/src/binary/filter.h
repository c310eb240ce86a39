// Candidate filters for the top-k scans: the positions of keys at or below a threshold, found a vector at a time.
// Most keys fail once a heap is full, so this replaces a compare-and-branch per key. Internal to the core.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tessera/runtime.h"

namespace tessera::binary::detail {

// Writes, ascending, each j < n with keys[j] <= threshold to positions (n < 2^32); returns the count.
// NaN keys never pass.
using FilterU32 = std::size_t (*)(const std::uint32_t* keys, std::size_t n, std::uint32_t threshold,
                                  std::uint32_t* positions);
using FilterF32 = std::size_t (*)(const float* keys, std::size_t n, float threshold, std::uint32_t* positions);

FilterU32 filter_u32(SimdLevel level) noexcept;
FilterF32 filter_f32(SimdLevel level) noexcept;

inline FilterU32 filter_for(SimdLevel level, const std::uint32_t*) { return filter_u32(level); }
inline FilterF32 filter_for(SimdLevel level, const float*) { return filter_f32(level); }

}  // namespace tessera::binary::detail
