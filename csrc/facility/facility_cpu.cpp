// Lazy greedy facility location on the CPU, exact (facility.hpp has the contract).
//
// Every candidate's gain sits in a max-heap ordered by (gain desc, column asc), stamped with the
// epoch (picks applied) it was computed at. A pick raises `current` for some points; the
// candidates of those points (their rows in the graph) get the new epoch as their "changed at"
// mark. The top entry is exact when it was computed at or after its mark, and then it is the
// argmax with the lowest column among equal gains (every other entry bounds its candidate's gain
// from above); otherwise it is recomputed and sifted down. Candidates whose points did not
// change keep their entries without a recomputation, which a single global version (every entry
// stale after every pick) would recompute as soon as they reach the top.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/check.hpp"
#include "common/parallel.hpp"
#include "facility/facility.hpp"

namespace isel::facility {
namespace {

struct Entry {
  double gain;
  uint32_t column;
  uint32_t epoch;
};

// std::*_heap keep the largest element first under this "less": smaller gain, or equal gain and
// higher column.
inline bool below(const Entry& a, const Entry& b) {
  return a.gain < b.gain || (a.gain == b.gain && a.column > b.column);
}

// Raises current for the points of column j; appends the points that changed to `changed`.
template <class I, class V>
void raise_column(const Typed<I, V>& cols, int64_t j, double* current, std::vector<int64_t>* changed) {
  for (int64_t e = cols.indptr[j]; e < cols.indptr[j + 1]; ++e) {
    const int64_t i = static_cast<int64_t>(cols.indices[e]);
    const double s = static_cast<double>(cols.data[e]);
    if (s > current[i]) {
      current[i] = s;
      if (changed != nullptr) changed->push_back(i);
    }
  }
}

template <class I, class V>
void run_greedy(const Typed<I, V>& g, const Problem& p, Output& out, const Hooks& hooks) {
  const Transposed<I, V> transposed = transpose(g, "the graph");
  const Typed<I, V> cols = transposed.view();
  const Mix mix(p.quality, p.quality_weight);
  const int64_t n_points = g.n_rows, n_cand = g.n_cols;

  std::vector<double> current(static_cast<size_t>(n_points), 0.0);
  std::vector<uint8_t> taken(static_cast<size_t>(n_cand), 0);
  for (int64_t s = 0; s < p.n_selected; ++s) {
    taken[p.selected[s]] = 1;
    raise_column(cols, p.selected[s], current.data(), nullptr);
  }

  std::vector<double> initial(static_cast<size_t>(n_cand));
  parallel_for(n_cand, p.threads, [&](int64_t lo, int64_t hi, int) {
    for (int64_t j = lo; j < hi; ++j)
      if (!taken[j]) initial[j] = mix(j, column_gain(cols.indptr, cols.indices, cols.data, j, current.data()));
  }, 1024);
  std::vector<Entry> heap;
  heap.reserve(static_cast<size_t>(n_cand - p.n_selected));
  for (int64_t j = 0; j < n_cand; ++j)
    if (!taken[j]) heap.push_back({initial[j], static_cast<uint32_t>(j), 0});
  int64_t evaluations = static_cast<int64_t>(heap.size());
  std::vector<double>().swap(initial);
  std::make_heap(heap.begin(), heap.end(), below);

  std::vector<uint32_t> changed_at(static_cast<size_t>(n_cand), 0);
  uint32_t all_changed_at = 0, epoch = 0;
  std::vector<int64_t> changed;
  for (int64_t t = 0; t < p.k; ++t) {
    for (;;) {
      const Entry top = heap.front();
      if (top.epoch >= std::max(changed_at[top.column], all_changed_at)) break;
      ++evaluations;
      std::pop_heap(heap.begin(), heap.end(), below);
      heap.back() = {mix(top.column, column_gain(cols.indptr, cols.indices, cols.data, top.column, current.data())),
                     top.column, epoch};
      std::push_heap(heap.begin(), heap.end(), below);
    }
    std::pop_heap(heap.begin(), heap.end(), below);
    const Entry best = heap.back();
    heap.pop_back();
    out.indices[t] = best.column;
    out.gains[t] = best.gain;

    ++epoch;
    changed.clear();
    raise_column(cols, best.column, current.data(), &changed);
    int64_t marks = 0;
    for (int64_t i : changed) marks += g.indptr[i + 1] - g.indptr[i];
    if (marks >= n_cand) {
      all_changed_at = epoch;
    } else {
      for (int64_t i : changed)
        for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; ++e) changed_at[static_cast<size_t>(g.indices[e])] = epoch;
    }
    hooks.tick(t + 1, p.k);
  }
  out.evaluations = evaluations;
  if (out.current != nullptr) std::copy(current.begin(), current.end(), out.current);
}

template <class I, class V>
void check_current(const Typed<I, V>& cols, const double* current) {
  for (int64_t i = 0; i < cols.n_cols; ++i)
    require(std::isfinite(current[i]) && current[i] >= 0.0, "current[", i, "] (", current[i],
            ") must be finite and >= 0");
}

}  // namespace

void greedy(const Problem& p, Output& out, const Hooks& hooks) {
  validate(p);
  dispatch(p.graph, [&](auto g) {
    run_greedy(g, p, out, hooks);
    return 0;
  });
}

void gains(const Graph& columns, const double* current, const double* quality, double quality_weight, double* gains,
           int threads) {
  require(quality == nullptr || (std::isfinite(quality_weight) && quality_weight >= 0.0 && quality_weight <= 1.0),
          "quality_weight (", quality_weight, ") must be in [0, 1]");
  const Mix mix(quality, quality_weight);
  dispatch(columns, [&](auto cols) {
    check_csr(cols, "the column view", threads);
    check_current(cols, current);
    parallel_for(cols.n_rows, threads, [&](int64_t lo, int64_t hi, int) {
      for (int64_t j = lo; j < hi; ++j)
        gains[j] = mix(j, column_gain(cols.indptr, cols.indices, cols.data, j, current));
    }, 1024);
    return 0;
  });
}

int64_t update(const Graph& columns, int64_t candidate, double* current) {
  require(candidate >= 0 && candidate < columns.n_rows, "candidate (", candidate, ") must be in [0, ",
          columns.n_rows - 1, "]");
  return dispatch(columns, [&](auto cols) {
    for (int64_t e = cols.indptr[candidate]; e < cols.indptr[candidate + 1]; ++e) {
      const int64_t i = static_cast<int64_t>(cols.indices[e]);
      require(i >= 0 && i < cols.n_cols, "the column view's row ", candidate, " has column ", i, " outside [0, ",
              cols.n_cols, ")");
      const double s = static_cast<double>(cols.data[e]);
      require(std::isfinite(s) && s >= 0.0, "the column view must hold finite values >= 0 (row ", candidate,
              ", column ", i, " holds ", s, ")");
    }
    std::vector<int64_t> changed;
    raise_column(cols, candidate, current, &changed);
    return static_cast<int64_t>(changed.size());
  });
}

}  // namespace isel::facility
