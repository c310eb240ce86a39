// Function attributes that compile one function for a wider instruction set than the rest of the binary, so a single
// build carries every kernel level and picks one at run time (tessera/runtime.h). Only functions marked this way
// may use the matching intrinsics, and only dispatch may call them.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#define TESSERA_X86 1
#include <immintrin.h>
#define TESSERA_TARGET_AVX2 __attribute__((target("avx2,fma,f16c,bmi,bmi2,popcnt")))
#define TESSERA_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512cd,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2,popcnt")))
#define TESSERA_TARGET_AVX512_VPOPCNT                                                                      \
  __attribute__((target("avx512f,avx512cd,avx512bw,avx512dq,avx512vl,avx512vpopcntdq,avx512bitalg,avx512vbmi," \
                        "avx2,fma,f16c,bmi,bmi2,popcnt")))
#endif

#if defined(__aarch64__)
#define TESSERA_NEON 1
#include <arm_neon.h>
#endif
