// Exact top-k of each row of a device matrix of float scores, by (score descending, id ascending), NaN last: what a
// host would get by sorting each row, without copying the rows back. Built on warp_topk.cuh's per-warp lists: a
// scan kernel (blocks of 8 warps over slices of a row, lists merged in the block) and a merge kernel per row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "util.cuh"

namespace tessera::cuda {

// For each of `rows` rows, merges its `lists` sorted lists of k keys (partial: rows x lists x k, on the device) into
// the row's k best keys (out: rows x k, on the device). Enqueued on `stream`; k <= kMaxDeviceK.
Result merge_key_lists(cudaStream_t stream, const std::uint64_t* partial, std::size_t rows, int lists, int k,
                       std::uint64_t* out);

class RowTopK {
 public:
  // scores: rows x n floats on the device; ids: n distinct int32 on the device (nullptr: the column index).
  // Writes rows x min(k, n) ids and scores (k <= kMaxDeviceK) to the host; enqueued on `stream`, which it
  // synchronizes before returning.
  Result run(cudaStream_t stream, const float* scores, std::size_t rows, std::size_t n, const std::int32_t* ids,
             std::size_t k, std::int32_t* out_ids, float* out_scores);
  std::size_t device_bytes() const noexcept { return partial_.bytes() + keys_.bytes(); }

 private:
  // Up to 65535 rows (one launch): their keys, copied to the host.
  Result run_rows(cudaStream_t stream, const float* scores, std::size_t rows, std::size_t n, const std::int32_t* ids,
                  std::size_t kk, std::vector<std::uint64_t>& keys);
  DeviceMemory partial_, keys_;
};

}  // namespace tessera::cuda
