// CPU internals of the affinity family: the element operations of one message row, written
// once and compiled three times (baseline x86-64, and AVX2 and AVX-512 clones picked at run time
// by common/simd.hpp, no -march=native). Elementwise operations only, so vectorizing them changes no result
// (contraction into FMA is off: -ffp-contract=off); the one reduction, the top two of a row,
// only compares values, so any order gives the same (value, first index) answer. The CUDA
// kernels in affinity.cu perform the same operations on the same values.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

#define ISEL_AFF_INLINE inline __attribute__((always_inline))

// 256- and 512-bit vector types pass through always-inline helpers only; no ABI crosses a call.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace isel::affinity::detail {

template <class T>
struct Coefficients {
  T damping, keep;       // d and 1 - d (rounded from double)
  bool history = false;
  T alpha = 0, oma = 0;  // alpha_t and 1 - alpha_t
};

template <class T>
ISEL_AFF_INLINE T positive(T r) { return r > T(0) ? r : T(0); }

// T_ik of the availability update off the diagonal, and the new A_ik.
template <class T>
ISEL_AFF_INLINE T availability(T a, T r, T colsum_k, T damping, T keep) {
  T t = positive(r) - colsum_k;
  t = positive(t);
  return a * damping - t * keep;
}

// The diagonal entry: T_kk = R_kk - colsum_k, not clipped.
template <class T>
ISEL_AFF_INLINE T availability_diagonal(T a, T r, T colsum_k, T damping, T keep) {
  T t = r - colsum_k;
  return a * damping - t * keep;
}

// Running top two of (value, position): max1 at its first position idx1, and max2, the largest
// value at any other position (equal to max1 on a tie).
template <class T>
struct Best {
  T max1 = -std::numeric_limits<T>::infinity();
  int64_t idx1 = std::numeric_limits<int64_t>::max();
  T max2 = -std::numeric_limits<T>::infinity();

  ISEL_AFF_INLINE void push(T x, int64_t p) {
    if (x > max1) {
      max2 = max1;
      max1 = x;
      idx1 = p;
    } else {
      max2 = x > max2 ? x : max2;
    }
  }
};

// Y, I, Y2 from several trackers over disjoint positions.
template <class T>
ISEL_AFF_INLINE void merge(const Best<T>* b, int count, T& y, int64_t& top, T& y2) {
  int c = 0;
  for (int j = 1; j < count; ++j)
    if (b[j].max1 > b[c].max1 || (b[j].max1 == b[c].max1 && b[j].idx1 < b[c].idx1)) c = j;
  y = b[c].max1;
  top = b[c].idx1;
  y2 = b[c].max2;
  for (int j = 0; j < count; ++j) {
    if (b[j].max2 > y2) y2 = b[j].max2;
    if (j != c && b[j].max1 > y2) y2 = b[j].max1;
  }
}

// R_t for entries [0, m) given Y (entry `top` gets S - Y2); then the history mix.
template <class T>
ISEL_AFF_INLINE void responsibility_update(T* r, const T* s, const T* h, int64_t m, int64_t top, T y, T y2,
                                           const Coefficients<T>& c) {
  const T r_top = r[top];
  for (int64_t e = 0; e < m; ++e) {
    T rn = s[e] - y;
    r[e] = r[e] * c.damping + rn * c.keep;
  }
  T rn = s[top] - y2;
  r[top] = r_top * c.damping + rn * c.keep;
  if (c.history)
    for (int64_t e = 0; e < m; ++e) r[e] = c.alpha * h[e] + c.oma * r[e];
}

// ---- the fused first sweep of a dense row, in 256- or 512-bit lanes (GCC vector extensions;
// the clone's target decides the instructions)

template <class T, int Bytes>
struct Lanes;
template <int Bytes>
struct Lanes<float, Bytes> {
  typedef float V __attribute__((vector_size(Bytes)));
  typedef int32_t I __attribute__((vector_size(Bytes)));
  typedef int32_t Idx;
  static constexpr int W = Bytes / 4;
};
template <int Bytes>
struct Lanes<double, Bytes> {
  typedef double V __attribute__((vector_size(Bytes)));
  typedef int64_t I __attribute__((vector_size(Bytes)));
  typedef int64_t Idx;
  static constexpr int W = Bytes / 8;
};

template <class V>
ISEL_AFF_INLINE V load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V>
ISEL_AFF_INLINE void store(void* p, V v) { std::memcpy(p, &v, sizeof(V)); }

// Per-lane top two over positions [lo, hi) of a row: when `update`, first A_ik <- availability
// (written back); then x = A_ik + S_ik joins the trackers. Lane l sees positions lo + l + W j,
// the tail goes to `tail`.
template <class T, bool kUpdate, int Bytes>
struct Sweep {
  using L = Lanes<T, Bytes>;
  typename L::V m1, m2;
  typename L::I i1;

  ISEL_AFF_INLINE Sweep() {
    const typename L::V zero = {};
    const typename L::I izero = {};
    m1 = zero - std::numeric_limits<T>::infinity();
    m2 = m1;
    i1 = izero + std::numeric_limits<typename L::Idx>::max();
  }

  ISEL_AFF_INLINE void run(T* a, const T* r, const T* colsum, const T* s, int64_t lo, int64_t hi, T damping, T keep,
                           Best<T>& tail) {
    using V = typename L::V;
    using I = typename L::I;
    constexpr int W = L::W;
    I pos = {};
    for (int l = 0; l < W; ++l) pos[l] = static_cast<typename L::Idx>(lo + l);
    const V zero = {};
    int64_t e = lo;
    for (; e + W <= hi; e += W) {
      V av = load<V>(a + e);
      if constexpr (kUpdate) {
        V rv = load<V>(r + e), cv = load<V>(colsum + e);
        V t = (rv > zero ? rv : zero) - cv;
        t = t > zero ? t : zero;
        av = av * damping - t * keep;
        store(a + e, av);
      }
      V x = av + load<V>(s + e);
      auto gt = x > m1;
      m2 = gt ? m1 : (x > m2 ? x : m2);
      i1 = gt ? pos : i1;
      m1 = gt ? x : m1;
      pos += W;
    }
    for (; e < hi; ++e) {
      T av = a[e];
      if constexpr (kUpdate) {
        av = availability(av, r[e], colsum[e], damping, keep);
        a[e] = av;
      }
      tail.push(av + s[e], e);
    }
  }

  ISEL_AFF_INLINE void finish(const Best<T>& tail, T& y, int64_t& top, T& y2) const {
    Best<T> b[L::W + 1];
    for (int l = 0; l < L::W; ++l) {
      b[l].max1 = m1[l];
      b[l].idx1 = m1[l] == -std::numeric_limits<T>::infinity() ? std::numeric_limits<int64_t>::max()
                                                                 : static_cast<int64_t>(i1[l]);
      b[l].max2 = m2[l];
    }
    b[L::W] = tail;
    merge(b, L::W + 1, y, top, y2);
  }
};

// The whole first sweep of dense row i of length n: Y, I, Y2 of A + S (A updated first when
// `update`, the diagonal entry with its own formula).
template <class T, bool kUpdate, int Bytes>
ISEL_AFF_INLINE void dense_first_sweep(T* a, const T* r, const T* colsum, const T* s, int64_t n, int64_t i,
                                       T damping, T keep, T& y, int64_t& top, T& y2) {
  Sweep<T, kUpdate, Bytes> sw;
  Best<T> tail;
  if constexpr (kUpdate) {
    sw.run(a, r, colsum, s, 0, i, damping, keep, tail);
    a[i] = availability_diagonal(a[i], r[i], colsum[i], damping, keep);
    tail.push(a[i] + s[i], i);
    sw.run(a, r, colsum, s, i + 1, n, damping, keep, tail);
  } else {
    sw.run(a, r, colsum, s, 0, n, damping, keep, tail);
  }
  sw.finish(tail, y, top, y2);
}

}  // namespace isel::affinity::detail
