// Order-preserving integer keys of floats and the digit choice of a radix selection, shared by
// the CPU median (similarity_cpu.cpp) and the CUDA one (affinity.cu).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define ISEL_AFF_HD __host__ __device__
#else
#define ISEL_AFF_HD
#endif

namespace isel::affinity::detail {

template <class T>
struct KeyWord;  // the unsigned integer as wide as T
template <>
struct KeyWord<float> {
  using U = uint32_t;
};
template <>
struct KeyWord<double> {
  using U = unsigned long long;
};

// Keys compare as unsigned integers in the order of their floats: a negative float has all its
// bits flipped, a non-negative one has its sign bit set.
template <class T>
struct Keys {
  using U = typename KeyWord<T>::U;
  static constexpr int kBits = 8 * sizeof(T);
  ISEL_AFF_HD static U key(T v) {
    const U sign = U(1) << (kBits - 1);
    U b;
    memcpy(&b, &v, sizeof(T));
    return (b & sign) ? ~b : (b | sign);
  }
  ISEL_AFF_HD static T value(U k) {
    const U sign = U(1) << (kBits - 1);
    U b = (k & sign) ? (k & ~sign) : ~k;
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
  }
};

// Selection of the order statistics want[0] and want[1] (0-based) together, one 8-bit digit
// per pass from the top. A pass counts, for each target, the values whose key matches the
// target's prefix under `mask`, by digit (hist[0..255] for target 0, hist[256..511] for target
// 1, or hist[0..255] for both while the prefixes agree); `choose` then fixes each digit.
struct RadixPair {
  int64_t want[2];
  unsigned long long prefix[2] = {0, 0};
  unsigned long long mask = 0;

  bool same() const { return prefix[0] == prefix[1]; }

  template <class Count>
  void choose(int shift, Count count) {  // count(bin) -> values in that histogram bin
    const bool shared = same();
    for (int s = 0; s < 2; ++s) {
      const int base = (shared ? 0 : s) * 256;
      int64_t seen = 0;
      for (unsigned dgt = 0; dgt < 256; ++dgt) {
        const int64_t c = count(base + static_cast<int>(dgt));
        if (want[s] < seen + c) {
          want[s] -= seen;
          prefix[s] |= static_cast<unsigned long long>(dgt) << shift;
          break;
        }
        seen += c;
      }
    }
    mask |= 0xffull << shift;
  }
};

}  // namespace isel::affinity::detail
