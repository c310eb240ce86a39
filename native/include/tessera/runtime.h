// Process-wide runtime of the core: CPU feature dispatch and the thread pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "tessera/status.h"

namespace tessera {

// ---- CPU dispatch ------------------------------------------------------------------------------------------
// Levels are ordered: a kernel written for a level runs on every level above it.
enum class SimdLevel : int {
  scalar = 0,            // portable C++ (x86-64-v2 baseline on x86: SSE4.2 + POPCNT)
  neon = 1,              // AArch64 Advanced SIMD
  avx2 = 2,              // AVX2 + FMA + F16C + BMI2 (x86-64-v3)
  avx512 = 3,            // AVX-512 F/CD/BW/DQ/VL (x86-64-v4)
  avx512_vpopcntdq = 4,  // avx512 plus VPOPCNTDQ, BITALG and VBMI (Ice Lake and later, Zen 4)
};

const char* simd_level_name(SimdLevel level) noexcept;
bool parse_simd_level(const char* name, SimdLevel* out) noexcept;

// The best level this CPU and OS support (detected once, with cpuid and xgetbv on x86).
SimdLevel detected_simd_level() noexcept;
// The level kernels dispatch on now: the detected level unless lowered by set_simd_level.
SimdLevel active_simd_level() noexcept;
// Lowers (or restores) the dispatch level, e.g. to test every kernel path on one machine.
// Returns unsupported when the CPU cannot run `level`; NEON and x86 levels never mix.
Status set_simd_level(SimdLevel level) noexcept;
bool simd_level_available(SimdLevel level) noexcept;

// ---- Threads -----------------------------------------------------------------------------------------------
// One pool per process. `threads` counts every thread that works on a job, the calling thread included.
std::size_t thread_count() noexcept;
Status set_thread_count(std::size_t threads) noexcept;
constexpr std::size_t kMaxThreads = 1024;

// A non-owning reference to a chunk body: a callable taking (begin, end) or (begin, end, slot). No allocation per call.
class ChunkFn {
 public:
  // Excludes ChunkFn itself, or copying a ChunkFn would wrap a reference to the copy's source (a dangling view).
  template <class F>
    requires(!std::is_same_v<std::remove_cv_t<F>, ChunkFn>)
  ChunkFn(F& f) noexcept  // NOLINT(google-explicit-constructor): a view, like std::function_ref
      : object_(&f), call_([](void* o, std::size_t b, std::size_t e, std::size_t slot) {
          if constexpr (std::is_invocable_v<F&, std::size_t, std::size_t, std::size_t>)
            (*static_cast<F*>(o))(b, e, slot);
          else
            (*static_cast<F*>(o))(b, e);
        }) {}
  void operator()(std::size_t begin, std::size_t end, std::size_t slot) const { call_(object_, begin, end, slot); }

 private:
  void* object_;
  void (*call_)(void*, std::size_t, std::size_t, std::size_t);
};

// Runs body(begin, end[, slot]) over [0, n) cut into chunks of `grain` items (the last one shorter). Chunk boundaries
// depend only on n and grain, never on the thread count, so a kernel that writes each chunk's output independently
// gives identical results for any number of threads. The caller works too, so nested or concurrent calls cannot
// deadlock.
//
// `slot` identifies the participating thread within this call: 0 for the caller, then 1, 2, ... for each worker that
// joins, always below max_slots. A kernel can keep per-slot scratch state (for example partial top-k heaps) in an
// array of max_slots entries; which chunks land in which slot varies from run to run, so whatever combines the slots
// must not depend on it. slots_for(n, grain) is the usual size of that array.
// Returns internal if a chunk threw (the core's kernels do not; this protects the process from a bug).
Status parallel_for(std::size_t n, std::size_t grain, ChunkFn body, std::size_t max_slots = SIZE_MAX) noexcept;

// The number of slots worth allocating for a parallel_for over n items in chunks of grain: min(threads, chunks).
std::size_t slots_for(std::size_t n, std::size_t grain) noexcept;

// ---- machine limits, for benchmarks (src/common/probes.cpp) --------------------------------------------------
// XORs and popcounts `bytes` bytes (accumulating the counts) over a buffer resident in L1, spread over the pool,
// with the best popcount of the active dispatch level: nothing a Hamming scan can skip, and nothing else.
std::uint64_t popcount_work(std::size_t bytes) noexcept;
// About `flops` floating-point operations as independent fused multiply-add chains over the pool, at the widest
// level: the FMA peak, for kernels that multiply and add.
float fma_work(std::size_t flops) noexcept;

// Reads `bytes` bytes over the pool (an XOR of every 64-bit word, returned so it cannot be skipped): the memory read
// bandwidth yardstick for scans that only read.
std::uint64_t parallel_read(const void* data, std::size_t bytes) noexcept;

// memcpy split over the pool in 256 KiB chunks: the memory-bandwidth yardstick the benchmarks compare kernels with.
void parallel_copy(void* dst, const void* src, std::size_t bytes) noexcept;

// A grain that gives each chunk about `bytes_per_chunk` bytes of work when each item touches `bytes_per_item`.
std::size_t grain_for_bytes(std::size_t bytes_per_item, std::size_t bytes_per_chunk = std::size_t{1} << 16) noexcept;

}  // namespace tessera
