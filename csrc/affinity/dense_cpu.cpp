// Dense affinity propagation on the CPU.
//
// One iteration is one pass over the rows: for each row, the A update of the previous
// iteration, the top two of A + S, and the R update (damping, history), then the row's Rp is
// added into the column sums. The column sums must add rows in order (numpy's axis-0 sum), so
// the work is pipelined: rows go to the workers in small tiles, the columns are cut into
// slices, and a worker that finishes a tile adds the finished rows into every slice it can
// lock, in row order, as soon as they are done (per-row flags, no barrier), while they are
// still in cache. Any worker may advance any slice, so a descheduled worker (a busy machine)
// holds up at most its one tile, never a slice of the sums. Each element of S, R and A is read
// once and R and A written once an iteration: the least memory traffic the update order allows.
// Memory: S, R, A (3 n^2 elements) and O(n). dense_row_pass / dense_column_pass expose the same
// two steps unfused.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "affinity/affinity.hpp"
#include "affinity/convergence.hpp"
#include "affinity/pair_similarity.hpp"
#include "affinity/row_ops.hpp"
#include "common/check.hpp"
#include "common/parallel.hpp"
#include "common/simd.hpp"

namespace isel::affinity {
namespace {

using namespace detail;

template <class T>
Coefficients<T> coefficients(double damping, bool history, double alpha) {
  Coefficients<T> c;
  c.damping = static_cast<T>(damping);
  c.keep = static_cast<T>(1.0 - damping);
  c.history = history;
  c.alpha = static_cast<T>(alpha);
  c.oma = static_cast<T>(1.0 - alpha);
  return c;
}

// ---- bodies, compiled for the baseline and (on x86-64) for AVX2 and AVX-512; Bytes is the
// width of the first sweep's vectors

template <class T, int Bytes>
ISEL_AFF_INLINE void rows_body(const DenseProblem& p, int64_t lo, int64_t hi, bool update, const T* colsum,
                               const Coefficients<T>& c) {
  const int64_t n = p.n;
  for (int64_t i = lo; i < hi; ++i) {
    const T* s = static_cast<const T*>(p.S) + i * n;
    T* a = static_cast<T*>(p.A) + i * n;
    T* r = static_cast<T*>(p.R) + i * n;
    T y, y2;
    int64_t top;
    if (update) dense_first_sweep<T, true, Bytes>(a, r, colsum, s, n, i, c.damping, c.keep, y, top, y2);
    else dense_first_sweep<T, false, Bytes>(a, r, colsum, s, n, i, c.damping, c.keep, y, top, y2);
    const T* h = p.H ? static_cast<const T*>(p.H) + i * n : nullptr;
    responsibility_update(r, s, h, n, top, y, y2, c);
  }
}

template <class T>
ISEL_AFF_INLINE void finish_body(const DenseProblem& p, int64_t lo, int64_t hi, const T* colsum, T damping, T keep) {
  const int64_t n = p.n;
  for (int64_t i = lo; i < hi; ++i) {
    T* a = static_cast<T*>(p.A) + i * n;
    const T* r = static_cast<const T*>(p.R) + i * n;
    const T a_ii = a[i];
    for (int64_t k = 0; k < n; ++k) a[k] = availability(a[k], r[k], colsum[k], damping, keep);
    a[i] = availability_diagonal(a_ii, r[i], colsum[i], damping, keep);
  }
}

// Adds row i of Rp into colsum[c0, c1) (row 0 starts the sums, as numpy's reduction does).
template <class T>
ISEL_AFF_INLINE void accumulate_body(const T* row, int64_t i, int64_t c0, int64_t c1, T* colsum) {
  if (i == 0) {
    for (int64_t k = c0; k < c1; ++k) colsum[k] = positive(row[k]);
    if (c0 == 0 && c1 > 0) colsum[0] = row[0];
    return;
  }
  if (i < c0 || i >= c1) {
    for (int64_t k = c0; k < c1; ++k) colsum[k] = colsum[k] + positive(row[k]);
  } else {
    for (int64_t k = c0; k < i; ++k) colsum[k] = colsum[k] + positive(row[k]);
    colsum[i] = colsum[i] + row[i];
    for (int64_t k = i + 1; k < c1; ++k) colsum[k] = colsum[k] + positive(row[k]);
  }
}

#ifdef ISEL_X86
#define ISEL_AFF_CLONES(T, TARGET, NAME, BYTES)                                                                 \
  TARGET void rows_##NAME(const DenseProblem& p, int64_t lo, int64_t hi, bool u, const T* cs,                 \
                          const Coefficients<T>& c) {                                                         \
    rows_body<T, BYTES>(p, lo, hi, u, cs, c);                                                                 \
  }                                                                                                           \
  TARGET void finish_##NAME(const DenseProblem& p, int64_t lo, int64_t hi, const T* cs, T d, T k) {           \
    finish_body<T>(p, lo, hi, cs, d, k);                                                                      \
  }                                                                                                           \
  TARGET void accumulate_##NAME(const T* row, int64_t i, int64_t c0, int64_t c1, T* cs) {                     \
    accumulate_body<T>(row, i, c0, c1, cs);                                                                   \
  }
ISEL_AFF_CLONES(float, ISEL_AVX2, avx2, 32)
ISEL_AFF_CLONES(double, ISEL_AVX2, avx2, 32)
ISEL_AFF_CLONES(float, ISEL_AVX512, avx512, 64)
ISEL_AFF_CLONES(double, ISEL_AVX512, avx512, 64)
#undef ISEL_AFF_CLONES
#endif

template <class T>
void rows(const DenseProblem& p, int64_t lo, int64_t hi, bool u, const T* cs, const Coefficients<T>& c) {
#ifdef ISEL_X86
  switch (simd_level()) {
    case SimdLevel::avx512: return rows_avx512(p, lo, hi, u, cs, c);
    case SimdLevel::avx2: return rows_avx2(p, lo, hi, u, cs, c);
    default: break;
  }
#endif
  rows_body<T, 32>(p, lo, hi, u, cs, c);
}

template <class T>
void finish_rows(const DenseProblem& p, int64_t lo, int64_t hi, const T* cs, T d, T k) {
#ifdef ISEL_X86
  switch (simd_level()) {
    case SimdLevel::avx512: return finish_avx512(p, lo, hi, cs, d, k);
    case SimdLevel::avx2: return finish_avx2(p, lo, hi, cs, d, k);
    default: break;
  }
#endif
  finish_body<T>(p, lo, hi, cs, d, k);
}

template <class T>
void accumulate(const T* row, int64_t i, int64_t c0, int64_t c1, T* cs) {
#ifdef ISEL_X86
  switch (simd_level()) {
    case SimdLevel::avx512: return accumulate_avx512(row, i, c0, c1, cs);
    case SimdLevel::avx2: return accumulate_avx2(row, i, c0, c1, cs);
    default: break;
  }
#endif
  accumulate_body<T>(row, i, c0, c1, cs);
}

// ---- passes

int64_t rows_per_task(int64_t n) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1)); }

void check(const DenseProblem& p) {
  require(p.n >= 2, "affinity propagation needs at least 2 points (got ", p.n, ")");
  require(p.S && p.R && p.A, "S, R and A must be given");
  require(p.damping >= 0.5 && p.damping < 1.0, "damping (", p.damping, ") must be in [0.5, 1)");
  require(p.max_iter >= 1, "max_iter (", p.max_iter, ") must be at least 1");
  require(p.convergence_iter >= 1, "convergence_iter (", p.convergence_iter, ") must be at least 1");
}

template <class T>
void diagonal_of_a(const DenseProblem& p, const T* colsum, T* diag_a) {
  const int64_t n = p.n;
  const T* R = static_cast<const T*>(p.R);
  const T* A = static_cast<const T*>(p.A);
  const T d = static_cast<T>(p.damping), keep = static_cast<T>(1.0 - p.damping);
  for (int64_t k = 0; k < n; ++k) diag_a[k] = availability_diagonal(A[k * n + k], R[k * n + k], colsum[k], d, keep);
}

// A slice of the column sums: rows before `next` are added; `busy` while a worker adds more.
struct ColumnSlice {
  std::atomic<int64_t> next{0};
  std::atomic<bool> busy{false};
};

// One fused iteration t: rows in tiles, taken by the workers in order as they come free; after
// each tile a worker advances every column slice it can lock over the rows finished so far.
// colsum_prev = colsum_{t-1}; colsum_next <- colsum_t.
template <class T>
void fused_iteration(const DenseProblem& p, int64_t t, double alpha, const T* colsum_prev, T* colsum_next,
                     std::vector<std::atomic<int64_t>>& done, std::vector<ColumnSlice>& slices, int workers) {
  const int64_t n = p.n;
  const auto c = coefficients<T>(p.damping, p.H != nullptr, alpha);
  const int64_t tile = rows_per_task(n);
  const int64_t ntiles = (n + tile - 1) / tile;
  const int64_t stamp = t + 1;
  const int nslices = static_cast<int>(slices.size());
  const T* R = static_cast<const T*>(p.R);
  for (auto& sl : slices) sl.next.store(0, std::memory_order_relaxed);
  std::atomic<int64_t> next_tile{0};
  parallel_for(workers, workers, [&](int64_t w, int64_t, int) {
    bool tiles_left = true;
    for (;;) {
      if (tiles_left) {
        const int64_t j = next_tile.fetch_add(1, std::memory_order_relaxed);
        if (j < ntiles) {
          const int64_t lo = j * tile, hi = std::min(n, lo + tile);
          rows<T>(p, lo, hi, t > 0, colsum_prev, c);
          for (int64_t i = lo; i < hi; ++i) done[i].store(stamp, std::memory_order_release);
        } else {
          tiles_left = false;
        }
      }
      bool finished = true, progressed = false;
      for (int k = 0; k < nslices; ++k) {
        ColumnSlice& sl = slices[(k + w * nslices / workers) % nslices];  // its own share first
        if (sl.next.load(std::memory_order_acquire) == n) continue;
        finished = false;
        if (sl.busy.exchange(true, std::memory_order_acquire)) continue;
        const int64_t s = &sl - slices.data();
        const int64_t c0 = n * s / nslices, c1 = n * (s + 1) / nslices;
        int64_t row = sl.next.load(std::memory_order_relaxed);
        for (; row < n && done[row].load(std::memory_order_acquire) == stamp; ++row, progressed = true)
          accumulate<T>(R + row * n, row, c0, c1, colsum_next);
        sl.next.store(row, std::memory_order_release);
        sl.busy.store(false, std::memory_order_release);
      }
      if (finished) break;
      if (!tiles_left && !progressed) std::this_thread::yield();  // waiting for another worker's rows
    }
  }, 1);
}

template <class T>
void row_pass(const DenseProblem& p, int64_t t, double alpha, const T* colsum, int workers) {
  const auto c = coefficients<T>(p.damping, p.H != nullptr, alpha);
  parallel_for(p.n, workers, [&](int64_t lo, int64_t hi, int) { rows<T>(p, lo, hi, t > 0, colsum, c); },
               rows_per_task(p.n));
}

template <class T>
void column_pass(const DenseProblem& p, T* colsum, T* diag_a, int workers) {
  const int64_t n = p.n;
  const T* R = static_cast<const T*>(p.R);
  parallel_for(n, workers, [&](int64_t c0, int64_t c1, int) {
    for (int64_t i = 0; i < n; ++i) accumulate<T>(R + i * n, i, c0, c1, colsum);
  }, 256);
  diagonal_of_a<T>(p, colsum, diag_a);
}

template <class T>
void finish(const DenseProblem& p, const T* colsum, int workers) {
  const T d = static_cast<T>(p.damping), k = static_cast<T>(1.0 - p.damping);
  parallel_for(p.n, workers, [&](int64_t lo, int64_t hi, int) { finish_rows<T>(p, lo, hi, colsum, d, k); },
               rows_per_task(p.n));
}

template <class T>
RunResult run(const DenseProblem& p, uint8_t* exemplar, const Hooks& hooks) {
  const int64_t n = p.n;
  const int workers = static_cast<int>(std::min<int64_t>(resolve_threads(p.threads), n));
  parallel_for(n, workers, [&](int64_t lo, int64_t hi, int) {
    std::memset(static_cast<T*>(p.R) + lo * n, 0, sizeof(T) * (hi - lo) * n);
    std::memset(static_cast<T*>(p.A) + lo * n, 0, sizeof(T) * (hi - lo) * n);
  }, rows_per_task(n));
  std::vector<T> colsum_a(n), colsum_b(n), diag_a(n);
  T* prev = colsum_a.data();
  T* next = colsum_b.data();
  std::vector<std::atomic<int64_t>> done(n);
  for (auto& f : done) f.store(0, std::memory_order_relaxed);
  std::vector<ColumnSlice> slices(static_cast<size_t>(std::min<int64_t>(n, 4 * workers)));
  Convergence conv(n, p.convergence_iter);
  const T* R = static_cast<const T*>(p.R);
  double alpha = p.history_weight;
  RunResult res;
  for (int64_t t = 0; t < p.max_iter; ++t) {
    fused_iteration<T>(p, t, alpha, prev, next, done, slices, workers);
    std::swap(prev, next);  // prev = colsum_t
    diagonal_of_a<T>(p, prev, diag_a.data());
    alpha *= p.history_decay;
    for (int64_t k = 0; k < n; ++k) conv.set(k, diag_a[k] + R[k * n + k] > T(0));
    res.n_iter = t + 1;
    if (conv.step(t)) {
      res.converged = true;
      break;
    }
    hooks.tick(t + 1, p.max_iter);
  }
  finish<T>(p, prev, workers);
  conv.copy_to(exemplar);
  return res;
}

}  // namespace

RunResult dense_run(const DenseProblem& p, uint8_t* exemplar, const Hooks& hooks) {
  check(p);
  return dispatch_messages(p.dtype, [&](auto tag) { return run<decltype(tag)>(p, exemplar, hooks); });
}

void dense_row_pass(const DenseProblem& p, int64_t t, double alpha, const void* colsum) {
  check(p);
  dispatch_messages(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    row_pass<T>(p, t, alpha, static_cast<const T*>(colsum), resolve_threads(p.threads));
  });
}

void dense_column_pass(const DenseProblem& p, void* colsum, void* diag_a) {
  check(p);
  dispatch_messages(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    column_pass<T>(p, static_cast<T*>(colsum), static_cast<T*>(diag_a), resolve_threads(p.threads));
  });
}

void dense_finish(const DenseProblem& p, const void* colsum) {
  check(p);
  dispatch_messages(p.dtype, [&](auto tag) {
    using T = decltype(tag);
    finish<T>(p, static_cast<const T*>(colsum), resolve_threads(p.threads));
  });
}

}  // namespace isel::affinity
