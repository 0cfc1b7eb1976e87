// Lazy greedy weighted coverage (IterIT's diversity selection), exact.
//
// Every row's gain is kept in a max-heap ordered by (gain desc, row asc), stamped with the
// version of the column weights alpha it was computed from (the version grows whenever a pick
// changes some alpha). The top entry is either current, and then it is the argmax with the
// lowest index among equal gains, or stale, and then it is recomputed from the current alpha
// (the lazy refresh) and sifted down. A stale gain is an upper bound of the current one: alpha
// only falls, products of nonnegatives and sums in a fixed order are monotone under rounding.
// So the driver picks what a loop recomputing every gain at every step picks, bit for bit, as
// both compute a gain the same way (row_gain below; the same floats as scipy's X @ alpha).
//
// Why not running row sums updated at each decay (s_i -= (1 - b) alpha_j x_ij for the rows of
// the picked row's columns)? Their rounding drifts from a fresh sum, so ties and near-ties would
// go differently from the reference, and a common word's column touches nearly every row, so each
// pick would cost O(nnz of its columns) instead of a few refreshes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/check.hpp"
#include "common/parallel.hpp"
#include "coverage/coverage.hpp"

namespace isel::coverage {
namespace {

template <class I, class V>
struct Csr {
  const I* indptr;
  const I* indices;
  const V* data;
  int64_t n, m;

  explicit Csr(const CsrView& x)
      : indptr(static_cast<const I*>(x.indptr)), indices(static_cast<const I*>(x.indices)),
        data(static_cast<const V*>(x.data)), n(x.n_rows), m(x.n_cols) {}

  // w_i * sum_j alpha_j * x_ij, summed in storage order.
  double gain(int64_t i, const double* alpha, const double* w) const {
    double s = 0.0;
    for (I p = indptr[i], e = indptr[i + 1]; p < e; ++p) s += static_cast<double>(data[p]) * alpha[indices[p]];
    return w != nullptr ? w[i] * s : s;
  }

  int64_t decay(int64_t i, double b, double* alpha) const {
    int64_t changed = 0;
    for (I p = indptr[i], e = indptr[i + 1]; p < e; ++p) {
      if (data[p] == V(0)) continue;
      double& a = alpha[indices[p]];
      const double next = a * b;
      if (next != a) {
        a = next;
        ++changed;
      }
    }
    return changed;
  }
};

template <class Fn>
decltype(auto) dispatch(const CsrView& x, Fn&& fn) {
  if (x.index_type == IndexType::int32) {
    if (x.value_type == ValueType::float32) return fn(Csr<int32_t, float>(x));
    return fn(Csr<int32_t, double>(x));
  }
  if (x.value_type == ValueType::float32) return fn(Csr<int64_t, float>(x));
  return fn(Csr<int64_t, double>(x));
}

// Structure and values: indptr from 0, nondecreasing; columns in range; values finite and >= 0.
void check_csr(const CsrView& x, int threads) {
  require(x.n_rows >= 1 && x.n_cols >= 0, "X must have at least one row (got ", x.n_rows, " x ", x.n_cols, ")");
  require(x.n_rows < (int64_t{1} << 32) - 1, "X has ", x.n_rows, " rows; at most 2^32 - 2 are supported");
  require(x.indptr != nullptr, "X has no indptr");
  dispatch(x, [&](auto csr) {
    require(csr.indptr[0] == 0, "X.indptr[0] (", static_cast<int64_t>(csr.indptr[0]), ") must be 0");
    for (int64_t i = 0; i < csr.n; ++i)
      require(csr.indptr[i + 1] >= csr.indptr[i], "X.indptr must be nondecreasing (indptr[", i + 1,
              "] = ", static_cast<int64_t>(csr.indptr[i + 1]), " < indptr[", i, "] = ",
              static_cast<int64_t>(csr.indptr[i]), ")");
    parallel_for(csr.n, threads, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; ++i)
        for (int64_t p = csr.indptr[i]; p < csr.indptr[i + 1]; ++p) {
          const int64_t j = csr.indices[p];
          require(j >= 0 && j < csr.m, "X row ", i, " has column ", j, " outside [0, ", csr.m, ")");
          const double v = static_cast<double>(csr.data[p]);
          require(std::isfinite(v) && v >= 0.0, "X must be nonnegative and finite (row ", i, ", column ", j,
                  " holds ", v, ")");
        }
    }, 4096);
    return 0;
  });
}

struct Entry {
  double gain;
  uint32_t row;
  uint32_t version;
};

// Max-heap order: larger gain first, then lower row.
inline bool before(const Entry& a, const Entry& b) {
  return a.gain > b.gain || (a.gain == b.gain && a.row < b.row);
}

class Heap {
 public:
  explicit Heap(std::vector<Entry> entries) : h_(std::move(entries)) {
    for (int64_t i = static_cast<int64_t>(h_.size()) / 2 - 1; i >= 0; --i) sift_down(static_cast<size_t>(i));
  }
  bool empty() const { return h_.empty(); }
  Entry& top() { return h_.front(); }
  void replace_top(const Entry& e) {
    h_[0] = e;
    sift_down(0);
  }
  void pop() {
    h_[0] = h_.back();
    h_.pop_back();
    if (!h_.empty()) sift_down(0);
  }

 private:
  void sift_down(size_t i) {
    const size_t n = h_.size();
    Entry e = h_[i];
    for (;;) {
      size_t c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && before(h_[c + 1], h_[c])) ++c;
      if (!before(h_[c], e)) break;
      h_[i] = h_[c];
      i = c;
    }
    h_[i] = e;
  }
  std::vector<Entry> h_;
};

template <class M>
void run_greedy(const M& x, const GreedyProblem& p, GreedyOutput& out, const Hooks& hooks) {
  const double* w = p.weights;
  std::vector<double> alpha(static_cast<size_t>(x.m), 1.0);
  std::vector<uint8_t> taken(static_cast<size_t>(x.n), 0);
  for (int64_t s = 0; s < p.n_selected; ++s) {
    taken[p.selected[s]] = 1;
    x.decay(p.selected[s], p.decay, alpha.data());
  }
  // Initial gains, in parallel; then the heap.
  std::vector<double> g(static_cast<size_t>(x.n));
  parallel_for(x.n, p.threads, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; ++i) g[i] = taken[i] ? 0.0 : x.gain(i, alpha.data(), w);
  }, 4096);
  std::vector<Entry> entries;
  entries.reserve(static_cast<size_t>(x.n - p.n_selected));
  for (int64_t i = 0; i < x.n; ++i)
    if (!taken[i]) entries.push_back({g[i], static_cast<uint32_t>(i), 0});
  std::vector<double>().swap(g);
  Heap heap(std::move(entries));

  uint32_t version = 0;
  int64_t refreshes = 0;
  for (int64_t t = 0; t < p.k; ++t) {
    for (;;) {
      Entry& top = heap.top();
      if (top.version == version) break;
      ++refreshes;
      heap.replace_top({x.gain(top.row, alpha.data(), w), top.row, version});
    }
    const Entry best = heap.top();
    heap.pop();
    out.indices[t] = best.row;
    out.gains[t] = best.gain;
    if (x.decay(best.row, p.decay, alpha.data()) > 0) ++version;
    hooks.tick(t + 1, p.k);
  }
  out.refreshes = refreshes;
  if (out.alpha != nullptr) std::copy(alpha.begin(), alpha.end(), out.alpha);
}

}  // namespace

void greedy(const GreedyProblem& p, GreedyOutput& out, const Hooks& hooks) {
  check_csr(p.X, p.threads);
  const int64_t n = p.X.n_rows;
  require(std::isfinite(p.decay) && p.decay >= 0.0 && p.decay <= 1.0, "decay (", p.decay, ") must be in [0, 1]");
  check_selection(p.selected, p.n_selected, n, p.k, "rows");
  if (p.weights != nullptr)
    for (int64_t i = 0; i < n; ++i)
      require(std::isfinite(p.weights[i]) && p.weights[i] >= 0.0, "weights[", i, "] (", p.weights[i],
              ") must be finite and nonnegative");
  dispatch(p.X, [&](auto csr) {
    run_greedy(csr, p, out, hooks);
    return 0;
  });
}

void row_gains(const CsrView& X, const double* alpha, const double* weights, double* gains, int threads) {
  check_csr(X, threads);
  dispatch(X, [&](auto csr) {
    parallel_for(csr.n, threads, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; ++i) gains[i] = csr.gain(i, alpha, weights);
    }, 4096);
    return 0;
  });
}

int64_t decay_row(const CsrView& X, int64_t row, double decay, double* alpha) {
  require(row >= 0 && row < X.n_rows, "row (", row, ") must be in [0, ", X.n_rows - 1, "]");
  require(std::isfinite(decay) && decay >= 0.0 && decay <= 1.0, "decay (", decay, ") must be in [0, 1]");
  return dispatch(X, [&](auto csr) { return csr.decay(row, decay, alpha); });
}

}  // namespace isel::coverage
