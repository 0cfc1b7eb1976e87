// Open-addressing hash index from keys to dense ids (0, 1, 2, ... in insertion order). The keys
// live with the caller, addressed by id; the index keeps per slot the id and 32 bits of the
// hash, and asks the caller whether a candidate id holds the probed key. Identity is therefore
// always decided by full key equality: a hash collision only costs a comparison.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "common/check.hpp"

namespace isel::coverage {

// splitmix64's finalizer: a fast, well-mixing 64-bit permutation.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

inline uint64_t hash_bytes(const char* p, size_t n) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = mix64(h ^ w);
  }
  if (i < n) {
    uint64_t w = 0;
    std::memcpy(&w, p + i, n - i);
    h = mix64(h ^ w ^ 0x5555555555555555ull);
  }
  return h;
}

// Open-addressing table size for n keys: a power of two (mask indexing) at most half full.
inline size_t table_capacity(size_t n) {
  size_t c = 64;
  while (c < 2 * n) c *= 2;
  return c;
}

class FlatIndex {
 public:
  explicit FlatIndex(size_t expected = 1024) { rehash(table_capacity(expected)); }

  size_t size() const { return size_; }

  // The id of the key with hash `h` (eq(id) says whether id holds it), inserting it as id
  // size() when absent. Returns {id, inserted}.
  template <class Eq>
  std::pair<uint32_t, bool> find_or_insert(uint64_t h, Eq&& eq) {
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    size_t pos = static_cast<size_t>(h) & mask_;
    for (;;) {
      uint64_t s = slots_[pos];
      if (s == 0) break;
      if (static_cast<uint32_t>(s >> 32) == tag) {
        uint32_t id = static_cast<uint32_t>(s) - 1;
        if (eq(id)) return {id, false};
      }
      pos = (pos + 1) & mask_;
    }
    require(size_ < 0xFFFFFFFEull, "more than 2^32 - 2 distinct keys");
    const uint32_t id = static_cast<uint32_t>(size_);
    slots_[pos] = (static_cast<uint64_t>(tag) << 32) | (static_cast<uint64_t>(id) + 1);
    positions_.push_back(static_cast<uint32_t>(h));
    ++size_;
    if (2 * size_ > slots_.size()) rehash(slots_.size() * 2);
    return {id, true};
  }

  void release() {
    std::vector<uint64_t>().swap(slots_);
    std::vector<uint32_t>().swap(positions_);
  }

 private:
  void rehash(size_t capacity) {
    std::vector<uint64_t> old;
    old.swap(slots_);
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    for (uint64_t s : old) {
      if (s == 0) continue;
      uint32_t id = static_cast<uint32_t>(s) - 1;
      size_t pos = positions_[id] & mask_;
      while (slots_[pos] != 0) pos = (pos + 1) & mask_;
      slots_[pos] = s;
    }
  }

  std::vector<uint64_t> slots_;       // (hash tag << 32) | (id + 1); 0 = empty
  std::vector<uint32_t> positions_;   // per id: the low 32 bits of its hash (home slot)
  size_t mask_ = 0, size_ = 0;
};

}  // namespace isel::coverage
