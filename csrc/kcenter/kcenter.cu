// k-center greedy on CUDA (and, through common/cuda_compat.cuh, on the CPU emulation of the
// grid). A warp owns a row: lane l accumulates elements l, l+32, ... with fma, then a
// shuffle-down tree folds the lanes: exactly common/distance.hpp's canonical order, so the GPU
// returns the same picks as the CPU path, bit for bit.
//
// A warm start's pool is one blocked pass (pool_min_kernel), not one pass per pool point: a block
// holds a tile of pool points in block storage, a chunk of dimensions at a time, and each warp
// meets that tile with a few rows of X; every (row, pool point) distance is still the canonical
// sum (lane l accumulates dimensions l, l+32, ..., then the shuffle-down fold), and the minimum
// over the pool does not depend on the order it is taken in.
#include "common/cuda_compat.cuh"
#include "common/device_argmax.cuh"
#include "common/device_buffer.cuh"
#include "common/device_math.cuh"
#include "common/zero_row.cuh"
#include "common/check.hpp"
#include "kcenter/kcenter_cuda.hpp"

#include <algorithm>
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

// inv[r] = 1 / ||x_r||; the lowest row of zero norm (if any) goes to *zero_row.
template <class T, class A>
__global__ void inverse_norms_kernel(const T* X, int64_t n, int64_t d, A* inv, unsigned long long* zero_row) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < n; r += warps) {
    A s = warp_sqdist<T, A>(X + r * d, static_cast<const A*>(nullptr), d, false, A(1), lane);
    if (lane == 0) {
      inv[r] = op_div(A(1), op_sqrt(s));
      if (s == A(0)) note_zero_row(zero_row, r);
    }
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
  // Lanes other than 0 hold no candidate (-1), which loses to any, so the warp fold is exact.
  store_block_argmax(best, best_i, sv, si, block_val, block_idx);
}

// The pool pass. Pool points (widened, scaled for cosine) are gathered into C, a batch at a time.
template <class T, class A>
__global__ void gather_pool_kernel(const T* X, int64_t d, const int64_t* pool, int64_t count, const A* inv, bool cosine,
                                   A* C, uint8_t* chosen, A* min_sq) {
  const int64_t total = count * d;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = e / d, j = e - c * d, i = pool[c];
    const A v = dev_load(X + i * d, j);
    C[e] = cosine ? op_mul(v, inv[i]) : v;
    if (j == 0) {
      chosen[i] = 1;
      min_sq[i] = A(0);
    }
  }
}

constexpr int kPoolRows = 4;       // rows of X per warp
constexpr int kPoolCenters = 8;    // pool points per tile
constexpr int kPoolChunk = 256;    // dimensions of the tile held in block storage at a time
constexpr int64_t kPoolBatch = 8192;  // default pool points gathered per pass (bounds C's memory)

// min_sq[r] <- min(min_sq[r], min over the n_centers rows of C of d(x_r, c)) for unchosen rows.
// Block storage: kPoolCenters x chunk values (chunk a multiple of 32, at most kPoolChunk).
template <class T, class A>
__global__ void pool_min_kernel(const T* X, int64_t n, int64_t d, const A* C, int64_t n_centers, int chunk,
                                const A* inv, bool cosine, A* min_sq, const uint8_t* chosen, A infinity) {
  ISEL_SHARED_DYNAMIC(A, tile);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t rows_per_block = static_cast<int64_t>(warps) * kPoolRows;
  for (int64_t base = blockIdx.x * rows_per_block; base < n; base += static_cast<int64_t>(gridDim.x) * rows_per_block) {
    const int64_t r0 = base + static_cast<int64_t>(warp) * kPoolRows;
    A best[kPoolRows], inv_x[kPoolRows];
    for (int p = 0; p < kPoolRows; ++p) {
      best[p] = infinity;
      inv_x[p] = (cosine && r0 + p < n) ? inv[r0 + p] : A(1);
    }
    for (int64_t c0 = 0; c0 < n_centers; c0 += kPoolCenters) {
      const int tile_centers = n_centers - c0 < kPoolCenters ? static_cast<int>(n_centers - c0) : kPoolCenters;
      A acc[kPoolRows][kPoolCenters];
      for (int p = 0; p < kPoolRows; ++p)
        for (int q = 0; q < kPoolCenters; ++q) acc[p][q] = A(0);
      for (int64_t j0 = 0; j0 < d; j0 += chunk) {
        const int width = d - j0 < chunk ? static_cast<int>(d - j0) : chunk;
        __syncthreads();  // the previous chunk has been read by every warp
        for (int e = threadIdx.x; e < kPoolCenters * chunk; e += blockDim.x) {
          const int q = e / chunk, j = e - q * chunk;
          tile[e] = (q < tile_centers && j < width) ? C[(c0 + q) * d + j0 + j] : A(0);
        }
        __syncthreads();
        // Lane l takes dimensions j0 + l, j0 + l + 32, ...: partial (j mod 32), j increasing.
        for (int j = lane; j < width; j += 32) {
          A x[kPoolRows];
          for (int p = 0; p < kPoolRows; ++p) {
            x[p] = r0 + p < n ? A(dev_load(X + (r0 + p) * d, j0 + j)) : A(0);
            if (cosine) x[p] = op_mul(x[p], inv_x[p]);
          }
          for (int q = 0; q < kPoolCenters; ++q) {
            const A c = tile[q * chunk + j];
            for (int p = 0; p < kPoolRows; ++p) {
              const A diff = op_sub(x[p], c);
              acc[p][q] = op_fma(diff, diff, acc[p][q]);
            }
          }
        }
      }
      for (int p = 0; p < kPoolRows; ++p)
        for (int q = 0; q < kPoolCenters; ++q) {
          A s = acc[p][q];
          for (int w = 16; w >= 1; w >>= 1) s = op_add(s, __shfl_down_sync(0xffffffffu, s, w));
          if (q < tile_centers && s < best[p]) best[p] = s;
        }
    }
    if (lane == 0)
      for (int p = 0; p < kPoolRows; ++p) {
        const int64_t r = r0 + p;
        if (r < n && !chosen[r] && best[p] < min_sq[r]) min_sq[r] = best[p];
      }
  }
}

// Per-block argmax of min_sq over unchosen rows (the first pick after a pool).
template <class A>
__global__ void argmax_kernel(const A* min_sq, int64_t n, const uint8_t* chosen, A* block_val, int64_t* block_idx) {
  ISEL_SHARED(A, sv, 32);
  ISEL_SHARED(int64_t, si, 32);
  A best = A(-1);
  int64_t best_i = -1;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < n;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x)
    if (!chosen[r] && better(min_sq[r], r, best, best_i)) {
      best = min_sq[r];
      best_i = r;
    }
  store_block_argmax(best, best_i, sv, si, block_val, block_idx);
}

// Min-distances of every point to the pool (blocked passes), then the per-block argmax that the
// reduction turns into the first pick.
template <class T, class A>
void pool_pass(const DeviceProblem& p, const T* X, const A* inv, bool cosine, A* min_sq, uint8_t* chosen, A* bval,
               int64_t* bidx, int blocks, cudaStream_t stream) {
  const int threads = p.block_threads;
  const int64_t batch = std::min<int64_t>(p.n_selected, p.pool_batch > 0 ? p.pool_batch : kPoolBatch);
  device::Buffer pool_b(sizeof(int64_t) * p.n_selected, "the pool's indices");
  device::Buffer centers_b(sizeof(A) * batch * p.d, "a batch of pool points");
  auto* pool = pool_b.as<int64_t>();
  A* C = centers_b.as<A>();
  CUDA_CHECK(cudaMemcpyAsync(pool, p.selected, sizeof(int64_t) * p.n_selected, cudaMemcpyHostToDevice, stream),
             "pool points = ", p.n_selected);
  const int chunk = static_cast<int>(std::min<int64_t>(kPoolChunk, (p.d + 31) / 32 * 32));
  const int64_t rows_per_block = static_cast<int64_t>(threads / 32) * kPoolRows;
  const int tile_blocks = static_cast<int>(std::clamp<int64_t>((p.n + rows_per_block - 1) / rows_per_block, 1,
                                                               p.max_blocks > 0 ? p.max_blocks : 4096));
  // A later batch's gather marks its points chosen (min-distance 0) after earlier passes may have
  // lowered their min_sq: the last write wins, and passes skip chosen rows.
  for (int64_t s0 = 0; s0 < p.n_selected; s0 += batch) {
    const int64_t count = std::min(batch, p.n_selected - s0);
    launch(gather_pool_kernel<T, A>, dim3(blocks), dim3(threads), 0, stream, X, p.d,
           static_cast<const int64_t*>(pool + s0), count, inv, cosine, C, chosen, min_sq);
    launch(pool_min_kernel<T, A>, dim3(tile_blocks), dim3(threads), sizeof(A) * kPoolCenters * chunk, stream, X, p.n,
           p.d, static_cast<const A*>(C), count, chunk, inv, cosine, min_sq, static_cast<const uint8_t*>(chosen),
           std::numeric_limits<A>::infinity());
  }
  launch(argmax_kernel<A>, dim3(blocks), dim3(threads), 0, stream, static_cast<const A*>(min_sq), p.n,
         static_cast<const uint8_t*>(chosen), bval, bidx);
  CUDA_CHECK(cudaStreamSynchronize(stream), "pool points = ", p.n_selected);
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

  device::Buffer center_b(sizeof(A) * p.d, "the newest center"), chosen_b(p.n, "the chosen flags"),
      bval_b(sizeof(A) * blocks, "per-block maxima"), bidx_b(sizeof(int64_t) * blocks, "per-block argmaxima"),
      next_b(sizeof(int64_t), "the next pick");
  device::Buffer inv_b(cosine ? sizeof(A) * p.n : 0, "inverse norms");
  A* inv = nullptr;
  if (cosine) {
    inv = inv_b.as<A>();
    device::ZeroRowCheck zero_rows(stream);
    launch(inverse_norms_kernel<T, A>, dim3(blocks), dim3(threads), 0, stream, X, p.n, p.d, inv, zero_rows.flag());
    zero_rows.throw_if_found();
  }
  A* center = center_b.as<A>();
  auto* chosen = chosen_b.as<uint8_t>();
  auto* bval = bval_b.as<A>();
  auto* bidx = bidx_b.as<int64_t>();
  auto* next = next_b.as<int64_t>();
  A* min_sq = static_cast<A*>(out.min_sq);
  A* values = static_cast<A*>(out.values);
  CUDA_CHECK(cudaMemsetAsync(chosen, 0, p.n, stream), "n = ", p.n);
  launch(fill_kernel<A>, dim3(blocks), dim3(threads), 0, stream, min_sq, p.n, std::numeric_limits<A>::infinity());

  auto add_center = [&](int64_t slot) {  // center = *next; then one fused pass
    launch(set_center_kernel<T, A>, dim3(1), dim3(threads), 0, stream, X, p.d, static_cast<const int64_t*>(next),
           static_cast<const A*>(inv), cosine, center, chosen, min_sq, out.indices, slot);
    launch(step_kernel<T, A>, dim3(blocks), dim3(threads), 0, stream, X, p.n, p.d, static_cast<const A*>(center),
           static_cast<const A*>(inv), cosine, min_sq, static_cast<const uint8_t*>(chosen), bval, bidx);
  };
  int64_t t = 0;
  if (p.n_selected > 0) {
    pool_pass<T, A>(p, X, inv, cosine, min_sq, chosen, bval, bidx, blocks, stream);
  } else {
    CUDA_CHECK(cudaMemcpyAsync(next, &p.seed_index, sizeof(int64_t), cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    add_center(0);
    t = 1;
  }
  for (;; ++t) {
    launch(argmax_of_blocks_kernel<A>, dim3(1), dim3(256), 0, stream, static_cast<const A*>(bval),
           static_cast<const int64_t*>(bidx), blocks, next, values, t - 1);
    if (t == p.k) break;
    add_center(t);
    if ((t & 63) == 0) {
      CUDA_CHECK(cudaStreamSynchronize(stream), "pick ", t, " of ", p.k);
      hooks.tick(t, p.k);
    }
  }
  CUDA_CHECK(cudaStreamSynchronize(stream), "k = ", p.k, ", n = ", p.n, ", d = ", p.d);
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
