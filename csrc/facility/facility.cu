// Facility location on CUDA (and, through common/cuda_compat.cuh, on the CPU emulation of the
// grid). facility_cuda.hpp says what it computes; the kernels:
//  - update (one block): reads the pick from device memory, marks it taken, raises `current`
//    for the points of its column, and marks the candidates of the points that changed (the
//    graph's rows of those points), or flags every candidate when the marks would touch more
//    entries than there are candidates (the CPU driver's rule);
//  - gains (grid-stride, a thread a candidate): recomputes the gain of every marked candidate
//    with graph.hpp's column_gain (the CPU's code, so the same bits) and finds each block's
//    argmax; argmax_of_blocks_kernel then folds the blocks (ties: lowest column).
// A candidate's gain depends only on `current` over its column's points, so an unmarked gain
// equals its recomputation: the picks are the plain greedy's, hence the CPU lazy greedy's.
#include "common/cuda_compat.cuh"
#include "common/device_argmax.cuh"
#include "common/check.hpp"
#include "facility/facility_cuda.hpp"

#include <algorithm>
#include <vector>

namespace isel::facility::cuda {
namespace {

using namespace isel::device;

template <class I, class V>
__global__ void gains_kernel(const int64_t* colptr, const I* rows, const V* vals, int64_t n_cand,
                             const double* current, Mix mix, const uint8_t* taken, unsigned* marked,
                             const unsigned* all_marked, double* gains, double* block_val, int64_t* block_idx) {
  ISEL_SHARED(double, sv, 32);
  ISEL_SHARED(int64_t, si, 32);
  const bool all = *all_marked != 0;
  double best = -1.0;
  int64_t best_j = -1;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < n_cand; j += stride) {
    if (taken[j]) continue;
    if (all || marked[j] != 0) {
      gains[j] = mix(j, column_gain(colptr, rows, vals, j, current));
      marked[j] = 0;
    }
    const double g = gains[j];
    if (better(g, j, best, best_j)) {
      best = g;
      best_j = j;
    }
  }
  warp_argmax(best, best_j);
  block_argmax(best, best_j, sv, si);
  if (threadIdx.x == 0) {
    block_val[blockIdx.x] = best;
    block_idx[blockIdx.x] = best_j;
  }
}

// Applies candidate *pick (slot >= 0: records it as pick `slot`). With `mark`, first counts the
// marks the changed points would make, then either marks their candidates or flags all.
template <class I, class V>
__global__ void update_kernel(const int64_t* colptr, const I* rows, const V* vals, const int64_t* indptr,
                              const I* indices, int64_t n_cand, const int64_t* pick, double* current, uint8_t* taken,
                              unsigned* marked, unsigned* all_marked, int64_t* picks, int64_t slot, bool mark) {
  ISEL_SHARED(unsigned long long, total, 1);
  const int64_t j = *pick;
  const int64_t lo = colptr[j], hi = colptr[j + 1];
  if (threadIdx.x == 0) {
    *total = 0;
    taken[j] = 1;
    if (slot >= 0) picks[slot] = j;
    if (mark) *all_marked = 0;  // the gains pass that read it has finished
  }
  __syncthreads();
  bool all = false;
  if (mark) {
    unsigned long long mine = 0;
    for (int64_t e = lo + threadIdx.x; e < hi; e += blockDim.x) {
      const int64_t i = static_cast<int64_t>(rows[e]);
      if (static_cast<double>(vals[e]) > current[i]) mine += static_cast<unsigned long long>(indptr[i + 1] - indptr[i]);
    }
    atomicAdd(total, mine);
    __syncthreads();
    all = *total >= static_cast<unsigned long long>(n_cand);
    if (threadIdx.x == 0 && all) *all_marked = 1;
  }
  // Each point appears once in a column, so the thread of entry e alone reads and writes current[i].
  for (int64_t e = lo + threadIdx.x; e < hi; e += blockDim.x) {
    const int64_t i = static_cast<int64_t>(rows[e]);
    const double s = static_cast<double>(vals[e]);
    if (s > current[i]) {
      if (mark && !all)
        for (int64_t r = indptr[i]; r < indptr[i + 1]; ++r) atomicExch(&marked[static_cast<int64_t>(indices[r])], 1u);
      current[i] = s;
    }
  }
}

struct Buffer {
  void* ptr = nullptr;
  ~Buffer() { cudaFree(ptr); }
};

template <class T>
T* device_copy(Buffer& b, const T* src, int64_t count, cudaStream_t stream) {
  const size_t bytes = sizeof(T) * static_cast<size_t>(std::max<int64_t>(count, 1));
  cuda_check(cudaMalloc(&b.ptr, bytes), "cudaMalloc");
  if (count > 0 && src != nullptr)
    cuda_check(cudaMemcpyAsync(b.ptr, src, sizeof(T) * count, cudaMemcpyHostToDevice, stream), "cudaMemcpy");
  return static_cast<T*>(b.ptr);
}

template <class T>
T* device_alloc(Buffer& b, int64_t count) {
  return device_copy<T>(b, nullptr, count, nullptr);
}

template <class I, class V>
void run(const Typed<I, V>& g, const Problem& p, Output& out, const Device& dev, const Hooks& hooks) {
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const Transposed<I, V> cols = transpose(g, "the graph");
  const int64_t n_points = g.n_rows, n_cand = g.n_cols, nnz = g.indptr[g.n_rows];
  const int threads = dev.block_threads;
  const int64_t want = (n_cand + threads - 1) / threads;
  const int64_t cap = dev.max_blocks > 0 ? dev.max_blocks : 4096;
  const int blocks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, cap)));

  Buffer b_indptr, b_indices, b_colptr, b_rows, b_vals, b_quality, b_pool, b_current, b_gains, b_taken, b_marked,
      b_all, b_bval, b_bidx, b_next, b_picks, b_values;
  const int64_t* indptr = device_copy(b_indptr, g.indptr, n_points + 1, stream);
  const I* indices = device_copy(b_indices, g.indices, nnz, stream);
  const int64_t* colptr = device_copy(b_colptr, cols.indptr.data(), n_cand + 1, stream);
  const I* rows = device_copy(b_rows, cols.indices.data(), nnz, stream);
  const V* vals = device_copy(b_vals, cols.data.data(), nnz, stream);
  const double* quality = p.quality ? device_copy(b_quality, p.quality, n_cand, stream) : nullptr;
  const int64_t* pool = device_copy(b_pool, p.selected, p.n_selected, stream);
  auto* current = device_alloc<double>(b_current, n_points);
  auto* gains = device_alloc<double>(b_gains, n_cand);
  auto* taken = device_alloc<uint8_t>(b_taken, n_cand);
  auto* marked = device_alloc<unsigned>(b_marked, n_cand);
  auto* all_marked = device_alloc<unsigned>(b_all, 1);
  auto* bval = device_alloc<double>(b_bval, blocks);
  auto* bidx = device_alloc<int64_t>(b_bidx, blocks);
  auto* next = device_alloc<int64_t>(b_next, 1);
  auto* picks = device_alloc<int64_t>(b_picks, p.k);
  auto* values = device_alloc<double>(b_values, p.k);
  cuda_check(cudaMemsetAsync(current, 0, sizeof(double) * n_points, stream), "cudaMemset");  // +0.0
  cuda_check(cudaMemsetAsync(taken, 0, static_cast<size_t>(n_cand), stream), "cudaMemset");
  cuda_check(cudaMemsetAsync(marked, 0, sizeof(unsigned) * n_cand, stream), "cudaMemset");

  const Mix mix(quality, p.quality_weight);
  auto apply = [&](const int64_t* which, int64_t slot, bool mark) {
    launch(update_kernel<I, V>, dim3(1), dim3(threads), 0, stream, colptr, rows, vals, indptr, indices, n_cand, which,
           current, taken, marked, all_marked, picks, slot, mark);
  };
  for (int64_t s = 0; s < p.n_selected; ++s) apply(pool + s, -1, false);
  cuda_check(cudaMemsetAsync(all_marked, 1, sizeof(unsigned), stream), "cudaMemset");  // nonzero: every gain
  for (int64_t t = 0; t < p.k; ++t) {
    launch(gains_kernel<I, V>, dim3(blocks), dim3(threads), 0, stream, colptr, rows, vals, n_cand,
           static_cast<const double*>(current), mix, static_cast<const uint8_t*>(taken), marked,
           static_cast<const unsigned*>(all_marked), gains, bval, bidx);
    launch(argmax_of_blocks_kernel<double>, dim3(1), dim3(256), 0, stream, static_cast<const double*>(bval),
           static_cast<const int64_t*>(bidx), blocks, next, values, t);
    apply(next, t, true);
    if (((t + 1) & 63) == 0 || t + 1 == p.k) {
      cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
      hooks.tick(t + 1, p.k);
    }
  }
  cuda_check(cudaGetLastError(), "kernel launch");
  cuda_check(cudaMemcpyAsync(out.indices, picks, sizeof(int64_t) * p.k, cudaMemcpyDeviceToHost, stream), "cudaMemcpy");
  cuda_check(cudaMemcpyAsync(out.gains, values, sizeof(double) * p.k, cudaMemcpyDeviceToHost, stream), "cudaMemcpy");
  if (out.current != nullptr)
    cuda_check(cudaMemcpyAsync(out.current, current, sizeof(double) * n_points, cudaMemcpyDeviceToHost, stream),
               "cudaMemcpy");
  cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  out.evaluations = 0;
}

}  // namespace

void greedy(const Problem& p, Output& out, const Device& dev, const Hooks& hooks) {
  validate(p);
  require(dev.block_threads >= 32 && dev.block_threads <= 1024 && dev.block_threads % 32 == 0,
          "block_threads (", dev.block_threads, ") must be a multiple of 32 in [32, 1024]");
  require(dev.max_blocks >= 0, "max_blocks (", dev.max_blocks, ") must be >= 0");
  dispatch(p.graph, [&](auto g) {
    run(g, p, out, dev, hooks);
    return 0;
  });
}

}  // namespace isel::facility::cuda
