// k-center greedy on the CPU: lazy per-point upper bounds in a max-heap (default; the state
// and its blocked refresh are kcenter/lazy_bounds.hpp, shared with the distributed shards) or
// the plain loop (one fused distance/min/argmax pass over all rows per pick, threaded). Both
// see common/distance.hpp's canonical distances, so they (and the GPU) pick the same points;
// ties go to the lowest index.
#include "kcenter/kcenter.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/check.hpp"
#include "common/distance.hpp"
#include "common/parallel.hpp"
#include "kcenter/lazy_bounds.hpp"

namespace isel::kcenter {

double reported_distance(double sq, Metric metric) {
  return metric == Metric::cosine ? 0.5 * sq : std::sqrt(sq);
}

namespace {

template <class T, class A = accum_t<T>>
std::vector<A> checked_inverse_norms(const Problem& p) {
  if (p.metric != Metric::cosine) return {};
  int64_t zero_row = -1;
  auto inv = inverse_norms<T, A>(static_cast<const T*>(p.X), p.n, p.d, p.threads, &zero_row);
  if (zero_row >= 0) fail_zero_norm(zero_row);
  return inv;
}

template <class T>
class Greedy {
 public:
  using A = accum_t<T>;

  explicit Greedy(const Problem& p)
      : p_(p), lazy_(static_cast<const T*>(p.X), p.n, p.d, p.metric == Metric::cosine,
                               checked_inverse_norms<T>(p), p.threads) {
    lazy_.reserve_centers(p.k + std::max<int64_t>(p.n_selected, 1));
  }

  void run(Output& out, const Hooks& hooks) {
    int64_t picks = 0;
    if (p_.n_selected > 0) {
      for (int64_t s = 0; s < p_.n_selected; ++s) choose(p_.selected[s]);
    } else {
      choose(p_.seed_index);
      out.indices[picks++] = p_.seed_index;
    }
    lazy_.refresh_all();  // compare every point with the initial centers (the pool, or the seed)
    for (int64_t t = picks;; ++t) {
      auto [value, next] = p_.lazy ? lazy_.exact_top() : plain_top();
      if (t > 0) out.radii[t - 1] = next < 0 ? 0.0 : reported_distance(value, p_.metric);
      if (t == p_.k) break;
      if (p_.lazy) lazy_.pop_top();
      choose(next);
      out.indices[t] = next;
      if (!p_.lazy) plain_update();
      hooks.tick(t + 1, p_.k);
    }
    out.distance_evaluations = lazy_.evaluations();
    out.filtered_evaluations = lazy_.filtered();
    if (!out.min_distances) return;  // not asked for: the picks and radii are exact already
    lazy_.refresh_all();  // every point meets the centers it has not met (the lazy loop skipped them)
    out.final_evaluations = lazy_.evaluations() - out.distance_evaluations;
    out.filtered_evaluations = lazy_.filtered();
    for (int64_t i = 0; i < p_.n; ++i)
      out.min_distances[i] = lazy_.chosen[i] ? 0.0 : reported_distance(lazy_.ub[i], p_.metric);
  }

 private:
  void choose(int64_t i) {
    lazy_.add_center(lazy_.row(i), lazy_.scale(i));
    lazy_.mark_chosen(i);
  }

  // Plain: the argmax over unchosen points, kept by plain_update (and found once at start).
  std::pair<A, int64_t> plain_top() {
    if (plain_best_ < 0 && !plain_started_) {
      plain_started_ = true;
      parallel_argmax([&](int64_t i) { return lazy_.ub[i]; });
    }
    return {plain_value_, plain_best_};
  }

  template <class Visit>
  void parallel_argmax(Visit visit) {
    int t = resolve_threads(p_.threads);
    std::vector<std::pair<A, int64_t>> best(t, {A(-1), -1});
    parallel_for(p_.n, t, [&](int64_t lo, int64_t hi, int w) {
      std::pair<A, int64_t> b{A(-1), -1};
      for (int64_t i = lo; i < hi; ++i) {
        if (lazy_.chosen[i]) continue;
        A v = visit(i);
        if (v > b.first) b = {v, i};  // strict: the first (lowest) index wins a tie
      }
      best[w] = b;
    }, 4096);
    std::pair<A, int64_t> b{A(-1), -1};
    for (auto& e : best)
      if (e.second >= 0 && (e.first > b.first || (e.first == b.first && e.second < b.second))) b = e;
    plain_value_ = b.first;
    plain_best_ = b.second;
  }

  void plain_update() {
    parallel_argmax([&](int64_t i) { return lazy_.meet_newest(i); });
    lazy_.count_evaluations(p_.n - lazy_.n_centers());  // every unchosen point
  }

  const Problem& p_;
  LazyBounds<T> lazy_;
  A plain_value_ = A(-1);
  int64_t plain_best_ = -1;
  bool plain_started_ = false;
};

void check(const Problem& p) {
  require(p.n >= 1 && p.d >= 1, "X must be non-empty (got ", p.n, " x ", p.d, ")");
  require(p.n < (int64_t{1} << 31), "X has ", p.n, " rows; at most 2^31 - 1 are supported");
  require(p.k >= 1, "k (", p.k, ") must be at least 1");
  require(p.n_selected >= 0 && p.n_selected < p.n, "selected has ", p.n_selected,
          " points; it must have fewer than n (", p.n, ")");
  int64_t room = p.n - std::max<int64_t>(p.n_selected, 0);
  require(p.k <= room, "k (", p.k, ") must be at most the number of unselected points (", room, ")");
  if (p.n_selected == 0)
    require(p.seed_index >= 0 && p.seed_index < p.n, "seed_index (", p.seed_index, ") must be in [0, ", p.n - 1, "]");
  std::vector<uint8_t> seen(p.n, 0);
  for (int64_t s = 0; s < p.n_selected; ++s) {
    int64_t i = p.selected[s];
    require(i >= 0 && i < p.n, "selected[", s, "] (", i, ") must be in [0, ", p.n - 1, "]");
    require(!seen[i], "selected[", s, "] (", i, ") appears more than once");
    seen[i] = 1;
  }
}

}  // namespace

void greedy(const Problem& p, Output& out, const Hooks& hooks) {
  check(p);
  dispatch_dtype(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    Greedy<T>(p).run(out, hooks);
  });
}

int64_t update_step(const void* X, DType dtype, int64_t n, int64_t d, int64_t center, Metric metric,
                    const void* inv_norms, void* min_sq, const uint8_t* mask, int threads) {
  require(center >= 0 && center < n, "center (", center, ") must be in [0, ", n - 1, "]");
  require(metric != Metric::cosine || inv_norms != nullptr, "the cosine metric needs inv_norms");
  return dispatch_dtype(dtype, [&](auto tag) -> int64_t {
    using T = decltype(tag);
    using A = accum_t<T>;
    const T* x = static_cast<const T*>(X);
    const A* inv = static_cast<const A*>(inv_norms);
    A* ms = static_cast<A*>(min_sq);
    const bool cosine = metric == Metric::cosine;
    std::vector<A> c(d);
    for (int64_t j = 0; j < d; ++j) {
      A v = load_float(x + center * d, j);
      c[j] = cosine ? v * inv[center] : v;
    }
    int t = resolve_threads(threads);
    std::vector<std::pair<A, int64_t>> best(t, {A(-1), -1});
    parallel_for(n, t, [&](int64_t lo, int64_t hi, int w) {
      std::pair<A, int64_t> b{A(-1), -1};
      for (int64_t i = lo; i < hi; ++i) {
        if (mask && mask[i]) continue;
        A s = cosine ? sqdist<T, A>(x + i * d, c.data(), d, true, inv[i]) : sqdist<T, A>(x + i * d, c.data(), d);
        s = std::min(ms[i], s);
        ms[i] = s;
        if (s > b.first) b = {s, i};
      }
      best[w] = b;
    }, 4096);
    std::pair<A, int64_t> b{A(-1), -1};
    for (auto& e : best)
      if (e.second >= 0 && (e.first > b.first || (e.first == b.first && e.second < b.second))) b = e;
    return b.second;
  });
}

}  // namespace isel::kcenter
