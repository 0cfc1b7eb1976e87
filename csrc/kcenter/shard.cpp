// The lazy state of one k-center shard (shard.hpp). The bookkeeping is the single-process lazy
// greedy's (kcenter_cpu.cpp): the same bounds, stamps, heap order and cache-blocked refresh,
// so a shard's values are the single process's values for its rows.
#include "kcenter/shard.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "common/check.hpp"
#include "common/distance.hpp"
#include "common/parallel.hpp"

namespace isel::kcenter {

struct Shard::Impl {
  virtual ~Impl() = default;
  virtual int64_t n_centers() const = 0;
  virtual int64_t evaluations() const = 0;
  virtual void add_centers(const void* centers, int64_t m, const int64_t* local) = 0;
  virtual void refresh_all() = 0;
  virtual ShardTop top(int64_t m) = 0;
  virtual void min_distances(double* out) = 0;
  virtual void save(void* ub, int32_t* stamp, uint8_t* chosen) const = 0;
  virtual void load(const void* ub, const int32_t* stamp, const uint8_t* chosen) = 0;
  int64_t n = 0, d = 0;
};

namespace {

// A center's vector as the greedy compares it: the row widened, scaled by its canonical
// inverse norm for the cosine metric.
template <class T, class A = accum_t<T>>
void center_vector(const T* row, int64_t d, bool cosine, const A* zeros, A* out) {
  const A inv = cosine ? inverse_norm<T, A>(row, d, zeros) : A(1);
  for (int64_t j = 0; j < d; ++j) {
    const A v = load_float(row, j);
    out[j] = cosine ? v * inv : v;
  }
}

// Canonical inverse norms of n rows; throws naming the first row of zero norm.
template <class T, class A = accum_t<T>>
std::vector<A> inverse_norms(const T* X, int64_t n, int64_t d, const A* zeros, int threads, const char* what) {
  std::vector<A> inv(static_cast<size_t>(n));
  std::atomic<int64_t> zero_row{-1};
  parallel_for(n, threads, [&](int64_t lo, int64_t hi, int) {
    for (int64_t i = lo; i < hi; ++i) {
      const A sq = sqdist<T, A>(X + i * d, zeros, d);
      if (sq == A(0)) {
        int64_t expected = -1;
        zero_row.compare_exchange_strong(expected, i);
      }
      inv[i] = A(1) / std::sqrt(sq);
    }
  });
  require(zero_row.load() < 0, "row ", zero_row.load(), " of ", what,
          " has zero norm; the cosine metric is undefined for it");
  return inv;
}

template <class T>
class TypedShard final : public Shard::Impl {
 public:
  using A = accum_t<T>;

  TypedShard(const T* X, int64_t rows, int64_t dim, Metric metric, int threads)
      : X_(X), cosine_(metric == Metric::cosine), threads_(threads) {
    n = rows;
    d = dim;
    zeros_.assign(d, A(0));
    if (cosine_) inv_ = inverse_norms<T, A>(X_, n, d, zeros_.data(), threads_, "the shard");
    ub_.assign(n, std::numeric_limits<A>::infinity());
    stamp_.assign(n, 0);
    chosen_.assign(n, 0);
  }

  int64_t n_centers() const override { return n_centers_; }
  int64_t evaluations() const override { return evals_; }

  void add_centers(const void* centers, int64_t m, const int64_t* local) override {
    const T* rows = static_cast<const T*>(centers);
    require(n_centers_ + m < (int64_t{1} << 31), "a shard holds at most 2^31 - 1 centers");
    for (int64_t c = 0; c < m; ++c)
      require(local[c] >= -1 && local[c] < n, "local[", c, "] (", local[c], ") must be -1 or in [0, ", n - 1, "]");
    centers_.resize(static_cast<size_t>((n_centers_ + m) * d));
    for (int64_t c = 0; c < m; ++c) {
      if (cosine_) {
        const A sq = sqdist<T, A>(rows + c * d, zeros_.data(), d);
        require(sq != A(0), "center ", c, " has zero norm; the cosine metric is undefined for it");
      }
      center_vector<T, A>(rows + c * d, d, cosine_, zeros_.data(), centers_.data() + (n_centers_ + c) * d);
    }
    n_centers_ += m;
    for (int64_t c = 0; c < m; ++c) {
      if (local[c] < 0) continue;
      chosen_[local[c]] = 1;
      ub_[local[c]] = A(0);
      stamp_[local[c]] = static_cast<int32_t>(n_centers_);
    }
  }

  // Cache-blocked as in the single process: a tile of rows meets the centers a chunk at a time.
  void refresh_all() override {
    check_replayed();
    constexpr int64_t kRows = 128, kCenters = 128;
    std::vector<int64_t> counts(resolve_threads(threads_), 0);
    const int64_t tiles = (n + kRows - 1) / kRows;
    parallel_for(tiles, threads_, [&](int64_t lo, int64_t hi, int w) {
      int64_t count = 0;
      for (int64_t tile = lo; tile < hi; ++tile) {
        const int64_t r0 = tile * kRows, r1 = std::min(n, r0 + kRows);
        int64_t first = n_centers_;
        for (int64_t i = r0; i < r1; ++i)
          if (!chosen_[i]) first = std::min<int64_t>(first, stamp_[i]);
        for (int64_t c0 = first; c0 < n_centers_; c0 += kCenters) {
          const int64_t c1 = std::min(n_centers_, c0 + kCenters);
          for (int64_t i = r0; i < r1; ++i) {
            if (chosen_[i] || stamp_[i] >= c1) continue;
            const int64_t from = std::max<int64_t>(stamp_[i], c0);
            A s = ub_[i];
            for (int64_t c = from; c < c1; ++c) s = std::min(s, dist(i, c));
            count += c1 - from;
            ub_[i] = s;
            stamp_[i] = static_cast<int32_t>(c1);
          }
        }
      }
      counts[w] += count;
    }, 1);
    for (auto c : counts) evals_ += c;
    heap_.clear();  // every bound changed: the heap is rebuilt at the next top()
    heap_built_ = false;
  }

  ShardTop top(int64_t m) override {
    require(m >= 1, "m (", m, ") must be at least 1");
    check_replayed();
    if (!heap_built_) build_heap();
    ShardTop out;
    std::vector<Entry> taken;
    while (static_cast<int64_t>(taken.size()) < m) {
      const int64_t i = exact_top();
      if (i < 0) break;
      std::pop_heap(heap_.begin(), heap_.end(), lower_priority);
      taken.push_back(heap_.back());
      heap_.pop_back();
    }
    const int64_t rest = exact_top();
    if (rest >= 0) {
      out.rest_index = rest;
      out.rest_value = static_cast<double>(heap_.front().value);
    }
    for (const Entry& e : taken) {
      out.index.push_back(e.index);
      out.value.push_back(static_cast<double>(e.value));
      heap_.push_back(e);
      std::push_heap(heap_.begin(), heap_.end(), lower_priority);
    }
    return out;
  }

  void min_distances(double* out) override {
    refresh_all();
    for (int64_t i = 0; i < n; ++i) out[i] = chosen_[i] ? 0.0 : reported_distance(ub_[i], cosine_ ? Metric::cosine : Metric::euclidean);
  }

  void save(void* ub, int32_t* stamp, uint8_t* chosen) const override {
    std::copy(ub_.begin(), ub_.end(), static_cast<A*>(ub));
    std::copy(stamp_.begin(), stamp_.end(), stamp);
    std::copy(chosen_.begin(), chosen_.end(), chosen);
  }

  void load(const void* ub, const int32_t* stamp, const uint8_t* chosen) override {
    require(n_centers_ == 0, "load() needs a shard without centers (this one has ", n_centers_, ")");
    const A* u = static_cast<const A*>(ub);
    int32_t most = 0;
    for (int64_t i = 0; i < n; ++i) {
      require(stamp[i] >= 0 && !(u[i] < A(0)), "the saved state of row ", i, " is invalid (stamp ", stamp[i],
              ", bound ", u[i], ")");
      most = std::max(most, stamp[i]);
    }
    std::copy(u, u + n, ub_.begin());
    std::copy(stamp, stamp + n, stamp_.begin());
    for (int64_t i = 0; i < n; ++i) chosen_[i] = chosen[i] ? 1 : 0;
    replay_until_ = most;
    heap_.clear();
    heap_built_ = false;
  }

 private:
  struct Entry {
    A value;
    int64_t index;
  };
  static bool lower_priority(const Entry& a, const Entry& b) {
    return a.value < b.value || (a.value == b.value && a.index > b.index);
  }

  const T* row(int64_t i) const { return X_ + i * d; }
  const A* center(int64_t c) const { return centers_.data() + c * d; }
  A dist(int64_t i, int64_t c) const {
    return cosine_ ? sqdist<T, A>(row(i), center(c), d, true, inv_[i]) : sqdist<T, A>(row(i), center(c), d);
  }

  void check_replayed() const {
    require(n_centers_ >= replay_until_, "the loaded state has met ", replay_until_, " centers but only ",
            n_centers_, " were added back");
  }

  void build_heap() {
    heap_.clear();
    for (int64_t i = 0; i < n; ++i)
      if (!chosen_[i]) heap_.push_back({ub_[i], i});
    std::make_heap(heap_.begin(), heap_.end(), lower_priority);
    heap_built_ = true;
  }

  int64_t refresh(int64_t i) {
    A s = ub_[i];
    const int64_t from = stamp_[i];
    for (int64_t c = from; c < n_centers_; ++c) s = std::min(s, dist(i, c));
    ub_[i] = s;
    stamp_[i] = static_cast<int32_t>(n_centers_);
    return n_centers_ - from;
  }

  // The heap's top brought up to date (stale tops refreshed in batches, chosen rows dropped);
  // returns its row, or -1 when no unchosen row is left. The entry stays on the heap.
  int64_t exact_top() {
    const int threads = resolve_threads(threads_);
    const size_t max_batch = threads > 1 ? 256 * static_cast<size_t>(threads) : 1;
    for (;;) {
      while (!heap_.empty() && chosen_[heap_.front().index]) {
        std::pop_heap(heap_.begin(), heap_.end(), lower_priority);
        heap_.pop_back();
      }
      if (heap_.empty()) return -1;
      if (stamp_[heap_.front().index] == n_centers_) return heap_.front().index;
      batch_.clear();
      while (!heap_.empty() && batch_.size() < max_batch && stamp_[heap_.front().index] != n_centers_) {
        std::pop_heap(heap_.begin(), heap_.end(), lower_priority);
        const int64_t i = heap_.back().index;
        heap_.pop_back();
        if (!chosen_[i]) batch_.push_back(i);
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
    int64_t work = 0;
    for (int64_t i : batch_) work += n_centers_ - stamp_[i];
    if (work < kParallelWork || m < 16) {
      for (int64_t i : batch_) evals_ += refresh(i);
      return;
    }
    std::vector<int64_t> counts(resolve_threads(threads_), 0);
    parallel_for(m, threads_, [&](int64_t lo, int64_t hi, int w) {
      int64_t c = 0;
      for (int64_t b = lo; b < hi; ++b) c += refresh(batch_[b]);
      counts[w] += c;
    }, 8);
    for (auto c : counts) evals_ += c;
  }

  static constexpr int64_t kParallelWork = 1 << 16;

  const T* X_;
  bool cosine_;
  int threads_;
  std::vector<A> zeros_, inv_, centers_, ub_;
  std::vector<int32_t> stamp_;
  std::vector<uint8_t> chosen_;
  std::vector<Entry> heap_;
  std::vector<int64_t> batch_;
  bool heap_built_ = false;
  int64_t n_centers_ = 0, evals_ = 0, replay_until_ = 0;
};

}  // namespace

Shard::Shard(const void* X, DType dtype, int64_t n, int64_t d, Metric metric, int threads) {
  require(n >= 1 && d >= 1, "a shard must be non-empty (got ", n, " x ", d, ")");
  require(n < (int64_t{1} << 31), "a shard has ", n, " rows; at most 2^31 - 1 are supported");
  require(X != nullptr, "the shard has no data");
  impl_ = dispatch_dtype(dtype, [&](auto tag) -> std::unique_ptr<Impl> {
    using T = decltype(tag);
    return std::make_unique<TypedShard<T>>(static_cast<const T*>(X), n, d, metric, threads);
  });
}

Shard::~Shard() = default;
int64_t Shard::rows() const { return impl_->n; }
int64_t Shard::dim() const { return impl_->d; }
int64_t Shard::n_centers() const { return impl_->n_centers(); }
int64_t Shard::evaluations() const { return impl_->evaluations(); }
void Shard::add_centers(const void* centers, int64_t m, const int64_t* local) {
  require(m >= 0, "m (", m, ") must be nonnegative");
  impl_->add_centers(centers, m, local);
}
void Shard::refresh_all() { impl_->refresh_all(); }
ShardTop Shard::top(int64_t m) { return impl_->top(m); }
void Shard::min_distances(double* out) { impl_->min_distances(out); }
void Shard::save(void* ub, int32_t* stamp, uint8_t* chosen) const { impl_->save(ub, stamp, chosen); }
void Shard::load(const void* ub, const int32_t* stamp, const uint8_t* chosen) { impl_->load(ub, stamp, chosen); }

void pair_sq(const void* rows, int64_t m, const void* centers, int64_t c, int64_t d, DType dtype, Metric metric,
             double* out, int threads) {
  require(m >= 0 && c >= 0 && d >= 1, "pair_sq needs m, c >= 0 and d >= 1 (got ", m, ", ", c, ", ", d, ")");
  if (m == 0 || c == 0) return;
  dispatch_dtype(dtype, [&](auto tag) {
    using T = decltype(tag);
    using A = accum_t<T>;
    const bool cosine = metric == Metric::cosine;
    const T* x = static_cast<const T*>(rows);
    const T* y = static_cast<const T*>(centers);
    std::vector<A> zeros(d, A(0)), vectors(static_cast<size_t>(c * d));
    std::vector<A> inv;
    if (cosine) {
      inverse_norms<T, A>(y, c, d, zeros.data(), 1, "the centers");
      inv = inverse_norms<T, A>(x, m, d, zeros.data(), threads, "the rows");
    }
    for (int64_t j = 0; j < c; ++j) center_vector<T, A>(y + j * d, d, cosine, zeros.data(), vectors.data() + j * d);
    parallel_for(m, threads, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; ++i)
        for (int64_t j = 0; j < c; ++j) {
          const A s = cosine ? sqdist<T, A>(x + i * d, vectors.data() + j * d, d, true, inv[i])
                             : sqdist<T, A>(x + i * d, vectors.data() + j * d, d);
          out[i * c + j] = static_cast<double>(s);
        }
    }, 64);
    return 0;
  });
}

}  // namespace isel::kcenter
