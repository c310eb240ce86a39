// Device memory, streams and error translation shared by the CUDA kernels' host code.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "tessera/cuda_retrieval.h"

namespace tessera::cuda {

// A failed CUDA call as a Result carrying CUDA's own error name and text, prefixed by what was being done.
Result cuda_failure(cudaError_t e, const char* what);

// ok when e is cudaSuccess, else cuda_failure(e, what).
inline Result cuda_check(cudaError_t e, const char* what) { return e == cudaSuccess ? Result{} : cuda_failure(e, what); }

// One device allocation, freed by the destructor, so that no error path leaks it.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  DeviceMemory(DeviceMemory&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceMemory& operator=(DeviceMemory&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  ~DeviceMemory() { reset(); }

  // Frees what is held, then allocates `bytes` (nothing for 0). Out of memory: a Result saying what needed how
  // many bytes and how many the device has free.
  Result allocate(std::size_t bytes, const char* what);
  // allocate(), growing only: keeps the current block when it is large enough (scratch reused across calls).
  Result reserve(std::size_t bytes, const char* what) { return bytes <= bytes_ ? Result{} : allocate(bytes, what); }
  void reset() noexcept;

  template <class T = void>
  T* get() const noexcept { return static_cast<T*>(ptr_); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// A non-blocking stream owned by one object.
class Stream {
 public:
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();
  Result create();
  cudaStream_t get() const noexcept { return stream_; }
  // Waits for the stream; a kernel's asynchronous error (an illegal address, say) surfaces here as a Result.
  Result synchronize(const char* what) const;

 private:
  cudaStream_t stream_ = nullptr;
};

// A pair of CUDA events around the kernels of one call, on that call's stream: the device time of the kernels
// alone. Calls record start() before their first kernel and stop() after their last, then read elapsed_ms() after
// synchronizing; a call that runs in batches adds up each batch's elapsed_ms().
class KernelTimer {
 public:
  KernelTimer() = default;
  KernelTimer(const KernelTimer&) = delete;
  KernelTimer& operator=(const KernelTimer&) = delete;
  ~KernelTimer();
  Result start(cudaStream_t stream);
  Result stop(cudaStream_t stream);
  // After the stream is synchronized: the milliseconds between the last start() and stop().
  float elapsed_ms() const;

 private:
  Result ensure();
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// The error of the kernel launch just made (bad configuration, no binary for this GPU), as a Result.
inline Result launched(const char* kernel) { return cuda_check(cudaGetLastError(), kernel); }

// Multiprocessors of the current device (for sizing grids), cached per process.
int multiprocessor_count();

// Runs f() and turns a C++ exception (a failed host allocation) into a Result: device entry points are noexcept.
template <class F>
Result guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return {Status::out_of_memory, "out of host memory"};
  } catch (...) {
    return {Status::internal, "unexpected C++ exception in the CUDA backend"};
  }
}

constexpr std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

}  // namespace tessera::cuda
