// A flat (exhaustive) index of residual codes with ids, optional float32 or int8 copies of the vectors for
// rescoring, and removal. Safe to search from several threads while another adds or removes (a reader-writer
// lock: writers wait for searches in flight).
#pragma once

#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "tessera/binary.h"
#include "tessera/status.h"

namespace tessera::binary {

enum class VectorStore { none, float32, int8 };
enum class Similarity { dot, l2 };
enum class Metric { hamming, sdc, adc };

struct IndexConfig {
  std::size_t dim = 0;
  std::size_t planes = 1;
  VectorStore store = VectorStore::none;
  Similarity similarity = Similarity::dot;
};

// Scores are "higher is better" for every metric: hamming gives dim - 2 * distance of the sign planes (their ±1
// inner product); sdc and adc the inner product with the reconstructions (dot similarity) or the negated squared
// L2 distance to them (l2); rescoring the dot product or the negated squared L2 distance to the stored vectors.
struct SearchRequest {
  const float* queries = nullptr;        // nq x dim: for adc and rescoring
  const std::uint8_t* query_codes = nullptr;  // nq residual rows for hamming and sdc; encoded from queries if absent
  const float* center = nullptr;         // subtracted from queries before encoding them (the binarizer's centre)
  std::size_t nq = 0;
  std::size_t k = 0;
  Metric metric = Metric::hamming;
  std::size_t candidates = 0;  // with rescore: how many to take from the binary stage (at least k)
  bool rescore = false;
};

class FlatIndex {
 public:
  explicit FlatIndex(IndexConfig config) : config_(config), row_bytes_(residual_row_bytes(config.dim, config.planes)) {}

  static bool valid(const IndexConfig& c) noexcept {
    return c.dim > 0 && c.dim <= (std::size_t{1} << 24) && c.planes >= 1 && c.planes <= kMaxPlanes;
  }

  const IndexConfig& config() const noexcept { return config_; }
  std::size_t row_bytes() const noexcept { return row_bytes_; }
  std::size_t size() const noexcept;
  std::size_t memory_bytes() const noexcept;

  // Adds `count` rows: residual codes, and the vectors when the index stores them (else vectors is ignored).
  // All or nothing: a repeated id (in the batch or already present) is invalid_argument and nothing is added.
  Status add(const std::int32_t* ids, std::size_t count, const std::uint8_t* codes, const float* vectors) noexcept;
  // Removes the rows with these ids (unknown ids are skipped); returns how many were removed.
  std::size_t remove(const std::int32_t* ids, std::size_t count) noexcept;
  // nq x kk ids and scores, kk = min(k, size) at the time of the search (written to *out_k when given), each row
  // sorted by (score descending, id ascending). The outputs must have room for nq x k.
  Status search(const SearchRequest& r, std::int32_t* out_ids, float* out_scores,
                std::size_t* out_k = nullptr) const noexcept;

  // A copy of the contents, row-aligned, for persistence; and the reverse (validating ids are unique).
  struct Contents {
    std::vector<std::int32_t> ids;
    std::vector<std::uint8_t> codes;
    std::vector<float> vectors;        // float32 store
    std::vector<std::int8_t> quantized;  // int8 store
    std::vector<float> scales;         // int8 store: one per row
  };
  Status export_contents(Contents* out) const noexcept;
  Status import_contents(const std::int32_t* ids, std::size_t count, const std::uint8_t* codes, const float* vectors,
                         const std::int8_t* quantized, const float* scales) noexcept;

 private:
  Status append_locked(const std::int32_t* ids, std::size_t count, const std::uint8_t* codes, const float* vectors,
                       const std::int8_t* quantized, const float* scales);
  double rescore(const float* query, std::size_t row) const;

  IndexConfig config_;
  std::size_t row_bytes_;
  mutable std::shared_mutex mutex_;
  std::vector<std::int32_t> ids_;
  std::vector<std::uint8_t> codes_;
  std::vector<float> vectors_;
  std::vector<std::int8_t> quantized_;
  std::vector<float> scales_;
  std::vector<float> norms_;  // l2 similarity: each row's squared reconstruction norm
  std::unordered_map<std::int32_t, std::uint32_t> rows_;  // id -> row
};

}  // namespace tessera::binary
