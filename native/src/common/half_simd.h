// Vector conversions between float32 and the 16-bit float formats, for kernels that keep half-precision storage
// and compute in float32. Rounding is to nearest even and NaN stays a quiet NaN, exactly as tessera/half.h's scalar
// conversions, so a kernel's vector body and its scalar tail store the same bits. Internal to the core.
#pragma once

#include "simd.h"

#if TESSERA_X86
namespace tessera::half_simd {

// ---- 16 lanes (AVX-512) ---------------------------------------------------------------------------------------
TESSERA_TARGET_AVX512 inline __m512 widen16(__m256i bits, bool bf16) {
  return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16)) : _mm512_cvtph_ps(bits);
}

TESSERA_TARGET_AVX512 inline __m256i narrow16(__m512 v, bool bf16) {
  if (!bf16) return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // Round the upper 16 bits to nearest even; a NaN keeps its upper bits with the quiet bit set.
  const __m512i bits = _mm512_castps_si512(v), high = _mm512_srli_epi32(bits, 16);
  const __m512i lsb = _mm512_and_si512(high, _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), lsb), 16);
  rounded = _mm512_mask_or_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), high, _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(rounded);
}

// ---- 8 lanes (AVX2 + F16C) ------------------------------------------------------------------------------------
TESSERA_TARGET_AVX2 inline __m256 widen8(__m128i bits, bool bf16) {
  return bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16)) : _mm256_cvtph_ps(bits);
}

TESSERA_TARGET_AVX2 inline __m128i narrow8(__m256 v, bool bf16) {
  if (!bf16) return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256i bits = _mm256_castps_si256(v), high = _mm256_srli_epi32(bits, 16);
  const __m256i lsb = _mm256_and_si256(high, _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i quiet = _mm256_or_si256(high, _mm256_set1_epi32(0x40));
  const __m256i words = _mm256_blendv_epi8(rounded, quiet, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
  // Each 32-bit lane holds a value below 2^16: pack to 16 bits (per 128-bit lane), then join the two halves.
  return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(words, words), 0x08));
}

}  // namespace tessera::half_simd
#endif
