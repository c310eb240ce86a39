// Small memory helpers shared by the core and the bindings.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tessera {

// True when [a, a + a_bytes) and [b, b + b_bytes) share a byte; empty ranges overlap nothing.
inline bool bytes_overlap(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) noexcept {
  const auto a0 = reinterpret_cast<std::uintptr_t>(a), b0 = reinterpret_cast<std::uintptr_t>(b);
  return a_bytes > 0 && b_bytes > 0 && a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

}  // namespace tessera
