#include "util.cuh"

#include <algorithm>
#include <new>
#include <vector>

namespace tessera::cuda {

Result cuda_failure(cudaError_t e, const char* what) {
  cudaGetLastError();  // clear a non-sticky error so the next call does not report it again
  const Status status = e == cudaErrorMemoryAllocation ? Status::out_of_memory : Status::internal;
  return {status, std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")"};
}

static std::string mebibytes(std::size_t bytes) {
  return std::to_string((bytes + (std::size_t{1} << 19)) >> 20) + " MiB";
}

Result DeviceMemory::allocate(std::size_t bytes, const char* what) {
  reset();
  if (bytes == 0) return {};
  const cudaError_t e = cudaMalloc(&ptr_, bytes);
  if (e == cudaSuccess) {
    bytes_ = bytes;
    return {};
  }
  ptr_ = nullptr;
  if (e != cudaErrorMemoryAllocation) return cuda_failure(e, what);
  cudaGetLastError();
  std::size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  return {Status::out_of_memory, std::string("the CUDA device is out of memory: ") + what + " needs " +
                                     mebibytes(bytes) + " (" + std::to_string(bytes) + " bytes), " +
                                     mebibytes(free_bytes) + " of " + mebibytes(total_bytes) + " are free"};
}

void DeviceMemory::reset() noexcept {
  if (ptr_) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

Stream::~Stream() {
  if (stream_) cudaStreamDestroy(stream_);
}

Result Stream::create() { return cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate"); }

Result Stream::synchronize(const char* what) const { return cuda_check(cudaStreamSynchronize(stream_), what); }

KernelTimer::~KernelTimer() {
  if (start_) cudaEventDestroy(start_);
  if (stop_) cudaEventDestroy(stop_);
}

Result KernelTimer::ensure() {
  if (!start_)
    if (Result r = cuda_check(cudaEventCreate(&start_), "cudaEventCreate"); !r.ok()) return r;
  if (!stop_)
    if (Result r = cuda_check(cudaEventCreate(&stop_), "cudaEventCreate"); !r.ok()) return r;
  return {};
}

Result KernelTimer::start(cudaStream_t stream) {
  if (Result r = ensure(); !r.ok()) return r;
  return cuda_check(cudaEventRecord(start_, stream), "cudaEventRecord");
}

Result KernelTimer::stop(cudaStream_t stream) { return cuda_check(cudaEventRecord(stop_, stream), "cudaEventRecord"); }

float KernelTimer::elapsed_ms() const {
  float ms = 0;
  if (!start_ || !stop_ || cudaEventElapsedTime(&ms, start_, stop_) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return ms;
}

Result measure_copy_bandwidth(std::size_t bytes, int repeats, double* bytes_per_second) noexcept {
  return guarded([&]() -> Result {
    if (bytes == 0 || repeats < 1 || !bytes_per_second) return {Status::invalid_argument, "copy bandwidth: bytes, repeats >= 1"};
    DeviceMemory from, to;
    if (Result r = from.allocate(bytes, "the copy benchmark's source"); !r.ok()) return r;
    if (Result r = to.allocate(bytes, "the copy benchmark's destination"); !r.ok()) return r;
    Stream stream;
    if (Result r = stream.create(); !r.ok()) return r;
    if (Result r = cuda_check(cudaMemsetAsync(from.get(), 0x5A, bytes, stream.get()), "cudaMemset"); !r.ok()) return r;
    KernelTimer timer;
    std::vector<float> ms;
    for (int i = 0; i <= repeats; ++i) {  // the first is the warm-up
      if (Result r = timer.start(stream.get()); !r.ok()) return r;
      if (Result r = cuda_check(cudaMemcpyAsync(to.get(), from.get(), bytes, cudaMemcpyDeviceToDevice, stream.get()), "cudaMemcpy");
          !r.ok())
        return r;
      if (Result r = timer.stop(stream.get()); !r.ok()) return r;
      if (Result r = stream.synchronize("the copy benchmark"); !r.ok()) return r;
      if (i > 0) ms.push_back(timer.elapsed_ms());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    *bytes_per_second = median > 0 ? 2.0 * static_cast<double>(bytes) / (median * 1e-3) : 0;
    return {};
  });
}

int multiprocessor_count() {
  static const int count = [] {
    int device = 0, n = 0;
    if (cudaGetDevice(&device) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
      cudaGetLastError();
      return 108;  // an A100's count: a reasonable grid when the query fails (the launch then reports why)
    }
    return n;
  }();
  return count;
}

}  // namespace tessera::cuda
