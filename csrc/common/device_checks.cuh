// Input checks on the device that end in the CPU path's messages: a kernel notes the lowest index
// where a rule breaks (atomicMin), the host reads that one index back, copies what it needs of
// that entry or row and throws the message the CPU path's check gives for it. Used by the
// families whose device kernels take arrays nothing on the host has checked (coverage, facility).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/cuda_compat.cuh"
#include "common/device_buffer.cuh"
#include "common/device_math.cuh"
#include "common/launch.hpp"

namespace isel::device {

constexpr unsigned long long kNoIndex = ~0ull;

// v is finite (inf - inf and NaN - NaN are NaN), without host-only library calls.
__device__ __forceinline__ bool finite(double v) { return op_sub(v, v) == 0.0; }
__device__ __forceinline__ bool nonnegative_finite(double v) { return v >= 0.0 && finite(v); }

__device__ __forceinline__ void note(unsigned long long* lowest, int64_t i) {
  atomicMin(lowest, static_cast<unsigned long long>(i));
}

// A small device value read back to the host (waits for the stream).
template <class T>
T read_back(const T* device_value, cudaStream_t stream) {
  T host{};
  CUDA_CHECK(cudaMemcpyAsync(&host, device_value, sizeof(T), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

// indptr[i - 1] and indptr[i] of CSR offsets in device memory (indptr[0] twice for i == 0).
template <class P>
std::pair<int64_t, int64_t> read_offsets(const P* indptr, int64_t i, cudaStream_t stream) {
  P pair[2] = {0, 0};
  CUDA_CHECK(cudaMemcpyAsync(pair, indptr + (i > 0 ? i - 1 : 0), sizeof(P) * (i > 0 ? 2 : 1), cudaMemcpyDeviceToHost,
                             stream), "offset ", i);
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return {static_cast<int64_t>(pair[0]), static_cast<int64_t>(i > 0 ? pair[1] : pair[0])};
}

// Row r of a CSR matrix in device memory, copied to the host for a check's message.
template <class I, class V>
struct HostRow {
  std::vector<I> cols;
  std::vector<V> values;
  int64_t size() const { return static_cast<int64_t>(cols.size()); }
};

template <class P, class I, class V>
HostRow<I, V> read_row(const P* indptr, const I* indices, const V* data, int64_t r, cudaStream_t stream) {
  const auto [lo, hi] = read_offsets(indptr, r + 1, stream);
  const int64_t len = hi - lo;
  HostRow<I, V> row{std::vector<I>(static_cast<size_t>(len)), std::vector<V>(static_cast<size_t>(len))};
  CUDA_CHECK(cudaMemcpyAsync(row.cols.data(), indices + lo, sizeof(I) * len, cudaMemcpyDeviceToHost, stream), "row ",
             r, " with ", len, " entries");
  CUDA_CHECK(cudaMemcpyAsync(row.values.data(), data + lo, sizeof(V) * len, cudaMemcpyDeviceToHost, stream), "row ",
             r, " with ", len, " entries");
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return row;
}

// The lowest index the check kernels of one check noted, kept in device memory.
class LowestIndex {
 public:
  explicit LowestIndex(cudaStream_t stream) : stream_(stream), flag_(sizeof(unsigned long long), "a check's flag") {
    CUDA_CHECK(cudaMemcpyAsync(flag_.get(), &kNoIndex, sizeof kNoIndex, cudaMemcpyHostToDevice, stream));
  }
  unsigned long long* flag() const { return flag_.as<unsigned long long>(); }
  // Waits for the kernels queued so far; kNoIndex when none noted anything.
  unsigned long long found() const { return read_back(flag(), stream_); }

 private:
  cudaStream_t stream_;
  Buffer flag_;
};

// The lowest i where CSR offsets break a rule: indptr[0] == 0, nondecreasing, indptr[n] == nnz.
template <class P>
__global__ void indptr_check_kernel(const P* indptr, int64_t n, int64_t nnz, unsigned long long* lowest) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i <= n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t v = indptr[i];
    const bool bad = (i == 0 && v != 0) || (i > 0 && v < static_cast<int64_t>(indptr[i - 1])) || (i == n && v != nnz);
    if (bad) note(lowest, i);
  }
}

// The lowest row in [row_lo, row_hi) (a warp a row) holding a column outside [0, m), a value that
// is negative or not finite, or, with `ascending`, a column not above the one stored before it.
// The offsets must have passed indptr_check_kernel.
template <class P, class I, class V>
__global__ void entries_check_kernel(const P* indptr, const I* indices, const V* data, int64_t m, int64_t row_lo,
                                     int64_t row_hi, bool ascending, unsigned long long* lowest) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = row_lo + blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < row_hi; r += warps) {
    const int64_t lo = indptr[r], hi = indptr[r + 1];
    bool bad = false;
    for (int64_t e = lo + lane; e < hi; e += 32) {
      const int64_t j = indices[e];
      bad = bad || j < 0 || j >= m || !nonnegative_finite(static_cast<double>(data[e])) ||
            (ascending && e > lo && j <= static_cast<int64_t>(indices[e - 1]));
    }
    if (__any_sync(0xffffffffu, bad) && lane == 0) note(lowest, r);
  }
}

// The lowest i < n with values[i] not finite or, with `nonnegative`, negative.
template <class T>
__global__ void values_check_kernel(const T* values, int64_t n, bool nonnegative, unsigned long long* lowest) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const double v = static_cast<double>(values[i]);
    if (!(nonnegative ? nonnegative_finite(v) : finite(v))) note(lowest, i);
  }
}

// Host drivers of the checks: each runs its kernel on dev's stream, waits, and returns the lowest
// offending index, -1 when nothing broke a rule.

template <class Kernel, class... Args>
int64_t lowest_noted(Kernel kernel, int blocks, const Launch& dev, Args... args) {
  auto stream = static_cast<cudaStream_t>(dev.stream);
  LowestIndex lowest(stream);
  launch(kernel, dim3(blocks), dim3(dev.block_threads), 0, stream, args..., lowest.flag());
  const unsigned long long found = lowest.found();
  return found == kNoIndex ? -1 : static_cast<int64_t>(found);
}

template <class P>
int64_t first_bad_offset(const P* indptr, int64_t n, int64_t nnz, const Launch& dev) {
  return lowest_noted(indptr_check_kernel<P>, blocks_for(n + 1, dev.block_threads, dev), dev, indptr, n, nnz);
}

// Rows of [row_lo, row_hi); the offsets must have passed first_bad_offset.
template <class P, class I, class V>
int64_t first_bad_row(const P* indptr, const I* indices, const V* data, int64_t m, int64_t row_lo, int64_t row_hi,
                      bool ascending, const Launch& dev) {
  return lowest_noted(entries_check_kernel<P, I, V>, blocks_for(row_hi - row_lo, dev.block_threads / 32, dev), dev,
                      indptr, indices, data, m, row_lo, row_hi, ascending);
}

template <class T>
int64_t first_bad_value(const T* values, int64_t n, bool nonnegative, const Launch& dev) {
  return lowest_noted(values_check_kernel<T>, blocks_for(n, dev.block_threads, dev), dev, values, n, nonnegative);
}

}  // namespace isel::device
