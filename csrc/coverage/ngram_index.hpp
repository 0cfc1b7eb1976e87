// N-gram keys and the hash index that maps them to dense ids. A key holds up to W token ranks
// (1-based, zero padded); the index stores keys inside its slots (open addressing, linear
// probing), so a lookup usually costs one cache miss, and identity is full key equality.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "common/check.hpp"
#include "coverage/flat_index.hpp"

namespace isel::coverage {

// Lexicographic order of the rank arrays is the code-point order of the joined n-gram strings
// (ranks follow the tokens' code-point order; a space sorts below every word character, and 0
// pads, so "a" < "a b" < "ab").
template <int W>
struct Key {
  uint32_t t[W];
  bool empty() const { return t[0] == 0; }
  bool operator==(const Key& o) const { return std::memcmp(t, o.t, sizeof t) == 0; }
  bool operator<(const Key& o) const {
    for (int i = 0; i < W; i += 2) {
      const uint64_t a = pair(i), b = o.pair(i);
      if (a != b) return a < b;
    }
    return false;
  }
  // Words i and i + 1 as one number that compares like the two words in order.
  uint64_t pair(int i) const {
    return (static_cast<uint64_t>(t[i]) << 32) | (i + 1 < W ? t[i + 1] : 0u);
  }
  uint64_t hash() const {
    uint64_t h = 0x243f6a8885a308d3ull;
    for (int i = 0; i < W; i += 2) h = mix64(h ^ pair(i));
    return h;
  }
};

// Maps keys to dense ids (0, 1, ... in insertion order) and keeps a value V next to each key, so
// one probe reaches both.
template <int W, class V>
class KeyIndex {
 public:
  struct Slot {
    Key<W> key;
    uint32_t id;
    V value;
  };

  explicit KeyIndex(size_t expected = 1024) { allocate(table_capacity(expected)); }

  size_t size() const { return size_; }

  void prefetch(uint64_t h) const { __builtin_prefetch(&slots_[h & mask_]); }

  // {slot, inserted}: the slot of `key` (hash h), inserted with id size() and value V{} when
  // absent. The pointer is valid until the next insertion.
  std::pair<Slot*, bool> find_or_insert(const Key<W>& key, uint64_t h) {
    size_t pos = h & mask_;
    for (;;) {
      Slot& s = slots_[pos];
      if (s.key.empty()) break;
      if (s.key == key) return {&s, false};
      pos = (pos + 1) & mask_;
    }
    require(size_ < 0xFFFFFFFEull, "more than 2^32 - 2 distinct n-grams");
    if (2 * (size_ + 1) > slots_.size()) {
      grow();
      return find_or_insert(key, h);
    }
    slots_[pos] = Slot{key, static_cast<uint32_t>(size_++), V{}};
    return {&slots_[pos], true};
  }

  // Calls fn(slot) for every key (in slot order), then empties the index.
  template <class Fn>
  void drain(Fn&& fn) {
    for (const Slot& s : slots_)
      if (!s.key.empty()) fn(s);
    std::vector<Slot>().swap(slots_);
    size_ = 0;
  }

 private:
  void allocate(size_t capacity) {
    slots_.assign(capacity, Slot{Key<W>{}, 0, V{}});
    mask_ = capacity - 1;
  }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    allocate(old.size() * 2);
    for (const Slot& s : old) {
      if (s.key.empty()) continue;
      size_t pos = s.key.hash() & mask_;
      while (!slots_[pos].key.empty()) pos = (pos + 1) & mask_;
      slots_[pos] = s;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

}  // namespace isel::coverage
