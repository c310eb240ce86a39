// The CUDA runtime and device built-ins that native/cuda's kernels use, emulated on the CPU, so that the kernels'
// logic, synchronization and data layouts can be tested without a GPU (README.md says what this can and cannot
// catch). The kernel files reach it through transform.py, which rewrites the few things C++ cannot express
// (launches, __shared__ declarations, inline PTX; emu/ptx.h emulates the PTX).
//
// Execution model: a launch runs its blocks one after another; a block's threads run as fibers of one OS thread
// (default: fast, deterministic, deadlocks detected) or, built with -DEMU_THREADS, as OS threads (for the thread and
// address sanitizers). Each fiber runs until it waits at a barrier (__syncthreads, or any warp-collective
// operation), and the waiting fibers resume in a random order, so code that depends on an unsynchronized order of
// threads sees different orders. Every warp-collective operation is a warp barrier at which each lane must be in the
// same kind of operation: converged lanes, as the kernels assume.
//
// Uninitialised device and shared memory holds the bytes FF FF FF 7F repeated: NaN as float32 (0x7FFFFFFF), as
// float16 and bfloat16 (0xFFFF, 0x7FFF), and a huge value as any integer, but not a sentinel the kernels use (such
// as an all-ones key).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

// ---- qualifiers (transform.py rewrites __shared__ and asm; a leftover one fails to compile) -------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

#ifdef EMU_THREADS
#define EMU_THREAD_LOCAL thread_local
#else
#define EMU_THREAD_LOCAL
#endif

// ---- vector types and the built-in variables ------------------------------------------------------------------------

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

// The running thread's index is per fiber (the scheduler sets it on every switch) or per OS thread; the block's and
// the grid's are the same for every thread of the running block.
inline EMU_THREAD_LOCAL uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim, gridDim;

namespace emu {

// ---- what the emulator counts and reports ---------------------------------------------------------------------------

struct Counters {
  std::atomic<long> launches{0}, blocks{0};
  std::atomic<long> errors{0};  // kernel or host-code misuse the emulator found (divergence, bad launch, bad copy, ...)
  std::atomic<long> mma{0}, ldmatrix{0};  // warp-level tensor-core instructions
  std::atomic<long> async_copies{0};      // per-thread cp.async instructions
};
Counters& counters();

// Prints "EMULATOR: ..." (the first few of each run) and counts an error; the kernel goes on.
void report(const char* format, ...) __attribute__((format(printf, 1, 2)));
// The same for what cannot go on (out-of-bounds shared memory, a deadlock): prints and aborts.
[[noreturn]] void fail(const char* format, ...) __attribute__((format(printf, 1, 2)));

void fill_garbage(void* memory, std::size_t bytes);

// ---- settings a test can change -------------------------------------------------------------------------------------

// A constant of a kernel file made adjustable by transform.py --tunable (a chunk or batch budget, say), so that small
// inputs take the paths of large ones. tunable() registers the default and returns the live value;
// set_tunable() changes it (the name must exist) and returns the previous value.
const std::size_t& tunable(const char* name, std::size_t value);
std::size_t set_tunable(const char* name, std::size_t value);

// The device's memory size: cudaMalloc fails with cudaErrorMemoryAllocation beyond it (to test out-of-memory
// paths). Returns the previous size.
std::size_t set_device_memory(std::size_t bytes);
// Device allocations, streams and events still alive: "" when there are none, else what is left.
std::string leaks();

// The launches since the last clear (a test can check a host-side choice of grid, say).
struct Launch {
  dim3 grid, block;
  std::size_t shared;
};
const std::vector<Launch>& launch_log();
void clear_launch_log();

// ---- threads, blocks and warps --------------------------------------------------------------------------------------

constexpr int kWarpSize = 32;
constexpr int kLaneWords = 8;  // 64-bit words a lane can put into one warp exchange

// One cp.async instruction in flight: what lands in shared memory when its group is waited for.
struct AsyncCopy {
  std::uint32_t shared;  // offset in the block's dynamic shared memory
  const void* global;
  int bytes, source_bytes;  // source_bytes < bytes: the rest is zero-filled
};

// Per GPU thread.
struct ThreadState {
  unsigned lane = 0, warp = 0;
  unsigned phase = 0;  // warp barriers passed (see warp_barrier)
  std::vector<AsyncCopy> open_group;
  std::vector<std::vector<AsyncCopy>> committed_groups;  // oldest first
};
inline EMU_THREAD_LOCAL ThreadState* current_thread = nullptr;
inline ThreadState& self() { return *current_thread; }

// Kinds of warp-collective operations: at a warp barrier every lane must be in the same kind.
enum class WarpOp : unsigned { syncwarp = 1, shuffle, vote, reduce, match, mma, ldmatrix };

void syncthreads();
// Every lane of the warp arrives with the operation it is in; a lane that sees another kind reports divergence.
void warp_barrier(WarpOp op);
// The running warp's exchange area: a row of kLaneWords words per lane.
std::uint64_t (*warp_slots())[kLaneWords];
// The running warp's lanes (all 32, or fewer in a block's last warp): what a full mask must be.
unsigned warp_mask();

// Every lane writes `mine` to its row of the warp's exchange area, then (after a warp barrier) reads what it needs
// with read(rows, lane); a second barrier keeps the area intact until every lane has read.
using Rows = const std::uint64_t (*)[kLaneWords];
template <class Read>
auto warp_exchange(WarpOp op, std::initializer_list<std::uint64_t> mine, Read read) {
  std::uint64_t (*rows)[kLaneWords] = warp_slots();
  const unsigned lane = self().lane;
  std::copy(mine.begin(), mine.end(), rows[lane]);
  warp_barrier(op);
  const auto result = read(static_cast<Rows>(rows), lane);
  warp_barrier(op);
  return result;
}

// Fails unless mask is the running warp's full mask: partial masks are not emulated.
void check_mask(unsigned mask, const char* operation);

// The running block's dynamic shared memory; its serial number (distinct for every block of every launch); whether
// its cp.async copies land at issue (eager) or at the wait that covers them (see emu/ptx.h).
unsigned char* dynamic_shared_base();
std::size_t dynamic_shared_bytes();
std::uint64_t block_serial();
bool eager_copies();

template <class T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(dynamic_shared_base());
}

// A __shared__ variable: one per declaration, refilled with garbage for every block, as a block's shared memory
// starts out on the device. (Unlike dynamic shared memory it has no shared-window address: see
// __cvta_generic_to_shared.)
template <class T>
class StaticShared {
 public:
  T& get() {
    if (serial_.load(std::memory_order_acquire) != block_serial()) refill();
    return *reinterpret_cast<T*>(bytes_);
  }

 private:
  void refill() {
    std::lock_guard lock(mutex_);
    if (serial_.load(std::memory_order_relaxed) == block_serial()) return;
    fill_garbage(bytes_, sizeof(T));
    serial_.store(block_serial(), std::memory_order_release);
  }
  alignas(256) unsigned char bytes_[sizeof(T)];
  std::mutex mutex_;
  std::atomic<std::uint64_t> serial_{~std::uint64_t{0}};
};

// Whether the device memory [p, p + bytes) lies in one live allocation.
bool is_device_range(const void* p, std::size_t bytes);

// ---- launches -------------------------------------------------------------------------------------------------------

// Checks a launch as the device would (block size, grid extents, dynamic shared memory against the kernel's
// attribute, parameter bytes); false after reporting why and setting the error cudaGetLastError returns.
bool accept_launch(const void* kernel, dim3 grid, dim3 block, std::size_t shared, std::size_t parameter_bytes);
// Runs every block of the grid, each thread calling body(argument).
void run_grid(dim3 grid, dim3 block, std::size_t shared, void (*body)(void*), void* argument);

// kernel<<<grid, block, shared, stream>>>(arguments...), synchronously: the arguments are converted to the kernel's
// parameter types once, as a launch copies them, and every thread gets its copy.
template <class... Parameters, class... Arguments>
void launch(void (*kernel)(Parameters...), dim3 grid, dim3 block, std::size_t shared, const void* /*stream*/,
            Arguments&&... arguments) {
  static_assert(sizeof...(Parameters) == sizeof...(Arguments), "a launch passes every kernel parameter");
  const std::tuple<std::decay_t<Parameters>...> parameters(std::forward<Arguments>(arguments)...);
  if (!accept_launch(reinterpret_cast<const void*>(kernel), grid, block, shared, sizeof parameters)) return;
  struct Call {
    void (*kernel)(Parameters...);
    const std::tuple<std::decay_t<Parameters>...>* parameters;
  } call{kernel, &parameters};
  run_grid(grid, block, shared,
           [](void* c) {
             const Call& call = *static_cast<const Call*>(c);
             std::apply(call.kernel, *call.parameters);
           },
           &call);
}

// ---- conversions (the device's cvt.rn: round to nearest even; NaN becomes the canonical 0x7FFF) ---------------------

std::uint16_t f32_to_f16_bits(float f);
std::uint16_t f32_to_bf16_bits(float f);
float f16_bits_to_f32(std::uint16_t h);
float bf16_bits_to_f32(std::uint16_t h);

}  // namespace emu

// ---- device functions: barriers and warp-collective operations ------------------------------------------------------

inline void __syncthreads() { emu::syncthreads(); }

inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) {
  emu::check_mask(mask, "__syncwarp");
  emu::warp_barrier(emu::WarpOp::syncwarp);
}

namespace emu {
// A shuffle: every lane offers v; lane l receives the value of lane source(l), or its own when there is no such lane.
template <class T, class Source>
T shuffle(unsigned mask, T v, Source source, const char* name) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move up to 64 bits");
  check_mask(mask, name);
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  const std::uint64_t got = warp_exchange(WarpOp::shuffle, {bits}, [&](Rows x, unsigned l) {
    const int from = source(static_cast<int>(l));
    return from >= 0 && from < kWarpSize && (mask >> from & 1u) ? x[from][0] : x[l][0];
  });
  T r;
  std::memcpy(&r, &got, sizeof r);
  return r;
}

// The lanes of the mask (check_mask has made it the warp's) whose offered word satisfies keep.
template <class Keep>
unsigned lanes_where(unsigned mask, Rows x, Keep keep) {
  unsigned lanes = 0;
  for (int i = 0; i < kWarpSize; ++i) lanes |= (mask >> i & 1u) && keep(x[i][0]) ? 1u << i : 0u;
  return lanes;
}
}  // namespace emu

template <class T>
T __shfl_sync(unsigned mask, T v, int source) {
  return emu::shuffle(mask, v, [source](int) { return source & 31; }, "__shfl_sync");
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  return emu::shuffle(mask, v, [lane_mask](int l) { return l ^ lane_mask; }, "__shfl_xor_sync");
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta) {
  return emu::shuffle(mask, v, [delta](int l) { return l - static_cast<int>(delta); }, "__shfl_up_sync");
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta) {
  return emu::shuffle(mask, v, [delta](int l) { return l + static_cast<int>(delta); }, "__shfl_down_sync");
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
  emu::check_mask(mask, "a warp vote");
  return emu::warp_exchange(emu::WarpOp::vote, {predicate != 0}, [mask](emu::Rows x, unsigned) {
    return emu::lanes_where(mask, x, [](std::uint64_t p) { return p != 0; });
  });
}
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) == mask; }

inline unsigned __reduce_add_sync(unsigned mask, unsigned value) {
  emu::check_mask(mask, "__reduce_add_sync");
  return emu::warp_exchange(emu::WarpOp::reduce, {value}, [mask](emu::Rows x, unsigned) {
    unsigned sum = 0;
    for (int i = 0; i < emu::kWarpSize; ++i) sum += mask >> i & 1u ? static_cast<unsigned>(x[i][0]) : 0u;
    return sum;
  });
}

// The lanes whose value equals this lane's.
template <class T>
unsigned __match_any_sync(unsigned mask, T value) {
  static_assert(std::is_integral_v<T> && sizeof(T) <= 8, "__match_any_sync compares 32- or 64-bit integers");
  emu::check_mask(mask, "__match_any_sync");
  const auto bits = static_cast<std::uint64_t>(value);
  return emu::warp_exchange(emu::WarpOp::match, {bits}, [mask, bits](emu::Rows x, unsigned) {
    return emu::lanes_where(mask, x, [bits](std::uint64_t other) { return other == bits; });
  });
}

template <class T>
T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}

// ---- device functions: loads, bits, rounding, math ------------------------------------------------------------------

template <class T>
T __ldg(const T* p) {
  return *p;
}
template <class T>
T __ldcs(const T* p) {
  return *p;
}
template <class T>
void __stcs(T* p, T v) {
  *p = v;
}

inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The _rn intrinsics round each operation once; the kernels are compiled with -ffp-contract=off, so a plain
// operation does too.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __uint2float_rn(unsigned x) { return static_cast<float>(x); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __double2float_rn(double x) { return static_cast<float>(x); }

// CUDA's min and max for mixed integer types: the usual arithmetic conversions, as its overloads give.
template <class A, class B>
std::common_type_t<A, B> min(A a, B b) {
  return b < a ? b : a;
}
template <class A, class B>
std::common_type_t<A, B> max(A a, B b) {
  return a < b ? b : a;
}

// The device math library, as the host's: results within the device's documented error, not its exact bits.
using std::exp;
using std::floor;
using std::isinf;
using std::isnan;
using std::log;
using std::rint;

// ---- half and bfloat16 (cuda_fp16.h and cuda_bf16.h include this header) --------------------------------------------

struct __half {
  std::uint16_t bits;
};
struct __nv_bfloat16 {
  std::uint16_t bits;
};
inline __half __ushort_as_half(unsigned short bits) { return {bits}; }
inline unsigned short __half_as_ushort(__half h) { return h.bits; }
inline float __half2float(__half h) { return emu::f16_bits_to_f32(h.bits); }
inline __half __float2half_rn(float f) { return {emu::f32_to_f16_bits(f)}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.bits; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {emu::f32_to_bf16_bits(f)}; }

// ---- shared-memory addresses ----------------------------------------------------------------------------------------

// The shared-window address of p: its offset in the block's dynamic shared memory (the only shared memory the
// kernels address this way).
std::size_t __cvta_generic_to_shared(const void* p);
inline std::size_t __cvta_generic_to_global(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// ---- host API -------------------------------------------------------------------------------------------------------

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
};
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};
constexpr int cudaSharedmemCarveoutMaxShared = 100;
constexpr unsigned cudaStreamNonBlocking = 1;
using cudaStream_t = struct CUstream_st*;
using cudaEvent_t = struct CUevent_st*;

const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();

cudaError_t cudaMalloc(void** p, std::size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);
cudaError_t cudaMemcpy(void* to, const void* from, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* to, const void* from, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemcpy2DAsync(void* to, std::size_t to_pitch, const void* from, std::size_t from_pitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t stream);

// Streams and events are stand-ins: every call completes before it returns, and kernels take no time.
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop);

cudaError_t cudaGetDevice(int* device);
// Multiprocessors: EMU_SMS in the environment, else 4 (few blocks per grid, but more than one).
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device);

namespace emu {
cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attribute, int value);
int resident_blocks(int threads, std::size_t shared);
}  // namespace emu
template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attribute, int value) {
  return emu::set_function_attribute(reinterpret_cast<const void*>(kernel), attribute, value);
}
// An H100's (sm_90) limits per multiprocessor: 2048 threads, 32 blocks, 228 KiB of shared memory (1 KiB of it
// reserved per block); registers are not counted.
template <class Kernel>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, Kernel*, int threads, std::size_t shared) {
  *blocks = emu::resident_blocks(threads, shared);
  return threads > 0 ? cudaSuccess : cudaErrorInvalidValue;
}
