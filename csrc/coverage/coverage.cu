// Weighted coverage on CUDA (and, through common/cuda_compat.cuh, on the CPU emulation of the
// grid): the checks of the CSR matrix, the gains, the decay and the lazy greedy of
// coverage_cuda.hpp. Every gain is the canonical sum of coverage.hpp (lane l of a warp takes the
// row's entries l, l+32, ... with explicit round-to-nearest operations, then the shuffle-down
// fold), so the device returns the CPU path's picks, gains and column weights bit for bit.
#include "common/cuda_compat.cuh"
#include "common/device_argmax.cuh"
#include "common/device_buffer.cuh"
#include "common/device_checks.cuh"
#include "common/device_math.cuh"
#include "common/check.hpp"
#include "common/launch.hpp"
#include "coverage/coverage_cuda.hpp"
#include "coverage/csr_checks.hpp"

#include <algorithm>
#include <limits>

namespace isel::coverage::cuda {
namespace {

using namespace isel::device;

constexpr unsigned kFull = 0xffffffffu;

template <class I, class V>
struct Csr {
  const I* indptr;
  const I* indices;
  const V* data;
  int64_t n, m, nnz;
};

template <class Fn>
decltype(auto) dispatch(const CsrView& x, Fn&& fn) {
  auto make = [&](auto i, auto v) {
    using I = decltype(i);
    using V = decltype(v);
    return Csr<I, V>{static_cast<const I*>(x.indptr), static_cast<const I*>(x.indices), static_cast<const V*>(x.data),
                     x.n_rows, x.n_cols, x.nnz};
  };
  if (x.index_type == IndexType::int32) {
    if (x.value_type == ValueType::float32) return fn(make(int32_t{}, float{}));
    return fn(make(int32_t{}, double{}));
  }
  if (x.value_type == ValueType::float32) return fn(make(int64_t{}, float{}));
  return fn(make(int64_t{}, double{}));
}

// ------------------------------------------------------------------ the gain of one row

// w_i * sum_j alpha_j * x_ij in the canonical order, the same value in every lane.
template <class I, class V>
__device__ double warp_gain(const Csr<I, V>& x, int64_t row, const double* alpha, const double* weights, int lane) {
  const int64_t lo = x.indptr[row], hi = x.indptr[row + 1];
  double s = 0.0;
  for (int64_t e = lo + lane; e < hi; e += 32)
    s = op_add(s, op_mul(static_cast<double>(x.data[e]), alpha[x.indices[e]]));
  for (int w = 16; w >= 1; w >>= 1) s = op_add(s, __shfl_down_sync(kFull, s, w));
  s = __shfl_sync(kFull, s, 0);
  return weights != nullptr ? op_mul(weights[row], s) : s;
}

// ------------------------------------------------------------------ checks

// Copies the lowest offending row of [row_lo, row_hi) to the host and throws the CPU path's message.
template <class I, class V>
void check_rows(const Csr<I, V>& x, int64_t row_lo, int64_t row_hi, const Launch& dev) {
  const int64_t r = first_bad_row(x.indptr, x.indices, x.data, x.m, row_lo, row_hi, false, dev);
  if (r < 0) return;
  const auto row = read_row(x.indptr, x.indices, x.data, r, static_cast<cudaStream_t>(dev.stream));
  checks::row(r, row.cols.data(), row.values.data(), row.size(), x.m);
}

template <class I, class V>
void check_matrix(const Csr<I, V>& x, const Launch& dev) {
  checks::rows(x.n, x.m);
  require(x.indptr != nullptr, "X has no indptr");
  require(x.nnz >= 0, "the number of stored entries of X must be given for a device matrix");
  const int64_t i = first_bad_offset(x.indptr, x.n, x.nnz, dev);
  if (i >= 0) {
    const auto [before, value] = read_offsets(x.indptr, i, static_cast<cudaStream_t>(dev.stream));
    checks::indptr_entry(i, before, value);
    checks::stored_entries(value, x.nnz);
  }
  check_rows(x, 0, x.n, dev);
}

void check_weights(const double* w, int64_t n, const Launch& dev) {
  if (w == nullptr) return;
  const int64_t i = first_bad_value(w, n, true, dev);
  if (i >= 0) checks::weight(i, read_back(w + i, static_cast<cudaStream_t>(dev.stream)));
}

// ------------------------------------------------------------------ gains and decay

template <class I, class V>
__global__ void gains_kernel(Csr<I, V> x, const double* alpha, const double* weights, double* gains) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < x.n; r += warps) {
    const double g = warp_gain(x, r, alpha, weights, lane);
    if (lane == 0) gains[r] = g;
  }
}

// alpha <- alpha * b, atomically; false when the product leaves alpha as it was.
__device__ __forceinline__ bool scale(double* alpha, double b) {
  auto* bits = reinterpret_cast<unsigned long long*>(alpha);
  unsigned long long seen = atomicCAS(bits, 0ull, 0ull);  // an atomic read
  for (;;) {
    const double now = __longlong_as_double(static_cast<long long>(seen));
    const double next = op_mul(now, b);
    if (next == now) return false;
    const unsigned long long was = atomicCAS(bits, seen, static_cast<unsigned long long>(__double_as_longlong(next)));
    if (was == seen) return true;
    seen = was;
  }
}

// Decays the columns of row *row (one block): adds the number of changed weights to *changed and,
// when any changed, moves *version on (every stored gain is then stale).
template <class I, class V>
__global__ void decay_kernel(Csr<I, V> x, const int64_t* row, double b, double* alpha, unsigned long long* changed,
                             unsigned* version) {
  const int64_t r = *row, lo = x.indptr[r], hi = x.indptr[r + 1];
  unsigned long long count = 0;
  for (int64_t e = lo + threadIdx.x; e < hi; e += blockDim.x)
    if (x.data[e] != V(0) && scale(&alpha[x.indices[e]], b)) ++count;
  if (count > 0) atomicAdd(changed, count);
  if (__syncthreads_or(count > 0) && threadIdx.x == 0 && version != nullptr) ++*version;
}

// ------------------------------------------------------------------ the greedy

// The two best (value, row) pairs seen: larger value first, then the lower row; row -1: none.
struct Top2 {
  double v1, v2;
  int64_t i1, i2;
};

__device__ __forceinline__ void push(Top2& t, double v, int64_t i) {
  if (better(v, i, t.v1, t.i1)) {
    t.v2 = t.v1;
    t.i2 = t.i1;
    t.v1 = v;
    t.i1 = i;
  } else if (better(v, i, t.v2, t.i2)) {
    t.v2 = v;
    t.i2 = i;
  }
}

// Top two over the block's threads, valid in thread 0.
__device__ void block_top2(Top2& t, Top2* shared) {
  for (int w = 16; w >= 1; w >>= 1) {
    Top2 o;
    o.v1 = __shfl_down_sync(kFull, t.v1, w);
    o.i1 = __shfl_down_sync(kFull, t.i1, w);
    o.v2 = __shfl_down_sync(kFull, t.v2, w);
    o.i2 = __shfl_down_sync(kFull, t.i2, w);
    push(t, o.v1, o.i1);
    push(t, o.v2, o.i2);
  }
  const int warp = threadIdx.x >> 5;
  if ((threadIdx.x & 31) == 0) shared[warp] = t;
  __syncthreads();
  if (threadIdx.x == 0)
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) {
      push(t, shared[w].v1, shared[w].i1);
      push(t, shared[w].v2, shared[w].i2);
    }
}

// Device state of the greedy between launches.
struct State {
  double f_value;       // F: the exact gain of the best bound left after the previous pick ...
  int64_t f_row;        // ... and its row
  int64_t runner_up;    // the second best bound of the previous pass
  unsigned version;     // of the column weights; a gain stamped with it is exact
  unsigned long long refreshes;
  unsigned long long changed;
};

// Pool rows: taken, and every nonzero entry counted against its column.
template <class I, class V>
__global__ void pool_count_kernel(Csr<I, V> x, const int64_t* pool, int64_t count, uint8_t* taken, unsigned* hits) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t s = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); s < count; s += warps) {
    const int64_t r = pool[s];
    if (lane == 0) taken[r] = 1;
    for (int64_t e = x.indptr[r] + lane; e < x.indptr[r + 1]; e += 32)
      if (x.data[e] != V(0)) atomicAdd(&hits[x.indices[e]], 1u);
  }
}

// alpha_j = b multiplied in hits_j times from 1, as the CPU decays the pool row by row (every
// factor is b, so the order of the rows does not matter); stops once a product changes nothing.
__global__ void pool_alpha_kernel(const unsigned* hits, int64_t m, double b, double* alpha) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < m;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double a = 1.0;
    for (unsigned h = 0; h < hits[j]; ++h) {
      const double next = op_mul(a, b);
      if (next == a) break;
      a = next;
    }
    alpha[j] = a;
  }
}

// F: the runner-up of the previous pass, made exact.
template <class I, class V>
__global__ void exact_runner_up_kernel(Csr<I, V> x, const double* alpha, const double* weights, double* bound,
                                       unsigned* stamp, State* state) {
  const int lane = threadIdx.x & 31;
  const int64_t r = state->runner_up;
  const unsigned version = state->version;
  if (stamp[r] != version) {  // the same in every lane
    const double g = warp_gain(x, r, alpha, weights, lane);
    __syncwarp();
    if (lane == 0) {
      bound[r] = g;
      stamp[r] = version;
      ++state->refreshes;
    }
  }
  __syncwarp();
  if (lane == 0) {
    state->f_value = bound[r];
    state->f_row = r;
  }
}

// One pass over the rows: recompute the stale bounds that are at least F (all rows when
// `every` is set), and the block's best two bounds.
template <class I, class V>
__global__ void scan_kernel(Csr<I, V> x, const double* alpha, const double* weights, const uint8_t* taken,
                            double* bound, unsigned* stamp, State* state, bool every, Top2* block_top) {
  ISEL_SHARED(Top2, shared, 32);
  const int lane = threadIdx.x & 31;
  const unsigned version = state->version;
  const double f_value = state->f_value;
  const int64_t f_row = state->f_row;
  Top2 top{0.0, 0.0, -1, -1};
  unsigned long long refreshed = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  // Chunks of 32 rows, a warp each; `base` is the same in every lane of a warp.
  for (int64_t base = blockIdx.x * static_cast<int64_t>(blockDim.x) + (threadIdx.x & ~31); base < x.n; base += stride) {
    const int64_t r = base + lane;
    const bool live = r < x.n && !taken[r];
    double v = live && !every ? bound[r] : 0.0;
    const bool stale = live && (every || (stamp[r] != version && !better(f_value, f_row, v, r)));
    unsigned todo = __ballot_sync(kFull, stale);
    while (todo != 0) {
      const int b = __ffs(static_cast<int>(todo)) - 1;
      const double g = warp_gain(x, base + b, alpha, weights, lane);
      if (lane == b) {
        v = g;
        bound[r] = g;
        stamp[r] = version;
        ++refreshed;
      }
      todo &= todo - 1;
    }
    if (live) push(top, v, r);
  }
  if (!every) {
    for (int w = 16; w >= 1; w >>= 1) refreshed += __shfl_down_sync(kFull, refreshed, w);
    if (lane == 0 && refreshed > 0) atomicAdd(&state->refreshes, refreshed);
  }
  block_top2(top, shared);
  if (threadIdx.x == 0) block_top[blockIdx.x] = top;
}

// One block: the pick of step t from the blocks' best two; the second is the next step's start.
__global__ void pick_kernel(const Top2* block_top, int nblocks, uint8_t* taken, int64_t* picks, double* gains,
                            int64_t t, State* state) {
  ISEL_SHARED(Top2, shared, 32);
  Top2 top{0.0, 0.0, -1, -1};
  for (int b = threadIdx.x; b < nblocks; b += blockDim.x) {
    push(top, block_top[b].v1, block_top[b].i1);
    push(top, block_top[b].v2, block_top[b].i2);
  }
  block_top2(top, shared);
  if (threadIdx.x == 0) {
    picks[t] = top.i1;
    gains[t] = top.v1;
    taken[top.i1] = 1;
    state->runner_up = top.i2;
  }
}

template <class I, class V>
void run_greedy(const Csr<I, V>& x, const GreedyProblem& p, GreedyOutput& out, const Launch& dev, const Hooks& hooks) {
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const int bt = dev.block_threads;
  const int row_blocks = blocks_for(x.n, bt, dev);  // a thread per row in the scan
  Buffer taken_b(x.n, "the taken flags"), bound_b(sizeof(double) * x.n, "the gains' bounds"),
      stamp_b(sizeof(unsigned) * x.n, "the bounds' stamps"), hits_b(sizeof(unsigned) * x.m, "the pool's column counts"),
      top_b(sizeof(Top2) * row_blocks, "per-block best pairs"), state_b(sizeof(State), "the greedy's state"),
      pool_b(sizeof(int64_t) * p.n_selected, "the pool's rows");
  auto* taken = taken_b.as<uint8_t>();
  auto* bound = bound_b.as<double>();
  auto* stamp = stamp_b.as<unsigned>();
  auto* top = top_b.as<Top2>();
  auto* state = state_b.as<State>();
  double* alpha = out.alpha;
  const double* w = p.weights;

  const State start{0.0, -1, -1, 0u, 0ull, 0ull};
  CUDA_CHECK(cudaMemcpyAsync(state, &start, sizeof start, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaMemsetAsync(taken, 0, x.n, stream), "n = ", x.n);
  CUDA_CHECK(cudaMemsetAsync(hits_b.get(), 0, sizeof(unsigned) * x.m, stream), "columns = ", x.m);
  if (p.n_selected > 0) {
    CUDA_CHECK(cudaMemcpyAsync(pool_b.get(), p.selected, sizeof(int64_t) * p.n_selected, cudaMemcpyHostToDevice, stream),
               "selected rows = ", p.n_selected);
    launch(pool_count_kernel<I, V>, dim3(blocks_for(p.n_selected, bt / 32, dev)), dim3(bt), 0, stream, x,
           static_cast<const int64_t*>(pool_b.as<int64_t>()), p.n_selected, taken, hits_b.as<unsigned>());
  }
  launch(pool_alpha_kernel, dim3(blocks_for(x.m, bt, dev)), dim3(bt), 0, stream,
         static_cast<const unsigned*>(hits_b.as<unsigned>()), x.m, p.decay, alpha);
  auto pass = [&](bool every, int64_t t) {
    launch(scan_kernel<I, V>, dim3(row_blocks), dim3(bt), 0, stream, x, static_cast<const double*>(alpha), w,
           static_cast<const uint8_t*>(taken), bound, stamp, state, every, top);
    launch(pick_kernel, dim3(1), dim3(256), 0, stream, static_cast<const Top2*>(top), row_blocks, taken, out.indices,
           out.gains, t, state);
    launch(decay_kernel<I, V>, dim3(1), dim3(bt), 0, stream, x, static_cast<const int64_t*>(out.indices + t), p.decay,
           alpha, &state->changed, &state->version);
  };
  pass(true, 0);
  for (int64_t t = 1; t < p.k; ++t) {
    launch(exact_runner_up_kernel<I, V>, dim3(1), dim3(32), 0, stream, x, static_cast<const double*>(alpha), w, bound,
           stamp, state);
    pass(false, t);
    if ((t & 63) == 0) {
      CUDA_CHECK(cudaStreamSynchronize(stream), "pick ", t, " of ", p.k);
      hooks.tick(t, p.k);
    }
  }
  const State end = read_back(state, stream);
  out.refreshes = static_cast<int64_t>(end.refreshes);
  hooks.tick(p.k, p.k);
}

template <class I, class V>
void all_gains(const Csr<I, V>& x, const double* alpha, const double* weights, double* gains, const Launch& dev) {
  auto stream = static_cast<cudaStream_t>(dev.stream);
  launch(gains_kernel<I, V>, dim3(blocks_for(x.n, dev.block_threads / 32, dev)), dim3(dev.block_threads), 0, stream, x,
         alpha, weights, gains);
  CUDA_CHECK(cudaStreamSynchronize(stream), "rows = ", x.n, ", stored entries = ", x.nnz);
}

template <class I, class V>
int64_t decay_one_row(const Csr<I, V>& x, int64_t row, double decay, double* alpha, const Launch& dev) {
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const auto [lo, hi] = read_offsets(x.indptr, row + 1, stream);
  require(lo >= 0 && lo <= hi && (x.nnz < 0 || hi <= x.nnz), "X.indptr gives row ", row, " the entries [", lo, ", ", hi,
          "), outside the ", x.nnz, " stored entries");
  check_rows(x, row, row + 1, dev);
  Buffer row_b(sizeof(int64_t), "the row"), changed_b(sizeof(unsigned long long), "the count");
  CUDA_CHECK(cudaMemcpyAsync(row_b.get(), &row, sizeof row, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaMemsetAsync(changed_b.get(), 0, sizeof(unsigned long long), stream));
  launch(decay_kernel<I, V>, dim3(1), dim3(dev.block_threads), 0, stream, x,
         static_cast<const int64_t*>(row_b.as<int64_t>()), decay, alpha, changed_b.as<unsigned long long>(),
         static_cast<unsigned*>(nullptr));
  return static_cast<int64_t>(read_back(changed_b.as<unsigned long long>(), stream));
}

}  // namespace

void check(const CsrView& X, const Device& dev) {
  check_launch(dev);
  dispatch(X, [&](auto x) {
    check_matrix(x, dev);
    return 0;
  });
}

void row_gains(const CsrView& X, const double* alpha, const double* weights, double* gains, const Device& dev) {
  check(X, dev);
  dispatch(X, [&](auto x) {
    all_gains(x, alpha, weights, gains, dev);
    return 0;
  });
}

int64_t decay_row(const CsrView& X, int64_t row, double decay, double* alpha, const Device& dev) {
  check_launch(dev);
  checks::row_index(row, X.n_rows);
  checks::decay(decay);
  return dispatch(X, [&](auto x) { return decay_one_row(x, row, decay, alpha, dev); });
}

void greedy(const GreedyProblem& p, GreedyOutput& out, const Device& dev, const Hooks& hooks) {
  check(p.X, dev);
  checks::selection(p);
  require(out.alpha != nullptr || p.X.n_cols == 0, "the device greedy needs an output array for alpha");
  check_weights(p.weights, p.X.n_rows, dev);
  dispatch(p.X, [&](auto x) {
    run_greedy(x, p, out, dev, hooks);
    return 0;
  });
}

}  // namespace isel::coverage::cuda
