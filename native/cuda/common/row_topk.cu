#include "row_topk.cuh"

#include <algorithm>
#include <cmath>
#include <vector>

#include "warp_topk.cuh"

namespace tessera::cuda {
namespace {

constexpr int kWarps = 8;
constexpr std::size_t kShared = kWarps * kMaxDeviceK * sizeof(std::uint64_t);  // the largest k's lists
constexpr std::size_t kMaxGridY = 65535;        // rows per launch (the grid's y extent)
constexpr std::uint32_t kNanRank = 0xFFC00000u;  // above +infinity's ordered value (-(-inf)), below kEmptyKey's

// (score, id) as a key: descending score first (its negation, ascending), NaN after everything, then the id.
__device__ std::uint64_t key_of(float score, std::int32_t id) {
  const std::uint32_t rank = isnan(score) ? kNanRank : ordered_float(-score);
  return static_cast<std::uint64_t>(rank) << 32 | ordered_id(id);
}

// Grid (slices, rows): each block offers its slice of one row to its warps' lists, merges them and writes one list.
__global__ void __launch_bounds__(kWarps * 32) scan_rows_kernel(const float* scores, std::size_t n,
                                                                const std::int32_t* ids, int k,
                                                                std::uint64_t* partial) {
  extern __shared__ std::uint64_t lists[];  // kWarps x k
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  std::uint64_t* mine = lists + static_cast<std::size_t>(warp) * k;
  warp_clear(mine, k, lane);
  std::uint64_t threshold = kEmptyKey;
  const float* row = scores + static_cast<std::size_t>(blockIdx.y) * n;
  const std::size_t slice = (n + gridDim.x - 1) / gridDim.x;
  const std::size_t begin = blockIdx.x * slice, end = min(n, begin + slice);
  for (std::size_t base = begin + warp * 32; base < end; base += kWarps * 32) {
    const std::size_t i = base + lane;
    const std::uint64_t key = i < end ? key_of(row[i], ids ? ids[i] : static_cast<std::int32_t>(i)) : kEmptyKey;
    threshold = warp_offer(mine, k, threshold, key, lane);
  }
  for (int half = kWarps / 2; half >= 1; half /= 2) {
    __syncthreads();
    if (warp < half) threshold = warp_merge(mine, k, threshold, lists + static_cast<std::size_t>(warp + half) * k, lane);
  }
  if (warp == 0)
    for (int j = lane; j < k; j += 32)
      partial[(static_cast<std::size_t>(blockIdx.y) * gridDim.x + blockIdx.x) * k + j] = mine[j];
}

// One block per row: its slices' lists merged into the row's k best keys.
__global__ void __launch_bounds__(kWarps * 32) merge_rows_kernel(const std::uint64_t* partial, int lists, int k,
                                                                 std::uint64_t* out) {
  extern __shared__ std::uint64_t merged[];  // kWarps x k
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const std::uint64_t* row = partial + static_cast<std::size_t>(blockIdx.x) * lists * k;
  std::uint64_t* mine = merged + static_cast<std::size_t>(warp) * k;
  warp_clear(mine, k, lane);
  std::uint64_t threshold = kEmptyKey;
  for (int l = warp; l < lists; l += kWarps) threshold = warp_merge(mine, k, threshold, row + static_cast<std::size_t>(l) * k, lane);
  for (int half = kWarps / 2; half >= 1; half /= 2) {
    __syncthreads();
    if (warp < half) threshold = warp_merge(mine, k, threshold, merged + static_cast<std::size_t>(warp + half) * k, lane);
  }
  if (warp == 0)
    for (int j = lane; j < k; j += 32) out[static_cast<std::size_t>(blockIdx.x) * k + j] = mine[j];
}

float score_of(std::uint64_t key) {
  const auto rank = static_cast<std::uint32_t>(key >> 32);
  if (rank == kNanRank) return NAN;
  const float negated = float_of(rank);
  return negated == 0 ? 0.0f : -negated;
}

}  // namespace

Result merge_key_lists(cudaStream_t stream, const std::uint64_t* partial, std::size_t rows, int lists, int k,
                       std::uint64_t* out) {
  // The attribute is process-wide: always the largest k's size, so concurrent callers never lower it for another.
  if (Result r = cuda_check(cudaFuncSetAttribute(merge_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(kShared)),
                            "top-k merge kernel setup");
      !r.ok())
    return r;
  merge_rows_kernel<<<static_cast<unsigned>(rows), kWarps * 32, kWarps * k * sizeof(std::uint64_t), stream>>>(partial, lists, k, out);
  return launched("the top-k merge kernel");
}

Result RowTopK::run_rows(cudaStream_t stream, const float* scores, std::size_t rows, std::size_t n,
                        const std::int32_t* ids, std::size_t kk, std::vector<std::uint64_t>& keys) {
  // Slices: enough blocks to fill the device, each warp still offered several times k columns.
  const std::size_t fill = ceil_div(static_cast<std::size_t>(4 * multiprocessor_count()), rows);
  const std::size_t slices = std::max<std::size_t>(1, std::min({fill, n / (kWarps * 8 * kk) + 1, std::size_t{65535}}));
  if (Result r = partial_.reserve(rows * slices * kk * sizeof(std::uint64_t), "the top-k lists"); !r.ok()) return r;
  if (Result r = keys_.reserve(rows * kk * sizeof(std::uint64_t), "the top-k keys"); !r.ok()) return r;
  const std::size_t shared = kWarps * kk * sizeof(std::uint64_t);
  scan_rows_kernel<<<dim3(static_cast<unsigned>(slices), static_cast<unsigned>(rows)), kWarps * 32, shared, stream>>>(
      scores, n, ids, static_cast<int>(kk), partial_.get<std::uint64_t>());
  if (Result r = launched("the top-k scan kernel"); !r.ok()) return r;
  if (Result r = merge_key_lists(stream, partial_.get<std::uint64_t>(), rows, static_cast<int>(slices), static_cast<int>(kk),
                                 keys_.get<std::uint64_t>());
      !r.ok())
    return r;
  keys.resize(rows * kk);
  if (Result r = cuda_check(cudaMemcpyAsync(keys.data(), keys_.get(), keys.size() * sizeof(std::uint64_t),
                                            cudaMemcpyDeviceToHost, stream),
                            "copying the top-k to the host");
      !r.ok())
    return r;
  return cuda_check(cudaStreamSynchronize(stream), "the top-k kernels");
}

Result RowTopK::run(cudaStream_t stream, const float* scores, std::size_t rows, std::size_t n, const std::int32_t* ids,
                    std::size_t k, std::int32_t* out_ids, float* out_scores) {
  if (k == 0 || k > kMaxDeviceK) return {Status::invalid_argument, "top-k: k must be 1 to " + std::to_string(kMaxDeviceK)};
  if (rows == 0 || n == 0) return {};
  if (n > static_cast<std::size_t>(INT32_MAX)) return {Status::invalid_argument, "top-k: more than 2^31 - 1 columns"};
  const std::size_t kk = std::min(k, n);
  if (Result r = cuda_check(cudaFuncSetAttribute(scan_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(kShared)),
                            "top-k kernel setup");
      !r.ok())
    return r;
  std::vector<std::uint64_t> keys;
  for (std::size_t first = 0; first < rows; first += kMaxGridY) {
    const std::size_t count = std::min(kMaxGridY, rows - first);
    if (Result r = run_rows(stream, scores + first * n, count, n, ids, kk, keys); !r.ok()) return r;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == kEmptyKey) return {Status::internal, "the device top-k lost a column"};
      out_ids[first * kk + i] = id_of(keys[i]);
      out_scores[first * kk + i] = score_of(keys[i]);
    }
  }
  return {};
}

}  // namespace tessera::cuda
