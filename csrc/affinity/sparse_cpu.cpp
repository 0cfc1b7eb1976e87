// Sparse affinity propagation on a symmetric graph (a symmetrized kNN graph): the dense
// updates restricted to the stored entries, with the same float operations in the same order.
// A pair that is not stored has similarity -inf, so it never wins a maximum and contributes
// nothing to a column sum; on the complete graph the result is the dense one, bit for bit
// (rows are stored in column order and column sums run over rows in order).
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "affinity/affinity.hpp"
#include "affinity/convergence.hpp"
#include "affinity/pair_similarity.hpp"
#include "affinity/row_ops.hpp"
#include "common/check.hpp"
#include "common/parallel.hpp"

namespace isel::affinity {
namespace {

using namespace detail;

// Every stored column of each row, sorted and unique: kNN pairs both ways plus the diagonal.
std::vector<std::vector<int64_t>> rows_of(const int64_t* nb, int64_t n, int64_t k, int threads) {
  std::vector<std::vector<int64_t>> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i].push_back(i);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < k; ++c) {
      const int64_t j = nb[i * k + c];
      if (j < 0 || j == i) continue;
      require(j < n, "neighbors[", i, ", ", c, "] (", j, ") is out of range for ", n, " points");
      rows[i].push_back(j);
      rows[j].push_back(i);
    }
  parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; ++i) {
      auto& r = rows[i];
      std::sort(r.begin(), r.end());
      r.erase(std::unique(r.begin(), r.end()), r.end());
    }
  }, 4096);
  return rows;
}

void check(const SparseProblem& p) {
  require(p.g.n >= 2, "affinity propagation needs at least 2 points (got ", p.g.n, ")");
  require(p.S && p.R && p.A && p.g.indptr && p.g.indices && p.g.transpose && p.g.diagonal,
          "the graph and S, R, A must be given");
  require(p.damping >= 0.5 && p.damping < 1.0, "damping (", p.damping, ") must be in [0.5, 1)");
  require(p.max_iter >= 1, "max_iter (", p.max_iter, ") must be at least 1");
  require(p.convergence_iter >= 1, "convergence_iter (", p.convergence_iter, ") must be at least 1");
}

template <class T>
void row_pass(const SparseProblem& p, bool materialize, double alpha, const T* colsum, int workers) {
  Coefficients<T> c;
  c.damping = static_cast<T>(p.damping);
  c.keep = static_cast<T>(1.0 - p.damping);
  c.history = p.H != nullptr;
  c.alpha = static_cast<T>(alpha);
  c.oma = static_cast<T>(1.0 - alpha);
  const Graph& g = p.g;
  parallel_for(g.n, workers, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t b = g.indptr[i], m = g.indptr[i + 1] - b, dpos = g.diagonal[i] - b;
      const T* s = static_cast<const T*>(p.S) + b;
      T* a = static_cast<T*>(p.A) + b;
      T* r = static_cast<T*>(p.R) + b;
      const int64_t* cols = g.indices + b;
      if (materialize)
        for (int64_t e = 0; e < m; ++e)
          a[e] = e == dpos ? availability_diagonal(a[e], r[e], colsum[i], c.damping, c.keep)
                           : availability(a[e], r[e], colsum[cols[e]], c.damping, c.keep);
      Best<T> best;
      for (int64_t e = 0; e < m; ++e) best.push(a[e] + s[e], e);
      T y = best.max1, y2 = best.max2;
      const int64_t top = best.idx1;
      const T* h = p.H ? static_cast<const T*>(p.H) + b : nullptr;
      responsibility_update(r, s, h, m, top, y, y2, c);
    }
  }, 2048);
}

template <class T>
void finish(const SparseProblem& p, const T* colsum, int workers) {
  const T d = static_cast<T>(p.damping), keep = static_cast<T>(1.0 - p.damping);
  const Graph& g = p.g;
  parallel_for(g.n, workers, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t b = g.indptr[i], m = g.indptr[i + 1] - b, dpos = g.diagonal[i] - b;
      T* a = static_cast<T*>(p.A) + b;
      const T* r = static_cast<const T*>(p.R) + b;
      const int64_t* cols = g.indices + b;
      for (int64_t e = 0; e < m; ++e)
        a[e] = e == dpos ? availability_diagonal(a[e], r[e], colsum[i], d, keep)
                         : availability(a[e], r[e], colsum[cols[e]], d, keep);
    }
  }, 2048);
}

// colsum_k over the entries (j, k), j ascending (row k's columns, through the transpose).
template <class T>
void column_pass(const SparseProblem& p, T* colsum, T* diag_a, int workers) {
  const T d = static_cast<T>(p.damping), keep = static_cast<T>(1.0 - p.damping);
  const Graph& g = p.g;
  const T* R = static_cast<const T*>(p.R);
  const T* A = static_cast<const T*>(p.A);
  parallel_for(g.n, workers, [&](int64_t lo, int64_t hi, int) {
    for (int64_t k = lo; k < hi; ++k) {
      const int64_t b = g.indptr[k], e1 = g.indptr[k + 1];
      T sum = 0;
      for (int64_t e = b; e < e1; ++e) {
        const int64_t j = g.indices[e];
        const T r = R[g.transpose[e]];
        const T term = j == k ? r : positive(r);
        sum = e == b ? term : sum + term;
      }
      colsum[k] = sum;
      const int64_t dk = g.diagonal[k];
      diag_a[k] = availability_diagonal(A[dk], R[dk], sum, d, keep);
    }
  }, 2048);
}

template <class T>
RunResult run(const SparseProblem& p, uint8_t* exemplar, const Hooks& hooks) {
  const Graph& g = p.g;
  const int64_t n = g.n, nnz = g.nnz();
  const int workers = resolve_threads(p.threads);
  std::memset(p.R, 0, sizeof(T) * nnz);
  std::memset(p.A, 0, sizeof(T) * nnz);
  for (int64_t i = 0; i < n; ++i)
    require(g.indptr[i + 1] - g.indptr[i] >= 2, "point ", i, " has no neighbour in the graph");
  std::vector<T> colsum(n), diag_a(n);
  Convergence conv(n, p.convergence_iter);
  const T* R = static_cast<const T*>(p.R);
  double alpha = p.history_weight;
  RunResult res;
  for (int64_t t = 0; t < p.max_iter; ++t) {
    row_pass<T>(p, t > 0, alpha, colsum.data(), workers);
    column_pass<T>(p, colsum.data(), diag_a.data(), workers);
    alpha *= p.history_decay;
    for (int64_t k = 0; k < n; ++k) conv.set(k, diag_a[k] + R[g.diagonal[k]] > T(0));
    res.n_iter = t + 1;
    if (conv.step(t)) {
      res.converged = true;
      break;
    }
    hooks.tick(t + 1, p.max_iter);
  }
  finish<T>(p, colsum.data(), workers);
  conv.copy_to(exemplar);
  return res;
}

}  // namespace

int64_t knn_graph(const int64_t* neighbors, int64_t n, int64_t k, int64_t* indptr, int64_t* indices,
                  int64_t* transpose, int64_t* diagonal, int threads) {
  require(n >= 1 && k >= 0, "the neighbour lists must be n x k with n >= 1 (got ", n, " x ", k, ")");
  auto rows = rows_of(neighbors, n, k, threads);
  indptr[0] = 0;
  for (int64_t i = 0; i < n; ++i) indptr[i + 1] = indptr[i] + static_cast<int64_t>(rows[i].size());
  const int64_t nnz = indptr[n];
  if (!indices) return nnz;
  parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; ++i) std::copy(rows[i].begin(), rows[i].end(), indices + indptr[i]);
  }, 4096);
  parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; ++i)
      for (int64_t e = indptr[i]; e < indptr[i + 1]; ++e) {
        const int64_t j = indices[e];
        const int64_t* b = indices + indptr[j];
        const int64_t* f = std::lower_bound(b, static_cast<const int64_t*>(indices + indptr[j + 1]), i);
        transpose[e] = indptr[j] + (f - b);
        if (j == i) diagonal[i] = e;
      }
  }, 4096);
  return nnz;
}

RunResult sparse_run(const SparseProblem& p, uint8_t* exemplar, const Hooks& hooks) {
  check(p);
  return dispatch_messages(p.dtype, [&](auto tag) { return run<decltype(tag)>(p, exemplar, hooks); });
}

void sparse_offdiag_range(const SparseProblem& p, double* lo, double* hi) {
  dispatch_messages(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* s = static_cast<const T*>(p.S);
    T mn = std::numeric_limits<T>::infinity(), mx = -std::numeric_limits<T>::infinity();
    for (int64_t i = 0; i < p.g.n; ++i)
      for (int64_t e = p.g.indptr[i]; e < p.g.indptr[i + 1]; ++e)
        if (e != p.g.diagonal[i]) {
          mn = std::min(mn, s[e]);
          mx = std::max(mx, s[e]);
        }
    *lo = mn;
    *hi = mx;
  });
}

}  // namespace isel::affinity
