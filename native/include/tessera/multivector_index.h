// A multi-vector index (MUVERA): documents as token matrices with ids; each document's FDE is kept (as float32,
// or as binary residual codes through the binary module); search takes the top candidates by FDE inner product
// and reranks them by exact Chamfer. Searches may run concurrently; add and remove wait for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "tessera/binary_index.h"
#include "tessera/fde.h"
#include "tessera/status.h"

namespace tessera::fde {

class MultiVectorIndex {
 public:
  // fde_bits = 0 keeps float32 FDEs; 1 to 4 keeps binary residual codes of them (candidates by ADC).
  MultiVectorIndex(std::shared_ptr<const State> encoder, std::size_t fde_bits);

  const State& encoder() const noexcept { return *encoder_; }
  std::size_t fde_bits() const noexcept { return fde_bits_; }
  std::size_t size() const noexcept;
  std::size_t memory_bytes() const noexcept;

  // Adds documents (consecutive token rows, per-document counts) with distinct ids; all or nothing.
  Status add(const std::int32_t* ids, std::size_t count, const float* tokens, const std::int32_t* lengths) noexcept;
  std::size_t remove(const std::int32_t* ids, std::size_t count) noexcept;

  // The min(k, size) best documents for one query (query_tokens x dim): the `candidates` best by FDE inner product
  // (at least k), reranked by Chamfer when rerank is set; scores are Chamfer scores then, FDE inner products
  // otherwise; sorted by (score descending, id ascending).
  Status search(const float* query, std::size_t query_tokens, std::size_t k, std::size_t candidates, bool rerank,
                std::int32_t* out_ids, float* out_scores, std::size_t* out_count) const noexcept;

  struct Contents {
    std::vector<std::int32_t> ids, lengths;
    std::vector<float> tokens;  // consecutive
    std::vector<float> fdes;    // fde_bits == 0
    std::vector<std::uint8_t> codes;  // fde_bits > 0
  };
  Status export_contents(Contents* out) const noexcept;
  // Restores documents and their stored FDEs (or codes) without re-encoding; the index must be empty.
  Status import_contents(const Contents& c) noexcept;

 private:
  Status append_locked(const std::int32_t* ids, std::size_t count, const float* tokens, const std::int32_t* lengths,
                       const float* fdes, const std::uint8_t* codes);
  Status candidates_locked(const float* fde, std::size_t wanted, std::vector<std::int32_t>& ids,
                           std::vector<float>& scores) const;

  std::shared_ptr<const State> encoder_;
  std::size_t fde_bits_;
  mutable std::shared_mutex mutex_;
  std::vector<std::int32_t> ids_;
  std::vector<std::vector<float>> tokens_;  // per document: removal is a swap, not a shift of every token after it
  std::vector<float> fdes_;                 // float FDEs, rows of output_dim
  std::unique_ptr<binary::FlatIndex> codes_;  // binary FDE codes (ids in step with ids_ through its own map)
  std::unordered_map<std::int32_t, std::uint32_t> rows_;
};

}  // namespace tessera::fde
