// The cosine metric's zero-row check on the device: kernels computing row norms note every zero
// row; the host reads back the lowest one and throws the CPU path's message (check.hpp).
#pragma once

#include "common/check.hpp"
#include "common/cuda_compat.cuh"
#include "common/device_checks.cuh"

namespace isel::device {

__device__ __forceinline__ void note_zero_row(unsigned long long* lowest, int64_t row) { note(lowest, row); }

class ZeroRowCheck {
 public:
  explicit ZeroRowCheck(cudaStream_t stream) : lowest_(stream) {}
  unsigned long long* flag() const { return lowest_.flag(); }
  // Waits for the kernels queued so far; throws for the lowest zero row they noted.
  void throw_if_found() const {
    const unsigned long long found = lowest_.found();
    if (found != kNoIndex) fail_zero_norm(static_cast<long long>(found));
  }

 private:
  LowestIndex lowest_;
};

}  // namespace isel::device
