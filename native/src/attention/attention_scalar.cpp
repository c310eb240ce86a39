// The portable attention unit (any CPU; NEON machines use it until a NEON ops type exists).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernel.h"
#include "tessera/half.h"

namespace tessera::attention::detail {
namespace scalar {

struct V {
  static constexpr std::size_t W = 1, kRows = 1, kPvRows = 1;
  using reg = float;
  using mask = bool;
  static reg zero() { return 0.0f; }
  static reg set1(float x) { return x; }
  static reg load(const float* p) { return *p; }
  static void store(float* p, reg v) { *p = v; }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
  static reg div(reg a, reg b) { return a / b; }
  static reg max(reg a, reg b) { return a > b || std::isnan(a) ? a : b; }
  static reg min(reg a, reg b) { return a < b || std::isnan(a) ? a : b; }
  static reg fma(reg a, reg b, reg c) { return a * b + c; }
  static reg abs(reg x) { return std::fabs(x); }
  static reg round(reg x) { return std::nearbyint(x); }
  static reg ldexp(reg x, reg n) {
    if (!(std::fabs(n) < 1000.0f)) return std::isnan(n) ? n : n > 0 ? x * std::numeric_limits<float>::infinity() : 0.0f;
    return std::ldexp(x, static_cast<int>(n));
  }
  static mask lt(reg a, reg b) { return a < b; }
  static mask ge(reg a, reg b) { return a >= b; }
  static mask mand(mask a, mask b) { return a && b; }
  static mask mor(mask a, mask b) { return a || b; }
  static reg select(mask m, reg a, reg b) { return m ? a : b; }
  static float hsum(reg x) { return x; }
  static void load_row(float* dst, const void* src, std::size_t n, DType t) {
    if (t == DType::f32) return void(std::memcpy(dst, src, n * sizeof(float)));
    const auto* h = static_cast<const std::uint16_t*>(src);
    for (std::size_t i = 0; i < n; ++i) dst[i] = t == DType::f16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
  }
  static void store_row(void* dst, const float* src, std::size_t n, DType t) {
    if (t == DType::f32) return void(std::memcpy(dst, src, n * sizeof(float)));
    auto* h = static_cast<std::uint16_t*>(dst);
    for (std::size_t i = 0; i < n; ++i) h[i] = t == DType::f16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
  }
};

#include "tile.inl"

}  // namespace scalar

void run_unit_scalar(const Plan& plan, std::size_t unit, Scratch& scratch) { scalar::run_unit(plan, unit, scratch); }
void run_rows_unit_scalar(const Plan& plan, std::size_t unit, Scratch& scratch) { scalar::run_rows_unit(plan, unit, scratch); }

}  // namespace tessera::attention::detail
