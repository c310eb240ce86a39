// Machine limits, measured the way the benchmarks need them (bench/ times these beside the kernels, in the same
// alternating rounds): memory read and copy bandwidth over the pool, the XOR-and-popcount ceiling of a Hamming scan,
// and the fused-multiply-add peak. Each returns a value derived from all its work, so nothing can be skipped.
#include <algorithm>
#include <bit>
#include <cstring>
#include <vector>

#include "simd.h"
#include "tessera/runtime.h"

#if TESSERA_X86
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tessera {
namespace {

constexpr std::size_t kReadChunk = std::size_t{1} << 18;

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


constexpr std::size_t kFmaChains = 12;  // independent accumulators: enough to cover the FMA latency on two ports

float fma_scalar(std::size_t steps) {
  float a[kFmaChains];
  for (std::size_t i = 0; i < kFmaChains; ++i) a[i] = 0.001f * static_cast<float>(i);
  for (std::size_t s = 0; s < steps; ++s)
    for (std::size_t i = 0; i < kFmaChains; ++i) a[i] = a[i] * 0.999f + 0.0001f;
  float sum = 0;
  for (float v : a) sum += v;
  return sum;
}

#if TESSERA_X86
TESSERA_TARGET_AVX512 float fma_avx512(std::size_t steps) {
  __m512 a[kFmaChains];
  for (std::size_t i = 0; i < kFmaChains; ++i) a[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.0001f);
  for (std::size_t s = 0; s < steps; ++s)
#pragma GCC unroll 12
    for (std::size_t i = 0; i < kFmaChains; ++i) a[i] = _mm512_fmadd_ps(a[i], x, y);
  __m512 sum = a[0];
  for (std::size_t i = 1; i < kFmaChains; ++i) sum = _mm512_add_ps(sum, a[i]);
  return _mm512_reduce_add_ps(sum);
}

TESSERA_TARGET_AVX2 float fma_avx2(std::size_t steps) {
  __m256 a[kFmaChains];
  for (std::size_t i = 0; i < kFmaChains; ++i) a[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.0001f);
  for (std::size_t s = 0; s < steps; ++s)
#pragma GCC unroll 12
    for (std::size_t i = 0; i < kFmaChains; ++i) a[i] = _mm256_fmadd_ps(a[i], x, y);
  alignas(32) float lanes[8];
  __m256 sum = a[0];
  for (std::size_t i = 1; i < kFmaChains; ++i) sum = _mm256_add_ps(sum, a[i]);
  _mm256_store_ps(lanes, sum);
  float total = 0;
  for (float v : lanes) total += v;
  return total;
}
#endif

}  // namespace

void parallel_copy(void* dst, const void* src, std::size_t bytes) noexcept {
  auto body = [&](std::size_t begin, std::size_t end) {
    std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, end - begin);
  };
  (void)parallel_for(bytes, kReadChunk, body);  // memcpy cannot throw
}

std::uint64_t parallel_read(const void* data, std::size_t bytes) noexcept {
  try {
    const std::size_t chunks = (bytes + kReadChunk - 1) / kReadChunk;
    std::vector<std::uint64_t> partial(chunks, 0);
    auto read = read_scalar;
#if TESSERA_X86
    if (active_simd_level() != SimdLevel::scalar) read = read_avx2;
#endif
    auto body = [&](std::size_t begin, std::size_t end) {
      partial[begin / kReadChunk] = read(static_cast<const unsigned char*>(data) + begin, end - begin);
    };
    (void)parallel_for(bytes, kReadChunk, body);
    std::uint64_t x = 0;
    for (std::uint64_t v : partial) x ^= v;
    return x;
  } catch (...) {
    return 0;
  }
}


float fma_work(std::size_t flops) noexcept {
  try {
    std::size_t lanes = 1;
    float (*run)(std::size_t) = fma_scalar;
#if TESSERA_X86
    const SimdLevel level = active_simd_level();
    if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) run = fma_avx512, lanes = 16;
    else if (level == SimdLevel::avx2) run = fma_avx2, lanes = 8;
#endif
    // Each step is one fused multiply-add (two flops) per lane on each chain.
    const std::size_t steps = std::max<std::size_t>(1, flops / (2 * lanes * kFmaChains));
    constexpr std::size_t kPerChunk = 1 << 16;
    const std::size_t chunks = (steps + kPerChunk - 1) / kPerChunk;
    std::vector<float> partial(chunks, 0.0f);
    auto body = [&](std::size_t begin, std::size_t end) {
      for (std::size_t c = begin; c < end; ++c) partial[c] = run(std::min(kPerChunk, steps - c * kPerChunk));
    };
    (void)parallel_for(chunks, 1, body);
    float total = 0;
    for (float v : partial) total += v;
    return total;
  } catch (...) {
    return 0;
  }
}

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

}  // namespace tessera
