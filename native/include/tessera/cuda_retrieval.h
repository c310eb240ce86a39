// The CUDA backend of the retrieval modules: binary codes, FDE encoding and Chamfer scores on the device.
//
// Only the CUDA addon links this. The API is host-side and knows nothing of CUDA's headers: each object owns its
// device memory and one CUDA stream, host arrays go in and come out, and every call returns when its results are
// on the host (bindings run calls on worker threads, so the event loop never waits on the device). Calls on one
// object are serialized by the object; calls on different objects overlap on their own streams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tessera/binary.h"
#include "tessera/fde.h"
#include "tessera/status.h"

namespace tessera::cuda {

// What a device call did: ok, or a status and a message that says why (CUDA's own error text, or for an
// allocation how many bytes were asked for and how many were free).
struct Result {
  Status status = Status::ok;
  std::string message;
  bool ok() const noexcept { return status == Status::ok; }
};

// ---- binary codes ----------------------------------------------------------------------------------------------

// Residual (or sign, planes = 1) code rows as tessera/binary.h lays them out: `planes` msb-first sign planes of
// code_bytes(dim) bytes, then, when has_alpha, a float32 scale. Stored on the device plane by plane, word-major
// (word w of every row, then word w + 1), so a warp reads 32 rows' words in one transaction.
struct CodesSpec {
  std::size_t dim = 0;
  std::size_t planes = 1;
  bool has_alpha = false;      // rows end with the float32 scale (residual rows); sign codes have none
  binary::BitOrder order = binary::BitOrder::msb;  // which bits of a plane's last byte are padding
  std::size_t row_stride = 0;  // bytes from one host row to the next; 0: the packed row size
};

class DeviceCodes {
 public:
  // Copies n rows, their ids (distinct; nullptr: the row index) and, for L2 scores, the squared reconstruction
  // norms (nullptr: inner products) to the device.
  static Result create(const CodesSpec& spec, const std::uint8_t* rows, std::size_t n, const std::int32_t* ids,
                       const float* doc_norms, std::unique_ptr<DeviceCodes>* out) noexcept;
  virtual ~DeviceCodes() = default;

  // Hamming distance of the first plane; each query row: the min(k, n) nearest, by (distance, id). Queries are
  // host rows laid out like the codes (query_stride bytes apart; 0: packed).
  virtual Result hamming_topk(const std::uint8_t* queries, std::size_t nq, std::size_t query_stride, std::size_t k,
                              std::int32_t* out_ids, std::int32_t* out_distances) noexcept = 0;
  // SDC (residual rows with alpha): the exact inner product of the reconstructions from every plane pair's
  // popcounts, or -|q - d|^2 when the codes carry norms, by (score descending, id), NaN last. Scores are computed
  // in float64 in the CPU path's order (binary::sdc_topk), so they match it bit for bit. Queries are packed rows.
  virtual Result sdc_topk(const std::uint8_t* queries, std::size_t nq, std::size_t k, std::int32_t* out_ids,
                          float* out_scores) noexcept = 0;

  virtual std::size_t size() const noexcept = 0;
  virtual std::size_t device_bytes() const noexcept = 0;
  // Milliseconds the last call's kernels took on the device, by CUDA events (copies to and from the host excluded).
  virtual double last_kernel_ms() const noexcept = 0;
};

// The largest k the device top-k keeps (its per-warp lists live in shared memory).
constexpr std::size_t kMaxDeviceK = 1024;

// ---- FDE encoding ----------------------------------------------------------------------------------------------

class DeviceFdeEncoder {
 public:
  // Uploads the configuration's matrices (generated on the host by Tessera's generator, exactly those the CPU path
  // uses).
  static Result create(const fde::Config& config, const fde::Matrices& matrices,
                       std::unique_ptr<DeviceFdeEncoder>* out) noexcept;
  virtual ~DeviceFdeEncoder() = default;
  // count clouds of lengths[i] token rows (dim floats) in, count x output_dim floats out, as fde::encode.
  virtual Result encode(const float* tokens, const std::int32_t* lengths, std::size_t count, bool is_document,
                        float* out) noexcept = 0;
  virtual std::size_t device_bytes() const noexcept = 0;
  virtual double last_kernel_ms() const noexcept = 0;  // as DeviceCodes::last_kernel_ms
};

// ---- Chamfer scores --------------------------------------------------------------------------------------------

// How document tokens are stored and multiplied: float32 on the CUDA cores (fused multiply-adds in dimension order,
// within about 1e-6 relative of float64), or bfloat16 on the tensor cores with float32 accumulation: inputs rounded
// to 8 significant bits, products exact, sums truncated by the tensor cores, so per dot product
// |error| <= (2^-7 + 2^-16 + 1.01 dim 2^-23) sum_i |q_i d_i| (dim <= 16384); a Chamfer score is off by at most the
// sum over query tokens of that bound for the true best and the chosen token.
enum class ChamferPrecision { float32, bfloat16 };

class DeviceMultiVectors {
 public:
  // count documents of lengths[i] token rows (dim floats), consecutive, copied to the device.
  static Result create(const float* tokens, const std::int32_t* lengths, std::size_t count, std::size_t dim,
                       ChamferPrecision precision, std::unique_ptr<DeviceMultiVectors>* out) noexcept;
  virtual ~DeviceMultiVectors() = default;
  // scores: nq x count, row-major. Query q is query_lengths[q] consecutive token rows of `queries`.
  virtual Result chamfer(const float* queries, const std::int32_t* query_lengths, std::size_t nq,
                         float* scores) noexcept = 0;
  // The k best documents per query (k <= kMaxDeviceK) by Chamfer score, descending, ties by id, NaN last, selected
  // on the device so only nq x min(k, count) ids and scores come back. ids: count distinct ids on the host, or
  // nullptr for the documents' positions.
  virtual Result chamfer_topk(const float* queries, const std::int32_t* query_lengths, std::size_t nq,
                              const std::int32_t* ids, std::size_t k, std::int32_t* out_ids,
                              float* out_scores) noexcept = 0;
  virtual std::size_t size() const noexcept = 0;
  virtual std::size_t dim() const noexcept = 0;
  virtual std::size_t device_bytes() const noexcept = 0;
  virtual double last_kernel_ms() const noexcept = 0;  // as DeviceCodes::last_kernel_ms
};

// Device-to-device copy bandwidth (bytes read plus written per second) of `bytes`-byte copies, the median of
// `repeats` timed by CUDA events after one warm-up: the ceiling for memory-bound kernels.
Result measure_copy_bandwidth(std::size_t bytes, int repeats, double* bytes_per_second) noexcept;

}  // namespace tessera::cuda
