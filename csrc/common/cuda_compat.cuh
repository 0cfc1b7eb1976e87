// The one header every .cu file includes.
//
// Under nvcc it is the real CUDA: the runtime, cuda_fp16/cuda_bf16, and `isel::launch`, a thin
// wrapper around <<<grid, block, shmem, stream>>>.
//
// Built with a host C++ compiler and ITERSELECT_CUDA_EMULATION defined, it is a CPU emulation of
// the CUDA grid, so every kernel's logic runs in CI on a machine without a GPU:
//  - each block runs as blockDim host threads (std::thread) meeting at real barriers for
//    __syncthreads() and the warp primitives; blocks run one after another, so block storage
//    (ISEL_SHARED) is shared by exactly the threads of one block;
//  - atomics are the compiler's __atomic builtins (visible to ThreadSanitizer);
//  - __half / __nv_bfloat16 convert with round-to-nearest-even, like the hardware;
//  - the runtime calls we use (cudaMalloc, cudaMemcpy, ...) act on host memory.
// What it cannot show: speed, coalescing, occupancy, and the scheduling effects of independent
// thread scheduling (threads of a warp here only ever meet at the primitives).
//
// Rules for kernels, so both builds agree:
//  - launch only through isel::launch (never <<<>>> directly);
//  - declare block storage with ISEL_SHARED / ISEL_SHARED_DYNAMIC at the top of the kernel, in
//    the same order in every thread;
//  - warp primitives take the full mask and are called by every live thread of the warp.
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

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ---- runtime API on host memory
using cudaStream_t = void*;
enum cudaError_t { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorLaunchFailure = 719 };
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                      cudaMemcpyDeviceToDevice, cudaMemcpyDefault };

inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory (emulated device)";
    default: return "kernel failed (emulated device)";
  }
}
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::malloc(bytes == 0 ? 1 : bytes);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
template <class T>
inline cudaError_t cudaMalloc(T** p, size_t bytes) { return cudaMalloc(reinterpret_cast<void**>(p), bytes); }
inline cudaError_t cudaFree(void* p) { std::free(p); return cudaSuccess; }
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind) {
  if (n) std::memmove(dst, src, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind k, cudaStream_t) {
  return cudaMemcpy(dst, src, n, k);
}
inline cudaError_t cudaMemset(void* p, int v, size_t n) { if (n) std::memset(p, v, n); return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) { return cudaMemset(p, v, n); }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaPeekAtLastError() { return cudaSuccess; }

// ---- IEEE intrinsics that the real device exposes to stop contraction into FMA
// (the host build is compiled with -ffp-contract=off, so plain operators are already exact)
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

// ---- half types: storage is the raw bits, conversions round to nearest even
struct __half {
  uint16_t x;
};
struct __nv_bfloat16 {
  uint16_t x;
};
inline float __half2float(__half h) { return isel::half_to_float(h.x); }
inline __half __float2half(float f) { return __half{isel::float_to_half(f)}; }
inline __half __float2half_rn(float f) { return __float2half(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return isel::bfloat16_to_float(b.x); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16{isel::float_to_bfloat16(f)}; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }

namespace isel {
constexpr bool kCudaEmulation = true;

namespace emu {

// A reusable barrier for a changing set of threads: a thread that leaves the kernel early
// drops out, as an exited thread no longer counts at a real __syncthreads. The mutex and the
// acquire/release generation give ThreadSanitizer the happens-before edges a hardware barrier
// gives, and nothing more, so a missing barrier shows up as a race.
class Barrier {
 public:
  void reset(int n) {
    std::lock_guard<std::mutex> lock(mutex_);
    expected_ = n;
    arrived_ = 0;
  }
  void wait() {
    unsigned gen;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      gen = generation_.load(std::memory_order_relaxed);
      if (++arrived_ == expected_) {
        arrived_ = 0;
        generation_.store(gen + 1, std::memory_order_release);
        return;
      }
    }
    while (generation_.load(std::memory_order_acquire) == gen) std::this_thread::yield();
  }
  void drop() {
    std::lock_guard<std::mutex> lock(mutex_);
    --expected_;
    if (expected_ > 0 && arrived_ == expected_) {
      arrived_ = 0;
      generation_.store(generation_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
  }

 private:
  std::mutex mutex_;
  int expected_ = 0;
  int arrived_ = 0;
  std::atomic<unsigned> generation_{0};
};

struct Warp {
  Barrier barrier;
  uint64_t slots[32] = {};
};

// The state of the block now running: its barrier, its warps, its shared storage.
struct Block {
  Barrier barrier;
  std::vector<std::unique_ptr<Warp>> warps;
  std::mutex alloc_mutex;
  std::vector<std::unique_ptr<std::max_align_t[]>> shared;  // ISEL_SHARED, in declaration order
  std::unique_ptr<std::max_align_t[]> dynamic_shared;
  int threads = 0;
};

inline thread_local Block* current_block = nullptr;
inline thread_local size_t shared_counter = 0;
inline thread_local int linear_tid = 0;

inline int lane_id() { return linear_tid & 31; }
inline Warp& my_warp() { return *current_block->warps[linear_tid >> 5]; }
inline int warp_width(int warp) {
  int rest = current_block->threads - warp * 32;
  return rest < 32 ? rest : 32;
}

template <class T>
T* shared_alloc(size_t count) {
  Block* b = current_block;
  std::lock_guard<std::mutex> lock(b->alloc_mutex);
  size_t i = shared_counter++;
  if (i == b->shared.size()) {
    size_t words = (count * sizeof(T) + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t);
    b->shared.emplace_back(new std::max_align_t[words == 0 ? 1 : words]());
  }
  return reinterpret_cast<T*>(b->shared[i].get());
}

template <class T>
T* shared_dynamic() {
  return reinterpret_cast<T*>(current_block->dynamic_shared.get());
}

template <class T>
uint64_t to_slot(T v) {
  static_assert(sizeof(T) <= 8, "warp primitives move at most 8 bytes");
  uint64_t s = 0;
  std::memcpy(&s, &v, sizeof(T));
  return s;
}
template <class T>
T from_slot(uint64_t s) {
  T v;
  std::memcpy(&v, &s, sizeof(T));
  return v;
}

// Every thread of the warp publishes its value, then reads lane `src(lane)`'s.
template <class T, class Src>
T exchange(T v, Src src) {
  Warp& w = my_warp();
  int lane = lane_id();
  w.slots[lane] = to_slot(v);
  w.barrier.wait();
  int s = src(lane);
  T out = (s >= 0 && s < warp_width(linear_tid >> 5)) ? from_slot<T>(w.slots[s]) : v;
  w.barrier.wait();  // nobody overwrites a slot before everyone has read
  return out;
}

}  // namespace emu

// Runs kernel(args...) over the grid: blockDim host threads, which walk the blocks in order.
template <class... KArgs, class... Args>
void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t shmem, cudaStream_t,
            Args... args) {
  const int nthreads = static_cast<int>(block.x * block.y * block.z);
  if (nthreads <= 0 || nthreads > 1024) throw std::invalid_argument("block size must be in [1, 1024]");
  const long nblocks = static_cast<long>(grid.x) * grid.y * grid.z;
  if (nblocks == 0) return;
  emu::Block blk;
  blk.threads = nthreads;
  for (int w = 0; w < (nthreads + 31) / 32; ++w) blk.warps.emplace_back(new emu::Warp());
  if (shmem) blk.dynamic_shared.reset(new std::max_align_t[(shmem + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t)]());
  emu::Barrier between_blocks;
  between_blocks.reset(nthreads);
  std::exception_ptr error;
  std::mutex error_mutex;
  auto reset_block = [&]() {
    blk.barrier.reset(nthreads);
    for (int w = 0; w < static_cast<int>(blk.warps.size()); ++w) blk.warps[w]->barrier.reset(std::min(32, nthreads - 32 * w));
  };
  reset_block();
  auto body = [&](int tid) {
    threadIdx = dim3(tid % block.x, (tid / block.x) % block.y, tid / (block.x * block.y));
    blockDim = block;
    gridDim = grid;
    emu::current_block = &blk;
    emu::linear_tid = tid;
    for (long b = 0; b < nblocks; ++b) {
      blockIdx = dim3(static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                      static_cast<unsigned>(b / (static_cast<long>(grid.x) * grid.y)));
      emu::shared_counter = 0;
      try {
        kernel(static_cast<KArgs>(args)...);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
      blk.barrier.drop();
      blk.warps[tid >> 5]->barrier.drop();
      between_blocks.wait();
      if (tid == 0) reset_block();
      between_blocks.wait();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(nthreads - 1);
  for (int t = 1; t < nthreads; ++t) pool.emplace_back(body, t);
  body(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace isel

#define ISEL_SHARED(T, name, count) T* name = ::isel::emu::shared_alloc<T>(count)
#define ISEL_SHARED_DYNAMIC(T, name) T* name = ::isel::emu::shared_dynamic<T>()

inline void __syncthreads() { isel::emu::current_block->barrier.wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { isel::emu::my_warp().barrier.wait(); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

template <class T>
T __shfl_sync(unsigned, T v, int src, int width = 32) {
  return isel::emu::exchange(v, [&](int lane) { return (lane & ~(width - 1)) + (src & (width - 1)); });
}
template <class T>
T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
  return isel::emu::exchange(v, [&](int lane) {
    int s = lane + static_cast<int>(delta);
    return (s & ~(width - 1)) == (lane & ~(width - 1)) ? s : lane;
  });
}
template <class T>
T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
  return isel::emu::exchange(v, [&](int lane) {
    int s = lane - static_cast<int>(delta);
    return (s >= 0 && (s & ~(width - 1)) == (lane & ~(width - 1))) ? s : lane;
  });
}
template <class T>
T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
  return isel::emu::exchange(v, [&](int lane) {
    int s = lane ^ mask;
    return (s & ~(width - 1)) == (lane & ~(width - 1)) ? s : lane;
  });
}
inline unsigned __ballot_sync(unsigned, int pred) {
  using namespace isel::emu;
  Warp& w = my_warp();
  int lane = lane_id();
  w.slots[lane] = pred ? 1u : 0u;
  w.barrier.wait();
  unsigned bits = 0;
  for (int l = 0; l < warp_width(linear_tid >> 5); ++l) bits |= static_cast<unsigned>(w.slots[l] != 0) << l;
  w.barrier.wait();
  return bits;
}

// ---- atomics (return the old value, as CUDA's)
template <class T>
T atomicAdd(T* p, T v) {
  if constexpr (std::is_integral_v<T>) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
  } else {
    T old;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    for (;;) {
      T desired = old + v;
      if (__atomic_compare_exchange(p, &old, &desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return old;
    }
  }
}
template <class T>
T atomicMin(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v < old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return old;
}
template <class T>
T atomicMax(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v > old && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return old;
}
template <class T>
T atomicCAS(T* p, T compare, T val) {
  __atomic_compare_exchange_n(p, &compare, val, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;
}
template <class T>
T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }

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
