// Facility location on a CUDA device (facility.cu). Plain C++ declarations: the bindings include
// this without CUDA headers.
#pragma once

#include "common/hooks.hpp"
#include "facility/facility.hpp"

namespace isel::facility::cuda {

struct Device {
  void* stream = nullptr;   // cudaStream_t to run on (nullptr: the default stream)
  int block_threads = 256;  // threads per block (a multiple of 32)
  int max_blocks = 0;       // cap on blocks per launch (grid-stride loops cover the rest); 0: no cap
};

// The greedy of facility.hpp with the same Problem and Output, both in host memory: the graph is
// transposed on the host (the CPU path's transpose), the graph and its column view are copied to
// the device once, every pick runs there, and indices, gains and current come back at the end.
// Not lazy: after each pick the candidates of the points that changed are marked (or all, as on
// the CPU), one pass over the candidates recomputes the marked gains with the CPU's column_gain
// and finds the argmax (ties: lowest column), so the picks and gains equal the CPU path's bit for
// bit. out.evaluations counts nothing here (0).
void greedy(const Problem& p, Output& out, const Device& dev, const Hooks& hooks);

}  // namespace isel::facility::cuda
