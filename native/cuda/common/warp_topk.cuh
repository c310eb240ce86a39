// Exact top-k by warps: each warp keeps the k smallest 64-bit keys it has seen, sorted, in shared memory.
//
// A key packs what is ranked in its high 32 bits and the id in its low 32 bits (both order-preserving as unsigned
// numbers), so keys are distinct and "smallest keys" is exactly "best (score, id) pairs": the device's order is
// the CPU path's, ties included. A candidate enters only when it beats the list's last key (the threshold), which
// for a long scan soon lets almost nothing through; entering is a warp-wide insertion (count the smaller keys,
// shift the rest one place), cheap next to the scan.
#pragma once

#include <cstdint>
#include <cstring>

namespace tessera::cuda {

constexpr std::uint64_t kEmptyKey = ~std::uint64_t{0};  // above every real key (see ordered_float)
constexpr unsigned kFullWarp = 0xFFFFFFFFu;

// An int32 id as an unsigned number in the same order (and back).
__host__ __device__ inline std::uint32_t ordered_id(std::int32_t id) { return static_cast<std::uint32_t>(id) ^ 0x80000000u; }
__host__ __device__ inline std::int32_t id_of(std::uint64_t key) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(key) ^ 0x80000000u);
}

// A float as an unsigned number in the same order, with -0 and +0 equal (as the CPU's float compare has them) and
// +infinity below 0xFFFFFFFF, so no real key reaches kEmptyKey. NaN is never passed (callers map it to +infinity).
__host__ __device__ inline std::uint32_t ordered_float(float f) {
  std::uint32_t bits;
  f = f + 0.0f;  // -0 becomes +0
  memcpy(&bits, &f, sizeof bits);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}
__host__ __device__ inline float float_of(std::uint32_t ordered) {
  const std::uint32_t bits = (ordered & 0x80000000u) ? (ordered & 0x7FFFFFFFu) : ~ordered;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

// Inserts key c (below list[k - 1]) into the sorted list of k keys shared by the warp; returns the new last key.
// Every lane of the warp calls it with the same c.
__device__ inline std::uint64_t warp_insert(std::uint64_t* list, int k, std::uint64_t c, int lane) {
  int smaller = 0;
  for (int j = lane; j < k; j += 32) smaller += list[j] < c;
  const int at = static_cast<int>(__reduce_add_sync(kFullWarp, static_cast<unsigned>(smaller)));
  // Shift list[at .. k - 2] up by one, 32 at a time from the top, so each key is read before it is overwritten.
  for (int top = (k - 1) / 32 * 32; top >= at / 32 * 32; top -= 32) {
    const int j = top + lane;
    const bool moves = j > at && j < k;
    const std::uint64_t moved = moves ? list[j - 1] : 0;
    __syncwarp();
    if (moves) list[j] = moved;
    __syncwarp();
  }
  if (lane == 0) list[at] = c;
  __syncwarp();
  return list[k - 1];
}

// Offers one key per lane (kEmptyKey for none) to the warp's list; returns the new threshold.
__device__ inline std::uint64_t warp_offer(std::uint64_t* list, int k, std::uint64_t threshold, std::uint64_t key,
                                           int lane) {
  for (unsigned pending = __ballot_sync(kFullWarp, key < threshold); pending; pending &= pending - 1) {
    const std::uint64_t c = __shfl_sync(kFullWarp, key, __ffs(pending) - 1);
    if (c < threshold) threshold = warp_insert(list, k, c, lane);
  }
  return threshold;
}

// Merges another sorted list of k keys into the warp's; returns the new threshold. Stops at the first run of 32
// keys none of which can enter (the rest are larger still).
__device__ inline std::uint64_t warp_merge(std::uint64_t* list, int k, std::uint64_t threshold,
                                           const std::uint64_t* other, int lane) {
  for (int base = 0; base < k; base += 32) {
    const std::uint64_t key = base + lane < k ? other[base + lane] : kEmptyKey;
    if (!__any_sync(kFullWarp, key < threshold)) break;
    threshold = warp_offer(list, k, threshold, key, lane);
  }
  return threshold;
}

__device__ inline void warp_clear(std::uint64_t* list, int k, int lane) {
  for (int j = lane; j < k; j += 32) list[j] = kEmptyKey;
  __syncwarp();
}

}  // namespace tessera::cuda
