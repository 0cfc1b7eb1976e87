// k-center greedy on CUDA (and, through common/cuda_compat.cuh, on the CPU emulation of the
// grid). A warp owns a row: lane l accumulates elements l, l+32, ... with fma, then a
// shuffle-down tree folds the lanes: exactly common/distance.hpp's canonical order, so the GPU
// returns the same picks as the CPU path, bit for bit.
#include "common/cuda_compat.cuh"
#include "common/device_argmax.cuh"
#include "common/device_math.cuh"
#include "common/check.hpp"
#include "kcenter/kcenter_cuda.hpp"

#include <limits>
#include <vector>

namespace isel::kcenter::cuda {
namespace {

using namespace isel::device;


// Squared (scaled) distance of row x to center c, valid in lane 0. Every lane of the warp calls it.
template <class T, class A>
__device__ A warp_sqdist(const T* x, const A* c, int64_t d, bool scaled, A inv_x, int lane) {
  A acc = A(0);
  for (int64_t j = lane; j < d; j += 32) {
    A xj = dev_load(x, j);
    if (scaled) xj = op_mul(xj, inv_x);
    A diff = op_sub(xj, c ? c[j] : A(0));
    acc = op_fma(diff, diff, acc);
  }
  for (int w = 16; w >= 1; w >>= 1) acc = op_add(acc, __shfl_down_sync(0xffffffffu, acc, w));
  return acc;
}

template <class T, class A>
__global__ void inverse_norms_kernel(const T* X, int64_t n, int64_t d, A* inv) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < n; r += warps) {
    A s = warp_sqdist<T, A>(X + r * d, static_cast<const A*>(nullptr), d, false, A(1), lane);
    if (lane == 0) inv[r] = op_div(A(1), op_sqrt(s));
  }
}

template <class A>
__global__ void fill_kernel(A* a, int64_t n, A value) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    a[i] = value;
}

// Makes point *index the newest center: widened (and scaled for cosine) into `center`, marked
// chosen, its own distance 0, and recorded as pick `slot` when slot >= 0.
template <class T, class A>
__global__ void set_center_kernel(const T* X, int64_t d, const int64_t* index, const A* inv, bool cosine,
                                  A* center, uint8_t* chosen, A* min_sq, int64_t* picks, int64_t slot) {
  const int64_t i = *index;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    A v = dev_load(X + i * d, j);
    center[j] = cosine ? op_mul(v, inv[i]) : v;
  }
  if (threadIdx.x == 0) {
    chosen[i] = 1;
    min_sq[i] = A(0);
    if (slot >= 0) picks[slot] = i;
  }
}

// The fused step: min_sq <- min(min_sq, d(x, center)) for unchosen rows; per-block argmax.
template <class T, class A>
__global__ void step_kernel(const T* X, int64_t n, int64_t d, const A* center, const A* inv, bool cosine,
                            A* min_sq, const uint8_t* chosen, A* block_val, int64_t* block_idx) {
  ISEL_SHARED(A, sv, 32);
  ISEL_SHARED(int64_t, si, 32);
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  A best = A(-1);
  int64_t best_i = -1;
  for (int64_t r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < n; r += warps) {
    if (chosen[r]) continue;  // uniform across the warp
    A s = warp_sqdist<T, A>(X + r * d, center, d, cosine, cosine ? inv[r] : A(1), lane);
    if (lane == 0) {
      A m = min_sq[r];
      if (s < m) m = s;
      min_sq[r] = m;
      if (better(m, r, best, best_i)) {
        best = m;
        best_i = r;
      }
    }
  }
  block_argmax(best, best_i, sv, si);
  if (threadIdx.x == 0) {
    block_val[blockIdx.x] = best;
    block_idx[blockIdx.x] = best_i;
  }
}

template <class T>
void run(const DeviceProblem& p, DeviceOutput& out, const Hooks& hooks) {
  using A = accum_t<T>;
  auto stream = static_cast<cudaStream_t>(p.stream);
  const T* X = static_cast<const T*>(p.X);
  const bool cosine = p.metric == Metric::cosine;
  const int threads = p.block_threads;
  const int warps_per_block = threads / 32;
  int64_t want = (p.n + warps_per_block - 1) / warps_per_block;
  const int blocks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, p.max_blocks > 0 ? p.max_blocks : 4096)));

  struct Buffer {
    void* ptr = nullptr;
    ~Buffer() { cudaFree(ptr); }
  };
  Buffer inv_b, center_b, chosen_b, bval_b, bidx_b, next_b;
  cuda_check(cudaMalloc(&center_b.ptr, sizeof(A) * p.d), "cudaMalloc");
  cuda_check(cudaMalloc(&chosen_b.ptr, p.n), "cudaMalloc");
  cuda_check(cudaMalloc(&bval_b.ptr, sizeof(A) * blocks), "cudaMalloc");
  cuda_check(cudaMalloc(&bidx_b.ptr, sizeof(int64_t) * blocks), "cudaMalloc");
  cuda_check(cudaMalloc(&next_b.ptr, sizeof(int64_t)), "cudaMalloc");
  A* inv = nullptr;
  if (cosine) {
    cuda_check(cudaMalloc(&inv_b.ptr, sizeof(A) * p.n), "cudaMalloc");
    inv = static_cast<A*>(inv_b.ptr);
    launch(inverse_norms_kernel<T, A>, dim3(blocks), dim3(threads), 0, stream, X, p.n, p.d, inv);
  }
  A* center = static_cast<A*>(center_b.ptr);
  auto* chosen = static_cast<uint8_t*>(chosen_b.ptr);
  auto* bval = static_cast<A*>(bval_b.ptr);
  auto* bidx = static_cast<int64_t*>(bidx_b.ptr);
  auto* next = static_cast<int64_t*>(next_b.ptr);
  A* min_sq = static_cast<A*>(out.min_sq);
  A* values = static_cast<A*>(out.values);
  cuda_check(cudaMemsetAsync(chosen, 0, p.n, stream), "cudaMemset");
  launch(fill_kernel<A>, dim3(blocks), dim3(threads), 0, stream, min_sq, p.n, std::numeric_limits<A>::infinity());

  auto add_center = [&](int64_t slot) {  // center = *next; then one fused pass
    launch(set_center_kernel<T, A>, dim3(1), dim3(threads), 0, stream, X, p.d, static_cast<const int64_t*>(next),
           static_cast<const A*>(inv), cosine, center, chosen, min_sq, out.indices, slot);
    launch(step_kernel<T, A>, dim3(blocks), dim3(threads), 0, stream, X, p.n, p.d, static_cast<const A*>(center),
           static_cast<const A*>(inv), cosine, min_sq, static_cast<const uint8_t*>(chosen), bval, bidx);
  };
  int64_t t = 0;
  if (p.n_selected > 0) {
    // The pool's min-distances: one fused pass per pool point (no GEMM library needed).
    for (int64_t s = 0; s < p.n_selected; ++s) {
      cuda_check(cudaMemcpyAsync(next, p.selected + s, sizeof(int64_t), cudaMemcpyHostToDevice, stream), "cudaMemcpy");
      cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");  // the host value must stay valid
      add_center(-1);
    }
  } else {
    cuda_check(cudaMemcpyAsync(next, &p.seed_index, sizeof(int64_t), cudaMemcpyHostToDevice, stream), "cudaMemcpy");
    cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    add_center(0);
    t = 1;
  }
  for (;; ++t) {
    launch(argmax_of_blocks_kernel<A>, dim3(1), dim3(256), 0, stream, static_cast<const A*>(bval),
           static_cast<const int64_t*>(bidx), blocks, next, values, t - 1);
    if (t == p.k) break;
    add_center(t);
    if ((t & 63) == 0) {
      cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      hooks.tick(t, p.k);
    }
  }
  cuda_check(cudaGetLastError(), "kernel launch");
  cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

}  // namespace

void greedy(const DeviceProblem& p, DeviceOutput& out, const Hooks& hooks) {
  require(p.n >= 1 && p.d >= 1, "X must be non-empty (got ", p.n, " x ", p.d, ")");
  require(p.k >= 1 && p.k <= p.n - p.n_selected, "k (", p.k, ") must be in [1, ", p.n - p.n_selected, "]");
  require(p.block_threads >= 32 && p.block_threads <= 1024 && p.block_threads % 32 == 0,
          "block_threads (", p.block_threads, ") must be a multiple of 32 in [32, 1024]");
  if (p.n_selected == 0) require(p.seed_index >= 0 && p.seed_index < p.n, "seed_index out of range");
  std::vector<uint8_t> seen(p.n, 0);
  for (int64_t s = 0; s < p.n_selected; ++s) {
    int64_t i = p.selected[s];
    require(i >= 0 && i < p.n && !seen[i], "selected[", s, "] (", i, ") is out of range or repeated");
    seen[i] = 1;
  }
  dispatch_dtype(p.dtype, [&](auto tag) { run<decltype(tag)>(p, out, hooks); });
}

}  // namespace isel::kcenter::cuda
