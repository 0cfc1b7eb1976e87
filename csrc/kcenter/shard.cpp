// One k-center shard (shard.hpp): the single-process greedy's lazy state for a block of rows
// (kcenter/lazy_bounds.hpp: the same bounds, stamps, heap order and blocked SIMD refresh), fed
// with centers that may live in other shards.
#include "kcenter/shard.hpp"

#include <algorithm>
#include <vector>

#include "common/check.hpp"
#include "common/distance.hpp"
#include "common/parallel.hpp"
#include "kcenter/lazy_bounds.hpp"

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

// Canonical inverse norms of n rows; throws naming the lowest row of zero norm.
template <class T, class A = accum_t<T>>
std::vector<A> nonzero_inverse_norms(const T* X, int64_t n, int64_t d, int threads, const char* what) {
  int64_t zero_row = -1;
  auto inv = inverse_norms<T, A>(X, n, d, threads, &zero_row);
  require(zero_row < 0, "row ", zero_row, " of ", what, " has zero norm; the cosine metric is undefined for it");
  return inv;
}

template <class T>
class TypedShard final : public Shard::Impl {
 public:
  using A = accum_t<T>;

  TypedShard(const T* X, int64_t rows, int64_t dim, Metric metric, int threads)
      : cosine_(metric == Metric::cosine),
        lazy_(X, rows, dim, cosine_,
              cosine_ ? nonzero_inverse_norms<T>(X, rows, dim, threads, "the shard") : std::vector<A>{}, threads) {
    n = rows;
    d = dim;
  }

  int64_t n_centers() const override { return lazy_.n_centers(); }
  int64_t evaluations() const override { return lazy_.evaluations(); }

  void add_centers(const void* centers, int64_t m, const int64_t* local) override {
    const T* rows = static_cast<const T*>(centers);
    require(lazy_.n_centers() + m < (int64_t{1} << 31), "a shard holds at most 2^31 - 1 centers");
    for (int64_t c = 0; c < m; ++c)
      require(local[c] >= -1 && local[c] < n, "local[", c, "] (", local[c], ") must be -1 or in [0, ", n - 1, "]");
    // a center's vector is its row scaled by its own canonical inverse norm, as in one process
    const std::vector<A> inv = cosine_ ? nonzero_inverse_norms<T>(rows, m, d, 1, "the centers") : std::vector<A>(m, A(1));
    for (int64_t c = 0; c < m; ++c) lazy_.add_center(rows + c * d, inv[c]);
    for (int64_t c = 0; c < m; ++c)
      if (local[c] >= 0) lazy_.mark_chosen(local[c]);
  }

  void refresh_all() override {
    check_replayed();
    lazy_.refresh_all();
  }

  ShardTop top(int64_t m) override {
    require(m >= 1, "m (", m, ") must be at least 1");
    check_replayed();
    ShardTop out;
    std::vector<typename LazyBounds<T>::Entry> taken;
    while (static_cast<int64_t>(taken.size()) < m && lazy_.exact_top().second >= 0) taken.push_back(lazy_.pop_top());
    const auto [rest_value, rest] = lazy_.exact_top();
    if (rest >= 0) {
      out.rest_index = rest;
      out.rest_value = static_cast<double>(rest_value);
    }
    for (const auto& e : taken) {
      out.index.push_back(e.index);
      out.value.push_back(static_cast<double>(e.value));
      lazy_.push(e);
    }
    return out;
  }

  void min_distances(double* out) override {
    refresh_all();
    const Metric metric = cosine_ ? Metric::cosine : Metric::euclidean;
    for (int64_t i = 0; i < n; ++i) out[i] = lazy_.chosen[i] ? 0.0 : reported_distance(lazy_.ub[i], metric);
  }

  void save(void* ub, int32_t* stamp, uint8_t* chosen) const override {
    std::copy(lazy_.ub.begin(), lazy_.ub.end(), static_cast<A*>(ub));
    std::copy(lazy_.stamp.begin(), lazy_.stamp.end(), stamp);
    std::copy(lazy_.chosen.begin(), lazy_.chosen.end(), chosen);
  }

  void load(const void* ub, const int32_t* stamp, const uint8_t* chosen) override {
    require(lazy_.n_centers() == 0, "load() needs a shard without centers (this one has ", lazy_.n_centers(), ")");
    const A* u = static_cast<const A*>(ub);
    int32_t most = 0;
    for (int64_t i = 0; i < n; ++i) {
      require(stamp[i] >= 0 && !(u[i] < A(0)), "the saved state of row ", i, " is invalid (stamp ", stamp[i],
              ", bound ", u[i], ")");
      most = std::max(most, stamp[i]);
    }
    std::copy(u, u + n, lazy_.ub.begin());
    std::copy(stamp, stamp + n, lazy_.stamp.begin());
    for (int64_t i = 0; i < n; ++i) lazy_.chosen[i] = chosen[i] ? 1 : 0;
    replay_until_ = most;
    lazy_.invalidate_heap();
  }

 private:
  void check_replayed() const {
    require(lazy_.n_centers() >= replay_until_, "the loaded state has met ", replay_until_, " centers but only ",
            lazy_.n_centers(), " were added back");
  }

  bool cosine_;
  LazyBounds<T> lazy_;
  int64_t replay_until_ = 0;
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
    std::vector<A> inv_x, inv_y(c, A(1));
    if (cosine) {
      inv_y = nonzero_inverse_norms<T>(y, c, d, 1, "the centers");
      inv_x = nonzero_inverse_norms<T>(x, m, d, threads, "the rows");
    }
    // the centers as the greedy compares them: widened, scaled by their own inverse norms
    const int64_t dp = padded_dim(d);
    std::vector<A> vectors(static_cast<size_t>(c * dp));
    for (int64_t j = 0; j < c; ++j) widen_row<T, A>(y + j * d, d, dp, cosine, inv_y[j], vectors.data() + j * dp);
    parallel_for(m, threads, [&](int64_t lo, int64_t hi, int) {
      for (int64_t i = lo; i < hi; ++i)
        for (int64_t j = 0; j < c; ++j)
          out[i * c + j] = static_cast<double>(
              sqdist<T, A>(x + i * d, vectors.data() + j * dp, d, cosine, cosine ? inv_x[i] : A(1)));
    }, 64);
    return 0;
  });
}

}  // namespace isel::kcenter
