// MUVERA Fixed Dimensional Encodings (Dhulipala et al., "MUVERA: Multi-Vector Retrieval via Fixed Dimensional
// Encodings", NeurIPS 2024) with the semantics of Google's reference implementation (graph-mining,
// sketching/point_cloud), and exact Chamfer (MaxSim) scores.
//
// Per repetition r: each token's SimHash signs (k Gaussian projections, bit j = <x, g_j> > 0, j = 0 the most
// significant) name a partition, the integer whose Gray code is that sign pattern; the tokens of each partition
// are summed (query) or averaged (document), after an inner projection (identity, count-sketch: one ±1 per input
// coordinate, or dense ±1/sqrt(p)); a document's empty partitions take the projected token whose sign pattern is
// nearest in Hamming distance (lowest token index on ties). Output layout: out[r * B * p + partition * p + j],
// B = 2^k. An optional final Count-Sketch maps the whole vector to finalDim coordinates.
//
// Random matrices come from Tessera's generator (tessera/rng.h), never from a library distribution:
//   stream(kind, r) = derive(seed, kind << 32 | r), kind 1 = SimHash, 2 = inner projection, 3 = final sketch
//   SimHash      G_r[i][j] = normal_at(stream(1, r), i * k + j)                              (dim x k)
//   count-sketch column(i) = below(u64(stream(2, r), 2i), p), sign(i) = sign(u64(stream(2, r), 2i + 1))
//   dense        D_r[i][c] = sign(u64(stream(2, r), i * p + c)) / sqrt(p)
//   final        bucket(t) = below(u64(stream(3, 0), 2t), finalDim), sign(t) = sign(u64(stream(3, 0), 2t + 1))
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tessera/status.h"

namespace tessera::fde {

constexpr std::uint32_t kAlgorithmVersion = 1;
constexpr std::size_t kMaxSimhashBits = 16;
constexpr std::size_t kMaxOutputDim = std::size_t{1} << 26;

enum class Projection { identity, countsketch, dense };

struct Config {
  std::size_t dim = 0;
  std::size_t repetitions = 20;
  std::size_t simhash_bits = 5;
  Projection projection = Projection::countsketch;
  std::size_t projection_dim = 16;  // ignored for identity (p = dim)
  std::size_t final_dim = 0;        // 0: no final projection
  std::uint64_t seed = 42;
  bool fill_empty = true;

  std::size_t partitions() const { return std::size_t{1} << simhash_bits; }
  std::size_t p() const { return projection == Projection::identity ? dim : projection_dim; }
  std::size_t block_dim() const { return repetitions * partitions() * p(); }  // before the final projection
  std::size_t output_dim() const { return final_dim ? final_dim : block_dim(); }
};

bool valid(const Config& c) noexcept;

// The random matrices of a configuration, generated on the host (and persisted by indexes, handed to CUDA).
struct Matrices {
  std::vector<float> simhash;       // dim x (repetitions * k): column r * k + j is g_j of repetition r
  std::vector<float> projection;    // repetitions x dim x p, dense form (count-sketch: one ±1 per row); empty for identity
  std::vector<std::int32_t> final_bucket;  // block_dim entries when final_dim > 0
  std::vector<float> final_sign;
};

Status generate(const Config& c, Matrices* out) noexcept;
// Checks that matrices (for example read from a file) have the sizes a configuration needs.
bool matches(const Config& c, const Matrices& m) noexcept;

// Encodes `count` point clouds given as consecutive token rows (tokens x dim floats) with per-cloud token counts,
// into count x output_dim floats. Threaded over clouds; identical for any thread count. Documents (is_document)
// are averaged and filled; queries summed. An empty cloud is invalid_argument.
Status encode(const Config& c, const Matrices& m, const float* tokens, const std::int32_t* lengths, std::size_t count,
              bool is_document, float* out) noexcept;

// Chamfer (MaxSim): score[d] = sum over query tokens of the largest dot product with a token of document d.
// Exact float32 dot products (fused multiply-adds in a fixed order), threaded over documents. Documents are
// consecutive token rows with per-document counts, or (the second form) separate arrays.
Status chamfer_scores(const float* query, std::size_t query_tokens, const float* docs, const std::int32_t* lengths,
                      std::size_t count, std::size_t dim, float* out) noexcept;
Status chamfer_scores(const float* query, std::size_t query_tokens, const float* const* docs,
                      const std::int32_t* lengths, std::size_t count, std::size_t dim, float* out) noexcept;

// dot(a, b) over n floats, accumulated in a fixed order per instruction-set level (for FDE inner products).
float dot(const float* a, const float* b, std::size_t n) noexcept;

// What encoding derives from the matrices (the SimHash matrix transposed, the count-sketch grouped by output
// coordinate, the Hamming-distance rings of the partitions); built once per encoder by prepare(). Internal.
struct Prepared;

// The encoder's state: a configuration, its matrices (generated, or restored from a file), and what encoding derives
// from them.
struct State {
  Config config;
  Matrices matrices;
  std::shared_ptr<const Prepared> prepared;
};

// Fills state->prepared from its configuration and matrices (invalid_argument when they do not match).
Status prepare(State* state) noexcept;

// encode() for a prepared state: a call then costs only the encoding itself (one query, say, on every search).
Status encode(const State& state, const float* tokens, const std::int32_t* lengths, std::size_t count,
              bool is_document, float* out) noexcept;

}  // namespace tessera::fde
