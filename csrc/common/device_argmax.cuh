// Exact argmax on the device, as the CPU paths break ties: (value, index) pairs compared by
// value, equal values by the lower index; index -1 stands for "no candidate" and loses to any.
// Values are only compared, never combined, so the result is independent of the reduction tree.
#pragma once

#include "common/cuda_compat.cuh"

namespace isel::device {

template <class A>
__device__ __forceinline__ bool better(A v, int64_t i, A bv, int64_t bi) {
  return bi < 0 || (i >= 0 && (v > bv || (v == bv && i < bi)));
}

// Folds the pairs of the 32 lanes of a warp into lane 0 (every lane calls it).
template <class A>
__device__ void warp_argmax(A& v, int64_t& i) {
  for (int w = 16; w >= 1; w >>= 1) {
    A ov = __shfl_down_sync(0xffffffffu, v, w);
    int64_t oi = __shfl_down_sync(0xffffffffu, i, w);
    if (better(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
}

// Block-wide argmax of the pairs held by lane 0 of each warp; the result in thread 0. sv and si
// are block storage of 32 entries.
template <class A>
__device__ void block_argmax(A& v, int64_t& i, A* sv, int64_t* si) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) {
    sv[warp] = v;
    si[warp] = i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w)
      if (better(sv[w], si[w], v, i)) {
        v = sv[w];
        i = si[w];
      }
  }
}

// The block's argmax of every lane's pair, stored as block blockIdx.x's winner (every thread calls
// it; sv and si as for block_argmax).
template <class A>
__device__ void store_block_argmax(A v, int64_t i, A* sv, int64_t* si, A* block_val, int64_t* block_idx) {
  warp_argmax(v, i);
  block_argmax(v, i, sv, si);
  if (threadIdx.x == 0) {
    block_val[blockIdx.x] = v;
    block_idx[blockIdx.x] = i;
  }
}

// One block folds per-block winners: the argmax index into *next and, when slot >= 0, its value
// into values[slot] (0 when there was no candidate).
template <class A>
__global__ void argmax_of_blocks_kernel(const A* block_val, const int64_t* block_idx, int nblocks, int64_t* next,
                                        A* values, int64_t slot) {
  ISEL_SHARED(A, sv, 32);
  ISEL_SHARED(int64_t, si, 32);
  A best = A(-1);
  int64_t best_i = -1;
  for (int b = threadIdx.x; b < nblocks; b += blockDim.x)
    if (better(block_val[b], block_idx[b], best, best_i)) {
      best = block_val[b];
      best_i = block_idx[b];
    }
  warp_argmax(best, best_i);
  block_argmax(best, best_i, sv, si);
  if (threadIdx.x == 0) {
    *next = best_i;
    if (slot >= 0) values[slot] = best_i < 0 ? A(0) : best;
  }
}

}  // namespace isel::device
