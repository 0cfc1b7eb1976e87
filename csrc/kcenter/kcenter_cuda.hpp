// k-center greedy on a CUDA device (kcenter.cu). Plain C++ declarations: the bindings include
// this without CUDA headers. Pointers are device pointers (host pointers under emulation).
#pragma once

#include <cstdint>

#include "common/dtype.hpp"
#include "common/hooks.hpp"
#include "kcenter/kcenter.hpp"

namespace isel::kcenter::cuda {

struct DeviceProblem {
  const void* X = nullptr;            // device, n x d row-major in `dtype`
  DType dtype = DType::float32;
  int64_t n = 0, d = 0, k = 0;
  const int64_t* selected = nullptr;  // host array of pool indices
  int64_t n_selected = 0;
  Metric metric = Metric::euclidean;
  int64_t seed_index = 0;
  void* stream = nullptr;             // cudaStream_t of the caller's framework
  int block_threads = 256;            // threads per block (a multiple of 32)
  int max_blocks = 0;                 // 0: enough blocks to fill the device
  int64_t pool_batch = 0;             // pool points gathered per blocked pass (0: 8192)
};

struct DeviceOutput {
  int64_t* indices = nullptr;   // device, k
  void* values = nullptr;       // device, k squared radii (float, or double for float64 X)
  void* min_sq = nullptr;       // device, n squared min-distances (same type)
};

// Plain farthest-first loop: per pick, one fused distance/min/argmax pass over X and a
// one-block reduction; no host round trip between picks. A pool (selected) is met first in
// blocked passes: tiles of pool points in block storage against rows of X.
// Cosine: a zero row throws the CPU path's message, naming the lowest such row.
void greedy(const DeviceProblem& p, DeviceOutput& out, const Hooks& hooks);

}  // namespace isel::kcenter::cuda
