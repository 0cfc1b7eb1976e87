// How a host driver shapes its kernel launches (plain C++: the bindings fill it in).
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/check.hpp"

namespace isel::device {

struct Launch {
  void* stream = nullptr;   // cudaStream_t of the caller's framework
  int block_threads = 256;  // threads per block (a multiple of 32)
  int max_blocks = 0;       // cap on blocks per launch (grid-stride loops cover the rest); 0: no cap
};

inline void check_launch(const Launch& launch) {
  require(launch.block_threads >= 32 && launch.block_threads <= 1024 && launch.block_threads % 32 == 0,
          "block_threads (", launch.block_threads, ") must be a multiple of 32 in [32, 1024]");
}

// Blocks for `work` items at `per_block` items a block, capped (grid-stride loops do the rest).
inline int blocks_for(int64_t work, int per_block, int cap = 65535) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((work + per_block - 1) / per_block, cap)));
}
inline int blocks_for(int64_t work, int per_block, const Launch& launch, int cap = 65535) {
  return blocks_for(work, per_block, launch.max_blocks > 0 ? std::min(cap, launch.max_blocks) : cap);
}

}  // namespace isel::device
