// The memory-read yardstick: every byte of a buffer read by the pool with the widest loads the CPU has, XORed so
// the reads cannot be skipped. Benchmarks of scans divide by it.
#include <cstring>
#include <vector>

#include "simd.h"
#include "tessera/runtime.h"

namespace tessera {
namespace {

constexpr std::size_t kChunk = std::size_t{1} << 18;

std::uint64_t read_scalar(const unsigned char* p, std::size_t n) {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    std::uint64_t w[4];
    std::memcpy(w, p + i, 32);
    a ^= w[0], b ^= w[1], c ^= w[2], d ^= w[3];
  }
  for (; i < n; ++i) a ^= p[i];
  return a ^ b ^ c ^ d;
}

#if TESSERA_X86
TESSERA_TARGET_AVX2 std::uint64_t read_avx2(const unsigned char* p, std::size_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  std::size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    a = _mm256_xor_si256(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_xor_si256(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_xor_si256(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_xor_si256(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i x = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
  alignas(32) std::uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), x);
  return lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3] ^ read_scalar(p + i, n - i);
}
#endif

}  // namespace

std::uint64_t parallel_read(const void* data, std::size_t bytes) noexcept {
  try {
    const std::size_t chunks = (bytes + kChunk - 1) / kChunk;
    std::vector<std::uint64_t> partial(chunks, 0);
    auto read = read_scalar;
#if TESSERA_X86
    if (active_simd_level() != SimdLevel::scalar) read = read_avx2;
#endif
    auto body = [&](std::size_t begin, std::size_t end) {
      partial[begin / kChunk] = read(static_cast<const unsigned char*>(data) + begin, end - begin);
    };
    (void)parallel_for(bytes, kChunk, body);
    std::uint64_t x = 0;
    for (std::uint64_t v : partial) x ^= v;
    return x;
  } catch (...) {
    return 0;
  }
}

}  // namespace tessera
