// RoPE rotation of one row in place, per level, element type and pairing style. Half types are widened to float32,
// rotated with the same arithmetic, and rounded back to nearest even.
#include <cmath>
#include <cstdint>

#include <type_traits>

#include "../common/half_simd.h"
#include "../common/simd.h"
#include "kernels.h"
#include "tessera/half.h"

#if TESSERA_X86
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (false positive)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace tessera::rope::detail {
namespace {

// ---- scalar -------------------------------------------------------------------------------------------------
struct F32 {
  using T = float;
  static float get(const T* p) { return *p; }
  static void put(T* p, float v) { *p = v; }
};
struct F16 {
  using T = std::uint16_t;
  static float get(const T* p) { return f16_to_f32(*p); }
  static void put(T* p, float v) { *p = f32_to_f16(v); }
};
struct BF16 {
  using T = std::uint16_t;
  static float get(const T* p) { return bf16_to_f32(*p); }
  static void put(T* p, float v) { *p = f32_to_bf16(v); }
};

// One pair rotated with the SIMD kernels' rounding: a fused multiply-add over one rounded product, so every level
// (and the CUDA kernel) gives the same bits. Where the CPU lacks FMA (scalar x86-64-v2), std::fma is exact in software.
inline void rotate_pair(float a, float b, float c, float s, float& x, float& y) {
  x = std::fma(a, c, -(b * s));
  y = std::fma(b, c, a * s);
}

// Pairs (i, i + half) for i in [begin, half).
template <class E>
void neox_scalar_from(typename E::T* x, std::size_t begin, std::size_t half, const float* cos, const float* sin) {
  for (std::size_t i = begin; i < half; ++i) {
    float u, v;
    rotate_pair(E::get(x + i), E::get(x + half + i), cos[i], sin[i], u, v);
    E::put(x + i, u);
    E::put(x + half + i, v);
  }
}

// Pairs (j, j + 1) for even j in [begin, 2 half), with the duplicated, signed tables.
template <class E>
void interleaved_scalar_from(typename E::T* x, std::size_t begin, std::size_t half, const float* cos2,
                             const float* sin2) {
  for (std::size_t j = begin; j < 2 * half; j += 2) {
    float u, v;
    rotate_pair(E::get(x + j), E::get(x + j + 1), cos2[j], sin2[j + 1], u, v);
    E::put(x + j, u);
    E::put(x + j + 1, v);
  }
}

template <class E>
void neox_scalar(void* row, std::size_t half, const float* cos, const float* sin) {
  neox_scalar_from<E>(static_cast<typename E::T*>(row), 0, half, cos, sin);
}

template <class E>
void interleaved_scalar(void* row, std::size_t half, const float* cos2, const float* sin2) {
  interleaved_scalar_from<E>(static_cast<typename E::T*>(row), 0, half, cos2, sin2);
}

#if TESSERA_X86
// ---- AVX-512: 16 lanes, masked tails ---------------------------------------------------------------------------
struct F32x16 {
  using T = float;
  TESSERA_TARGET_AVX512 static __m512 load(const T* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  TESSERA_TARGET_AVX512 static void store(T* p, __mmask16 m, __m512 v) { _mm512_mask_storeu_ps(p, m, v); }
};
// Half storage, bfloat16 when Brain (16 lanes, masked).
template <bool Brain>
struct Halfx16 {
  using T = std::uint16_t;
  TESSERA_TARGET_AVX512 static __m512 load(const T* p, __mmask16 m) {
    return half_simd::widen16(_mm256_maskz_loadu_epi16(m, p), Brain);
  }
  TESSERA_TARGET_AVX512 static void store(T* p, __mmask16 m, __m512 v) {
    _mm256_mask_storeu_epi16(p, m, half_simd::narrow16(v, Brain));
  }
};
using F16x16 = Halfx16<false>;
using BF16x16 = Halfx16<true>;

TESSERA_TARGET_AVX512 inline __mmask16 tail_mask(std::size_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

template <class E>
TESSERA_TARGET_AVX512 void neox_avx512(void* row, std::size_t half, const float* cos, const float* sin) {
  auto* x = static_cast<typename E::T*>(row);
  for (std::size_t i = 0; i < half; i += 16) {
    const __mmask16 m = tail_mask(half - i);
    const __m512 a = E::load(x + i, m), b = E::load(x + half + i, m);
    const __m512 c = _mm512_maskz_loadu_ps(m, cos + i), s = _mm512_maskz_loadu_ps(m, sin + i);
    E::store(x + i, m, _mm512_fmsub_ps(a, c, _mm512_mul_ps(b, s)));
    E::store(x + half + i, m, _mm512_fmadd_ps(b, c, _mm512_mul_ps(a, s)));
  }
}

template <class E>
TESSERA_TARGET_AVX512 void interleaved_avx512(void* row, std::size_t half, const float* cos2, const float* sin2) {
  auto* x = static_cast<typename E::T*>(row);
  for (std::size_t j = 0; j < 2 * half; j += 16) {
    const __mmask16 m = tail_mask(2 * half - j);
    const __m512 v = E::load(x + j, m);
    const __m512 swapped = _mm512_permute_ps(v, 0xB1);  // (x1, x0, x3, x2, ...)
    const __m512 y = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, cos2 + j),
                                     _mm512_mul_ps(swapped, _mm512_maskz_loadu_ps(m, sin2 + j)));
    E::store(x + j, m, y);
  }
}

// ---- AVX2: 8 lanes, scalar tails -----------------------------------------------------------------------------
struct F32x8 {
  using T = float;
  using Scalar = F32;
  TESSERA_TARGET_AVX2 static __m256 load(const T* p) { return _mm256_loadu_ps(p); }
  TESSERA_TARGET_AVX2 static void store(T* p, __m256 v) { _mm256_storeu_ps(p, v); }
};
// Half storage, bfloat16 when Brain (8 lanes; tails go scalar).
template <bool Brain>
struct Halfx8 {
  using T = std::uint16_t;
  using Scalar = std::conditional_t<Brain, BF16, F16>;
  TESSERA_TARGET_AVX2 static __m256 load(const T* p) {
    return half_simd::widen8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), Brain);
  }
  TESSERA_TARGET_AVX2 static void store(T* p, __m256 v) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), half_simd::narrow8(v, Brain));
  }
};
using F16x8 = Halfx8<false>;
using BF16x8 = Halfx8<true>;

template <class E>
TESSERA_TARGET_AVX2 void neox_avx2(void* row, std::size_t half, const float* cos, const float* sin) {
  auto* x = static_cast<typename E::T*>(row);
  std::size_t i = 0;
  for (; i + 8 <= half; i += 8) {
    const __m256 a = E::load(x + i), b = E::load(x + half + i);
    const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
    E::store(x + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
    E::store(x + half + i, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
  }
  neox_scalar_from<typename E::Scalar>(x, i, half, cos, sin);
}

template <class E>
TESSERA_TARGET_AVX2 void interleaved_avx2(void* row, std::size_t half, const float* cos2, const float* sin2) {
  auto* x = static_cast<typename E::T*>(row);
  std::size_t j = 0;
  for (; j + 8 <= 2 * half; j += 8) {
    const __m256 v = E::load(x + j);
    const __m256 swapped = _mm256_permute_ps(v, 0xB1);
    E::store(x + j, _mm256_fmadd_ps(v, _mm256_loadu_ps(cos2 + j), _mm256_mul_ps(swapped, _mm256_loadu_ps(sin2 + j))));
  }
  interleaved_scalar_from<typename E::Scalar>(x, j, half, cos2, sin2);
}
#endif

template <class Scalar>
RotateFn scalar_kernel(Style style) {
  return style == Style::neox ? neox_scalar<Scalar> : interleaved_scalar<Scalar>;
}

}  // namespace

RotateFn rotate(SimdLevel level, DType dtype, Style style) noexcept {
  const bool neox = style == Style::neox;
#if TESSERA_X86
  if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vpopcntdq) {
    switch (dtype) {
      case DType::f32: return neox ? neox_avx512<F32x16> : interleaved_avx512<F32x16>;
      case DType::f16: return neox ? neox_avx512<F16x16> : interleaved_avx512<F16x16>;
      case DType::bf16: return neox ? neox_avx512<BF16x16> : interleaved_avx512<BF16x16>;
    }
  }
  if (level == SimdLevel::avx2) {
    switch (dtype) {
      case DType::f32: return neox ? neox_avx2<F32x8> : interleaved_avx2<F32x8>;
      case DType::f16: return neox ? neox_avx2<F16x8> : interleaved_avx2<F16x8>;
      case DType::bf16: return neox ? neox_avx2<BF16x8> : interleaved_avx2<BF16x8>;
    }
  }
#endif
  (void)level;
  (void)neox;
  switch (dtype) {
    case DType::f16: return scalar_kernel<F16>(style);
    case DType::bf16: return scalar_kernel<BF16>(style);
    default: return scalar_kernel<F32>(style);
  }
}

}  // namespace tessera::rope::detail
