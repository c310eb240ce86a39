#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "tessera/binary_index.h"
#include "tessera/runtime.h"

namespace tessera::binary {
namespace {

// Symmetric int8: v ~ scale * q, q in [-127, 127], scale = max |v| / 127 (0 for a zero row).
void quantize_row(const float* v, std::size_t dim, std::int8_t* q, float* scale) {
  float peak = 0;
  for (std::size_t i = 0; i < dim; ++i) peak = std::max(peak, std::abs(v[i]));
  *scale = peak / 127.0f;
  const float inverse = peak > 0 ? 127.0f / peak : 0.0f;
  for (std::size_t i = 0; i < dim; ++i)
    q[i] = static_cast<std::int8_t>(std::clamp(std::nearbyint(v[i] * inverse), -127.0f, 127.0f));
}

}  // namespace

std::size_t FlatIndex::size() const noexcept {
  std::shared_lock lock(mutex_);
  return ids_.size();
}

std::size_t FlatIndex::memory_bytes() const noexcept {
  std::shared_lock lock(mutex_);
  // The arrays' capacity, and the id map at about two words per bucket and four per node.
  return ids_.capacity() * sizeof(std::int32_t) + codes_.capacity() + vectors_.capacity() * sizeof(float) +
         quantized_.capacity() + (scales_.capacity() + norms_.capacity()) * sizeof(float) +
         rows_.bucket_count() * 2 * sizeof(void*) +
         rows_.size() * 4 * sizeof(void*);
}

Status FlatIndex::append_locked(const std::int32_t* ids, std::size_t count, const std::uint8_t* codes,
                                const float* vectors, const std::int8_t* quantized, const float* scales) {
  const std::size_t dim = config_.dim;
  std::unordered_set<std::int32_t> batch;
  batch.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    if (rows_.count(ids[i]) || !batch.insert(ids[i]).second) return Status::invalid_argument;
  if (ids_.size() + count > static_cast<std::size_t>(INT32_MAX)) return Status::invalid_argument;
  const std::size_t start = ids_.size();
  ids_.insert(ids_.end(), ids, ids + count);
  codes_.insert(codes_.end(), codes, codes + count * row_bytes_);
  if (config_.store == VectorStore::float32) vectors_.insert(vectors_.end(), vectors, vectors + count * dim);
  if (config_.store == VectorStore::int8) {
    if (quantized) {
      quantized_.insert(quantized_.end(), quantized, quantized + count * dim);
      scales_.insert(scales_.end(), scales, scales + count);
    } else {
      quantized_.resize((start + count) * dim);
      scales_.resize(start + count);
      for (std::size_t i = 0; i < count; ++i)
        quantize_row(vectors + i * dim, dim, &quantized_[(start + i) * dim], &scales_[start + i]);
    }
  }
  if (config_.similarity == Similarity::l2)
    for (std::size_t i = 0; i < count; ++i)
      norms_.push_back(static_cast<float>(residual_squared_norm(codes + i * row_bytes_, dim, config_.planes)));
  for (std::size_t i = 0; i < count; ++i) rows_[ids[i]] = static_cast<std::uint32_t>(start + i);
  return Status::ok;
}

Status FlatIndex::add(const std::int32_t* ids, std::size_t count, const std::uint8_t* codes,
                      const float* vectors) noexcept {
  if (count == 0) return Status::ok;
  if (!ids || !codes || (config_.store != VectorStore::none && !vectors)) return Status::invalid_argument;
  std::unique_lock lock(mutex_);
  const std::size_t before = ids_.size();
  try {
    return append_locked(ids, count, codes, vectors, nullptr, nullptr);
  } catch (...) {  // out of memory part-way: undo, so the index stays as it was
    ids_.resize(before);
    codes_.resize(before * row_bytes_);
    if (config_.store == VectorStore::float32) vectors_.resize(before * config_.dim);
    if (config_.store == VectorStore::int8) quantized_.resize(before * config_.dim), scales_.resize(before);
    if (config_.similarity == Similarity::l2) norms_.resize(before);
    for (std::size_t i = 0; i < count; ++i) {
      auto it = rows_.find(ids[i]);
      if (it != rows_.end() && it->second >= before) rows_.erase(it);
    }
    return Status::out_of_memory;
  }
}

std::size_t FlatIndex::remove(const std::int32_t* ids, std::size_t count) noexcept {
  std::unique_lock lock(mutex_);
  const std::size_t dim = config_.dim;
  std::size_t removed = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const auto it = rows_.find(ids[i]);
    if (it == rows_.end()) continue;
    const std::size_t row = it->second, last = ids_.size() - 1;
    rows_.erase(it);
    if (row != last) {  // the last row moves into the hole: O(1), rows stay dense
      ids_[row] = ids_[last];
      rows_[ids_[row]] = static_cast<std::uint32_t>(row);
      std::memcpy(&codes_[row * row_bytes_], &codes_[last * row_bytes_], row_bytes_);
      if (!vectors_.empty()) std::memcpy(&vectors_[row * dim], &vectors_[last * dim], dim * sizeof(float));
      if (!quantized_.empty()) {
        std::memcpy(&quantized_[row * dim], &quantized_[last * dim], dim);
        scales_[row] = scales_[last];
      }
      if (!norms_.empty()) norms_[row] = norms_[last];
    }
    ids_.pop_back();
    codes_.resize(last * row_bytes_);
    if (!vectors_.empty()) vectors_.resize(last * dim);
    if (!quantized_.empty()) quantized_.resize(last * dim), scales_.resize(last);
    if (!norms_.empty()) norms_.resize(last);
    ++removed;
  }
  return removed;
}

double FlatIndex::rescore(const float* query, std::size_t row) const {
  const std::size_t dim = config_.dim;
  double s = 0;
  if (config_.store == VectorStore::float32) {
    const float* v = &vectors_[row * dim];
    if (config_.similarity == Similarity::dot) {
      for (std::size_t i = 0; i < dim; ++i) s += static_cast<double>(query[i]) * v[i];
    } else {
      for (std::size_t i = 0; i < dim; ++i) s -= (static_cast<double>(query[i]) - v[i]) * (static_cast<double>(query[i]) - v[i]);
    }
  } else {
    const std::int8_t* q8 = &quantized_[row * dim];
    const double scale = scales_[row];
    if (config_.similarity == Similarity::dot) {
      for (std::size_t i = 0; i < dim; ++i) s += static_cast<double>(query[i]) * q8[i];
      s *= scale;
    } else {
      for (std::size_t i = 0; i < dim; ++i) s -= (query[i] - scale * q8[i]) * (query[i] - scale * q8[i]);
    }
  }
  return s;
}

Status FlatIndex::search(const SearchRequest& r, std::int32_t* out_ids, float* out_scores,
                         std::size_t* out_k) const noexcept {
  if (r.k == 0) return Status::invalid_argument;
  const bool needs_floats = r.metric == Metric::adc || r.rescore;
  const bool needs_codes = r.metric != Metric::adc;
  if (r.rescore && config_.store == VectorStore::none) return Status::invalid_argument;
  std::shared_lock lock(mutex_);
  const std::size_t n = ids_.size(), kk = std::min(r.k, n);
  if (out_k) *out_k = kk;
  if (r.nq == 0 || kk == 0) return Status::ok;
  if ((needs_floats && !r.queries) || (needs_codes && !r.query_codes && !r.queries) || !out_ids || !out_scores)
    return Status::invalid_argument;
  const std::size_t cand = r.rescore ? std::min(n, std::max(r.k, r.candidates)) : kk;
  try {
    std::vector<std::uint8_t> encoded;
    const std::uint8_t* query_codes = r.query_codes;
    if (needs_codes && !query_codes) {
      encoded.resize(r.nq * row_bytes_);
      const Status e = residual_encode(r.queries, r.nq, config_.dim, config_.planes, r.center, encoded.data());
      if (e != Status::ok) return e;
      query_codes = encoded.data();
    }
    std::vector<std::int32_t> cand_ids(r.nq * cand);
    std::vector<float> cand_scores(r.nq * cand);
    Status s;
    if (r.metric == Metric::hamming) {
      std::vector<std::int32_t> distances(r.nq * cand);
      HammingQuery hq{query_codes, r.nq, codes_.data(), n, config_.dim, BitOrder::msb, cand, ids_.data(),
                      row_bytes_, row_bytes_};
      s = hamming_topk(hq, cand_ids.data(), distances.data());
      for (std::size_t i = 0; i < distances.size(); ++i)
        cand_scores[i] = static_cast<float>(static_cast<double>(config_.dim) - 2.0 * distances[i]);
    } else {
      const float* norms = config_.similarity == Similarity::l2 ? norms_.data() : nullptr;
      ScoreQuery sq{r.nq, codes_.data(), n, config_.dim, config_.planes, cand, ids_.data(), norms};
      if (r.metric == Metric::sdc) {
        s = sdc_topk(query_codes, sq, cand_ids.data(), cand_scores.data());
      } else {
        // ADC compares the query with reconstructions of the centred rows: centre the query the same way.
        std::vector<float> centred;
        const float* queries = r.queries;
        if (r.center) {
          centred.assign(r.queries, r.queries + r.nq * config_.dim);
          for (std::size_t i = 0; i < centred.size(); ++i) centred[i] -= r.center[i % config_.dim];
          queries = centred.data();
        }
        s = adc_topk(queries, sq, cand_ids.data(), cand_scores.data());
      }
    }
    if (s != Status::ok) return s;
    if (!r.rescore) {
      std::copy(cand_ids.begin(), cand_ids.end(), out_ids);
      std::copy(cand_scores.begin(), cand_scores.end(), out_scores);
      return Status::ok;
    }
    auto rescore_queries = [&](std::size_t begin, std::size_t end) {
      std::vector<std::pair<float, std::int32_t>> scored(cand);
      for (std::size_t q = begin; q < end; ++q) {
        for (std::size_t c = 0; c < cand; ++c) {
          const std::int32_t id = cand_ids[q * cand + c];
          const auto score = static_cast<float>(rescore(r.queries + q * config_.dim, rows_.at(id)));
          scored[c] = {std::isnan(score) ? INFINITY : -score, id};
        }
        std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(kk), scored.end());
        for (std::size_t i = 0; i < kk; ++i) {
          out_ids[q * kk + i] = scored[i].second;
          out_scores[q * kk + i] = std::isinf(scored[i].first) && scored[i].first > 0 ? NAN : -scored[i].first;
        }
      }
    };
    return parallel_for(r.nq, 1, rescore_queries);
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status FlatIndex::export_contents(Contents* out) const noexcept {
  std::shared_lock lock(mutex_);
  try {
    out->ids = ids_;
    out->codes = codes_;
    out->vectors = vectors_;
    out->quantized = quantized_;
    out->scales = scales_;
  } catch (...) {
    return Status::out_of_memory;
  }
  return Status::ok;
}

Status FlatIndex::import_contents(const std::int32_t* ids, std::size_t count, const std::uint8_t* codes,
                                  const float* vectors, const std::int8_t* quantized, const float* scales) noexcept {
  if (count > 0 && (!ids || !codes)) return Status::invalid_argument;
  if (count > 0 && config_.store == VectorStore::float32 && !vectors) return Status::invalid_argument;
  if (count > 0 && config_.store == VectorStore::int8 && (!quantized || !scales)) return Status::invalid_argument;
  std::unique_lock lock(mutex_);
  if (!ids_.empty()) return Status::invalid_argument;
  try {
    const Status s = append_locked(ids, count, codes, vectors, quantized, scales);
    if (s != Status::ok) {
      ids_.clear(), codes_.clear(), vectors_.clear(), quantized_.clear(), scales_.clear(), norms_.clear(), rows_.clear();
    }
    return s;
  } catch (...) {
    ids_.clear(), codes_.clear(), vectors_.clear(), quantized_.clear(), scales_.clear(), norms_.clear(), rows_.clear();
    return Status::out_of_memory;
  }
}

}  // namespace tessera::binary
