// Exemplars to labels (scikit-learn's final step) on dense and sparse similarities, and
// InsBank's representation scores.
#include <algorithm>
#include <limits>
#include <vector>

#include "affinity/affinity.hpp"
#include "affinity/labels.hpp"
#include "affinity/pair_similarity.hpp"
#include "common/check.hpp"
#include "common/parallel.hpp"

namespace isel::affinity {
namespace {

using namespace detail;

std::vector<int64_t> exemplar_list(const uint8_t* exemplar, int64_t n) {
  std::vector<int64_t> I;
  for (int64_t i = 0; i < n; ++i)
    if (exemplar[i]) I.push_back(i);
  return I;
}

// The refinement: each cluster's exemplar becomes the member whose column sum of similarities
// over the members (rows in ascending order, in double) is largest; the first such member.
// value(i, j) is the similarity of the pair.
template <class Value>
void refine(std::vector<int64_t>& I, const std::vector<int64_t>& c, int64_t n, int threads, Value value) {
  const int64_t K = static_cast<int64_t>(I.size());
  Groups g = group_by_cluster(c.data(), n, K);
  parallel_for(K, threads, [&](int64_t lo, int64_t hi, int) {
    std::vector<double> sums;
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t* ii = g.members.data() + g.start[k];
      const int64_t m = g.start[k + 1] - g.start[k];
      sums.assign(m, 0.0);
      for (int64_t jj = 0; jj < m; ++jj) sums[jj] = static_cast<double>(value(ii[0], ii[jj]));
      for (int64_t r = 1; r < m; ++r)
        for (int64_t jj = 0; jj < m; ++jj) sums[jj] = sums[jj] + static_cast<double>(value(ii[r], ii[jj]));
      int64_t best = 0;
      for (int64_t jj = 1; jj < m; ++jj)
        if (sums[jj] > sums[best]) best = jj;
      I[k] = ii[best];
    }
  }, 1);
}

template <class T>
int64_t dense(const T* S, int64_t n, const uint8_t* exemplar, int64_t* exemplars, int64_t* labels, int threads) {
  std::vector<int64_t> I = exemplar_list(exemplar, n);
  const int64_t K = static_cast<int64_t>(I.size());
  if (K == 0) {
    std::fill(labels, labels + n, int64_t{-1});
    return 0;
  }
  std::vector<int64_t> c(n);
  auto assign = [&]() {  // c_i = first argmax_k S[i, I[k]]; exemplars label themselves
    parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; ++i) {
        const T* row = S + i * n;
        int64_t bk = 0;
        T best = row[I[0]];
        for (int64_t k = 1; k < K; ++k)
          if (row[I[k]] > best) {
            best = row[I[k]];
            bk = k;
          }
        c[i] = bk;
      }
    }, std::max<int64_t>(1, 65536 / K));
    for (int64_t k = 0; k < K; ++k) c[I[k]] = k;
  };
  assign();
  refine(I, c, n, threads, [&](int64_t i, int64_t j) { return S[i * n + j]; });
  assign();
  return finish_labels(I, c.data(), n, exemplars, labels);
}

template <class T, class Rows>
int64_t sparse(const SparseProblem& p, const Rows& rows, const uint8_t* exemplar, int64_t* exemplars, int64_t* labels) {
  const Graph& g = p.g;
  const int64_t n = g.n;
  const T* S = static_cast<const T*>(p.S);
  std::vector<int64_t> I = exemplar_list(exemplar, n);
  const int64_t K = static_cast<int64_t>(I.size());
  if (K == 0) {
    std::fill(labels, labels + n, int64_t{-1});
    return 0;
  }
  // a stored pair's similarity, else the metric's (as the stored values were made, no noise)
  auto value = [&](int64_t i, int64_t j) -> T {
    const int64_t* b = g.indices + g.indptr[i];
    const int64_t* e = g.indices + g.indptr[i + 1];
    const int64_t* f = std::lower_bound(b, e, j);
    if (f != e && *f == j) return S[g.indptr[i] + (f - b)];
    return static_cast<T>(rows.sim(i, j));
  };
  std::vector<int64_t> c(n), pos(n);
  auto assign = [&]() {
    std::fill(pos.begin(), pos.end(), int64_t{-1});
    for (int64_t k = 0; k < K; ++k) pos[I[k]] = k;
    parallel_for(n, p.threads, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; ++i) {
        int64_t bk = -1;
        T best = 0;
        for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; ++e) {
          const int64_t k = pos[g.indices[e]];
          if (k >= 0 && (bk < 0 || S[e] > best || (S[e] == best && k < bk))) {
            best = S[e];
            bk = k;
          }
        }
        if (bk < 0)  // no exemplar among the stored neighbours: compare with every exemplar
          for (int64_t k = 0; k < K; ++k) {
            const T v = static_cast<T>(rows.sim(i, I[k]));
            if (bk < 0 || v > best) {
              best = v;
              bk = k;
            }
          }
        c[i] = bk;
      }
    }, 1024);
    for (int64_t k = 0; k < K; ++k) c[I[k]] = k;
  };
  assign();
  refine(I, c, n, p.threads, value);
  assign();
  return finish_labels(I, c.data(), n, exemplars, labels);
}

template <class T>
void scores(const T* R, const T* A, int64_t n, double* out, int threads) {
  std::vector<double> col(n);
  parallel_for(n, threads, [&](int64_t c0, int64_t c1, int) {
    for (int64_t k = c0; k < c1; ++k) col[k] = static_cast<double>(A[k]) + static_cast<double>(R[k]);
    for (int64_t i = 1; i < n; ++i)
      for (int64_t k = c0; k < c1; ++k)
        col[k] = col[k] + (static_cast<double>(A[i * n + k]) + static_cast<double>(R[i * n + k]));
  }, 256);
  parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; ++i) {
      const T* a = A + i * n;
      const T* r = R + i * n;
      double row = static_cast<double>(a[0]) + static_cast<double>(r[0]);
      for (int64_t k = 1; k < n; ++k) row = row + (static_cast<double>(a[k]) + static_cast<double>(r[k]));
      const double diag = static_cast<double>(a[i]) + static_cast<double>(r[i]);
      out[i] = (col[i] - row) + diag;
    }
  }, std::max<int64_t>(1, 65536 / n));
}

}  // namespace

int64_t dense_assign(const void* S, DType dtype, int64_t n, const uint8_t* exemplar, int64_t* exemplars,
                     int64_t* labels, int threads) {
  require(n >= 1, "n (", n, ") must be at least 1");
  return dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    return dense<T>(static_cast<const T*>(S), n, exemplar, exemplars, labels, threads);
  });
}

int64_t sparse_assign(const SparseProblem& p, const void* X, DType x_dtype, int64_t d, Metric metric,
                      const uint8_t* exemplar, int64_t* exemplars, int64_t* labels) {
  require(p.g.n >= 1, "n (", p.g.n, ") must be at least 1");
  int64_t K = 0;
  with_rows(X, x_dtype, p.g.n, d, metric, p.threads, [&](auto& rows) {
    K = dispatch_messages(p.dtype, [&](auto tag) {
      return sparse<decltype(tag)>(p, rows, exemplar, exemplars, labels);
    });
  });
  return K;
}

void representation_scores(const void* R, const void* A, DType dtype, int64_t n, double* out, int threads) {
  require(n >= 1, "n (", n, ") must be at least 1");
  dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    scores<T>(static_cast<const T*>(R), static_cast<const T*>(A), n, out, threads);
  });
}

}  // namespace isel::affinity
