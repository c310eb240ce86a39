// The emulator's runtime: launches and their blocks, the two thread models (fibers, or OS threads with
// -DEMU_THREADS), barriers and warps, device memory and the host API stand-ins (see cuda_runtime.h).
#include "cuda_runtime.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <utility>

#ifdef EMU_THREADS
#include <barrier>
#include <thread>
#endif

namespace emu {
namespace {

// ---- settings from the environment ----------------------------------------------------------------------------------

long environment_number(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

// EMU_CP_ASYNC: when cp.async copies land. "deferred": at the wait that covers them (a missing wait reads stale
// data); "eager": at issue (a copy into a buffer other warps still read overwrites it early); default: blocks
// alternate between the two (by launch and block index), so every run exercises both.
enum class CopyPolicy { alternate, deferred, eager };
CopyPolicy copy_policy() {
  static const CopyPolicy policy = [] {
    const char* v = std::getenv("EMU_CP_ASYNC");
    if (!v || !*v || std::strcmp(v, "alternate") == 0) return CopyPolicy::alternate;
    if (std::strcmp(v, "deferred") == 0) return CopyPolicy::deferred;
    if (std::strcmp(v, "eager") == 0) return CopyPolicy::eager;
    fail("EMU_CP_ASYNC must be alternate, deferred or eager, not %s", v);
  }();
  return policy;
}

}  // namespace

// ---- reports --------------------------------------------------------------------------------------------------------

Counters& counters() {
  static Counters c;
  return c;
}

namespace {
constexpr long kPrintedReports = 10;

void vprint(const char* format, va_list args) {
  std::fputs("EMULATOR: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
}
}  // namespace

void report(const char* format, ...) {
  if (counters().errors.fetch_add(1) >= kPrintedReports) return;
  va_list args;
  va_start(args, format);
  vprint(format, args);
  va_end(args);
}

void fail(const char* format, ...) {
  va_list args;
  va_start(args, format);
  vprint(format, args);
  va_end(args);
  std::fflush(stdout);
  std::abort();
}

void fill_garbage(void* memory, std::size_t bytes) {
  static constexpr unsigned char kPattern[4] = {0xFF, 0xFF, 0xFF, 0x7F};
  auto* p = static_cast<unsigned char*>(memory);
  for (std::size_t i = 0; i < bytes; ++i) p[i] = kPattern[i % 4];
}

// ---- tunables -------------------------------------------------------------------------------------------------------

namespace {
std::map<std::string, std::size_t>& tunables() {
  static std::map<std::string, std::size_t> values;  // node-based: references to values stay valid
  return values;
}
}  // namespace

const std::size_t& tunable(const char* name, std::size_t value) {
  const auto [it, inserted] = tunables().emplace(name, value);
  if (!inserted) fail("tunable %s registered twice: link one kernel file that has it per program", name);
  return it->second;
}

std::size_t set_tunable(const char* name, std::size_t value) {
  const auto it = tunables().find(name);
  if (it == tunables().end()) fail("no tunable %s (transform.py --tunable makes one)", name);
  return std::exchange(it->second, value);
}

// ---- half and bfloat16 ----------------------------------------------------------------------------------------------

std::uint16_t f32_to_f16_bits(float f) {
  if (std::isnan(f)) return 0x7FFF;
  const auto h = static_cast<_Float16>(f);  // the compiler's IEEE conversion: nearest even
  std::uint16_t bits;
  std::memcpy(&bits, &h, sizeof bits);
  return bits;
}

std::uint16_t f32_to_bf16_bits(float f) {
  if (std::isnan(f)) return 0x7FFF;
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  u += 0x7FFFu + ((u >> 16) & 1u);  // nearest even on the dropped 16 bits; carries into the exponent as it should
  return static_cast<std::uint16_t>(u >> 16);
}

float f16_bits_to_f32(std::uint16_t h) {
  _Float16 x;
  std::memcpy(&x, &h, sizeof x);
  return static_cast<float>(x);
}

float bf16_bits_to_f32(std::uint16_t h) {
  const std::uint32_t u = std::uint32_t{h} << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ---- barriers -------------------------------------------------------------------------------------------------------

namespace {

#ifdef EMU_THREADS

class Barrier {
 public:
  explicit Barrier(unsigned expected) : barrier_(expected) {}
  void arrive_and_wait(const char*) { barrier_.arrive_and_wait(); }

 private:
  std::barrier<> barrier_;
};

#else

extern "C" void emu_fiber_switch(void** save_sp, void* to_sp);  // fiber_x86_64.S
extern "C" void emu_fiber_start();

class Barrier;

// A GPU thread: its own stack (a guard page below it turns an overflow into a crash), where it stopped, and the
// barrier it waits at.
struct Fiber {
  void* sp = nullptr;
  unsigned char* stack = nullptr;
  uint3 index{};
  ThreadState state;
  bool done = false;
  const Barrier* waiting = nullptr;
  unsigned waiting_generation = 0;
  const char* waiting_at = nullptr;
};

Fiber* running_fiber = nullptr;
void* scheduler_sp = nullptr;

// Counts arrivals; the last one opens the barrier (a new generation) and goes on, the others return to the
// scheduler, which resumes them once the generation has moved on.
class Barrier {
 public:
  explicit Barrier(unsigned expected) : expected_(expected) {}
  void arrive_and_wait(const char* what) {
    if (++arrived_ == expected_) {
      arrived_ = 0;
      ++generation_;
      return;
    }
    running_fiber->waiting = this;
    running_fiber->waiting_generation = generation_;
    running_fiber->waiting_at = what;
    emu_fiber_switch(&running_fiber->sp, scheduler_sp);
  }
  bool open_for(const Fiber& f) const { return f.waiting != this || generation_ != f.waiting_generation; }

 private:
  unsigned expected_, arrived_ = 0, generation_ = 0;
};

#endif

// ---- blocks and warps -----------------------------------------------------------------------------------------------

struct Warp {
  explicit Warp(unsigned lanes) : barrier(lanes), mask(lanes == 32 ? 0xFFFFFFFFu : (1u << lanes) - 1) {}
  Barrier barrier;
  unsigned mask;
  unsigned ops[2][kWarpSize] = {};  // each lane's operation at the last two warp barriers
  std::uint64_t slots[kWarpSize][kLaneWords];
};

struct Block {
  Block(unsigned threads, std::size_t shared, std::uint64_t serial_, bool eager_)
      : barrier(threads), dynamic_bytes(shared), serial(serial_), eager(eager_) {
    for (unsigned first = 0; first < threads; first += kWarpSize)
      warps.push_back(std::make_unique<Warp>(std::min<unsigned>(kWarpSize, threads - first)));
    if (shared == 0) return;
    // Exactly the launch's bytes, so that an address sanitizer sees overruns.
    dynamic = static_cast<unsigned char*>(::operator new(shared, std::align_val_t{256}));
    fill_garbage(dynamic, shared);
  }
  ~Block() {
    if (dynamic) ::operator delete(dynamic, std::align_val_t{256});
  }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  Barrier barrier;
  std::vector<std::unique_ptr<Warp>> warps;
  unsigned char* dynamic = nullptr;
  std::size_t dynamic_bytes;
  std::uint64_t serial;
  bool eager;
};

Block* running_block = nullptr;
std::uint64_t block_count = 0;

const char* op_name(unsigned op) {
  static const char* const names[] = {"?", "__syncwarp", "a shuffle", "a vote", "a reduction", "a match", "mma",
                                      "ldmatrix"};
  return op < std::size(names) ? names[op] : "?";
}

Warp& running_warp() { return *running_block->warps[self().warp]; }

}  // namespace

void syncthreads() { running_block->barrier.arrive_and_wait("__syncthreads"); }

// Lane 0 compares every lane's operation with its own once all have arrived. The operations alternate between two
// rows of ops, so a fast lane's next one never overwrites one still being compared (it needs every lane at the next
// barrier first).
void warp_barrier(WarpOp op) {
  ThreadState& t = self();
  Warp& w = running_warp();
  unsigned* ops = w.ops[t.phase & 1];
  ops[t.lane] = static_cast<unsigned>(op);
  w.barrier.arrive_and_wait("a warp operation");
  ++t.phase;
  if (t.lane != 0) return;
  for (unsigned i = 1; i < kWarpSize; ++i)
    if ((w.mask >> i & 1u) && ops[i] != static_cast<unsigned>(op)) {
      report("warp divergence in block (%u,%u,%u) warp %u: lane %u in %s, lane %u in %s", blockIdx.x, blockIdx.y,
             blockIdx.z, t.warp, t.lane, op_name(static_cast<unsigned>(op)), i, op_name(ops[i]));
      return;
    }
}

std::uint64_t (*warp_slots())[kLaneWords] { return running_warp().slots; }
unsigned warp_mask() { return running_warp().mask; }

void check_mask(unsigned mask, const char* operation) {
  if (mask != warp_mask())
    fail("%s with mask %08x: the emulator runs converged warps only (this warp's lanes: %08x)", operation, mask,
         warp_mask());
}

unsigned char* dynamic_shared_base() { return running_block->dynamic; }
std::size_t dynamic_shared_bytes() { return running_block->dynamic_bytes; }
std::uint64_t block_serial() { return running_block->serial; }
bool eager_copies() { return running_block->eager; }

// ---- running a block ------------------------------------------------------------------------------------------------

namespace {

uint3 thread_index(unsigned linear) {
  return {linear % blockDim.x, linear / blockDim.x % blockDim.y, linear / (blockDim.x * blockDim.y)};
}

ThreadState thread_state(unsigned linear) {
  ThreadState s;
  s.lane = linear % kWarpSize;
  s.warp = linear / kWarpSize;
  return s;
}

// A thread's end: copies it never waited for would land at no defined time. (Empty groups are fine: kernels commit
// one per pipeline stage whether or not it has copies.)
void finish_thread() {
  const ThreadState& s = self();
  bool in_flight = !s.open_group.empty();
  for (const std::vector<AsyncCopy>& group : s.committed_groups) in_flight |= !group.empty();
  if (in_flight)
    report("thread (%u,%u,%u) of block (%u,%u,%u) exited with cp.async copies in flight (a missing wait)",
           threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z);
}

#ifdef EMU_THREADS

void run_threads(unsigned threads, void (*body)(void*), void* argument) {
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([=] {
      ThreadState state = thread_state(t);
      threadIdx = thread_index(t);
      current_thread = &state;
      body(argument);
      finish_thread();
    });
  for (std::thread& t : pool) t.join();
}

#else

constexpr std::size_t kStackBytes = 256 * 1024;

std::vector<Fiber> fibers;  // reused from block to block (grown only between blocks: fibers hold pointers to them)
void (*fiber_body)(void*) = nullptr;
void* fiber_argument = nullptr;

// A fiber's first frame (see fiber_x86_64.S): run the kernel, then hand back to the scheduler for good.
void fiber_main(Fiber* f) {
  fiber_body(fiber_argument);
  finish_thread();
  f->done = true;
  emu_fiber_switch(&f->sp, scheduler_sp);
  fail("a finished fiber was resumed");
}

unsigned char* map_stack() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED || mprotect(p, page, PROT_NONE) != 0) fail("cannot map a fiber stack");
  return static_cast<unsigned char*>(p) + page;
}

// The frame emu_fiber_switch pops on the first switch to f: the SSE and x87 control words (their defaults), the
// callee-saved registers (r13: the function emu_fiber_start calls, r12: its argument), then the return address.
// Fiber t's stack starts (t % 64) cache lines below the top of its mapping: the stacks' hot frames would otherwise
// all fall into the same cache sets.
void prepare(Fiber& f, unsigned t) {
  const auto top = reinterpret_cast<std::uintptr_t>(f.stack + kStackBytes - t % 64 * 64) & ~std::uintptr_t{15};
  auto* frame = reinterpret_cast<std::uint64_t*>(top - 80);  // 16-byte aligned when emu_fiber_start calls
  frame[0] = 0x1F80u | std::uint64_t{0x037F} << 32;          // mxcsr, x87 control word
  frame[1] = frame[2] = 0;                                   // r15, r14
  frame[3] = reinterpret_cast<std::uint64_t>(&fiber_main);   // r13
  frame[4] = reinterpret_cast<std::uint64_t>(&f);            // r12
  frame[5] = frame[6] = 0;                                   // rbx, rbp
  frame[7] = reinterpret_cast<std::uint64_t>(&emu_fiber_start);
  f.sp = frame;
  f.done = false;
  f.waiting = nullptr;
}

// xorshift64, seeded by EMU_SEED: the order in which waiting fibers resume.
std::uint64_t random_state = 0;
std::uint64_t next_random() {
  if (random_state == 0)
    random_state = static_cast<std::uint64_t>(environment_number("EMU_SEED", 1)) * 0x9E3779B97F4A7C15ull | 1;
  random_state ^= random_state << 13;
  random_state ^= random_state >> 7;
  random_state ^= random_state << 17;
  return random_state;
}

void resume(Fiber& f) {
  f.waiting = nullptr;
  running_fiber = &f;
  threadIdx = f.index;
  current_thread = &f.state;
  emu_fiber_switch(&scheduler_sp, f.sp);
  running_fiber = nullptr;
}

// A crash inside a kernel (an out-of-bounds pointer, a fiber's stack overflow) says where it happened; the
// handler runs on its own stack, since the fiber's may be the problem.
void crash(int signal) {
  if (running_fiber) {
    char message[200];
    const int n = std::snprintf(message, sizeof message,
                                "EMULATOR: signal %d in thread (%u,%u,%u) of block (%u,%u,%u), launch %ld\n", signal,
                                threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z,
                                counters().launches.load());
    if (n > 0 && write(STDERR_FILENO, message, static_cast<std::size_t>(n)) < 0) {
      // nothing more can be said
    }
  }
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

void catch_crashes() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  static std::vector<char> stack(64 * 1024);
  stack_t alternate{};
  alternate.ss_sp = stack.data();
  alternate.ss_size = stack.size();
  struct sigaction action {};
  action.sa_handler = crash;
  action.sa_flags = SA_ONSTACK;
  if (sigaltstack(&alternate, nullptr) != 0 || sigaction(SIGSEGV, &action, nullptr) != 0 ||
      sigaction(SIGBUS, &action, nullptr) != 0)
    fail("cannot install the crash handler");
}

[[noreturn]] void deadlock(unsigned threads, unsigned live) {
  for (unsigned t = 0; t < threads; ++t)
    if (!fibers[t].done) {
      const uint3 i = fibers[t].index;
      fail("deadlock in block (%u,%u,%u): %u of %u threads wait at barriers that cannot open, e.g. thread (%u,%u,%u) "
           "at %s (others may have exited or wait elsewhere)",
           blockIdx.x, blockIdx.y, blockIdx.z, live, threads, i.x, i.y, i.z, fibers[t].waiting_at);
    }
  fail("deadlock");
}

// Passes over the fibers until all are done; each pass starts at a random fiber of a shuffled order and resumes
// every one whose barrier has opened, which runs until its next barrier or its end.
void run_fibers(unsigned threads, void (*body)(void*), void* argument) {
  catch_crashes();
  fiber_body = body;
  fiber_argument = argument;
  while (fibers.size() < threads) fibers.emplace_back().stack = map_stack();
  std::vector<Fiber*> order(threads);
  for (unsigned t = 0; t < threads; ++t) {
    Fiber& f = fibers[t];
    f.index = thread_index(t);
    f.state = thread_state(t);
    prepare(f, t);
    order[t] = &f;
  }
  for (unsigned t = threads - 1; t > 0; --t) std::swap(order[t], order[next_random() % (t + 1)]);
  for (unsigned live = threads; live > 0;) {
    bool progress = false;
    const auto start = static_cast<unsigned>(next_random() % threads);
    for (unsigned i = 0, at = start; i < threads; ++i, at = at + 1 == threads ? 0 : at + 1) {
      Fiber& f = *order[at];
      if (f.done || (f.waiting && !f.waiting->open_for(f))) continue;
      resume(f);
      progress = true;
      live -= f.done;
    }
    if (!progress) deadlock(threads, live);
  }
}

#endif

bool eager_for(std::uint64_t launch, std::uint64_t block) {
  switch (copy_policy()) {
    case CopyPolicy::eager: return true;
    case CopyPolicy::deferred: return false;
    default: return (launch + block) % 2 == 1;
  }
}

}  // namespace

void run_grid(dim3 grid, dim3 block, std::size_t shared, void (*body)(void*), void* argument) {
  const auto launch = static_cast<std::uint64_t>(counters().launches.fetch_add(1));
  gridDim = grid;
  blockDim = block;
  const unsigned threads = block.x * block.y * block.z;
  std::uint64_t index = 0;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x, ++index) {
        Block b(threads, shared, ++block_count, eager_for(launch, index));
        running_block = &b;
        blockIdx = {x, y, z};
#ifdef EMU_THREADS
        run_threads(threads, body, argument);
#else
        run_fibers(threads, body, argument);
#endif
        running_block = nullptr;
        ++counters().blocks;
      }
}

}  // namespace emu

std::size_t __cvta_generic_to_shared(const void* p) {
  const auto* c = static_cast<const unsigned char*>(p);
  const unsigned char* base = emu::dynamic_shared_base();
  if (!base || c < base || c > base + emu::dynamic_shared_bytes())
    emu::fail("__cvta_generic_to_shared(%p): not in the block's dynamic shared memory", p);
  return static_cast<std::size_t>(c - base);
}

// ---- launches and kernel attributes ---------------------------------------------------------------------------------

namespace emu {
namespace {

cudaError_t last_error = cudaSuccess;
std::mutex host_mutex;  // the host API's state below (kernels in OS threads check device ranges concurrently)

constexpr std::size_t kDefaultSharedLimit = 48 * 1024;
constexpr std::size_t kOptInSharedLimit = 227 * 1024;  // an H100's (sm_90) dynamic shared memory per block
constexpr std::size_t kParameterLimit = 4096;          // the portable limit (CUDA 12.1 allows 32 KiB on sm_70+)
std::map<const void*, std::size_t> shared_limits;     // per kernel, from cudaFuncSetAttribute

cudaError_t fail_call(cudaError_t e) {
  last_error = e;
  return e;
}

std::vector<Launch> launches;

}  // namespace

const std::vector<Launch>& launch_log() { return launches; }
void clear_launch_log() { launches.clear(); }

int resident_blocks(int threads, std::size_t shared) {
  constexpr std::size_t kSharedPerMultiprocessor = 228 * 1024, kReservedPerBlock = 1024;
  if (threads <= 0) return 0;
  return static_cast<int>(std::min<std::size_t>({32, 2048 / static_cast<std::size_t>(threads),
                                                 kSharedPerMultiprocessor / (shared + kReservedPerBlock)}));
}

bool accept_launch(const void* kernel, dim3 grid, dim3 block, std::size_t shared, std::size_t parameter_bytes) {
  launches.push_back({grid, block, shared});
  std::size_t limit = kDefaultSharedLimit;
  {
    std::lock_guard lock(host_mutex);
    if (const auto it = shared_limits.find(kernel); it != shared_limits.end()) limit = std::max(limit, it->second);
  }
  const std::size_t threads = std::size_t{block.x} * block.y * block.z;
  const bool ok = threads >= 1 && threads <= 1024 && block.x <= 1024 && block.y <= 1024 && block.z <= 64 &&
                  grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7FFFFFFFu && grid.y <= 65535 &&
                  grid.z <= 65535 && shared <= limit && parameter_bytes <= kParameterLimit;
  if (ok) return true;
  report("bad launch: grid (%u,%u,%u), block (%u,%u,%u), %zu bytes of dynamic shared memory (limit %zu), %zu bytes "
         "of parameters",
         grid.x, grid.y, grid.z, block.x, block.y, block.z, shared, limit, parameter_bytes);
  fail_call(cudaErrorInvalidConfiguration);
  return false;
}

cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attribute, int value) {
  switch (attribute) {
    case cudaFuncAttributeMaxDynamicSharedMemorySize:
      if (value < 0 || static_cast<std::size_t>(value) > kOptInSharedLimit) return fail_call(cudaErrorInvalidValue);
      {
        std::lock_guard lock(host_mutex);
        shared_limits[kernel] = static_cast<std::size_t>(value);
      }
      return cudaSuccess;
    case cudaFuncAttributePreferredSharedMemoryCarveout:
      return value >= -1 && value <= 100 ? cudaSuccess : fail_call(cudaErrorInvalidValue);
  }
  return fail_call(cudaErrorInvalidValue);
}

// ---- device memory --------------------------------------------------------------------------------------------------

namespace {

std::map<std::uintptr_t, std::size_t> allocations;  // start -> bytes
std::size_t bytes_in_use = 0, device_bytes = std::size_t{80} << 30;
std::set<const void*> streams, events;

bool in_allocation(const void* p, std::size_t bytes) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = allocations.upper_bound(a);
  if (it == allocations.begin()) return false;
  --it;
  return a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

}  // namespace

bool is_device_range(const void* p, std::size_t bytes) {
  std::lock_guard lock(host_mutex);
  return in_allocation(p, bytes);
}

std::size_t set_device_memory(std::size_t bytes) {
  std::lock_guard lock(host_mutex);
  return std::exchange(device_bytes, bytes);
}

std::string leaks() {
  std::lock_guard lock(host_mutex);
  std::string out;
  if (!allocations.empty())
    out += std::to_string(allocations.size()) + " device allocations (" + std::to_string(bytes_in_use) + " bytes) ";
  if (!streams.empty()) out += std::to_string(streams.size()) + " streams ";
  if (!events.empty()) out += std::to_string(events.size()) + " events ";
  return out;
}

namespace {

// A copy's device side must lie in one allocation (host code that sizes a copy wrongly shows here).
cudaError_t check_device_side(const char* call, const void* p, std::size_t bytes) {
  if (bytes == 0 || is_device_range(p, bytes)) return cudaSuccess;
  report("%s: %zu bytes at %p are not inside one device allocation", call, bytes, p);
  return fail_call(cudaErrorInvalidValue);
}

cudaError_t check_copy(const char* call, void* to, const void* from, std::size_t to_extent, std::size_t from_extent,
                       cudaMemcpyKind kind) {
  const bool to_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool from_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (!to_device && !from_device) return fail_call(cudaErrorInvalidValue);
  if (to_device)
    if (cudaError_t e = check_device_side(call, to, to_extent); e != cudaSuccess) return e;
  if (from_device) return check_device_side(call, from, from_extent);
  return cudaSuccess;
}

}  // namespace
}  // namespace emu

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() { return std::exchange(emu::last_error, cudaSuccess); }

cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  std::lock_guard lock(emu::host_mutex);
  if (bytes > emu::device_bytes - std::min(emu::device_bytes, emu::bytes_in_use))
    return emu::fail_call(cudaErrorMemoryAllocation);
  // Exactly `bytes` (an address sanitizer sees overruns), aligned as cudaMalloc's are.
  void* memory = ::operator new(bytes, std::align_val_t{256}, std::nothrow);
  if (!memory) return emu::fail_call(cudaErrorMemoryAllocation);
  emu::fill_garbage(memory, bytes);
  emu::allocations.emplace(reinterpret_cast<std::uintptr_t>(memory), bytes);
  emu::bytes_in_use += bytes;
  *p = memory;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard lock(emu::host_mutex);
  const auto it = emu::allocations.find(reinterpret_cast<std::uintptr_t>(p));
  if (it == emu::allocations.end()) {
    emu::report("cudaFree(%p): not a live device allocation", p);
    return emu::fail_call(cudaErrorInvalidDevicePointer);
  }
  emu::bytes_in_use -= it->second;
  emu::allocations.erase(it);
  ::operator delete(p, std::align_val_t{256});
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  std::lock_guard lock(emu::host_mutex);
  *total_bytes = emu::device_bytes;
  *free_bytes = emu::device_bytes - std::min(emu::device_bytes, emu::bytes_in_use);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* to, const void* from, std::size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = emu::check_copy("cudaMemcpy", to, from, bytes, bytes, kind); e != cudaSuccess) return e;
  if (bytes) std::memmove(to, from, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* to, const void* from, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(to, from, bytes, kind);
}

cudaError_t cudaMemcpy2DAsync(void* to, std::size_t to_pitch, const void* from, std::size_t from_pitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind kind, cudaStream_t) {
  if (width > to_pitch || width > from_pitch) return emu::fail_call(cudaErrorInvalidValue);
  if (height == 0 || width == 0) return cudaSuccess;
  const std::size_t to_extent = to_pitch * (height - 1) + width, from_extent = from_pitch * (height - 1) + width;
  if (cudaError_t e = emu::check_copy("cudaMemcpy2DAsync", to, from, to_extent, from_extent, kind); e != cudaSuccess)
    return e;
  for (std::size_t r = 0; r < height; ++r)
    std::memcpy(static_cast<char*>(to) + r * to_pitch, static_cast<const char*>(from) + r * from_pitch, width);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t) {
  if (cudaError_t e = emu::check_device_side("cudaMemsetAsync", p, bytes); e != cudaSuccess) return e;
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}

// ---- streams, events, device queries --------------------------------------------------------------------------------

namespace emu {
namespace {
template <class Handle>
cudaError_t create_handle(std::set<const void*>& live, Handle* out) {
  std::lock_guard lock(host_mutex);
  *out = reinterpret_cast<Handle>(new char);
  live.insert(*out);
  return cudaSuccess;
}

cudaError_t destroy_handle(std::set<const void*>& live, const void* handle, const char* call) {
  std::lock_guard lock(host_mutex);
  if (live.erase(handle) == 0) {
    report("%s(%p): not a live handle", call, handle);
    return fail_call(cudaErrorInvalidValue);
  }
  delete static_cast<const char*>(handle);
  return cudaSuccess;
}

cudaError_t check_handle(const std::set<const void*>& live, const void* handle, const char* call) {
  std::lock_guard lock(host_mutex);
  if (live.count(handle)) return cudaSuccess;
  report("%s(%p): not a live handle", call, handle);
  return fail_call(cudaErrorInvalidValue);
}
}  // namespace
}  // namespace emu

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  return emu::create_handle(emu::streams, stream);
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  return emu::destroy_handle(emu::streams, stream, "cudaStreamDestroy");
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return emu::check_handle(emu::streams, stream, "cudaStreamSynchronize");
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return emu::create_handle(emu::events, event); }
cudaError_t cudaEventDestroy(cudaEvent_t event) { return emu::destroy_handle(emu::events, event, "cudaEventDestroy"); }
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  return emu::check_handle(emu::events, event, "cudaEventRecord");
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t stop) {
  *ms = 0;
  if (cudaError_t e = emu::check_handle(emu::events, start, "cudaEventElapsedTime"); e != cudaSuccess) return e;
  return emu::check_handle(emu::events, stop, "cudaEventElapsedTime");
}

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int) {
  if (attribute != cudaDevAttrMultiProcessorCount) return emu::fail_call(cudaErrorInvalidValue);
  *value = static_cast<int>(emu::environment_number("EMU_SMS", 4));
  return cudaSuccess;
}
