// FDE encoding of batches of point clouds (see tessera/fde.h for the algorithm and its specification).
//
// Layout of the work for one cloud of n tokens: the tokens are transposed once (dim x n), so that
//   - the SimHash sketches of every repetition come from one matrix product, G^T (R k x dim) times X^T;
//   - a count-sketch projection, which sends each input coordinate to one output coordinate with a sign, is dim
//     vector additions of whole token columns (instead of dim x p multiply-adds per token);
// the projected tokens are transposed back (n x p) and summed into their partitions. Dense and identity
// projections sum the raw tokens per partition first and project only those sums (fewer rows than tokens).
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "gemm.h"
#include "tessera/fde.h"
#include "tessera/memory.h"
#include "tessera/runtime.h"

namespace tessera::fde {
namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// Scratch for one cloud, reused across the clouds a thread encodes.
struct Workspace {
  std::size_t n16 = 0;                    // the token count rounded up to whole vectors
  AlignedVector<float> xt;                // dim x n16: the tokens, transposed
  AlignedVector<float> sketch;            // (R k) x n16: SimHash values
  AlignedVector<float> yt;                // count-sketch: p x n16 projected tokens
  AlignedVector<float> block;             // one repetition's block, or (final projection) the whole encoding
  std::vector<std::uint32_t> partition;   // per token, this repetition
  std::vector<std::int32_t> slot;         // dense / identity: per partition, its row among the sums, or -1
  std::vector<std::uint32_t> slot_partition;  // per slot: its partition
  std::vector<float> sums, projected;     // dense / identity: slots x dim summed tokens, slots x p projected
  std::vector<std::uint32_t> count;       // per partition: its tokens
  std::vector<std::uint32_t> first;       // per partition: its lowest token index (when count > 0)
  std::vector<std::uint32_t> occupied;    // the sign patterns of the non-empty partitions
  std::vector<std::uint32_t> best, level, frontier, next;  // the nearest-token search, by sign pattern
  std::vector<float> fill_row;            // dense / identity: one token, projected
};

}  // namespace

struct Prepared {
  std::vector<float> simhash_t;                  // G^T: (R k) x dim, so the sketches are one product
  std::vector<std::uint32_t> start, coordinate;  // count-sketch: per repetition, input coordinates by output one
  std::vector<float> sign;
  std::vector<std::uint64_t> rings;              // partitions <= 64: rings[q (k + 1) + d], patterns at distance d
};

namespace {

std::shared_ptr<const Prepared> derive(const Config& c, const Matrices& m) {
  auto out = std::make_shared<Prepared>();
  const std::size_t k = c.simhash_bits, rk = c.repetitions * k, partitions = c.partitions(), p = c.p();
  if (partitions <= 64 && k > 0) {
    out->rings.assign(partitions * (k + 1), 0);
    for (std::size_t q = 0; q < partitions; ++q)
      for (std::size_t other = 0; other < partitions; ++other)
        out->rings[q * (k + 1) + static_cast<std::size_t>(std::popcount(q ^ other))] |= std::uint64_t{1} << other;
  }
  out->simhash_t.resize(rk * c.dim);
  for (std::size_t i = 0; i < c.dim; ++i)
    for (std::size_t j = 0; j < rk; ++j) out->simhash_t[j * c.dim + i] = m.simhash[i * rk + j];
  if (c.projection == Projection::countsketch) {
    // The one ±1 of each row of the (dense-stored) sketch, grouped by output coordinate: per repetition,
    // start[c]..start[c + 1] index the input coordinates (ascending) that go to output coordinate c.
    out->start.assign(c.repetitions * (p + 1), 0);
    out->coordinate.resize(c.repetitions * c.dim);
    out->sign.resize(c.repetitions * c.dim);
    std::vector<std::uint32_t> column(c.dim);
    for (std::size_t r = 0; r < c.repetitions; ++r) {
      std::uint32_t* start = out->start.data() + r * (p + 1);
      for (std::size_t i = 0; i < c.dim; ++i) {
        const float* row = m.projection.data() + (r * c.dim + i) * p;
        std::size_t col = 0;
        while (col + 1 < p && row[col] == 0.0f) ++col;
        column[i] = static_cast<std::uint32_t>(col);
        ++start[col + 1];
      }
      for (std::size_t col = 0; col < p; ++col) start[col + 1] += start[col];
      std::vector<std::uint32_t> next(start, start + p);
      for (std::size_t i = 0; i < c.dim; ++i) {  // ascending i within each group
        const std::size_t e = r * c.dim + next[column[i]]++;
        out->coordinate[e] = static_cast<std::uint32_t>(i);
        out->sign[e] = m.projection[(r * c.dim + i) * p + column[i]] < 0.0f ? -1.0f : 1.0f;
      }
    }
  }
  return out;
}

class Encoder {
 public:
  Encoder(const Config& c, const Matrices& m, const Prepared& d, bool document)
      : c_(c), m_(m), d_(d), document_(document), k_(c.simhash_bits), rk_(c.repetitions * c.simhash_bits),
        partitions_(c.partitions()), p_(c.p()) {
    const SimdLevel level = active_simd_level();
    gemm_ = detail::gemm(level);
    add_ = detail::add_rows(level);
    transpose_ = detail::transpose(level);
    sketch_ = detail::sketch_columns(level);
    partitions_from_ = detail::partitions(level);
    accumulate_ = detail::accumulate_rows(level);
    centroids_ = detail::centroids(level);
    stream_ = detail::stream_rows(level);
  }

  void encode(const float* x, std::size_t n, Workspace& w, float* out) const {
    const std::size_t n16 = round_up(n, 16), dim = c_.dim;
    w.n16 = n16;
    w.xt.resize(dim * n16);
    transpose_(x, n, dim, dim, w.xt.data(), n16);
    if (n16 > n)  // zero tokens pad each row to whole vectors
      for (std::size_t i = 0; i < dim; ++i) std::fill(&w.xt[i * n16 + n], &w.xt[i * n16 + n16], 0.0f);
    if (k_ > 0) {
      w.sketch.resize(rk_ * n16);
      gemm_(d_.simhash_t.data(), dim, w.xt.data(), n16, w.sketch.data(), n16, rk_, dim, n16);
    }
    // Each repetition's block is built in cache (w.block) and then streamed to the output, which is written once
    // without being read; with a final projection the whole encoding stays in w.block until it is projected.
    const std::size_t rep_floats = partitions_ * p_;
    w.block.resize(c_.final_dim ? c_.block_dim() : rep_floats);
    w.partition.resize(n16);  // padded tokens get partitions too, never used
    if (c_.projection != Projection::countsketch) w.slot.assign(partitions_, -1);
    for (std::size_t r = 0; r < c_.repetitions; ++r) {
      assign_partitions(w, n16, r);
      float* block = w.block.data() + (c_.final_dim ? r * rep_floats : 0);
      if (c_.projection == Projection::countsketch) sketch_and_sum(w, n, n16, r, block);
      else sum_and_project(x, n, w, r, block);
      finish_block(x, r, w, block);
      if (c_.projection != Projection::countsketch)
        for (std::uint32_t g : w.slot_partition) w.slot[g] = -1;  // reset only what was set
      if (!c_.final_dim) stream_(out + r * rep_floats, block, rep_floats);
    }
    const float* blocks = w.block.data();
    if (c_.final_dim) {
      std::fill(out, out + c_.final_dim, 0.0f);
      const std::size_t total = c_.block_dim();
      for (std::size_t t = 0; t < total; ++t) out[m_.final_bucket[t]] += m_.final_sign[t] * blocks[t];
    }
  }

 private:
  void assign_partitions(Workspace& w, std::size_t n16, std::size_t r) const {
    if (k_ == 0) std::fill(w.partition.begin(), w.partition.end(), 0u);
    else partitions_from_(w.sketch.data() + r * k_ * n16, k_, n16, w.partition.data());
  }

  // Gives partition g a row among the sums, the first time one of its tokens comes.
  static bool open_slot(Workspace& w, std::uint32_t g) {
    if (w.slot[g] >= 0) return false;
    w.slot[g] = static_cast<std::int32_t>(w.slot_partition.size());
    w.slot_partition.push_back(g);
    return true;
  }

  // Count-sketch: project every token with dim column additions, then sum the projected tokens into the block.
  void sketch_and_sum(Workspace& w, std::size_t n, std::size_t n16, std::size_t r, float* block) const {
    const std::size_t dim = c_.dim;
    w.yt.resize(p_ * n16);
    sketch_(w.yt.data(), w.xt.data(), d_.start.data() + r * (p_ + 1), d_.coordinate.data() + r * dim, d_.sign.data() + r * dim,
            p_, n16);
    std::fill(block, block + partitions_ * p_, 0.0f);
    accumulate_(block, w.yt.data(), n16, w.partition.data(), n, p_);
    count_partitions(w, n);
  }

  // Dense and identity: sum the raw tokens per partition, then project only the sums into the block.
  void sum_and_project(const float* x, std::size_t n, Workspace& w, std::size_t r, float* block) const {
    const std::size_t dim = c_.dim;
    w.slot_partition.clear();
    w.sums.resize(std::min(n, partitions_) * dim);
    for (std::size_t t = 0; t < n; ++t) {
      const std::uint32_t g = w.partition[t];
      const bool first = open_slot(w, g);
      float* sum = &w.sums[static_cast<std::size_t>(w.slot[g]) * dim];
      if (first) std::memcpy(sum, x + t * dim, dim * sizeof(float));
      else add_(sum, x + t * dim, dim);
    }
    const std::size_t slots = w.slot_partition.size();
    w.projected.resize(slots * p_);
    project(w.sums.data(), slots, r, w.projected.data());
    for (std::size_t s = 0; s < slots; ++s)
      std::memcpy(block + w.slot_partition[s] * p_, &w.projected[s * p_], p_ * sizeof(float));
    count_partitions(w, n);
  }

  // Tokens per partition, and each partition's lowest token index.
  void count_partitions(Workspace& w, std::size_t n) const {
    w.count.assign(partitions_, 0u);
    w.first.resize(partitions_);
    for (std::size_t t = n; t-- > 0;) {  // the lowest index is written last
      const std::uint32_t g = w.partition[t];
      w.first[g] = static_cast<std::uint32_t>(t);
      ++w.count[g];
    }
  }

  // Projects `count` rows of dim floats with repetition r's dense or identity projection.
  void project(const float* rows, std::size_t count, std::size_t r, float* out) const {
    if (c_.projection == Projection::identity) std::memcpy(out, rows, count * c_.dim * sizeof(float));
    else gemm_(rows, c_.dim, m_.projection.data() + r * c_.dim * p_, p_, out, p_, count, c_.dim, p_);
  }

  // Documents: centroids, and empty partitions filled (or zeroed); queries: empty partitions zeroed.
  void finish_block(const float* x, std::size_t r, Workspace& w, float* block) const {
    // Multiplying by the reciprocal may differ from dividing by half an ulp: the one place the encoder departs from
    // the reference's arithmetic, since a division per element costs more than the rest of the block.
    if (document_) centroids_(block, w.count.data(), partitions_, p_);
    const auto empty = static_cast<std::size_t>(std::count(w.count.begin(), w.count.end(), 0u));
    if (empty == 0) return;
    const bool fill = document_ && c_.fill_empty && k_ > 0;
    if (fill) nearest_tokens(w, empty);
    for (std::size_t g = 0; g < partitions_; ++g) {
      if (w.count[g] != 0) continue;
      float* dst = block + g * p_;
      if (!fill) {
        std::fill(dst, dst + p_, 0.0f);
        continue;
      }
      const std::uint32_t token = w.best[g ^ (g >> 1)];  // by sign pattern
      if (c_.projection == Projection::countsketch) {
        for (std::size_t j = 0; j < p_; ++j) dst[j] = w.yt[j * w.n16 + token];  // the projected token, not averaged
      } else {
        w.fill_row.resize(p_);
        project(x + static_cast<std::size_t>(token) * c_.dim, 1, r, w.fill_row.data());
        std::memcpy(dst, w.fill_row.data(), p_ * sizeof(float));
      }
    }
  }

  // For every empty partition's sign pattern (w.best, by pattern), the lowest-indexed token among those whose
  // pattern is nearest in Hamming distance. Few empty partitions: compare each with every occupied pattern;
  // many: a breadth-first search over the k-cube, whichever does less work.
  void nearest_tokens(Workspace& w, std::size_t empty) const {
    w.occupied.clear();
    w.best.resize(partitions_);
    for (std::size_t g = 0; g < partitions_; ++g)
      if (w.count[g] != 0) {
        const auto pattern = static_cast<std::uint32_t>(g ^ (g >> 1));
        w.occupied.push_back(pattern);
        w.best[pattern] = w.first[g];
      }
    if (!d_.rings.empty()) nearest_by_rings(w);
    else if (empty * w.occupied.size() <= partitions_ * k_) nearest_by_scan(w);
    else nearest_by_search(w);
  }

  // Up to 64 patterns (k <= 6): the occupied patterns as a bit set, intersected with each empty pattern's rings of
  // patterns at distance 1, 2, ...; the first non-empty ring holds the nearest sources.
  void nearest_by_rings(Workspace& w) const {
    std::uint64_t occupied = 0;
    for (std::uint32_t pattern : w.occupied) occupied |= std::uint64_t{1} << pattern;
    for (std::size_t g = 0; g < partitions_; ++g) {
      if (w.count[g] != 0) continue;
      const std::size_t pattern = g ^ (g >> 1);
      const std::uint64_t* ring = &d_.rings[pattern * (k_ + 1)];
      for (std::size_t d = 1; d <= k_; ++d) {
        std::uint64_t sources = occupied & ring[d];
        if (sources == 0) continue;
        std::uint32_t least = ~0u;
        for (; sources; sources &= sources - 1) least = std::min(least, w.best[std::countr_zero(sources)]);
        w.best[pattern] = least;
        break;
      }
    }
  }

  // Each empty pattern against every occupied one: the least (distance, token) pair wins.
  void nearest_by_scan(Workspace& w) const {
    for (std::size_t g = 0; g < partitions_; ++g) {
      if (w.count[g] != 0) continue;
      const auto pattern = static_cast<std::uint32_t>(g ^ (g >> 1));
      std::uint64_t least = ~std::uint64_t{0};
      for (std::uint32_t source : w.occupied) {
        const auto distance = static_cast<std::uint64_t>(std::popcount(pattern ^ source));
        least = std::min(least, distance << 32 | w.best[source]);
      }
      w.best[pattern] = static_cast<std::uint32_t>(least);
    }
  }

  // A breadth-first search over the k-cube from the occupied patterns, level by level, keeping the lowest token
  // index among equally near sources (O(2^k k) per repetition, whatever the token count). A pattern at distance d
  // is reached from its neighbours at distance d - 1, whose own bests are the lowest tokens at distance d - 1 from
  // them: together, exactly the tokens at distance d.
  void nearest_by_search(Workspace& w) const {
    constexpr std::uint32_t kUnset = ~0u;
    w.level.assign(partitions_, kUnset);
    w.frontier.assign(w.occupied.begin(), w.occupied.end());
    for (std::uint32_t pattern : w.occupied) w.level[pattern] = 0;
    for (std::uint32_t d = 1; !w.frontier.empty(); ++d) {
      w.next.clear();
      for (std::uint32_t pattern : w.frontier)
        for (std::size_t j = 0; j < k_; ++j) {
          const std::uint32_t q = pattern ^ (1u << j);
          if (w.level[q] == kUnset) {
            w.level[q] = d;
            w.best[q] = w.best[pattern];
            w.next.push_back(q);
          } else if (w.level[q] == d) {
            w.best[q] = std::min(w.best[q], w.best[pattern]);
          }
        }
      w.frontier.swap(w.next);
    }
  }

  const Config& c_;
  const Matrices& m_;
  const Prepared& d_;
  bool document_;
  detail::GemmFn gemm_;
  detail::AddFn add_;
  detail::TransposeFn transpose_;
  detail::SketchFn sketch_;
  detail::PartitionFn partitions_from_;
  detail::AccumulateFn accumulate_;
  detail::CentroidFn centroids_;
  detail::StreamFn stream_;
  std::size_t k_, rk_, partitions_, p_;
};

}  // namespace

namespace {

Status encode_prepared(const Config& c, const Matrices& m, const Prepared& d, const float* tokens,
                       const std::int32_t* lengths, std::size_t count, bool is_document, float* out) {
  if (count == 0) return Status::ok;
  if (!tokens || !lengths || !out) return Status::invalid_argument;
  std::vector<std::size_t> offsets(count + 1, 0);
  for (std::size_t i = 0; i < count; ++i) {
    if (lengths[i] <= 0) return Status::invalid_argument;  // an empty cloud has no encoding
    offsets[i + 1] = offsets[i] + static_cast<std::size_t>(lengths[i]);
  }
  const Encoder encoder(c, m, d, is_document);
  advise_huge_pages(out, count * c.output_dim() * sizeof(float));  // batches of FDEs run to hundreds of MiB
  // Chunks of consecutive clouds whose outputs fill about a huge page, so two threads rarely fault in (and wait on
  // the zeroing of) the same page; at least four chunks a thread, for balance.
  const std::size_t out_dim = c.output_dim();
  const std::size_t grain = std::max<std::size_t>(
      1, std::min(grain_for_bytes(out_dim * sizeof(float), std::size_t{2} << 20), count / (4 * thread_count())));
  const std::size_t slots = slots_for(count, grain);
  std::vector<Workspace> workspaces(slots);
  auto body = [&](std::size_t begin, std::size_t end, std::size_t slot) {
    for (std::size_t i = begin; i < end; ++i)
      encoder.encode(tokens + offsets[i] * c.dim, offsets[i + 1] - offsets[i], workspaces[slot], out + i * out_dim);
    detail::store_fence();  // streamed stores are visible before the chunk counts as done
  };
  return parallel_for(count, grain, body, slots);
}

}  // namespace

Status prepare(State* state) noexcept {
  if (!state || !matches(state->config, state->matrices)) return Status::invalid_argument;
  try {
    state->prepared = derive(state->config, state->matrices);
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status encode(const State& state, const float* tokens, const std::int32_t* lengths, std::size_t count,
              bool is_document, float* out) noexcept {
  if (!state.prepared) return Status::invalid_argument;
  try {
    return encode_prepared(state.config, state.matrices, *state.prepared, tokens, lengths, count, is_document, out);
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status encode(const Config& c, const Matrices& m, const float* tokens, const std::int32_t* lengths, std::size_t count,
              bool is_document, float* out) noexcept {
  if (!matches(c, m)) return Status::invalid_argument;
  try {
    return encode_prepared(c, m, *derive(c, m), tokens, lengths, count, is_document, out);
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::fde
