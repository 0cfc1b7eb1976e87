// The cosine metric's zero-row check on the device: kernels computing row norms note every zero
// row; the host reads back the lowest one and throws the CPU path's message (check.hpp).
#pragma once

#include <limits>

#include "common/check.hpp"
#include "common/cuda_compat.cuh"
#include "common/device_buffer.cuh"

namespace isel::device {

__device__ __forceinline__ void note_zero_row(unsigned long long* lowest, int64_t row) {
  atomicMin(lowest, static_cast<unsigned long long>(row));
}

class ZeroRowCheck {
 public:
  explicit ZeroRowCheck(cudaStream_t stream) : stream_(stream), flag_(sizeof(unsigned long long), "the zero-row flag") {
    CUDA_CHECK(cudaMemcpyAsync(flag_.get(), &kNone, sizeof kNone, cudaMemcpyHostToDevice, stream));
  }
  unsigned long long* flag() const { return flag_.as<unsigned long long>(); }
  // Waits for the kernels queued so far; throws for the lowest zero row they noted.
  void throw_if_found() const {
    unsigned long long found = kNone;
    CUDA_CHECK(cudaMemcpyAsync(&found, flag_.get(), sizeof found, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (found != kNone) fail_zero_norm(static_cast<long long>(found));
  }

 private:
  static constexpr unsigned long long kNone = std::numeric_limits<unsigned long long>::max();
  cudaStream_t stream_;
  Buffer flag_;
};

}  // namespace isel::device
