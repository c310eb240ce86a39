// Exact top-k selection with a total order: (key ascending, id ascending). Because the order is total, the k best of
// any partition of the candidates, merged, are the k best overall: per-thread heaps need no coordination and the
// result does not depend on how work was split. Internal to the core.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace tessera::binary::detail {

template <class Key>
struct Entry {
  Key key;
  std::int32_t id;
};

template <class Key>
inline bool before(const Entry<Key>& a, const Entry<Key>& b) {
  return a.key < b.key || (a.key == b.key && a.id < b.id);
}

// The k best entries seen so far, as a max-heap on (key, id): the root is the worst kept.
template <class Key>
class TopK {
 public:
  void reset(std::size_t capacity) {
    capacity_ = capacity;
    heap_.clear();
    heap_.reserve(capacity);
  }

  // Keys above this cannot enter (equal keys may, when their id is lower than the root's). Until the heap is full
  // every key can: float keys include +infinity (NaN scores rank there, last), so that is the open threshold.
  Key threshold() const {
    if (heap_.size() < capacity_)
      return std::numeric_limits<Key>::has_infinity ? std::numeric_limits<Key>::infinity() : std::numeric_limits<Key>::max();
    return heap_.front().key;
  }

  // Returns whether the entry was kept.
  bool push(Key key, std::int32_t id) {
    const Entry<Key> e{key, id};
    if (heap_.size() < capacity_) {
      heap_.push_back(e);
      std::push_heap(heap_.begin(), heap_.end(), before<Key>);
      return true;
    }
    if (capacity_ == 0 || !before(e, heap_.front())) return false;
    std::pop_heap(heap_.begin(), heap_.end(), before<Key>);
    heap_.back() = e;
    std::push_heap(heap_.begin(), heap_.end(), before<Key>);
    return true;
  }

  const std::vector<Entry<Key>>& entries() const { return heap_; }

 private:
  std::vector<Entry<Key>> heap_;
  std::size_t capacity_ = 0;
};

// Merges the heaps of one query from every slot and writes the best `kk`, in order.
template <class Key, class Write>
void merge_and_write(const TopK<Key>* const* heaps, std::size_t count, std::size_t kk, std::vector<Entry<Key>>& scratch,
                     Write write) {
  scratch.clear();
  for (std::size_t s = 0; s < count; ++s) scratch.insert(scratch.end(), heaps[s]->entries().begin(), heaps[s]->entries().end());
  const std::size_t take = std::min(kk, scratch.size());
  std::partial_sort(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(take), scratch.end(), before<Key>);
  for (std::size_t i = 0; i < take; ++i) write(i, scratch[i]);
}

}  // namespace tessera::binary::detail
