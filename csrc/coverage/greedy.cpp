// Lazy greedy weighted coverage (IterIT's diversity selection), exact.
//
// Every row's gain is kept in a max-heap ordered by (gain desc, row asc), stamped with the
// version of the column weights alpha it was computed from (the version grows whenever a pick
// changes some alpha). The top entry is either current, and then it is the argmax with the
// lowest index among equal gains, or stale, and then it is recomputed from the current alpha
// (the lazy refresh) and sifted down. A stale gain is an upper bound of the current one: alpha
// only falls, products of nonnegatives and sums in a fixed order are monotone under rounding.
// So the driver picks what a loop recomputing every gain at every step picks, bit for bit, as
// both compute a gain the same way (Csr::gain below, the canonical order of coverage.hpp, which
// the CUDA kernels reproduce as warp code).
//
// Why not running row sums updated at each decay (s_i -= (1 - b) alpha_j x_ij for the rows of
// the picked row's columns)? Their rounding drifts from a fresh sum, so ties and near-ties would
// go differently from the reference, and a common word's column touches nearly every row, so each
// pick would cost O(nnz of its columns) instead of a few refreshes.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "common/check.hpp"
#include "common/parallel.hpp"
#include "coverage/coverage.hpp"
#include "coverage/csr_checks.hpp"

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

  // w_i * sum_j alpha_j * x_ij in the canonical order: entry e of the row (storage order) goes
  // into partial e mod 32 as p += x * alpha (each partial starts at +0), then the partials fold as
  // a warp's shuffle-down tree. Levels of the tree whose upper half is all untouched (+0)
  // partials are skipped: adding +0 to a sum of nonnegatives changes no bit.
  double gain(int64_t i, const double* alpha, const double* w) const {
    const int64_t lo = indptr[i], len = static_cast<int64_t>(indptr[i + 1]) - lo;
    const V* x = data + lo;
    const I* col = indices + lo;
    double p[32];
    const int used = len < 32 ? static_cast<int>(len) : 32;
    for (int l = 0; l < used; ++l) p[l] = 0.0;
    int64_t e = 0;
    for (; e + 32 <= len; e += 32)  // whole rounds: a fixed inner loop the compiler can unroll
      for (int l = 0; l < 32; ++l) p[l] += static_cast<double>(x[e + l]) * alpha[col[e + l]];
    for (int l = 0; e + l < len; ++l) p[l] += static_cast<double>(x[e + l]) * alpha[col[e + l]];
    for (int w = 16; w >= 1; w >>= 1)
      for (int l = 0; l < w && l + w < used; ++l) p[l] += p[l + w];
    const double s = used > 0 ? p[0] : 0.0;
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
// A bad entry is reported in the lowest row that has one, whatever thread finds it.
void check_csr(const CsrView& x, int threads) {
  checks::rows(x.n_rows, x.n_cols);
  require(x.n_rows < (int64_t{1} << 32) - 1, "X has ", x.n_rows, " rows; at most 2^32 - 2 are supported");
  require(x.indptr != nullptr, "X has no indptr");
  dispatch(x, [&](auto csr) {
    for (int64_t i = 0; i <= csr.n; ++i) checks::indptr_entry(i, csr.indptr[i > 0 ? i - 1 : 0], csr.indptr[i]);
    checks::stored_entries(csr.indptr[csr.n], x.nnz);
    std::atomic<int64_t> bad{csr.n};
    parallel_for(csr.n, threads, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi && i < bad.load(); ++i)
        for (int64_t p = csr.indptr[i]; p < csr.indptr[i + 1]; ++p)
          if (!checks::entry_ok(csr.indices[p], static_cast<double>(csr.data[p]), csr.m)) {
            int64_t seen = bad.load();
            while (i < seen && !bad.compare_exchange_weak(seen, i)) {}
            return;
          }
    }, 4096);
    const int64_t i = bad.load();
    if (i < csr.n)
      checks::row(i, csr.indices + csr.indptr[i], csr.data + csr.indptr[i], csr.indptr[i + 1] - csr.indptr[i], csr.m);
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
  checks::selection(p);
  if (p.weights != nullptr)
    for (int64_t i = 0; i < p.X.n_rows; ++i) checks::weight(i, p.weights[i]);
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
  checks::row_index(row, X.n_rows);
  checks::decay(decay);
  return dispatch(X, [&](auto csr) {
    const int64_t lo = csr.indptr[row], hi = csr.indptr[row + 1];
    require(lo >= 0 && lo <= hi && (X.nnz < 0 || hi <= X.nnz), "X.indptr gives row ", row, " the entries [", lo, ", ",
            hi, "), outside the ", X.nnz, " stored entries");
    checks::row(row, csr.indices + lo, csr.data + lo, hi - lo, csr.m);
    return csr.decay(row, decay, alpha);
  });
}

}  // namespace isel::coverage
