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
//  - wrap every runtime call in CUDA_CHECK(call, sizes...): a failure names the call, the sizes
//    given (streamed after "with") and the file:line, e.g.
//    CUDA_CHECK(cudaMalloc(&p, bytes), "bytes = ", bytes);
//  - declare block storage with ISEL_SHARED / ISEL_SHARED_DYNAMIC at the top of the kernel, in
//    the same order in every thread;
//  - a warp primitive's mask names every lane that calls it, and every live lane it names calls
//    it (the emulator throws on a lane left out, and reports the deadlock otherwise).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

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

[[noreturn]] inline void launch_failed(cudaError_t err, dim3 grid, dim3 block, size_t shmem);

// Launches the kernel and reports a failed launch (bad configuration, too much block storage)
// with the launch shape; errors inside the kernel surface at the next CUDA_CHECK.
template <class... KArgs, class... Args>
void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t shmem, cudaStream_t stream,
            Args... args) {
  kernel<<<grid, block, shmem, stream>>>(static_cast<KArgs>(args)...);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) launch_failed(err, grid, block, shmem);
}
}  // namespace isel

#else  // --------------------------------------------------------------------- emulation

#include "common/cuda_emulation.hpp"

#endif  // ITERSELECT_CUDA_EMULATION

namespace isel {

// A failed CUDA runtime call: the call as written, the sizes it was given and where it was made.
// Out of memory is a std::bad_alloc (Python's MemoryError), everything else a runtime_error.
struct DeviceOutOfMemory : std::bad_alloc {
  explicit DeviceOutOfMemory(std::string what) : what_(std::move(what)) {}
  const char* what() const noexcept override { return what_.c_str(); }
  std::string what_;
};

namespace detail {
// The path from csrc/ on, so messages do not carry the build machine's directories.
inline const char* source_path(const char* file) {
  const char* found = nullptr;
  for (const char* p = std::strstr(file, "csrc/"); p != nullptr; p = std::strstr(p + 1, "csrc/")) found = p;
  return found != nullptr ? found : file;
}
}  // namespace detail

template <class... Sizes>
void cuda_check(cudaError_t err, const char* call, const char* file, int line, const Sizes&... sizes) {
  if (err == cudaSuccess) return;
  std::ostringstream out;
  out << "CUDA error " << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ") in " << call;
  if constexpr (sizeof...(sizes) > 0) {
    out << " with ";
    (out << ... << sizes);
  }
  out << " at " << detail::source_path(file) << ":" << line;
  if (err == cudaErrorMemoryAllocation) throw DeviceOutOfMemory(out.str());
  throw std::runtime_error(out.str());
}

#ifndef ITERSELECT_CUDA_EMULATION
[[noreturn]] inline void launch_failed(cudaError_t err, dim3 grid, dim3 block, size_t shmem) {
  std::ostringstream out;
  out << "CUDA error " << cudaGetErrorName(err) << " (" << cudaGetErrorString(err) << ") launching a kernel on grid ("
      << grid.x << ", " << grid.y << ", " << grid.z << ") with blocks of (" << block.x << ", " << block.y << ", "
      << block.z << ") threads and " << shmem << " bytes of dynamic block storage";
  throw std::runtime_error(out.str());
}
#endif

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

// Checks a CUDA runtime call; the optional arguments describe the sizes involved.
#define CUDA_CHECK(call, ...) ::isel::cuda_check((call), #call, __FILE__, __LINE__, ##__VA_ARGS__)
