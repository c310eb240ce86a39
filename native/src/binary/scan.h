// The exhaustive top-k scan shared by the Hamming, SDC and ADC searches. Internal to the core.
//
// Queries are taken in blocks of kQueryBlock; within a block the codes are cut into fixed chunks spread over the
// thread pool. Each participating thread (slot) keeps one exact top-k per query of the block; a tile of codes is
// scored for a tile of queries at a time (so codes are reused from cache across queries), then filtered against each
// heap's threshold. After the block, each query's slot heaps are merged. The (key, id) order is total, so the result
// is the same for any thread count and any split.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <vector>

#include "tessera/runtime.h"
#include "filter.h"
#include "kernels.h"
#include "topk.h"

namespace tessera::binary::detail {

constexpr std::size_t kQueryBlock = 64;
constexpr std::size_t kCodeTile = 256;

// Scorer: tile_queries (at most kTileQueriesMax), bytes_per_code, and
//   void score(std::size_t slot, std::size_t q0, std::size_t nq, std::size_t c0, std::size_t nc, bool first, Key* keys)
//   writing keys[i * nc + j] for query q0 + i and code c0 + j, nq <= tile_queries, nc <= kCodeTile; `first` is true
//   for the first query tile of each code tile (a scorer may cache per-slot work on the code tile until then).
// Write: void(std::size_t query, std::size_t rank, const Entry<Key>& e).
template <class Key, class Scorer, class Write>
Status scan_topk(std::size_t nq, std::size_t n, std::size_t k, const std::int32_t* ids, Scorer& scorer,
                 Write write) noexcept {
  const std::size_t tile_queries = scorer.tile_queries;
  const auto filter = filter_for(active_simd_level(), static_cast<const Key*>(nullptr));
  const std::size_t bytes_per_code = scorer.bytes_per_code;
  const std::size_t kk = std::min(k, n);
  if (nq == 0 || kk == 0) return Status::ok;
  try {
    // Chunks of about 1 MiB of codes, in whole tiles: enough to balance threads, few enough to merge cheaply.
    const std::size_t tiles_per_chunk = std::max<std::size_t>(1, (std::size_t{1} << 20) / (kCodeTile * std::max<std::size_t>(1, bytes_per_code)));
    const std::size_t grain = tiles_per_chunk * kCodeTile;
    const std::size_t slots = slots_for(n, grain);
    scorer.reserve_slots(slots);
    std::vector<TopK<Key>> heaps(slots * std::min(nq, kQueryBlock));
    std::vector<const TopK<Key>*> gathered(slots);
    std::vector<Entry<Key>> scratch;
    for (std::size_t qb = 0; qb < nq; qb += kQueryBlock) {
      const std::size_t nqb = std::min(kQueryBlock, nq - qb);
      for (auto& h : heaps) h.reset(kk);
      auto chunk = [&](std::size_t begin, std::size_t end, std::size_t slot) {
        Key keys[kTileQueriesMax * kCodeTile];
        std::uint32_t candidates[kCodeTile];
        TopK<Key>* slot_heaps = &heaps[slot * nqb];
        for (std::size_t c0 = begin; c0 < end; c0 += kCodeTile) {
          const std::size_t nc = std::min(kCodeTile, end - c0);
          for (std::size_t q0 = 0; q0 < nqb; q0 += tile_queries) {
            const std::size_t nt = std::min(tile_queries, nqb - q0);
            scorer.score(slot, qb + q0, nt, c0, nc, q0 == 0, keys);
            for (std::size_t i = 0; i < nt; ++i) {
              TopK<Key>& heap = slot_heaps[q0 + i];
              const Key* row = keys + i * nc;
              // A threshold that only falls as the heap fills: filtering with the one from the start of the row
              // keeps a superset of what can enter, and push() decides exactly.
              const std::size_t m = filter(row, nc, heap.threshold(), candidates);
              for (std::size_t t = 0; t < m; ++t) {
                const std::size_t j = candidates[t];
                heap.push(row[j], ids ? ids[c0 + j] : static_cast<std::int32_t>(c0 + j));
              }
            }
          }
        }
      };
      const Status s = parallel_for(n, grain, chunk, slots);
      if (s != Status::ok) return s;
      for (std::size_t q = 0; q < nqb; ++q) {
        for (std::size_t sl = 0; sl < slots; ++sl) gathered[sl] = &heaps[sl * nqb + q];
        merge_and_write<Key>(gathered.data(), slots, kk, scratch,
                             [&](std::size_t rank, const Entry<Key>& e) { write(qb + q, rank, e); });
      }
    }
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory;
  } catch (...) {
    return Status::internal;
  }
  return Status::ok;
}

}  // namespace tessera::binary::detail
