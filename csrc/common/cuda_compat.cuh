// The one header every .cu file includes.
//
// Under nvcc it is the real CUDA: the runtime, cuda_fp16/cuda_bf16, and `isel::launch`, a thin
// wrapper around <<<grid, block, shmem, stream>>>.
//
// Built with a host C++ compiler and ITERSELECT_CUDA_EMULATION defined, it is a CPU emulation of
// the CUDA grid (common/cuda_emulation.hpp), so every kernel's logic runs in CI on a machine
// without a GPU:
//  - blocks run one after another; the threads of a block are fibers on the launching thread,
//    switched at __syncthreads() and the warp primitives, so block storage (ISEL_SHARED) is
//    shared by exactly the threads of one block;
//  - ThreadSanitizer sees every CUDA thread as its own fiber, ordered only by the barriers, so a
//    missing __syncthreads() is a reported race; AddressSanitizer sees block storage bounds;
//  - atomics are the compiler's __atomic builtins, relaxed (CUDA's overload set only);
//  - __half / __nv_bfloat16 convert with round-to-nearest-even, like the hardware;
//  - the runtime calls we use (cudaMalloc, cudaMemcpy, ...) act on host memory.
// What it cannot show: speed, coalescing, occupancy, races between blocks, and the scheduling
// effects of independent thread scheduling (threads here only switch at the primitives).
//
// Rules for kernels, so both builds agree:
//  - launch only through isel::launch (never <<<>>> directly);
//  - declare block storage with ISEL_SHARED / ISEL_SHARED_DYNAMIC at the top of the kernel, in
//    the same order in every thread;
//  - a warp primitive's mask names every lane that calls it, and every live lane it names calls
//    it (the emulator throws on a lane left out, and reports the deadlock otherwise).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "half.hpp"

#ifndef ITERSELECT_CUDA_EMULATION  // ------------------------------------------- real CUDA

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define ISEL_SHARED(T, name, count) __shared__ T name[count]
#define ISEL_SHARED_DYNAMIC(T, name) \
  extern __shared__ __align__(16) unsigned char isel_dynamic_smem_[]; \
  T* name = reinterpret_cast<T*>(isel_dynamic_smem_)

namespace isel {
constexpr bool kCudaEmulation = false;

template <class... KArgs, class... Args>
void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t shmem, cudaStream_t stream,
            Args... args) {
  kernel<<<grid, block, shmem, stream>>>(static_cast<KArgs>(args)...);
}
}  // namespace isel

#else  // --------------------------------------------------------------------- emulation

#include "common/cuda_emulation.hpp"

#endif  // ITERSELECT_CUDA_EMULATION

namespace isel {

// Throws with the CUDA error string; used around every runtime call in host code.
inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Device-side widening loads of every storage type (raw uint16 bits for the half types, so the
// same pointer types serve host and device code).
__device__ __forceinline__ float dev_load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ double dev_load(const double* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float dev_load(const half_bits* p, int64_t i) {
  return __half2float(reinterpret_cast<const __half*>(p)[i]);
}
__device__ __forceinline__ float dev_load(const bfloat16_bits* p, int64_t i) {
  return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(p)[i]);
}

}  // namespace isel
