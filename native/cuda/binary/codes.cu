// Binary codes on the device: Hamming and SDC top-k for batches of queries.
//
// Layout: each sign plane of every row is cut into 16-byte vectors and stored vector-major (vector v of rows 0..n-1,
// then vector v + 1), so lane i of a warp reading row base + i makes one 512-byte coalesced load. Padding bits and
// bytes are zero in codes and queries alike, so they never add to a distance.
//
// A search is two kernels. The scan: blocks of 8 warps over a contiguous slice of the rows, each warp scoring 32
// rows at a time against Q queries (their vectors read from the read-only cache, the same for every lane) and
// keeping per query the k best keys it has seen (warp_topk.cuh); the 8 lists are merged in the block and written
// out. The merge: per query, the blocks' lists reduced to the final k. Both keep exact (score, id) order, so the
// result is the CPU path's, ties included.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "../common/row_topk.cuh"
#include "../common/util.cuh"
#include "../common/warp_topk.cuh"
#include "tessera/binary.h"

namespace tessera::cuda {
namespace {

constexpr int kScanWarps = 8;
constexpr std::size_t kListBudget = 96 * 1024;   // shared memory for the scan's per-warp lists
constexpr std::size_t kPartialBudget = std::size_t{256} << 20;  // device bytes of per-block lists in one batch
// The scan's dynamic shared memory cap is the most any launch asks for (one query per pass at the largest k fits the
// budget), so that every call sets the same value (see launch_scan); the merge is row_topk's merge_key_lists.
static_assert(kScanWarps * kMaxDeviceK * sizeof(std::uint64_t) <= kListBudget, "one query per pass fits at any k");

// ---- keys --------------------------------------------------------------------------------------------------------

// Hamming: (distance, id).
struct HammingKey {
  const std::int32_t* ids;
  template <int P>
  __device__ std::uint64_t operator()(int, std::size_t row, const unsigned (&distance)[P][P]) const {
    return static_cast<std::uint64_t>(distance[0][0]) << 32 | ordered_id(ids[row]);
  }
};

// SDC: (-score, id) with the score computed exactly as binary::sdc_topk does on the CPU: an exact integer from the
// plane pairs' popcounts, then query alpha x (doc alpha x 4^-(planes-1)) x integer in float64, each product
// rounded once (the _rn intrinsics stop the compiler from fusing), then to float32; NaN ranks last.
struct SdcKey {
  const std::int32_t* ids;
  const float* doc_alpha;
  const float* doc_norms;      // null: inner products
  const float* query_alpha;
  const double* query_norms;
  double dim, unscale;
  double weight[binary::kMaxPlanes][binary::kMaxPlanes];  // 2^(2(planes-1) - t - u)

  template <int P>
  __device__ std::uint64_t operator()(int query, std::size_t row, const unsigned (&distance)[P][P]) const {
    double integer = 0;  // a sum of exact integers below 2^53: exact in any order
#pragma unroll
    for (int t = 0; t < P; ++t)
#pragma unroll
      for (int u = 0; u < P; ++u) integer += weight[t][u] * (dim - 2.0 * distance[t][u]);
    const double ad = __dmul_rn(static_cast<double>(doc_alpha[row]), unscale);
    const double ip = __dmul_rn(__dmul_rn(static_cast<double>(query_alpha[query]), ad), integer);
    const double score =
        doc_norms ? __dsub_rn(__dsub_rn(__dmul_rn(2.0, ip), static_cast<double>(doc_norms[row])), query_norms[query]) : ip;
    const float f = __double2float_rn(score);
    const float key = isnan(f) ? INFINITY : -f;
    return static_cast<std::uint64_t>(ordered_float(key)) << 32 | ordered_id(ids[row]);
  }
};

struct ScanShape {
  const uint4* codes;    // P planes x vectors x n
  const uint4* queries;  // padded query count x P x vectors
  std::size_t n;
  int vectors;           // 16-byte vectors per plane row
  int nq;                // real queries in this batch
  int k;
  std::uint64_t* partial;  // nq x gridDim.x x k
};

// ---- kernels -----------------------------------------------------------------------------------------------------

template <int P, int Q, class Key>
__global__ void __launch_bounds__(kScanWarps * 32) scan_kernel(ScanShape s, Key key_of) {
  extern __shared__ std::uint64_t lists[];  // kScanWarps x Q x k
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, k = s.k;
  const int q0 = blockIdx.y * Q;
  std::uint64_t* mine = lists + static_cast<std::size_t>(warp) * Q * k;
  warp_clear(mine, Q * k, lane);
  std::uint64_t threshold[Q];
#pragma unroll
  for (int q = 0; q < Q; ++q) threshold[q] = kEmptyKey;

  const std::size_t slice = (s.n + gridDim.x - 1) / gridDim.x;
  const std::size_t begin = blockIdx.x * slice, end = min(s.n, begin + slice);
  const uint4* query = s.queries + static_cast<std::size_t>(q0) * P * s.vectors;
  for (std::size_t base = begin + warp * 32; base < end; base += kScanWarps * 32) {
    const std::size_t row = base + lane;
    const bool valid = row < end;
    unsigned distance[Q][P][P] = {};
    if (valid) {
#pragma unroll 4
      for (int v = 0; v < s.vectors; ++v) {
        uint4 c[P];
#pragma unroll
        for (int u = 0; u < P; ++u) c[u] = s.codes[(static_cast<std::size_t>(u) * s.vectors + v) * s.n + row];
#pragma unroll
        for (int q = 0; q < Q; ++q)
#pragma unroll
          for (int t = 0; t < P; ++t) {
            const uint4 w = __ldg(&query[(static_cast<std::size_t>(q) * P + t) * s.vectors + v]);
#pragma unroll
            for (int u = 0; u < P; ++u)
              distance[q][t][u] += __popc(c[u].x ^ w.x) + __popc(c[u].y ^ w.y) + __popc(c[u].z ^ w.z) + __popc(c[u].w ^ w.w);
          }
      }
    }
#pragma unroll
    for (int q = 0; q < Q; ++q) {
      if (q0 + q >= s.nq) break;  // the same for the whole block
      const std::uint64_t key = valid ? key_of(q0 + q, row, distance[q]) : kEmptyKey;
      threshold[q] = warp_offer(mine + q * k, k, threshold[q], key, lane);
    }
  }
  // The block's warps merge pairwise (8 -> 4 -> 2 -> 1); warp 0 writes the block's lists.
  for (int half = kScanWarps / 2; half >= 1; half /= 2) {
    __syncthreads();
    if (warp < half)
      for (int q = 0; q < Q; ++q)
        threshold[q] = warp_merge(mine + q * k, k, threshold[q], lists + (static_cast<std::size_t>(warp + half) * Q + q) * k, lane);
  }
  if (warp != 0) return;
  for (int q = 0; q < Q && q0 + q < s.nq; ++q)
    for (int j = lane; j < k; j += 32) s.partial[(static_cast<std::size_t>(q0 + q) * gridDim.x + blockIdx.x) * k + j] = mine[q * k + j];
}

// ---- host side ---------------------------------------------------------------------------------------------------

// Rows' planes as 16-byte vectors: out[(plane x vectors + v) x stride_rows + row], padding zero. Queries use
// stride_rows = 1 per (row, plane) instead: see pack_queries.
void pack_plane(const std::uint8_t* plane, std::size_t bytes, std::uint8_t mask, std::uint8_t* vectors_out) {
  std::memcpy(vectors_out, plane, bytes);
  vectors_out[bytes - 1] &= mask;
}

class DeviceCodesImpl final : public DeviceCodes {
 public:
  Result init(const CodesSpec& spec, const std::uint8_t* rows, std::size_t n, const std::int32_t* ids, const float* norms) {
    spec_ = spec;
    plane_bytes_ = binary::code_bytes(spec.dim);
    row_bytes_ = spec.planes * plane_bytes_ + (spec.has_alpha ? 4 : 0);
    if (spec_.row_stride == 0) spec_.row_stride = row_bytes_;
    vectors_ = static_cast<int>(ceil_div(plane_bytes_, 16));
    mask_ = binary::last_byte_mask(spec.dim, spec.order);
    n_ = n;
    if (Result r = stream_.create(); !r.ok()) return r;
    if (n == 0) return {};
    // Codes, vector-major.
    std::vector<uint4> packed(spec.planes * vectors_ * n);
    std::vector<std::uint8_t> row_vectors(static_cast<std::size_t>(vectors_) * 16);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t u = 0; u < spec.planes; ++u) {
        std::fill(row_vectors.begin(), row_vectors.end(), 0);
        pack_plane(rows + i * spec_.row_stride + u * plane_bytes_, plane_bytes_, mask_, row_vectors.data());
        for (int v = 0; v < vectors_; ++v)
          std::memcpy(&packed[(u * vectors_ + v) * n + i], &row_vectors[static_cast<std::size_t>(v) * 16], 16);
      }
    if (Result r = upload(codes_, packed.data(), packed.size() * sizeof(uint4), "the codes"); !r.ok()) return r;
    std::vector<std::int32_t> id_list(n);
    for (std::size_t i = 0; i < n; ++i) id_list[i] = ids ? ids[i] : static_cast<std::int32_t>(i);
    if (Result r = upload(ids_, id_list.data(), n * sizeof(std::int32_t), "the ids"); !r.ok()) return r;
    if (spec.has_alpha) {
      std::vector<float> alpha(n);
      for (std::size_t i = 0; i < n; ++i) std::memcpy(&alpha[i], rows + i * spec_.row_stride + spec.planes * plane_bytes_, 4);
      if (Result r = upload(alpha_, alpha.data(), n * sizeof(float), "the scales"); !r.ok()) return r;
    }
    if (norms)
      if (Result r = upload(norms_, norms, n * sizeof(float), "the norms"); !r.ok()) return r;
    return stream_.synchronize("uploading the codes");
  }

  Result hamming_topk(const std::uint8_t* queries, std::size_t nq, std::size_t query_stride, std::size_t k,
                      std::int32_t* out_ids, std::int32_t* out_distances) noexcept override {
    return guarded([&]() -> Result {
      if (Result r = check_k(k); !r.ok()) return r;
      if (nq > 0 && n_ > 0 && (!queries || !out_ids || !out_distances))
        return {Status::invalid_argument, "hammingTopK: missing queries or outputs"};
      // Each query's first plane is read: a shorter stride would read past the caller's rows (the CPU path refuses
      // it too).
      if (query_stride != 0 && query_stride < plane_bytes_)
        return {Status::invalid_argument, "hammingTopK: query rows shorter than a code plane"};
      std::lock_guard lock(mutex_);
      return search(queries, nq, query_stride ? query_stride : row_bytes_, 1, k, HammingKey{ids_.get<std::int32_t>()},
                    [&](std::size_t q, std::size_t rank, std::uint64_t key) {
                      out_ids[q * std::min(k, n_) + rank] = id_of(key);
                      out_distances[q * std::min(k, n_) + rank] = static_cast<std::int32_t>(key >> 32);
                    });
    });
  }

  Result sdc_topk(const std::uint8_t* queries, std::size_t nq, std::size_t k, std::int32_t* out_ids,
                  float* out_scores) noexcept override {
    return guarded([&]() -> Result {
      if (!spec_.has_alpha) return {Status::invalid_argument, "sdc needs residual codes (with their scales)"};
      if (Result r = check_k(k); !r.ok()) return r;
      if (nq > 0 && n_ > 0 && (!queries || !out_ids || !out_scores))
        return {Status::invalid_argument, "sdc: missing queries or outputs"};
      std::lock_guard lock(mutex_);
      if (nq == 0 || n_ == 0) return {};
      // The queries' scales and squared norms, as the CPU path takes them.
      std::vector<float> alpha(nq);
      std::vector<double> norm(nq);
      for (std::size_t q = 0; q < nq; ++q) {
        const std::uint8_t* row = queries + q * row_bytes_;
        std::memcpy(&alpha[q], row + spec_.planes * plane_bytes_, 4);
        norm[q] = binary::residual_squared_norm(row, spec_.dim, spec_.planes);
      }
      if (Result r = upload(query_alpha_, alpha.data(), nq * sizeof(float), "the query scales"); !r.ok()) return r;
      if (Result r = upload(query_norms_, norm.data(), nq * sizeof(double), "the query norms"); !r.ok()) return r;
      SdcKey key{ids_.get<std::int32_t>(), alpha_.get<float>(), norms_.get<float>(), nullptr, nullptr,
                 static_cast<double>(spec_.dim), std::ldexp(1.0, -2 * static_cast<int>(spec_.planes - 1)), {}};
      for (std::size_t t = 0; t < spec_.planes; ++t)
        for (std::size_t u = 0; u < spec_.planes; ++u)
          key.weight[t][u] = std::ldexp(1.0, static_cast<int>(2 * (spec_.planes - 1) - t - u));
      const std::size_t kk = std::min(k, n_);
      return search(queries, nq, row_bytes_, spec_.planes, k, key, [&](std::size_t q, std::size_t rank, std::uint64_t k64) {
        const float ranked = float_of(static_cast<std::uint32_t>(k64 >> 32));
        out_ids[q * kk + rank] = id_of(k64);
        out_scores[q * kk + rank] = std::isinf(ranked) && ranked > 0 ? NAN : (ranked == 0 ? 0.0f : -ranked);
      });
    });
  }

  std::size_t size() const noexcept override { return n_; }
  double last_kernel_ms() const noexcept override { return last_ms_; }
  std::size_t device_bytes() const noexcept override {
    return codes_.bytes() + ids_.bytes() + alpha_.bytes() + norms_.bytes() + queries_.bytes() + partial_.bytes() +
           keys_.bytes() + query_alpha_.bytes() + query_norms_.bytes();
  }

 private:
  // Checked whatever nq and the codes' count, so that whether a call is valid does not depend on them.
  static Result check_k(std::size_t k) {
    if (k == 0 || k > kMaxDeviceK)
      return {Status::invalid_argument, "k must be 1 to " + std::to_string(kMaxDeviceK) + " on the device"};
    return {};
  }

  Result upload(DeviceMemory& to, const void* from, std::size_t bytes, const char* what) {
    if (Result r = to.reserve(bytes, what); !r.ok()) return r;
    return cuda_check(cudaMemcpyAsync(to.get(), from, bytes, cudaMemcpyHostToDevice, stream_.get()), what);
  }

  // Queries per pass over the codes: more share each load of a code, but cost registers and shared memory.
  static int queries_per_pass(std::size_t planes, std::size_t nq, std::size_t k) {
    const int by_registers = planes == 1 ? 8 : planes == 2 ? 4 : 2;
    const auto by_shared = static_cast<int>(kListBudget / (kScanWarps * k * sizeof(std::uint64_t)));
    int q = 1;
    while (q * 2 <= by_registers && q * 2 <= by_shared && static_cast<std::size_t>(q) < nq) q *= 2;
    return q;
  }

  // Scan blocks: enough to fill the device, but each warp scanning at least a few k rows so that the lists' merges
  // stay small next to the scan.
  int scan_blocks(std::size_t query_groups, std::size_t k) const {
    const std::size_t fill = ceil_div(static_cast<std::size_t>(4 * multiprocessor_count()), query_groups);
    const std::size_t by_rows = std::max<std::size_t>(1, n_ / (kScanWarps * 32 * 4));
    const std::size_t by_k = std::max<std::size_t>(1, n_ / (kScanWarps * 8 * k));
    return static_cast<int>(std::max<std::size_t>(1, std::min({fill, by_rows, by_k, std::size_t{65535}})));
  }

  template <int P, int Q, class Key>
  Result launch_scan(dim3 grid, const ScanShape& shape, const Key& key) {
    const std::size_t shared = static_cast<std::size_t>(kScanWarps) * Q * shape.k * sizeof(std::uint64_t);
    // The attribute is the kernel's, process-wide: a cap sized per call could be lowered by another object's call
    // between this one's setting and its launch, failing the launch. The same cap on every call cannot.
    if (Result r = cuda_check(cudaFuncSetAttribute(scan_kernel<P, Q, Key>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   static_cast<int>(kListBudget)), "scan kernel setup");
        !r.ok())
      return r;
    scan_kernel<P, Q, Key><<<grid, kScanWarps * 32, shared, stream_.get()>>>(shape, key);
    return launched("scan kernel");
  }

  template <int P, class Key>
  Result scan(int q, dim3 grid, const ScanShape& shape, const Key& key) {
    switch (q) {
      case 1: return launch_scan<P, 1>(grid, shape, key);
      case 2: return launch_scan<P, 2>(grid, shape, key);
      case 4: if constexpr (P <= 2) return launch_scan<P, 4>(grid, shape, key); break;
      case 8: if constexpr (P == 1) return launch_scan<P, 8>(grid, shape, key); break;
    }
    return {Status::internal, "no scan kernel for this many queries per pass"};
  }

  template <class Key>
  Result scan_planes(std::size_t planes, int q, dim3 grid, const ScanShape& shape, const Key& key) {
    if constexpr (std::is_same_v<Key, HammingKey>) return scan<1>(q, grid, shape, key);
    else {
      switch (planes) {
        case 1: return scan<1>(q, grid, shape, key);
        case 2: return scan<2>(q, grid, shape, key);
        case 3: return scan<3>(q, grid, shape, key);
        case 4: return scan<4>(q, grid, shape, key);
      }
      return {Status::invalid_argument, "codes have 1 to 4 planes"};
    }
  }

  // The common search: pack the queries' first `planes` planes, scan, merge, and hand each (query, rank, key) to
  // write, in batches of queries that bound the device memory of the per-block lists.
  template <class Key, class Write>
  Result search(const std::uint8_t* queries, std::size_t nq, std::size_t query_stride, std::size_t planes, std::size_t k,
                Key key, Write write) {
    last_ms_ = 0;
    if (nq == 0 || n_ == 0) return {};
    const std::size_t kk = std::min(k, n_);
    const int per_pass = queries_per_pass(planes, nq, kk);
    const std::size_t query_bytes = planes * static_cast<std::size_t>(vectors_) * 16;
    // Batches of whole passes; each batch's lists fit kPartialBudget.
    const int blocks_guess = scan_blocks(1, kk);
    std::size_t batch = std::max<std::size_t>(per_pass, kPartialBudget / (static_cast<std::size_t>(blocks_guess) * kk * 8));
    batch = std::min<std::size_t>(batch / per_pass * per_pass, std::size_t{65535} * per_pass);
    std::vector<std::uint8_t> packed;
    std::vector<std::uint64_t> keys;
    for (std::size_t first = 0; first < nq; first += batch) {
      const std::size_t count = std::min(batch, nq - first);
      const std::size_t groups = ceil_div(count, per_pass);
      packed.assign(groups * per_pass * query_bytes, 0);
      for (std::size_t q = 0; q < count; ++q)
        for (std::size_t t = 0; t < planes; ++t)
          pack_plane(queries + (first + q) * query_stride + t * plane_bytes_, plane_bytes_, mask_,
                     packed.data() + (q * planes + t) * vectors_ * 16);
      if (Result r = upload(queries_, packed.data(), packed.size(), "the queries"); !r.ok()) return r;
      if constexpr (std::is_same_v<Key, SdcKey>) {
        key.query_alpha = query_alpha_.get<float>() + first;
        key.query_norms = query_norms_.get<double>() + first;
      }
      const int blocks = scan_blocks(groups, kk);
      if (Result r = partial_.reserve(count * blocks * kk * 8, "the per-block top-k lists"); !r.ok()) return r;
      if (Result r = keys_.reserve(count * kk * 8, "the top-k keys"); !r.ok()) return r;
      const ScanShape shape{codes_.get<uint4>(), queries_.get<uint4>(), n_, vectors_, static_cast<int>(count),
                            static_cast<int>(kk), partial_.get<std::uint64_t>()};
      if (Result r = timer_.start(stream_.get()); !r.ok()) return r;
      if (Result r = scan_planes(planes, per_pass, dim3(blocks, static_cast<unsigned>(groups)), shape, key); !r.ok()) return r;
      if (Result r = merge_key_lists(stream_.get(), partial_.get<std::uint64_t>(), count, blocks, static_cast<int>(kk),
                                     keys_.get<std::uint64_t>());
          !r.ok())
        return r;
      if (Result r = timer_.stop(stream_.get()); !r.ok()) return r;
      keys.resize(count * kk);
      if (Result r = cuda_check(cudaMemcpyAsync(keys.data(), keys_.get(), keys.size() * 8, cudaMemcpyDeviceToHost, stream_.get()),
                                "copying the results");
          !r.ok())
        return r;
      if (Result r = stream_.synchronize("the top-k kernels"); !r.ok()) return r;
      last_ms_ += timer_.elapsed_ms();
      for (std::size_t q = 0; q < count; ++q)
        for (std::size_t rank = 0; rank < kk; ++rank) {
          const std::uint64_t key64 = keys[q * kk + rank];
          if (key64 == kEmptyKey) return {Status::internal, "the device top-k lost a row"};
          write(first + q, rank, key64);
        }
    }
    return {};
  }

  CodesSpec spec_;
  std::size_t plane_bytes_ = 0, row_bytes_ = 0, n_ = 0;
  int vectors_ = 0;
  std::uint8_t mask_ = 0xFF;
  std::mutex mutex_;
  Stream stream_;
  KernelTimer timer_;
  double last_ms_ = 0;
  DeviceMemory codes_, ids_, alpha_, norms_;                    // the index
  DeviceMemory queries_, partial_, keys_, query_alpha_, query_norms_;  // per call, reused
};

}  // namespace

Result DeviceCodes::create(const CodesSpec& spec, const std::uint8_t* rows, std::size_t n, const std::int32_t* ids,
                           const float* doc_norms, std::unique_ptr<DeviceCodes>* out) noexcept {
  return guarded([&]() -> Result {
    if (!out || spec.dim == 0 || spec.planes == 0 || spec.planes > binary::kMaxPlanes || (n > 0 && !rows))
      return {Status::invalid_argument, "codes need dim >= 1, 1 to 4 planes and rows"};
    if (n > static_cast<std::size_t>(INT32_MAX)) return {Status::invalid_argument, "more than 2^31 - 1 rows"};
    const std::size_t row_bytes = spec.planes * binary::code_bytes(spec.dim) + (spec.has_alpha ? 4 : 0);
    if (spec.row_stride != 0 && spec.row_stride < row_bytes)
      return {Status::invalid_argument, "the row stride is shorter than a row"};
    if (doc_norms && !spec.has_alpha) return {Status::invalid_argument, "norms need residual codes"};
    auto codes = std::make_unique<DeviceCodesImpl>();
    if (Result r = codes->init(spec, rows, n, ids, doc_norms); !r.ok()) return r;
    *out = std::move(codes);
    return {};
  });
}

}  // namespace tessera::cuda
