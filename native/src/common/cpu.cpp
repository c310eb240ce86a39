// Run-time CPU feature detection. x86 needs both the instruction set (cpuid) and the OS saving its registers on
// context switches (xgetbv), or AVX code faults on the first switch.
#include <atomic>
#include <cstring>

#include "tessera/runtime.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define TESSERA_X86 1
#endif

namespace tessera {
namespace {

#if TESSERA_X86
struct CpuidRegs {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegs cpuid(unsigned leaf, unsigned subleaf) {
  CpuidRegs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

unsigned long long xgetbv0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

bool bit(unsigned reg, int i) { return (reg >> i) & 1u; }

SimdLevel detect() {
  if (cpuid(0, 0).eax < 7) return SimdLevel::scalar;
  const CpuidRegs l1 = cpuid(1, 0);
  const CpuidRegs l7 = cpuid(7, 0);
  if (!bit(l1.ecx, 27)) return SimdLevel::scalar;  // OSXSAVE: xgetbv usable
  const unsigned long long xcr0 = xgetbv0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;          // XMM and YMM state
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;  // opmask, ZMM_Hi256, Hi16_ZMM
  const bool avx2 = os_avx && bit(l1.ecx, 28) && bit(l1.ecx, 12) && bit(l1.ecx, 29) && bit(l7.ebx, 5) &&
                    bit(l7.ebx, 8);  // AVX, FMA, F16C, AVX2, BMI2
  if (!avx2) return SimdLevel::scalar;
  const bool avx512 = os_avx512 && bit(l7.ebx, 16) && bit(l7.ebx, 28) && bit(l7.ebx, 30) && bit(l7.ebx, 17) &&
                      bit(l7.ebx, 31);  // F, CD, BW, DQ, VL
  if (!avx512) return SimdLevel::avx2;
  const bool vpopcnt = bit(l7.ecx, 14) && bit(l7.ecx, 12) && bit(l7.ecx, 1);  // VPOPCNTDQ, BITALG, VBMI
  return vpopcnt ? SimdLevel::avx512_vpopcntdq : SimdLevel::avx512;
}
#elif defined(__aarch64__)
SimdLevel detect() { return SimdLevel::neon; }  // Advanced SIMD is mandatory on AArch64
#else
SimdLevel detect() { return SimdLevel::scalar; }
#endif

SimdLevel detected_once() {
  static const SimdLevel level = detect();
  return level;
}

std::atomic<int> g_active{-1};  // -1: not lowered, use the detected level

constexpr struct {
  SimdLevel level;
  const char* name;
} kNames[] = {
    {SimdLevel::scalar, "scalar"},
    {SimdLevel::neon, "neon"},
    {SimdLevel::avx2, "avx2"},
    {SimdLevel::avx512, "avx512"},
    {SimdLevel::avx512_vpopcntdq, "avx512-vpopcntdq"},
};

}  // namespace

const char* simd_level_name(SimdLevel level) noexcept {
  for (const auto& n : kNames)
    if (n.level == level) return n.name;
  return "unknown";
}

bool parse_simd_level(const char* name, SimdLevel* out) noexcept {
  for (const auto& n : kNames) {
    if (std::strcmp(n.name, name) == 0) {
      *out = n.level;
      return true;
    }
  }
  return false;
}

SimdLevel detected_simd_level() noexcept { return detected_once(); }

bool simd_level_available(SimdLevel level) noexcept {
  const SimdLevel best = detected_once();
  if (level == SimdLevel::scalar) return true;
  if (level == SimdLevel::neon) return best == SimdLevel::neon;
  return best != SimdLevel::neon && static_cast<int>(level) <= static_cast<int>(best);
}

SimdLevel active_simd_level() noexcept {
  const int v = g_active.load(std::memory_order_relaxed);
  return v < 0 ? detected_once() : static_cast<SimdLevel>(v);
}

Status set_simd_level(SimdLevel level) noexcept {
  if (!simd_level_available(level)) return Status::unsupported;
  g_active.store(static_cast<int>(level), std::memory_order_relaxed);
  return Status::ok;
}

}  // namespace tessera
