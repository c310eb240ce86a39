#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "kernels.h"
#include "scan.h"
#include "tessera/binary.h"

namespace tessera::binary {
namespace {

bool shapes_fit(std::size_t rows, std::size_t bytes) {
  return bytes == 0 || rows <= std::numeric_limits<std::size_t>::max() / bytes;
}

// 64-byte aligned scratch, one region per slot.
class SlotScratch {
 public:
  void reserve(std::size_t slots, std::size_t bytes_each) {
    stride_ = (bytes_each + 63) / 64 * 64;
    if (stride_ * slots > size_) {
      size_ = stride_ * slots;
      memory_.reset(static_cast<std::uint8_t*>(::operator new[](size_, std::align_val_t{64})));
    }
  }
  void* at(std::size_t slot) const { return memory_.get() + slot * stride_; }

 private:
  struct AlignedDelete {
    void operator()(std::uint8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<std::uint8_t[], AlignedDelete> memory_;
  std::size_t size_ = 0, stride_ = 0;
};

// Queries copied into whole 64-bit words with their padding bits cleared, as the kernels expect.
std::vector<std::uint64_t> padded_queries(const std::uint8_t* queries, std::size_t nq, std::size_t bytes,
                                          std::size_t stride, std::uint8_t last_mask) {
  const std::size_t words = detail::query_words(bytes);
  std::vector<std::uint64_t> out(nq * words, 0);
  for (std::size_t q = 0; q < nq; ++q) {
    auto* row = reinterpret_cast<std::uint8_t*>(out.data() + q * words);
    std::memcpy(row, queries + q * stride, bytes);
    row[bytes - 1] &= last_mask;
  }
  return out;
}

// Scores Hamming tiles for scan_topk (and hamming_distances).
struct HammingScorer {
  detail::HammingKernel kernel;
  const std::uint64_t* queries;  // padded
  std::size_t words;
  const std::uint8_t* codes;
  std::size_t bytes, stride;
  std::uint8_t last_mask;
  std::size_t tile_queries;
  std::size_t bytes_per_code;
  SlotScratch scratch;

  HammingScorer(const std::uint64_t* q, const std::uint8_t* c, std::size_t code_stride, std::size_t bits,
                BitOrder order)
      : kernel(detail::hamming_kernel(active_simd_level())), queries(q), words(detail::query_words(code_bytes(bits))),
        codes(c), bytes(code_bytes(bits)), stride(code_stride), last_mask(last_byte_mask(bits, order)),
        tile_queries(kernel.tile_queries), bytes_per_code(code_stride) {}

  void reserve_slots(std::size_t slots) { scratch.reserve(slots, kernel.scratch_bytes(bytes, detail::kCodeTile)); }

  void score(std::size_t slot, std::size_t q0, std::size_t nq, std::size_t c0, std::size_t nc, bool first,
             std::uint32_t* keys) {
    const std::uint64_t* qp[detail::kTileQueriesMax];
    for (std::size_t i = 0; i < nq; ++i) qp[i] = queries + (q0 + i) * words;
    kernel.tile(qp, nq, codes + c0 * stride, stride, nc, bytes, last_mask, scratch.at(slot), !first, keys);
  }
};

}  // namespace

Status hamming_distances(const std::uint8_t* queries, std::size_t nq, const std::uint8_t* codes, std::size_t n,
                         std::size_t bits, BitOrder order, std::uint32_t* out) noexcept {
  const std::size_t bytes = code_bytes(bits);
  if (bits == 0 || !shapes_fit(nq, bytes) || !shapes_fit(n, bytes) || !shapes_fit(nq, n * sizeof(std::uint32_t)))
    return Status::invalid_argument;
  if (nq == 0 || n == 0) return Status::ok;
  if (queries == nullptr || codes == nullptr || out == nullptr) return Status::invalid_argument;
  try {
    const auto padded = padded_queries(queries, nq, bytes, bytes, last_byte_mask(bits, order));
    HammingScorer scorer(padded.data(), codes, bytes, bits, order);
    const std::size_t grain = detail::kCodeTile;
    const std::size_t slots = slots_for(n, grain);
    scorer.reserve_slots(slots);
    auto chunk = [&](std::size_t begin, std::size_t end, std::size_t slot) {
      std::uint32_t tile[detail::kTileQueriesMax * detail::kCodeTile];
      const std::size_t nc = end - begin;
      for (std::size_t q0 = 0; q0 < nq; q0 += scorer.tile_queries) {
        const std::size_t nt = std::min(scorer.tile_queries, nq - q0);
        scorer.score(slot, q0, nt, begin, nc, q0 == 0, tile);
        for (std::size_t i = 0; i < nt; ++i) std::memcpy(out + (q0 + i) * n + begin, tile + i * nc, nc * sizeof(std::uint32_t));
      }
    };
    return parallel_for(n, grain, chunk, slots);
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status hamming_topk(const HammingQuery& hq, std::int32_t* out_keys, std::int32_t* out_distances) noexcept {
  const std::size_t bytes = code_bytes(hq.bits);
  const std::size_t query_stride = hq.query_stride ? hq.query_stride : bytes;
  const std::size_t code_stride = hq.code_stride ? hq.code_stride : bytes;
  if (hq.bits == 0 || hq.k == 0 || query_stride < bytes || code_stride < bytes) return Status::invalid_argument;
  if (!shapes_fit(hq.nq, query_stride) || !shapes_fit(hq.n, code_stride)) return Status::invalid_argument;
  if (hq.n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) return Status::invalid_argument;
  if (hq.bits > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) return Status::invalid_argument;
  const std::size_t kk = std::min(hq.k, hq.n);
  if (hq.nq == 0 || kk == 0) return Status::ok;
  if (!hq.queries || !hq.codes || !out_keys || !out_distances) return Status::invalid_argument;
  try {
    const auto padded = padded_queries(hq.queries, hq.nq, bytes, query_stride, last_byte_mask(hq.bits, hq.order));
    HammingScorer scorer(padded.data(), hq.codes, code_stride, hq.bits, hq.order);
    auto write = [&](std::size_t q, std::size_t rank, const detail::Entry<std::uint32_t>& e) {
      out_keys[q * kk + rank] = e.id;
      out_distances[q * kk + rank] = static_cast<std::int32_t>(e.key);
    };
    return detail::scan_topk<std::uint32_t>(hq.nq, hq.n, hq.k, hq.ids, scorer, write);
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::binary
