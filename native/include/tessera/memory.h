// Small memory helpers shared by the core and the bindings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <new>
#include <vector>

namespace tessera {

// True when [a, a + a_bytes) and [b, b + b_bytes) share a byte; empty ranges overlap nothing.
inline bool bytes_overlap(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) noexcept {
  const auto a0 = reinterpret_cast<std::uintptr_t>(a), b0 = reinterpret_cast<std::uintptr_t>(b);
  return a_bytes > 0 && b_bytes > 0 && a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

// *out = the product of `factors`, or false when it overflows size_t or is too large to count bytes of elements up
// to 8 bytes wide: the check a kernel makes on an element count built from shape arguments before it touches memory.
inline bool element_count(std::initializer_list<std::size_t> factors, std::size_t* out) noexcept {
  constexpr std::size_t kLimit = std::numeric_limits<std::size_t>::max() / 8;
  std::size_t n = 1;
  for (std::size_t f : factors) {
    if (f != 0 && n > kLimit / f) return false;
    n *= f;
  }
  *out = n;
  return true;
}

// Asks the OS to back a large buffer that is about to be written for the first time with huge pages (Linux
// transparent huge pages in "madvise" mode): one page fault per 2 MiB instead of per 4 KiB. A hint only; a no-op
// elsewhere, for small buffers, or when the OS declines.
void advise_huge_pages(void* data, std::size_t bytes) noexcept;

// Allocator for std::vector storage that starts on a 64-byte cache line: whole-register loads of rows whose stride
// is a multiple of 64 bytes then never straddle two lines (each straddling load costs two).
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, kAlignment); }
  friend bool operator==(const CacheLineAllocator&, const CacheLineAllocator&) noexcept { return true; }
};

template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace tessera
