#include "tessera/multivector_index.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "tessera/runtime.h"

namespace tessera::fde {
namespace {

binary::IndexConfig code_config(const State& s, std::size_t bits) {
  binary::IndexConfig c;
  c.dim = s.config.output_dim();
  c.planes = bits;
  return c;
}

}  // namespace

MultiVectorIndex::MultiVectorIndex(std::shared_ptr<const State> encoder, std::size_t fde_bits)
    : encoder_(std::move(encoder)), fde_bits_(fde_bits) {
  if (fde_bits_ > 0) codes_ = std::make_unique<binary::FlatIndex>(code_config(*encoder_, fde_bits_));
}

std::size_t MultiVectorIndex::size() const noexcept {
  std::shared_lock lock(mutex_);
  return ids_.size();
}

std::size_t MultiVectorIndex::memory_bytes() const noexcept {
  std::shared_lock lock(mutex_);
  std::size_t bytes = ids_.capacity() * sizeof(std::int32_t) + fdes_.capacity() * sizeof(float) +
                      rows_.bucket_count() * 2 * sizeof(void*) + rows_.size() * 4 * sizeof(void*);
  for (const auto& t : tokens_) bytes += t.capacity() * sizeof(float) + sizeof(t);
  if (codes_) bytes += codes_->memory_bytes();
  return bytes;
}

Status MultiVectorIndex::append_locked(const std::int32_t* ids, std::size_t count, const float* tokens,
                                       const std::int32_t* lengths, const float* fdes, const std::uint8_t* codes) {
  const std::size_t dim = encoder_->config.dim, out_dim = encoder_->config.output_dim();
  std::unordered_set<std::int32_t> batch;
  for (std::size_t i = 0; i < count; ++i)
    if (rows_.count(ids[i]) || !batch.insert(ids[i]).second || lengths[i] <= 0) return Status::invalid_argument;
  if (ids_.size() + count > static_cast<std::size_t>(INT32_MAX)) return Status::invalid_argument;
  if (codes_) {
    const Status s = codes_->add(ids, count, codes, nullptr);
    if (s != Status::ok) return s;
  } else {
    fdes_.insert(fdes_.end(), fdes, fdes + count * out_dim);
  }
  std::size_t offset = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const auto n = static_cast<std::size_t>(lengths[i]);
    tokens_.emplace_back(tokens + offset * dim, tokens + (offset + n) * dim);
    offset += n;
    rows_[ids[i]] = static_cast<std::uint32_t>(ids_.size());
    ids_.push_back(ids[i]);
  }
  return Status::ok;
}

Status MultiVectorIndex::add(const std::int32_t* ids, std::size_t count, const float* tokens,
                             const std::int32_t* lengths) noexcept {
  if (count == 0) return Status::ok;
  if (!ids || !tokens || !lengths) return Status::invalid_argument;
  try {
    // Encode outside the lock: searches continue meanwhile.
    const Config& c = encoder_->config;
    std::vector<float> fdes(count * c.output_dim());
    Status s = encode(*encoder_, tokens, lengths, count, true, fdes.data());
    if (s != Status::ok) return s;
    std::vector<std::uint8_t> codes;
    if (fde_bits_ > 0) {
      codes.resize(count * binary::residual_row_bytes(c.output_dim(), fde_bits_));
      s = binary::residual_encode(fdes.data(), count, c.output_dim(), fde_bits_, nullptr, codes.data());
      if (s != Status::ok) return s;
    }
    std::unique_lock lock(mutex_);
    const std::size_t before = ids_.size(), fde_before = fdes_.size();
    s = append_locked(ids, count, tokens, lengths, fdes.data(), codes.data());
    if (s != Status::ok) {  // a rejected batch leaves nothing behind
      ids_.resize(before), tokens_.resize(before), fdes_.resize(fde_before);
      for (std::size_t i = 0; i < count; ++i) {
        auto it = rows_.find(ids[i]);
        if (it != rows_.end() && it->second >= before) rows_.erase(it);
      }
    }
    return s;
  } catch (...) {
    return Status::out_of_memory;
  }
}

std::size_t MultiVectorIndex::remove(const std::int32_t* ids, std::size_t count) noexcept {
  std::unique_lock lock(mutex_);
  const std::size_t out_dim = encoder_->config.output_dim();
  std::size_t removed = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const auto it = rows_.find(ids[i]);
    if (it == rows_.end()) continue;
    const std::size_t row = it->second, last = ids_.size() - 1;
    rows_.erase(it);
    if (row != last) {
      ids_[row] = ids_[last];
      rows_[ids_[row]] = static_cast<std::uint32_t>(row);
      tokens_[row].swap(tokens_[last]);
      if (!codes_) std::memcpy(&fdes_[row * out_dim], &fdes_[last * out_dim], out_dim * sizeof(float));
    }
    ids_.pop_back();
    tokens_.pop_back();
    if (!codes_) fdes_.resize(last * out_dim);
    if (codes_) codes_->remove(&ids[i], 1);
    ++removed;
  }
  return removed;
}

Status MultiVectorIndex::candidates_locked(const float* fde, std::size_t wanted, std::vector<std::int32_t>& ids,
                                           std::vector<float>& scores) const {
  const std::size_t n = ids_.size(), out_dim = encoder_->config.output_dim();
  wanted = std::min(wanted, n);
  ids.resize(wanted);
  scores.resize(wanted);
  if (codes_) {  // the binary module: exact ADC of the float query FDE against the codes
    binary::SearchRequest r;
    r.queries = fde, r.nq = 1, r.k = wanted, r.metric = binary::Metric::adc;
    return codes_->search(r, ids.data(), scores.data());
  }
  std::vector<float> all(n);
  auto body = [&](std::size_t begin, std::size_t end) {
    for (std::size_t d = begin; d < end; ++d) all[d] = dot(fde, &fdes_[d * out_dim], out_dim);
  };
  const Status s = parallel_for(n, grain_for_bytes(out_dim * sizeof(float), std::size_t{1} << 18), body);
  if (s != Status::ok) return s;
  std::vector<std::pair<float, std::int32_t>> order(n);  // (-score, id): ascending is best first
  for (std::size_t d = 0; d < n; ++d) order[d] = {std::isnan(all[d]) ? INFINITY : -all[d], ids_[d]};
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(wanted), order.end());
  for (std::size_t i = 0; i < wanted; ++i) ids[i] = order[i].second, scores[i] = -order[i].first;
  return Status::ok;
}

Status MultiVectorIndex::search(const float* query, std::size_t query_tokens, std::size_t k, std::size_t candidates,
                                bool rerank, std::int32_t* out_ids, float* out_scores,
                                std::size_t* out_count) const noexcept {
  if (k == 0 || query_tokens == 0 || !query || !out_ids || !out_scores || !out_count) return Status::invalid_argument;
  try {
    const Config& c = encoder_->config;
    std::vector<float> fde(c.output_dim());
    const auto nq = static_cast<std::int32_t>(query_tokens);
    Status s = encode(*encoder_, query, &nq, 1, false, fde.data());
    if (s != Status::ok) return s;
    std::shared_lock lock(mutex_);
    const std::size_t n = ids_.size();
    *out_count = std::min(k, n);
    if (n == 0) return Status::ok;
    std::vector<std::int32_t> ids;
    std::vector<float> scores;
    s = candidates_locked(fde.data(), rerank ? std::max(k, candidates) : k, ids, scores);
    if (s != Status::ok) return s;
    if (rerank) {
      std::vector<const float*> docs(ids.size());
      std::vector<std::int32_t> lengths(ids.size());
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const auto& t = tokens_[rows_.at(ids[i])];
        docs[i] = t.data();
        lengths[i] = static_cast<std::int32_t>(t.size() / c.dim);
      }
      s = chamfer_scores(query, query_tokens, docs.data(), lengths.data(), ids.size(), c.dim, scores.data());
      if (s != Status::ok) return s;
      std::vector<std::pair<float, std::int32_t>> order(ids.size());
      for (std::size_t i = 0; i < ids.size(); ++i) order[i] = {std::isnan(scores[i]) ? INFINITY : -scores[i], ids[i]};
      std::sort(order.begin(), order.end());
      for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = order[i].second, scores[i] = -order[i].first;
    }
    const std::size_t kk = std::min(k, ids.size());
    std::copy_n(ids.begin(), kk, out_ids);
    std::copy_n(scores.begin(), kk, out_scores);
    *out_count = kk;
    return Status::ok;
  } catch (...) {
    return Status::out_of_memory;
  }
}

Status MultiVectorIndex::export_contents(Contents* out) const noexcept {
  std::shared_lock lock(mutex_);
  try {
    out->ids = ids_;
    out->lengths.resize(ids_.size());
    out->tokens.clear();
    for (std::size_t i = 0; i < ids_.size(); ++i) {
      out->lengths[i] = static_cast<std::int32_t>(tokens_[i].size() / encoder_->config.dim);
      out->tokens.insert(out->tokens.end(), tokens_[i].begin(), tokens_[i].end());
    }
    out->fdes = fdes_;
    out->codes.clear();
    if (codes_) {
      // The code index keeps its own row order: export in ours.
      binary::FlatIndex::Contents c;
      const Status s = codes_->export_contents(&c);
      if (s != Status::ok) return s;
      std::unordered_map<std::int32_t, std::size_t> at;
      for (std::size_t i = 0; i < c.ids.size(); ++i) at[c.ids[i]] = i;
      const std::size_t row = codes_->row_bytes();
      out->codes.resize(ids_.size() * row);
      for (std::size_t i = 0; i < ids_.size(); ++i) std::memcpy(&out->codes[i * row], &c.codes[at.at(ids_[i]) * row], row);
    }
  } catch (...) {
    return Status::out_of_memory;
  }
  return Status::ok;
}

Status MultiVectorIndex::import_contents(const Contents& c) noexcept {
  const std::size_t count = c.ids.size(), dim = encoder_->config.dim, out_dim = encoder_->config.output_dim();
  if (c.lengths.size() != count) return Status::invalid_argument;
  std::size_t total = 0;
  for (std::int32_t l : c.lengths) {
    if (l <= 0) return Status::invalid_argument;
    total += static_cast<std::size_t>(l);
  }
  if (c.tokens.size() != total * dim) return Status::invalid_argument;
  if (fde_bits_ == 0 && c.fdes.size() != count * out_dim) return Status::invalid_argument;
  if (fde_bits_ > 0 && c.codes.size() != count * binary::residual_row_bytes(out_dim, fde_bits_)) return Status::invalid_argument;
  try {
    std::unique_lock lock(mutex_);
    if (!ids_.empty()) return Status::invalid_argument;
    const Status s = append_locked(c.ids.data(), count, c.tokens.data(), c.lengths.data(), c.fdes.data(), c.codes.data());
    if (s != Status::ok) {
      ids_.clear(), tokens_.clear(), fdes_.clear(), rows_.clear();
      if (codes_) codes_ = std::make_unique<binary::FlatIndex>(code_config(*encoder_, fde_bits_));
    }
    return s;
  } catch (...) {
    return Status::out_of_memory;
  }
}

}  // namespace tessera::fde
