// Facility location on CUDA (and, through common/cuda_compat.cuh, on the CPU emulation of the
// grid). facility_cuda.hpp says what it computes; the kernels:
//  - the checks (common/device_checks.cuh): both views' offsets and entries, the column view's
//    order and quality, each noting the lowest offending index for the host to report;
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
#include "common/device_buffer.cuh"
#include "common/device_checks.cuh"
#include "common/check.hpp"
#include "facility/facility_cuda.hpp"

#include <algorithm>

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
  store_block_argmax(best, best_j, sv, si, block_val, block_idx);
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

template <class I, class V>
Typed<I, V> typed_as(const Typed<I, V>&, const Graph& g) {
  return {g.n_rows, g.n_cols, g.indptr, static_cast<const I*>(g.indices), static_cast<const V*>(g.data)};
}

// Checks one view of the graph on the device; throws check_csr's message (or, for the column
// view, check_column_order's) for the lowest offending offset or row. `what` names the view,
// `graph` the graph it is a view of.
template <class I, class V>
void check_view(const Typed<I, V>& g, int64_t nnz, const char* what, const char* graph, bool column_view,
                const Device& dev) {
  check_dimensions(g.n_rows, g.n_cols, sizeof(I) == 4, what);
  require(g.indptr != nullptr, what, " has no indptr");
  require(nnz >= 0, "the number of stored entries of ", what, " must be given on the device");
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const int64_t i = first_bad_offset(g.indptr, g.n_rows, nnz, dev);
  if (i >= 0) {
    const auto [before, value] = read_offsets(g.indptr, i, stream);
    check_offset(what, i, before, value);
    check_stored(what, value, nnz);
  }
  const int64_t r = first_bad_row(g.indptr, g.indices, g.data, g.n_cols, 0, g.n_rows, column_view, dev);
  if (r < 0) return;
  const auto row = read_row(g.indptr, g.indices, g.data, r, stream);
  check_row(what, r, row.cols.data(), row.values.data(), row.size(), g.n_cols);
  for (int64_t e = 1; e < row.size() && column_view; ++e)
    check_column_order(graph, r, static_cast<int64_t>(row.cols[e - 1]), static_cast<int64_t>(row.cols[e]));
}

void check_quality_values(const double* quality, int64_t n, const Device& dev) {
  if (quality == nullptr) return;
  const int64_t i = first_bad_value(quality, n, false, dev);
  if (i >= 0) check_quality(i, read_back(quality + i, static_cast<cudaStream_t>(dev.stream)));
}

template <class I, class V>
void run(const Typed<I, V>& g, const Typed<I, V>& cols, const Problem& p, Output& out, const Device& dev,
         const Hooks& hooks) {
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const int64_t n_points = g.n_rows, n_cand = g.n_cols;
  const int threads = dev.block_threads;
  const int blocks = blocks_for(n_cand, threads, dev, 4096);

  Buffer pool_b(sizeof(int64_t) * p.n_selected, "the selected candidates"),
      gains_b(sizeof(double) * n_cand, "the candidates' gains"), taken_b(n_cand, "the taken flags"),
      marked_b(sizeof(unsigned) * n_cand, "the stale marks"), all_b(sizeof(unsigned), "the all-stale flag"),
      bval_b(sizeof(double) * blocks, "per-block maxima"), bidx_b(sizeof(int64_t) * blocks, "per-block argmaxima"),
      next_b(sizeof(int64_t), "the next pick");
  const int64_t* pool = pool_b.as<int64_t>();
  auto* gains = gains_b.as<double>();
  auto* taken = taken_b.as<uint8_t>();
  auto* marked = marked_b.as<unsigned>();
  auto* all_marked = all_b.as<unsigned>();
  auto* bval = bval_b.as<double>();
  auto* bidx = bidx_b.as<int64_t>();
  auto* next = next_b.as<int64_t>();
  double* current = out.current;
  if (p.n_selected > 0)
    CUDA_CHECK(cudaMemcpyAsync(pool_b.get(), p.selected, sizeof(int64_t) * p.n_selected, cudaMemcpyHostToDevice,
                               stream), "selected candidates = ", p.n_selected);
  CUDA_CHECK(cudaMemsetAsync(current, 0, sizeof(double) * n_points, stream), "points = ", n_points);  // +0.0
  CUDA_CHECK(cudaMemsetAsync(taken, 0, static_cast<size_t>(n_cand), stream), "candidates = ", n_cand);
  CUDA_CHECK(cudaMemsetAsync(marked, 0, sizeof(unsigned) * n_cand, stream), "candidates = ", n_cand);

  const Mix mix(p.quality, p.quality_weight);
  auto apply = [&](const int64_t* which, int64_t slot, bool mark) {
    launch(update_kernel<I, V>, dim3(1), dim3(threads), 0, stream, cols.indptr, cols.indices, cols.data, g.indptr,
           g.indices, n_cand, which, current, taken, marked, all_marked, out.indices, slot, mark);
  };
  for (int64_t s = 0; s < p.n_selected; ++s) apply(pool + s, -1, false);
  CUDA_CHECK(cudaMemsetAsync(all_marked, 1, sizeof(unsigned), stream));  // nonzero: every gain
  for (int64_t t = 0; t < p.k; ++t) {
    launch(gains_kernel<I, V>, dim3(blocks), dim3(threads), 0, stream, cols.indptr, cols.indices, cols.data, n_cand,
           static_cast<const double*>(current), mix, static_cast<const uint8_t*>(taken), marked,
           static_cast<const unsigned*>(all_marked), gains, bval, bidx);
    launch(argmax_of_blocks_kernel<double>, dim3(1), dim3(256), 0, stream, static_cast<const double*>(bval),
           static_cast<const int64_t*>(bidx), blocks, next, out.gains, t);
    apply(next, t, true);
    if (((t + 1) & 63) == 0 || t + 1 == p.k) {
      CUDA_CHECK(cudaStreamSynchronize(stream), "pick ", t + 1, " of ", p.k);
      hooks.tick(t + 1, p.k);
    }
  }
  CUDA_CHECK(cudaStreamSynchronize(stream), "k = ", p.k, ", points = ", n_points, ", candidates = ", n_cand,
             ", stored entries = ", p.graph.nnz);
  out.evaluations = 0;
}

}  // namespace

void greedy(const Problem& p, const Graph& columns, Output& out, const Device& dev, const Hooks& hooks) {
  check_launch(dev);
  require(dev.max_blocks >= 0, "max_blocks (", dev.max_blocks, ") must be >= 0");
  require(columns.n_rows == p.graph.n_cols && columns.n_cols == p.graph.n_rows &&
              columns.index_type == p.graph.index_type && columns.value_type == p.graph.value_type,
          "the column view (", columns.n_rows, " x ", columns.n_cols, ") must be the transpose of the graph (",
          p.graph.n_rows, " x ", p.graph.n_cols, "), with the graph's index and value types");
  require(columns.nnz == p.graph.nnz, "the column view holds ", columns.nnz, " entries; the graph holds ",
          p.graph.nnz);
  require(out.indices != nullptr && out.gains != nullptr && out.current != nullptr,
          "the device greedy needs arrays for the picks, their gains and current");
  dispatch(p.graph, [&](auto g) {
    const auto cols = typed_as(g, columns);
    check_view(g, p.graph.nnz, "the graph", "the graph", false, dev);
    check_view(cols, columns.nnz, "the graph's column view", "the graph", true, dev);
    check_budget(p);
    check_quality_values(p.quality, p.graph.n_cols, dev);
    run(g, cols, p, out, dev, hooks);
    return 0;
  });
}

}  // namespace isel::facility::cuda
