// The popcount ceiling: XOR, popcount and accumulate over an L1-resident buffer, nothing else (no loads from
// memory beyond L1, no reduction per code, no selection). Benchmarks time it beside a scan of the same size.
#include <algorithm>
#include <bit>
#include <cstring>
#include <vector>

#include "../common/simd.h"
#include "tessera/binary.h"
#include "tessera/runtime.h"

#if TESSERA_X86
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tessera::binary {
namespace {

constexpr std::size_t kBytes = 16384;  // well inside L1

std::uint64_t pass_scalar(const std::uint64_t* p, std::uint64_t q) {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  for (std::size_t i = 0; i < kBytes / 8; i += 4) {
    a += static_cast<std::uint64_t>(std::popcount(p[i] ^ q));
    b += static_cast<std::uint64_t>(std::popcount(p[i + 1] ^ q));
    c += static_cast<std::uint64_t>(std::popcount(p[i + 2] ^ q));
    d += static_cast<std::uint64_t>(std::popcount(p[i + 3] ^ q));
  }
  return a + b + c + d;
}

#if TESSERA_X86
TESSERA_TARGET_AVX512_VPOPCNT std::uint64_t pass_vpopcnt(const std::uint64_t* p, std::uint64_t q) {
  const __m512i qv = _mm512_set1_epi64(static_cast<long long>(q));
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  for (std::size_t i = 0; i < kBytes / 8; i += 32) {
    a = _mm512_add_epi64(a, _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(p + i))));
    b = _mm512_add_epi64(b, _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(p + i + 8))));
    c = _mm512_add_epi64(c, _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(p + i + 16))));
    d = _mm512_add_epi64(d, _mm512_popcnt_epi64(_mm512_xor_si512(qv, _mm512_loadu_si512(p + i + 24))));
  }
  return static_cast<std::uint64_t>(_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d))));
}

TESSERA_TARGET_AVX2 std::uint64_t pass_avx2(const std::uint64_t* p, std::uint64_t q) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2,
                                       3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0F), qv = _mm256_set1_epi64x(static_cast<long long>(q));
  __m256i total = _mm256_setzero_si256();
  for (std::size_t i = 0; i < kBytes / 8; i += 4 * 31) {  // byte counters flushed every 31 vectors
    __m256i counts = _mm256_setzero_si256();
    for (std::size_t j = i; j < std::min(kBytes / 8, i + 4 * 31); j += 4) {
      const __m256i x = _mm256_xor_si256(qv, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j)));
      counts = _mm256_add_epi8(counts, _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x, low)),
                                                       _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low))));
    }
    total = _mm256_add_epi64(total, _mm256_sad_epu8(counts, _mm256_setzero_si256()));
  }
  alignas(32) std::uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), total);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
#endif

}  // namespace

std::uint64_t popcount_work(std::size_t bytes) noexcept {
  try {
    std::vector<std::uint64_t> buffer(kBytes / 8);
    for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = 0x9E3779B97F4A7C15ull * (i + 1);
    auto pass = pass_scalar;
#if TESSERA_X86
    const SimdLevel level = active_simd_level();
    if (level == SimdLevel::avx512_vpopcntdq) pass = pass_vpopcnt;
    else if (level == SimdLevel::avx2 || level == SimdLevel::avx512) pass = pass_avx2;
#endif
    const std::size_t passes = (bytes + kBytes - 1) / kBytes;
    std::vector<std::uint64_t> partial((passes + 63) / 64, 0);
    auto body = [&](std::size_t begin, std::size_t end) {
      // Each thread its own copy, so the threads do not share cache lines.
      std::vector<std::uint64_t> local(buffer);
      std::uint64_t sum = 0;
      for (std::size_t p = begin; p < end; ++p) sum += pass(local.data(), p);
      partial[begin / 64] = sum;
    };
    (void)parallel_for(passes, 64, body);
    std::uint64_t total = 0;
    for (std::uint64_t v : partial) total += v;
    return total;
  } catch (...) {
    return 0;
  }
}

}  // namespace tessera::binary
