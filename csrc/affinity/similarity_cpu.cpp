// Similarities, preference, median and tie-breaking noise for affinity propagation (CPU).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "affinity/affinity.hpp"
#include "affinity/pair_similarity.hpp"
#include "affinity/radix.hpp"
#include "common/check.hpp"
#include "common/parallel.hpp"

namespace isel::affinity {

using detail::dispatch_messages;
using detail::with_rows;

void similarity_matrix(const void* X, DType x_dtype, int64_t n, int64_t d, Metric metric, void* S,
                       DType s_dtype, int threads, const Hooks& hooks) {
  require(n >= 1 && d >= 1, "X must be non-empty (got ", n, " x ", d, ")");
  with_rows(X, x_dtype, n, d, metric, threads, [&](auto& rows) {
    dispatch_messages(s_dtype, [&](auto tag) {
      using T = decltype(tag);
      T* s = static_cast<T*>(S);
      // Upper triangle by row blocks (then mirrored), so S is exactly symmetric, computed in
      // tiles of 4 x 4 pairs. Rows are interleaved over the workers to balance the triangle.
      using A = typename std::decay_t<decltype(rows)>::A;
      rows.pack(threads);
      const TileFn<A> tile = tile_kernel<A>(simd_level());
      const int64_t block = 64;
      const int64_t nblocks = (n + block - 1) / block;
      for (int64_t b0 = 0; b0 < nblocks; b0 += 16) {
        const int64_t b1 = std::min(nblocks, b0 + 16);
        const int workers = resolve_threads(threads);
        parallel_for(workers, workers, [&](int64_t wlo, int64_t whi, int) {
          alignas(64) A sq[kTile * kTile];
          for (int64_t w = wlo; w < whi; ++w)
            for (int64_t b = b0 + w; b < b1; b += workers)
              for (int64_t i0 = b * block; i0 < std::min(n, (b + 1) * block); i0 += kTile)
                for (int64_t j0 = i0; j0 < n; j0 += kTile) {
                  rows.tile_sq(tile, i0, j0, sq);
                  for (int64_t m = 0; m < kTile && i0 + m < n; ++m)
                    for (int64_t q = std::max<int64_t>(0, i0 + m - j0); q < kTile && j0 + q < n; ++q)
                      s[(i0 + m) * n + j0 + q] = static_cast<T>(detail::similarity_from_sq(sq[kTile * q + m], metric));
                }
        }, 1);
        hooks.tick(std::min(n, b1 * block), n);
      }
      // the mirror, in square blocks so that the transposed reads stay in cache
      const int64_t mblocks = (n + block - 1) / block;
      parallel_for(mblocks, threads, [&](int64_t lo, int64_t hi, int) {
        for (int64_t bi = lo; bi < hi; ++bi)
          for (int64_t bj = 0; bj <= bi; ++bj)
            for (int64_t i = bi * block; i < std::min(n, (bi + 1) * block); ++i)
              for (int64_t j = bj * block; j < std::min(i, (bj + 1) * block); ++j) s[i * n + j] = s[j * n + i];
      }, 1);
    });
  });
}

void similarity_graph(const void* X, DType x_dtype, int64_t n, int64_t d, Metric metric, const int64_t* indptr,
                      const int64_t* indices, void* values, DType s_dtype, int threads) {
  require(n >= 1 && d >= 1, "X must be non-empty (got ", n, " x ", d, ")");
  for (int64_t e = 0; e < indptr[n]; ++e)
    require(indices[e] >= 0 && indices[e] < n, "column index ", indices[e], " at entry ", e, " is out of range for ", n,
            " rows");
  with_rows(X, x_dtype, n, d, metric, threads, [&](auto& rows) {
    dispatch_messages(s_dtype, [&](auto tag) {
      using T = decltype(tag);
      T* v = static_cast<T*>(values);
      parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
        for (int64_t i = lo; i < hi; ++i)
          for (int64_t e = indptr[i]; e < indptr[i + 1]; ++e) v[e] = static_cast<T>(rows.sim(i, indices[e]));
      }, 256);
    });
  });
}

// ---- median by radix selection over order-preserving keys (no copy of the values)

namespace {

// The order statistics `rank` and `rank + 1` (0-based), found together.
template <class T>
std::pair<T, T> select_pair(const T* v, int64_t count, int64_t rank, int threads) {
  using K = detail::Keys<T>;
  using U = typename K::U;
  const int workers = resolve_threads(threads);
  detail::RadixPair sel;
  sel.want[0] = rank;
  sel.want[1] = std::min(rank + 1, count - 1);
  for (int shift = K::kBits - 8; shift >= 0; shift -= 8) {
    const bool same = sel.same();
    const U p0 = static_cast<U>(sel.prefix[0]), p1 = static_cast<U>(sel.prefix[1]), mask = static_cast<U>(sel.mask);
    std::vector<std::array<int64_t, 512>> hist(workers);
    parallel_for(count, workers, [&](int64_t lo, int64_t hi, int w) {
      auto& h = hist[w];
      h.fill(0);
      for (int64_t e = lo; e < hi; ++e) {
        const U k = K::key(v[e]);
        const unsigned digit = static_cast<unsigned>((k >> shift) & 0xffu);
        if ((k & mask) == p0) ++h[digit];
        if (!same && (k & mask) == p1) ++h[256 + digit];
      }
    }, 1 << 16);
    sel.choose(shift, [&](int bin) {
      int64_t c = 0;
      for (auto& h : hist) c += h[bin];
      return c;
    });
  }
  return {K::value(static_cast<U>(sel.prefix[0])), K::value(static_cast<U>(sel.prefix[1]))};
}

}  // namespace

double median(const void* values, DType dtype, int64_t count, int threads) {
  require(count >= 1, "the median needs at least one value");
  return dispatch_messages(dtype, [&](auto tag) -> double {
    using T = decltype(tag);
    const T* v = static_cast<const T*>(values);
    auto [a, b] = select_pair<T>(v, count, (count - 1) / 2, threads);
    if (count % 2 == 1) return static_cast<double>(a);
    return (static_cast<double>(a) + static_cast<double>(b)) / 2.0;
  });
}

void place_preference(void* S, DType dtype, int64_t n, const double* preference, bool per_sample) {
  dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* s = static_cast<T*>(S);
    for (int64_t i = 0; i < n; ++i) s[i * n + i] = static_cast<T>(per_sample ? preference[i] : preference[0]);
  });
}

void add_noise(void* S, DType dtype, int64_t count, const double* z) {
  dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* s = static_cast<T*>(S);
    const T eps = std::numeric_limits<T>::epsilon();
    const T tiny100 = static_cast<T>(std::numeric_limits<T>::min() * T(100));
    for (int64_t e = 0; e < count; ++e) {
      T t = eps * s[e];
      t = t + tiny100;
      t = t * static_cast<T>(z[e]);
      s[e] = s[e] + t;
    }
  });
}

void offdiag_range(const void* S, DType dtype, int64_t n, double* lo, double* hi) {
  require(n >= 2, "the off-diagonal range needs n >= 2 (got ", n, ")");
  dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* s = static_cast<const T*>(S);
    T mn = std::numeric_limits<T>::infinity(), mx = -std::numeric_limits<T>::infinity();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (i != j) {
          mn = std::min(mn, s[i * n + j]);
          mx = std::max(mx, s[i * n + j]);
        }
    *lo = mn;
    *hi = mx;
  });
}

}  // namespace isel::affinity
