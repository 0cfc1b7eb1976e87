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
//
// Refreshes are blocked: stale points are taken off the heap in batches, widened (and scaled)
// into packed rows, sorted by the first center each still needs, and compared with those
// centers four points by four centers at a time (common/distance_tile.hpp), the centers a
// cache-sized chunk at a time. Refreshing a point earlier than the one-at-a-time loop would
// never changes a result: its bound only becomes exact sooner, and every point is brought up to
// date at the end anyway (min_distances), so the total number of distances is the same.
#include "kcenter/kcenter.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "common/check.hpp"
#include "common/distance.hpp"
#include "common/distance_tile.hpp"
#include "common/parallel.hpp"
#include "common/simd.hpp"

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
      : p_(p), X_(static_cast<const T*>(p.X)), n_(p.n), d_(p.d), dp_(padded_dim(p.d)),
        cosine_(p.metric == Metric::cosine), tile_(tile_kernel<A>(simd_level())) {
    zeros_.assign(d_, A(0));
    // the centers, packed; kTile - 1 zero rows past the last let a tile read a whole quad
    centers_.assign(static_cast<size_t>((p.k + std::max<int64_t>(p.n_selected, 1) + kTile) * dp_), A(0));
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
    buffers_.resize(resolve_threads(p.threads));
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
  const A* center(int64_t c) const { return centers_.data() + c * dp_; }
  A scale(int64_t i) const { return cosine_ ? inv_[i] : A(1); }
  A dist(int64_t i, int64_t c) const { return sqdist<T, A>(row(i), center(c), d_, cosine_, scale(i)); }

  void choose(int64_t i) {
    chosen_[i] = 1;
    ub_[i] = A(0);
    widen_row<T, A>(row(i), d_, dp_, cosine_, scale(i), centers_.data() + n_centers_ * dp_);
    ++n_centers_;
    stamp_[i] = static_cast<int32_t>(n_centers_);
  }

  // One worker's scratch: packed rows, and the first center each still needs.
  struct Buffers {
    std::vector<A> rows;
    std::vector<int32_t> from;
    std::vector<A> ub;
  };

  // Brings the points idx[0, m) up to date with every center: packs them in order of their
  // stamps (callers pass them sorted), then blocks over centers and tiles of four points.
  void refresh_points(const int64_t* idx, int64_t m, Buffers& buf) {
    if (m == 0) return;
    const int64_t padded = (m + kTile - 1) / kTile * kTile;
    buf.rows.resize(static_cast<size_t>(padded * dp_));
    buf.from.resize(padded);
    buf.ub.resize(padded);
    for (int64_t t = 0; t < padded; ++t) {
      A* dst = buf.rows.data() + t * dp_;
      if (t < m) {
        const int64_t i = idx[t];
        widen_row<T, A>(row(i), d_, dp_, cosine_, scale(i), dst);
        buf.from[t] = stamp_[i];
        buf.ub[t] = ub_[i];
      } else {  // a ragged last tile: zero rows that need no center
        std::fill(dst, dst + dp_, A(0));
        buf.from[t] = static_cast<int32_t>(n_centers_);
        buf.ub[t] = A(0);
      }
    }
    refresh_block(buf.rows.data(), padded, buf.from.data(), buf.ub.data());
    for (int64_t t = 0; t < m; ++t) {
      ub_[idx[t]] = buf.ub[t];
      stamp_[idx[t]] = static_cast<int32_t>(n_centers_);
    }
  }

  // ub[t] <- min(ub[t], d(row t, c)) for every center c in [from[t], n_centers_); rows sorted by
  // from, their count a multiple of kTile. A chunk of centers stays in cache while every tile
  // of rows that needs it passes; within a tile, a center some rows already had is computed
  // for all four and counted only where it is new (the minimum is exact either way).
  void refresh_block(const A* rows, int64_t m, const int32_t* from, A* ub) const {
    constexpr int64_t kChunk = 128;
    alignas(64) A out[kTile * kTile];
    for (int64_t c0 = from[0]; c0 < n_centers_; c0 += kChunk) {
      const int64_t c1 = std::min(n_centers_, c0 + kChunk);
      for (int64_t t = 0; t < m && from[t] < c1; t += kTile) {
        for (int64_t q0 = std::max<int64_t>(c0, from[t]); q0 < c1; q0 += kTile) {
          tile_(rows + t * dp_, dp_, center(q0), dp_, dp_, out);
          const int64_t qn = std::min<int64_t>(kTile, c1 - q0);
          if (qn == kTile && from[t + kTile - 1] <= q0) {  // all sixteen new: a plain minimum
            for (int r = 0; r < kTile; ++r)
              ub[t + r] = std::min(std::min(std::min(ub[t + r], out[r]), std::min(out[4 + r], out[8 + r])), out[12 + r]);
            continue;
          }
          for (int r = 0; r < kTile; ++r) {
            A s = ub[t + r];
            for (int64_t q = std::max<int64_t>(0, from[t + r] - q0); q < qn; ++q) s = std::min(s, out[kTile * q + r]);
            ub[t + r] = s;
          }
        }
      }
    }
  }

  // Sorts points by stamp (most stale first) so that a tile's four share most of their centers.
  void sort_by_stamp(std::vector<int64_t>& idx) const {
    std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
      return stamp_[a] < stamp_[b] || (stamp_[a] == stamp_[b] && a < b);
    });
  }

  int64_t stale_distances(const std::vector<int64_t>& idx) const {
    int64_t work = 0;
    for (int64_t i : idx) work += n_centers_ - stamp_[i];
    return work;
  }

  // Brings every unchosen point up to date, a tile of rows at a time on all threads.
  void refresh_all() {
    constexpr int64_t kRows = 256;
    const int64_t tiles = (n_ + kRows - 1) / kRows;
    std::vector<int64_t> counts(buffers_.size(), 0);
    parallel_for(tiles, p_.threads, [&](int64_t lo, int64_t hi, int w) {
      std::vector<int64_t> idx;
      for (int64_t tile = lo; tile < hi; ++tile) {
        idx.clear();
        for (int64_t i = tile * kRows, end = std::min(n_, i + kRows); i < end; ++i)
          if (!chosen_[i] && stamp_[i] < n_centers_) idx.push_back(i);
        if (idx.empty()) continue;
        sort_by_stamp(idx);
        counts[w] += stale_distances(idx);
        refresh_points(idx.data(), static_cast<int64_t>(idx.size()), buffers_[w]);
      }
    }, 1);
    for (auto c : counts) evals_ += c;
  }

  // Lazy: refresh stale tops until the top is current; it is then the farthest point.
  // Stale entries are taken off the top in batches (stopping at the first current one) and
  // refreshed together, on all threads when the batch is large.
  std::pair<A, int64_t> exact_top() {
    if (heap_.empty()) return {A(0), -1};
    for (;;) {
      const Entry& top = heap_.front();
      if (stamp_[top.index] == n_centers_) return {top.value, top.index};
      batch_.clear();
      while (!heap_.empty() && batch_.size() < kBatch * buffers_.size() && stamp_[heap_.front().index] != n_centers_) {
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
    sort_by_stamp(batch_);
    const int64_t m = static_cast<int64_t>(batch_.size());
    const int64_t work = stale_distances(batch_);
    evals_ += work;
    const int threads = static_cast<int>(buffers_.size());
    if (work < kParallelWork || threads == 1 || m < 2 * kTile * threads) {
      refresh_points(batch_.data(), m, buffers_[0]);
      return;
    }
    // worker w takes tiles w, w + threads, ...: stale and fresh tiles alike go to every worker
    const int64_t tiles = (m + kTile - 1) / kTile;
    parallel_for(threads, threads, [&](int64_t w, int64_t, int) {
      std::vector<int64_t> mine;
      for (int64_t tile = w; tile < tiles; tile += threads)
        for (int64_t t = tile * kTile; t < std::min(m, (tile + 1) * kTile); ++t) mine.push_back(batch_[t]);
      refresh_points(mine.data(), static_cast<int64_t>(mine.size()), buffers_[w]);
    }, 1);
  }

  // Points taken off the heap at once, per thread: enough tiles to share the centers' loads.
  static constexpr size_t kBatch = 256;

  // A fraction of a millisecond of blocked distances: well above the cost of starting threads.
  static constexpr int64_t kParallelWork = 1 << 14;

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
  int64_t n_, d_, dp_;
  bool cosine_;
  TileFn<A> tile_;
  std::vector<A> zeros_, inv_, centers_, ub_;
  std::vector<Buffers> buffers_;
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
