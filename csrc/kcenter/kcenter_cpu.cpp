// k-center greedy on the CPU: lazy per-point upper bounds in a max-heap (default) or the plain
// loop (one fused distance/min/argmax pass over all rows per pick, threaded).
//
// Why lazy is exact: a point's stored value is the minimum over the centers it has been compared
// with, an upper bound on its true distance to the nearest center. The heap pops the largest
// bound; a popped point that is stale is compared with the centers added since its last visit
// and pushed back; a popped point that is current is at least as far as every other point's
// bound, hence the farthest point. Heap order is (value desc, index asc), so ties go to the
// lowest index exactly as in the plain loop. Distances are the canonical ones of
// common/distance.hpp, so both loops (and the GPU) see the same floats.
#include "kcenter/kcenter.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "common/check.hpp"
#include "common/distance.hpp"
#include "common/parallel.hpp"

namespace isel::kcenter {

double reported_distance(double sq, Metric metric) {
  return metric == Metric::cosine ? 0.5 * sq : std::sqrt(sq);
}

namespace {

template <class T>
class Greedy {
 public:
  using A = accum_t<T>;

  Greedy(const Problem& p)
      : p_(p), X_(static_cast<const T*>(p.X)), n_(p.n), d_(p.d), cosine_(p.metric == Metric::cosine) {
    zeros_.assign(d_, A(0));
    centers_.reserve(static_cast<size_t>((p.k + std::max<int64_t>(p.n_selected, 1)) * d_));
    if (cosine_) {
      inv_.resize(n_);
      std::atomic<int64_t> zero_row{n_};  // the lowest zero row, whichever thread finds it
      parallel_for(n_, p.threads, [&](int64_t lo, int64_t hi, int) {
        for (int64_t i = lo; i < hi; ++i) {
          A sq = sqdist<T, A>(row(i), zeros_.data(), d_);
          if (sq == A(0)) {
            int64_t seen = zero_row.load();
            while (i < seen && !zero_row.compare_exchange_weak(seen, i)) {}
          }
          inv_[i] = A(1) / std::sqrt(sq);
        }
      });
      if (zero_row.load() < n_) fail_zero_norm(zero_row.load());
    }
    ub_.assign(n_, std::numeric_limits<A>::infinity());
    stamp_.assign(n_, 0);
    chosen_.assign(n_, 0);
  }

  void run(Output& out, const Hooks& hooks) {
    int64_t picks = 0;
    if (p_.n_selected > 0) {
      for (int64_t s = 0; s < p_.n_selected; ++s) choose(p_.selected[s]);
    } else {
      choose(p_.seed_index);
      out.indices[picks++] = p_.seed_index;
    }
    refresh_all();  // compare every point with the initial centers (the pool, or the seed)
    if (p_.lazy) {
      heap_.reserve(n_);
      for (int64_t i = 0; i < n_; ++i)
        if (!chosen_[i]) heap_.push_back({ub_[i], i});
      std::make_heap(heap_.begin(), heap_.end(), lower_priority);
    }
    for (int64_t t = picks;; ++t) {
      auto [value, next] = p_.lazy ? exact_top() : plain_top();
      if (t > 0) out.radii[t - 1] = next < 0 ? 0.0 : reported_distance(value, p_.metric);
      if (t == p_.k) break;
      if (p_.lazy) {
        std::pop_heap(heap_.begin(), heap_.end(), lower_priority);
        heap_.pop_back();
      }
      choose(next);
      out.indices[t] = next;
      if (!p_.lazy) plain_update();
      hooks.tick(t + 1, p_.k);
    }
    out.distance_evaluations = evals_;
    refresh_all();
    out.final_evaluations = evals_ - out.distance_evaluations;
    for (int64_t i = 0; i < n_; ++i) out.min_distances[i] = chosen_[i] ? 0.0 : reported_distance(ub_[i], p_.metric);
  }

 private:
  struct Entry {
    A value;
    int64_t index;
  };
  static bool lower_priority(const Entry& a, const Entry& b) {
    return a.value < b.value || (a.value == b.value && a.index > b.index);
  }

  const T* row(int64_t i) const { return X_ + i * d_; }
  const A* center(int64_t c) const { return centers_.data() + c * d_; }
  A dist(int64_t i, int64_t c) const {
    return cosine_ ? sqdist<T, A>(row(i), center(c), d_, true, inv_[i]) : sqdist<T, A>(row(i), center(c), d_);
  }

  void choose(int64_t i) {
    chosen_[i] = 1;
    ub_[i] = A(0);
    const T* x = row(i);
    for (int64_t j = 0; j < d_; ++j) {
      A v = load_float(x, j);
      centers_.push_back(cosine_ ? v * inv_[i] : v);
    }
    ++n_centers_;
    stamp_[i] = static_cast<int32_t>(n_centers_);
  }

  // Bring point i up to date with every center; returns the distances computed.
  int64_t refresh(int64_t i) {
    A s = ub_[i];
    const int64_t from = stamp_[i];
    for (int64_t c = from; c < n_centers_; ++c) s = std::min(s, dist(i, c));
    ub_[i] = s;
    stamp_[i] = static_cast<int32_t>(n_centers_);
    return n_centers_ - from;
  }

  // Brings every unchosen point up to date, cache-blocked: a tile of rows meets the centers a
  // chunk at a time, so both stay in cache instead of every row streaming all its stale centers
  // from memory. The minimum does not depend on the order, so the result is the same.
  void refresh_all() {
    constexpr int64_t kRows = 128, kCenters = 128;
    std::vector<int64_t> counts(resolve_threads(p_.threads), 0);
    const int64_t tiles = (n_ + kRows - 1) / kRows;
    parallel_for(tiles, p_.threads, [&](int64_t lo, int64_t hi, int w) {
      int64_t count = 0;
      for (int64_t tile = lo; tile < hi; ++tile) {
        const int64_t r0 = tile * kRows, r1 = std::min(n_, r0 + kRows);
        int64_t first = n_centers_;
        for (int64_t i = r0; i < r1; ++i)
          if (!chosen_[i]) first = std::min<int64_t>(first, stamp_[i]);
        for (int64_t c0 = first; c0 < n_centers_; c0 += kCenters) {
          const int64_t c1 = std::min(n_centers_, c0 + kCenters);
          for (int64_t i = r0; i < r1; ++i) {
            if (chosen_[i] || stamp_[i] >= c1) continue;
            A s = ub_[i];
            for (int64_t c = std::max<int64_t>(stamp_[i], c0); c < c1; ++c) s = std::min(s, dist(i, c));
            count += c1 - std::max<int64_t>(stamp_[i], c0);
            ub_[i] = s;
            stamp_[i] = static_cast<int32_t>(c1);
          }
        }
      }
      counts[w] += count;
    }, 1);
    for (auto c : counts) evals_ += c;
  }

  // Lazy: refresh stale tops until the top is current; it is then the farthest point.
  // Stale entries are taken off the top in batches and refreshed on all threads: refreshing a
  // point early never changes a result (its bound only becomes exact sooner), and the batch
  // stops at the first current entry, so little work is done that the one-at-a-time loop
  // would not also do.
  std::pair<A, int64_t> exact_top() {
    if (heap_.empty()) return {A(0), -1};
    const int threads = resolve_threads(p_.threads);
    const size_t max_batch = threads > 1 ? 256 * static_cast<size_t>(threads) : 1;
    for (;;) {
      const Entry& top = heap_.front();
      if (stamp_[top.index] == n_centers_) return {top.value, top.index};
      batch_.clear();
      while (!heap_.empty() && batch_.size() < max_batch && stamp_[heap_.front().index] != n_centers_) {
        std::pop_heap(heap_.begin(), heap_.end(), lower_priority);
        batch_.push_back(heap_.back().index);
        heap_.pop_back();
      }
      refresh_batch();
      for (int64_t i : batch_) {
        heap_.push_back({ub_[i], i});
        std::push_heap(heap_.begin(), heap_.end(), lower_priority);
      }
    }
  }

  void refresh_batch() {
    const int64_t m = static_cast<int64_t>(batch_.size());
    int64_t work = 0;  // distances the batch needs; threads only pay off for a large batch
    for (int64_t i : batch_) work += n_centers_ - stamp_[i];
    if (work < kParallelWork || m < 16) {
      for (int64_t i : batch_) evals_ += refresh(i);
      return;
    }
    std::vector<int64_t> counts(resolve_threads(p_.threads), 0);
    parallel_for(m, p_.threads, [&](int64_t lo, int64_t hi, int w) {
      int64_t c = 0;
      for (int64_t b = lo; b < hi; ++b) c += refresh(batch_[b]);
      counts[w] += c;
    }, 8);
    for (auto c : counts) evals_ += c;
  }

  // About a millisecond of distances per thread: far above the cost of starting the threads.
  static constexpr int64_t kParallelWork = 1 << 16;

  // Plain: the argmax over unchosen points, kept by plain_update (and found once at start).
  std::pair<A, int64_t> plain_top() {
    if (plain_best_ < 0 && !plain_started_) {
      plain_started_ = true;
      argmax_unchosen();
    }
    return {plain_value_, plain_best_};
  }

  template <class Visit>
  void parallel_argmax(Visit visit) {
    int t = resolve_threads(p_.threads);
    std::vector<Entry> best(t, Entry{A(-1), -1});
    parallel_for(n_, t, [&](int64_t lo, int64_t hi, int w) {
      Entry b{A(-1), -1};
      for (int64_t i = lo; i < hi; ++i) {
        if (chosen_[i]) continue;
        A v = visit(i);
        if (v > b.value) b = {v, i};  // strict: the first (lowest) index wins a tie
      }
      best[w] = b;
    }, 4096);
    Entry b{A(-1), -1};
    for (auto& e : best)
      if (e.index >= 0 && (e.value > b.value || (e.value == b.value && e.index < b.index))) b = e;
    plain_value_ = b.value;
    plain_best_ = b.index;
  }

  void argmax_unchosen() {
    parallel_argmax([&](int64_t i) { return ub_[i]; });
  }

  void plain_update() {
    const int64_t c = n_centers_ - 1;
    parallel_argmax([&](int64_t i) {
      A s = std::min(ub_[i], dist(i, c));
      ub_[i] = s;
      stamp_[i] = static_cast<int32_t>(n_centers_);
      return s;
    });
    evals_ += n_ - n_centers_;  // every unchosen point
  }

  const Problem& p_;
  const T* X_;
  int64_t n_, d_;
  bool cosine_;
  std::vector<A> zeros_, inv_, centers_, ub_;
  std::vector<int32_t> stamp_;
  std::vector<uint8_t> chosen_;
  std::vector<Entry> heap_;
  std::vector<int64_t> batch_;
  int64_t n_centers_ = 0, evals_ = 0;
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
