// CPU internals of the affinity family: the similarity of two rows of X in the canonical float
// order (common/distance.hpp), shared by the dense builder, the graph builder and the sparse
// assignment. The CUDA kernels (affinity.cu) compute the same values bit for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "affinity/affinity.hpp"
#include "common/check.hpp"
#include "common/distance.hpp"
#include "common/distance_tile.hpp"
#include "common/half.hpp"
#include "common/parallel.hpp"

namespace isel::affinity::detail {

// similarity from the squared (scaled) distance, in the accumulation type A
template <class A>
inline A similarity_from_sq(A sq, Metric metric) {
  switch (metric) {
    case Metric::euclidean: return -std::sqrt(sq);
    case Metric::sqeuclidean: return -sq;
    default: return -(A(0.5) * sq);
  }
}

// Rows of X widened to the accumulation type once (exact for every storage type), with the
// inverse norms for the cosine metric. sim(i, j) is symmetric bit for bit.
template <class T>
class RowSimilarity {
 public:
  using A = accum_t<T>;

  RowSimilarity(const void* X, int64_t n, int64_t d, Metric metric, int threads)
      : n_(n), d_(d), metric_(metric) {
    const T* x = static_cast<const T*>(X);
    if constexpr (std::is_same_v<T, A>) {
      rows_ = x;
    } else {
      wide_.resize(static_cast<size_t>(n * d));
      parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
        for (int64_t i = lo; i < hi; ++i)
          for (int64_t j = 0; j < d; ++j) wide_[i * d + j] = load_float(x + i * d, j);
      }, 1024);
      rows_ = wide_.data();
    }
    if (metric == Metric::cosine) {
      inv_.resize(n);
      scaled_.resize(static_cast<size_t>(n * d));
      std::vector<A> zeros(d, A(0));
      int64_t zero_row = -1;
      for (int64_t i = 0; i < n && zero_row < 0; ++i) {
        A sq = sqdist<A, A>(row(i), zeros.data(), d);
        if (sq == A(0)) zero_row = i;
        inv_[i] = A(1) / std::sqrt(sq);
      }
      if (zero_row >= 0) fail_zero_norm(zero_row);
      parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
        for (int64_t i = lo; i < hi; ++i)
          for (int64_t j = 0; j < d; ++j) scaled_[i * d + j] = rows_[i * d + j] * inv_[i];
      }, 1024);
    }
  }

  const A* row(int64_t i) const { return rows_ + i * d_; }

  A sq(int64_t i, int64_t j) const {
    if (metric_ == Metric::cosine) return sqdist<A, A>(row(i), scaled_.data() + j * d_, d_, true, inv_[i]);
    return sqdist<A, A>(row(i), row(j), d_);
  }

  A sim(int64_t i, int64_t j) const { return similarity_from_sq(sq(i, j), metric_); }

  // The rows as the blocked kernel takes them (common/distance_tile.hpp): scaled for cosine,
  // zero-padded to a multiple of 32 columns and of kTile rows. Built on demand (dense only).
  void pack(int threads) {
    dp_ = padded_dim(d_);
    const int64_t rows = (n_ + kTile - 1) / kTile * kTile;
    packed_.assign(static_cast<size_t>(rows * dp_), A(0));
    parallel_for(n_, threads, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; ++i) {
        const bool cosine = metric_ == Metric::cosine;
        widen_row<A, A>(row(i), d_, dp_, cosine, cosine ? inv_[i] : A(1), packed_.data() + i * dp_);
      }
    }, 1024);
  }

  // sq(i0 + m, j0 + q) for m, q < kTile into out[kTile * q + m], bit for bit (after pack()).
  void tile_sq(TileFn<A> tile, int64_t i0, int64_t j0, A* out) const {
    tile(packed_.data() + i0 * dp_, dp_, packed_.data() + j0 * dp_, dp_, dp_, out);
  }

 private:
  int64_t n_, d_;
  Metric metric_;
  const A* rows_ = nullptr;
  std::vector<A> wide_, inv_, scaled_, packed_;
  int64_t dp_ = 0;
};

// Calls fn(RowSimilarity<T>&) for the storage type of X.
template <class Fn>
void with_rows(const void* X, DType x_dtype, int64_t n, int64_t d, Metric metric, int threads, Fn&& fn) {
  dispatch_dtype(x_dtype, [&](auto tag) {
    RowSimilarity<decltype(tag)> rows(X, n, d, metric, threads);
    fn(rows);
  });
}

// Calls fn(T{}) for the message type (float32 or float64 only).
template <class Fn>
decltype(auto) dispatch_messages(DType dt, Fn&& fn) {
  require(dt == DType::float32 || dt == DType::float64,
          "affinity propagation messages must be float32 or float64");
  if (dt == DType::float32) return fn(float{});
  return fn(double{});
}

}  // namespace isel::affinity::detail
