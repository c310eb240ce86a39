// Binary embeddings: sign codes, multi-bit residual codes (BEBR), Hamming, SDC and ADC top-k.
//
// Packed codes are rows of bytes. A row of `bits` bits takes code_bytes(bits) = ceil(bits / 8) bytes; bit i of a row
// is in byte i / 8, at position 7 - i % 8 for BitOrder::msb (numpy.packbits, sentence-transformers "ubinary") or
// i % 8 for BitOrder::lsb (FAISS). Bits past `bits` in the last byte are padding: kernels ignore them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tessera/status.h"

namespace tessera::binary {

enum class BitOrder { msb, lsb };

constexpr std::size_t code_bytes(std::size_t bits) noexcept { return (bits + 7) / 8; }

// The bits of a row's last byte that hold data (all ones when bits is a multiple of 8).
constexpr std::uint8_t last_byte_mask(std::size_t bits, BitOrder order) noexcept {
  const unsigned r = static_cast<unsigned>(bits % 8);
  if (r == 0) return 0xFF;
  return order == BitOrder::msb ? static_cast<std::uint8_t>(0xFF00u >> r) : static_cast<std::uint8_t>((1u << r) - 1);
}

// ---- sign codes ------------------------------------------------------------------------------------------------
// bit i = x[i] > threshold; padding bits are zero.
Status pack_signs(const float* x, std::size_t rows, std::size_t dim, float threshold, BitOrder order,
                  std::uint8_t* out) noexcept;
// +1 for a set bit, -1 for a clear one.
Status unpack_signs(const std::uint8_t* codes, std::size_t rows, std::size_t dim, BitOrder order,
                    float* out) noexcept;

// ---- Hamming top-k ---------------------------------------------------------------------------------------------
// For each query row, the min(k, n) code rows nearest in Hamming distance, sorted by (distance, key) where the key
// is `ids[row]` when ids is given (it must then hold n distinct values) and the row index otherwise; the output
// holds those keys. Exact, and identical for any thread count. Outputs are nq × min(k, n), row-major.
struct HammingQuery {
  const std::uint8_t* queries;
  std::size_t nq;
  const std::uint8_t* codes;
  std::size_t n;
  std::size_t bits;
  BitOrder order = BitOrder::msb;
  std::size_t k;
  const std::int32_t* ids = nullptr;
  std::size_t query_stride = 0;  // bytes from one query (code) row to the next; 0: code_bytes(bits)
  std::size_t code_stride = 0;
};
Status hamming_topk(const HammingQuery& q, std::int32_t* out_keys, std::int32_t* out_distances) noexcept;

// Hamming distances of every query to every code (nq × n, row-major): the kernel under hamming_topk.
Status hamming_distances(const std::uint8_t* queries, std::size_t nq, const std::uint8_t* codes, std::size_t n,
                         std::size_t bits, BitOrder order, std::uint32_t* out) noexcept;

// ---- residual codes (BEBR's recurrent binarization with fixed power-of-two plane weights) ----------------------
// A row of a `planes`-bit residual code over `dim` dimensions: `planes` sign planes of code_bytes(dim) bytes each
// (msb bit order, bit 1 = +1, plane t at byte offset t * code_bytes(dim)), then the scale alpha as a little-endian
// float32. It decodes to alpha * sum_t 2^-t * s_t.
constexpr std::size_t kMaxPlanes = 4;
constexpr std::size_t residual_row_bytes(std::size_t dim, std::size_t planes) noexcept {
  return planes * code_bytes(dim) + 4;
}

// Planes chosen greedily on the residual (each the sign of what the planes before it leave), alpha by least
// squares, alternated until the planes stop changing (each step lowers the squared error). `center`, when given,
// is subtracted from every row first (and added back by decode).
Status residual_encode(const float* x, std::size_t rows, std::size_t dim, std::size_t planes, const float* center,
                       std::uint8_t* out) noexcept;
Status residual_decode(const std::uint8_t* codes, std::size_t rows, std::size_t dim, std::size_t planes,
                       const float* center, float* out) noexcept;

// The squared norm of a residual row's reconstruction, alpha^2 sum_{t,u} 2^-(t+u) <s_t, s_u>: exact in float64.
double residual_squared_norm(const std::uint8_t* row, std::size_t dim, std::size_t planes) noexcept;

// Top-k by score, descending, ties by key ascending (keys as in HammingQuery). Scores are float32.
struct ScoreQuery {
  std::size_t nq;
  const std::uint8_t* codes;  // residual rows
  std::size_t n;
  std::size_t dim;
  std::size_t planes;
  std::size_t k;
  const std::int32_t* ids = nullptr;
  // With the documents' squared reconstruction norms (residual_squared_norm), scores become negated squared L2
  // distances, -|q - d|^2, for L2 search; without, inner products.
  const float* doc_norms = nullptr;
};
// SDC: query codes are residual rows with the same dim and planes; the score is the exact inner product of the two
// reconstructions (centres excluded), from popcounts of every plane pair: <a, c> = dim - 2 popcount(a xor c).
Status sdc_topk(const std::uint8_t* query_codes, const ScoreQuery& q, std::int32_t* out_keys,
                float* out_scores) noexcept;
// ADC: float queries (nq × dim) against residual rows; the score is <query, reconstruction> (centre excluded).
Status adc_topk(const float* queries, const ScoreQuery& q, std::int32_t* out_keys, float* out_scores) noexcept;

}  // namespace tessera::binary
