// The PTX instructions of the kernels' inline assembly, emulated as the PTX ISA documents them. transform.py turns
//   asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
// into emu::ptx::cvt_rn_bf16x2_f32(r, hi, lo): one function per instruction, named after it (dots become
// underscores), taking the operands in the instruction's order, destinations by reference. An instruction without a
// function here fails to compile: add it (README.md).
//
// Shared-memory addresses are offsets in the block's dynamic shared memory (what __cvta_generic_to_shared gives);
// every access is checked against its size and alignment.
#pragma once

#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cuda_runtime.h"

namespace emu::ptx {

// ---- mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32 ------------------------------------------------

// D = A B + C, A 16 x 16 and B 16 x 8, from the 32 lanes' fragments ("Matrix Fragments for mma.m16n8k16" with
// floating-point types): groupID g = lane / 4, t = lane % 4, the low half of a register the lower index, and
//   A: a0 = A[g][2t, 2t+1], a1 = A[g+8][2t, 2t+1], a2 = A[g][2t+8, 2t+9], a3 = A[g+8][2t+8, 2t+9]
//   B: b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g]
//   C, D: c0, c1 = [g][2t, 2t+1]; c2, c3 = [g+8][2t, 2t+1]
// Products of 16-bit values are exact; here they are summed with C in float64 and rounded once, at least as
// accurate as the tensor cores (which truncate), so results match the hardware's within its error bound only.
template <float (*Decode)(std::uint16_t)>
void mma_m16n8k16(float (&d)[4], const std::uint32_t (&a)[4], std::uint32_t b0, std::uint32_t b1,
                  const float (&c)[4]) {
  // Each lane decodes its own 12 values once and offers them as floats, two per word: A's 8 then B's 4.
  const std::uint32_t regs[6] = {a[0], a[1], a[2], a[3], b0, b1};
  float mine[12];
  for (int i = 0; i < 12; ++i) mine[i] = Decode(static_cast<std::uint16_t>(regs[i / 2] >> (16 * (i % 2))));
  std::uint64_t words[6];
  std::memcpy(words, mine, sizeof words);
  const auto result = warp_exchange(
      WarpOp::mma, {words[0], words[1], words[2], words[3], words[4], words[5]},
      [&c](Rows x, unsigned lane) {
        auto value = [x](unsigned from, int index) {
          float f;
          std::memcpy(&f, reinterpret_cast<const char*>(x[from]) + 4 * index, sizeof f);
          return static_cast<double>(f);
        };
        auto A = [&](int r, int k) { return value(4 * (r % 8) + (k % 8) / 2, 2 * ((r >= 8) + 2 * (k >= 8)) + k % 2); };
        auto B = [&](int k, int n) { return value(4 * n + (k % 8) / 2, 8 + 2 * (k >= 8) + k % 2); };
        const int g = static_cast<int>(lane) / 4, t = static_cast<int>(lane) % 4;
        std::array<float, 4> out;
        for (int i = 0; i < 4; ++i) {
          const int row = g + 8 * (i / 2), column = 2 * t + i % 2;
          double sum = c[i];
          for (int k = 0; k < 16; ++k) sum += A(row, k) * B(k, column);
          out[i] = static_cast<float>(sum);
        }
        return out;
      });
  for (int i = 0; i < 4; ++i) d[i] = result[i];
  if (self().lane == 0) ++counters().mma;
}

inline void mma_sync_aligned_m16n8k16_row_col_f32_bf16_bf16_f32(float& d0, float& d1, float& d2, float& d3,
                                                                 std::uint32_t a0, std::uint32_t a1, std::uint32_t a2,
                                                                 std::uint32_t a3, std::uint32_t b0, std::uint32_t b1,
                                                                 float c0, float c1, float c2, float c3) {
  float d[4];
  mma_m16n8k16<bf16_bits_to_f32>(d, {a0, a1, a2, a3}, b0, b1, {c0, c1, c2, c3});
  d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
}

inline void mma_sync_aligned_m16n8k16_row_col_f32_f16_f16_f32(float& d0, float& d1, float& d2, float& d3,
                                                              std::uint32_t a0, std::uint32_t a1, std::uint32_t a2,
                                                              std::uint32_t a3, std::uint32_t b0, std::uint32_t b1,
                                                              float c0, float c1, float c2, float c3) {
  float d[4];
  mma_m16n8k16<f16_bits_to_f32>(d, {a0, a1, a2, a3}, b0, b1, {c0, c1, c2, c3});
  d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
}

// ---- ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16 -------------------------------------------------------

// Row r of matrix i: the 16 bytes at the address lane 8i + r gives (lanes beyond the matrices' give none). Without
// .trans lane l receives, of every matrix, row l / 4, elements 2 (l % 4) and 2 (l % 4) + 1; with .trans, column
// l / 4, rows 2 (l % 4) and 2 (l % 4) + 1 (the matrix read column-major).
inline std::uint16_t shared_element(std::uint64_t row_address, int element) {
  if (row_address % 16 != 0 || row_address + 16 > dynamic_shared_bytes())
    fail("ldmatrix row address %llu: not 16-byte aligned inside the %zu bytes of dynamic shared memory",
         static_cast<unsigned long long>(row_address), dynamic_shared_bytes());
  std::uint16_t h;
  std::memcpy(&h, dynamic_shared_base() + row_address + 2 * element, sizeof h);
  return h;
}

template <int Matrices, bool Transposed>
void ldmatrix(std::uint32_t* const (&out)[Matrices], std::uint32_t address) {
  const auto result = warp_exchange(WarpOp::ldmatrix, {address}, [](Rows x, unsigned l) {
    std::array<std::uint32_t, Matrices> r;
    for (int i = 0; i < Matrices; ++i) {
      auto row = [&](unsigned j) { return x[8 * i + j][0]; };
      const unsigned q = l % 4, p = l / 4;
      const std::uint16_t e0 = Transposed ? shared_element(row(2 * q), p) : shared_element(row(p), 2 * q);
      const std::uint16_t e1 = Transposed ? shared_element(row(2 * q + 1), p) : shared_element(row(p), 2 * q + 1);
      r[i] = std::uint32_t{e0} | std::uint32_t{e1} << 16;
    }
    return r;
  });
  for (int i = 0; i < Matrices; ++i) *out[i] = result[i];
  if (self().lane == 0) ++counters().ldmatrix;
}

inline void ldmatrix_sync_aligned_m8n8_x1_shared_b16(std::uint32_t& r0, std::uint32_t address) {
  ldmatrix<1, false>({&r0}, address);
}
inline void ldmatrix_sync_aligned_m8n8_x2_shared_b16(std::uint32_t& r0, std::uint32_t& r1, std::uint32_t address) {
  ldmatrix<2, false>({&r0, &r1}, address);
}
inline void ldmatrix_sync_aligned_m8n8_x4_shared_b16(std::uint32_t& r0, std::uint32_t& r1, std::uint32_t& r2,
                                                     std::uint32_t& r3, std::uint32_t address) {
  ldmatrix<4, false>({&r0, &r1, &r2, &r3}, address);
}
inline void ldmatrix_sync_aligned_m8n8_x1_trans_shared_b16(std::uint32_t& r0, std::uint32_t address) {
  ldmatrix<1, true>({&r0}, address);
}
inline void ldmatrix_sync_aligned_m8n8_x2_trans_shared_b16(std::uint32_t& r0, std::uint32_t& r1,
                                                           std::uint32_t address) {
  ldmatrix<2, true>({&r0, &r1}, address);
}
inline void ldmatrix_sync_aligned_m8n8_x4_trans_shared_b16(std::uint32_t& r0, std::uint32_t& r1, std::uint32_t& r2,
                                                           std::uint32_t& r3, std::uint32_t address) {
  ldmatrix<4, true>({&r0, &r1, &r2, &r3}, address);
}

// ---- cp.async.cg.shared.global, cp.async.commit_group, cp.async.wait_group ------------------------------------------

// A copy lands in the block's dynamic shared memory when the wait that covers its group runs (deferred) or at once
// (eager), as the block's policy says (emu::eager_copies): the hardware may land it at any time in between, so the
// two extremes show a missing wait and an early overwrite respectively.
inline void land(const AsyncCopy& c) {
  unsigned char* to = dynamic_shared_base() + c.shared;
  if (c.source_bytes > 0) std::memcpy(to, c.global, static_cast<std::size_t>(c.source_bytes));
  std::memset(to + c.source_bytes, 0, static_cast<std::size_t>(c.bytes - c.source_bytes));
}

// cp-size 16 (.cg), source bytes 0 to 16 (the rest zero-filled; none read when 0).
inline void cp_async_cg_shared_global(std::uint32_t shared, std::uint64_t global, int bytes, int source_bytes) {
  const auto* from = reinterpret_cast<const void*>(global);
  if (bytes != 16 || source_bytes < 0 || source_bytes > bytes)
    fail("cp.async.cg of %d bytes from %d source bytes", bytes, source_bytes);
  if (shared % 16 != 0 || shared + 16 > dynamic_shared_bytes())
    fail("cp.async destination %u: not 16-byte aligned inside the %zu bytes of dynamic shared memory", shared,
         dynamic_shared_bytes());
  if (source_bytes > 0 && (global % 16 != 0 || !is_device_range(from, static_cast<std::size_t>(source_bytes))))
    fail("cp.async source %p (%d bytes): not 16-byte aligned inside one device allocation", from, source_bytes);
  ++counters().async_copies;
  const AsyncCopy copy{shared, from, bytes, source_bytes};
  if (eager_copies())
    land(copy);
  else
    self().open_group.push_back(copy);
}

inline void cp_async_cg_shared_global(std::uint32_t shared, std::uint64_t global, int bytes) {
  cp_async_cg_shared_global(shared, global, bytes, bytes);
}

inline void cp_async_commit_group() {
  ThreadState& t = self();
  t.committed_groups.push_back(std::move(t.open_group));
  t.open_group.clear();
}

// Lands every committed group but the newest `pending`.
inline void cp_async_wait_group(int pending) {
  auto& groups = self().committed_groups;
  const std::size_t keep = static_cast<std::size_t>(pending);
  std::size_t landed = 0;
  for (; groups.size() - landed > keep; ++landed)
    for (const AsyncCopy& c : groups[landed]) land(c);
  groups.erase(groups.begin(), groups.begin() + static_cast<std::ptrdiff_t>(landed));
}

// ---- conversions and approximations ---------------------------------------------------------------------------------

// d = {a converted: upper half, b converted: lower half}, rounded to nearest even.
inline void cvt_rn_bf16x2_f32(std::uint32_t& d, float a, float b) {
  d = std::uint32_t{f32_to_bf16_bits(a)} << 16 | f32_to_bf16_bits(b);
}
inline void cvt_rn_f16x2_f32(std::uint32_t& d, float a, float b) {
  d = std::uint32_t{f32_to_f16_bits(a)} << 16 | f32_to_f16_bits(b);
}

// 2^a (the hardware's is within 2 ulp; this one exact), subnormal inputs and results flushed to zero (.ftz).
inline void ex2_approx_ftz_f32(float& d, float a) {
  if (std::fabs(a) < FLT_MIN) a = 0.0f;
  const float r = std::exp2(a);
  d = std::fabs(r) < FLT_MIN ? 0.0f : r;
}

}  // namespace emu::ptx
