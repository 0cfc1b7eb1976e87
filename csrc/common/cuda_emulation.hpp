// The CPU emulation of the CUDA grid, included by common/cuda_compat.cuh when
// ITERSELECT_CUDA_EMULATION is defined and a host compiler builds the .cu sources.
//
// How it runs a launch: blocks one after another; the threads of a block are fibers (user-level
// threads with their own stacks) on the launching thread, switched cooperatively at
// __syncthreads and the warp primitives. Between two barriers the live threads run one after
// another, in increasing thread order (or decreasing: Schedule::reverse), so a kernel whose
// result depends on that order has a missing barrier, and the two orders disagree.
//
// Why fibers and not one std::thread per CUDA thread: a barrier needs every thread of the block
// to run once; with OS threads that is a context switch per thread per barrier (measured on the
// k-center kernel, N=1000, d=64, k=20, 64-thread blocks, 2 cores: 10.5 s spinning with yield,
// 69 s blocking on a condition variable). A fiber switch is a few nanoseconds.
//
// What the sanitizers see:
//  - ThreadSanitizer: every fiber is a TSan fiber, switched with no_sync, so TSan sees the CUDA
//    threads as concurrent and knows only the happens-before edges CUDA guarantees: block start,
//    __syncthreads (all threads of the block), __syncwarp (its lanes), block end. A missing
//    __syncthreads is reported as a data race. Shuffles and ballots move values but order no
//    memory (as on the GPU). Atomics are relaxed (as CUDA's). Blocks of one launch are ordered
//    one after another, so races between blocks are not seen.
//  - AddressSanitizer: fiber stacks are announced with the fiber-switch API; block storage
//    (ISEL_SHARED) lies in one arena with poisoned gaps, and dynamic storage is its own exact-size
//    allocation, so one element past either end is reported.
//  - Without ASan, the gaps after every block-storage array hold a canary that is checked after
//    each block: a write past the end throws. Block storage and cudaMalloc memory start filled
//    with 0xFF bytes (NaN as floats, -1 as integers), as uninitialized GPU memory is garbage.
// Misuse is an exception, not a hang: a deadlock (threads waiting at barriers nobody else will
// reach), a lane calling a warp primitive with a mask that leaves it out, lanes disagreeing on
// the primitive, or block storage declared differently by different threads.
#pragma once

#ifndef ITERSELECT_CUDA_EMULATION
#error "common/cuda_emulation.hpp is the emulated runtime; include common/cuda_compat.cuh"
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "common/half.hpp"

// ---- which sanitizer is compiled in (GCC defines __SANITIZE_*__, Clang has __has_feature)
#if defined(__SANITIZE_THREAD__)
#define ISEL_EMU_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ISEL_EMU_ASAN 1
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(ISEL_EMU_TSAN)
#define ISEL_EMU_TSAN 1
#endif
#if __has_feature(address_sanitizer) && !defined(ISEL_EMU_ASAN)
#define ISEL_EMU_ASAN 1
#endif
#endif
#ifdef ISEL_EMU_TSAN
#include <sanitizer/tsan_interface.h>
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif
#ifdef ISEL_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// ---- how a fiber switch is made: a few instructions of assembly on x86-64 (ELF), otherwise
// (or with ISEL_EMU_UCONTEXT defined) swapcontext, which is correct everywhere but makes a
// system call per switch (it saves the signal mask), about 50x slower.
#if defined(__x86_64__) && defined(__ELF__) && !defined(ISEL_EMU_UCONTEXT)
#define ISEL_EMU_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __constant__

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;

// blockIdx, blockDim and gridDim are the same for every thread of a block: plain thread-locals
// of the launching thread. threadIdx is per fiber (see the macro after isel::emu::Fiber).
inline thread_local dim3 blockIdx;
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ---- runtime API on host memory
using cudaStream_t = void*;
enum cudaError_t { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorLaunchFailure = 719 };
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                      cudaMemcpyDeviceToDevice, cudaMemcpyDefault };

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    default: return "cudaErrorLaunchFailure";
  }
}
inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory (emulated device)";
    default: return "kernel failed (emulated device)";
  }
}
// Fresh device memory is garbage on a GPU; 0xFF bytes make a read before the first write show
// up (NaN, -1) instead of passing by luck on zeros.
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::malloc(bytes == 0 ? 1 : bytes);
  if (!*p) return cudaErrorMemoryAllocation;
  std::memset(*p, 0xFF, bytes);
  return cudaSuccess;
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
// One emulated device: events order nothing (every call has finished when it returns).
using cudaEvent_t = void*;
constexpr unsigned cudaEventDisableTiming = 2;
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { *e = nullptr; return cudaSuccess; }
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* device) { *device = 0; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
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

// ---- bit casts and bit counts that device code uses with ballots and atomics
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
template <class T>
inline T __ldg(const T* p) { return *p; }

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

// ---- sanitizer hooks (no-ops in a plain build)
namespace san {
#ifdef ISEL_EMU_TSAN
inline void* current_fiber() { return __tsan_get_current_fiber(); }
inline void* create_fiber(int tid) {
  void* f = __tsan_create_fiber(0);
  static thread_local char name[48];  // TSan copies the name
  std::snprintf(name, sizeof name, "emulated CUDA thread %d", tid);
  __tsan_set_fiber_name(f, name);
  return f;
}
inline void destroy_fiber(void* f) { __tsan_destroy_fiber(f); }
// no_sync: a switch is not a synchronization; only the barriers below are.
inline void switch_to(void* f) { __tsan_switch_to_fiber(f, __tsan_switch_to_fiber_no_sync); }
inline void acquire(void* a) { __tsan_acquire(a); }
inline void release(void* a) { __tsan_release(a); }
// The emulator's own bookkeeping is shared by all fibers of a block without CUDA-visible
// ordering; TSan ignores the memory accesses between ignore_begin and ignore_end.
inline void ignore_begin() { __tsan_ignore_thread_begin(); }
inline void ignore_end() { __tsan_ignore_thread_end(); }
#else
inline void* current_fiber() { return nullptr; }
inline void* create_fiber(int) { return nullptr; }
inline void destroy_fiber(void*) {}
inline void switch_to(void*) {}
inline void acquire(void*) {}
inline void release(void*) {}
inline void ignore_begin() {}
inline void ignore_end() {}
#endif
#ifdef ISEL_EMU_ASAN
inline void start_switch(void** fake, const void* bottom, size_t size) { __sanitizer_start_switch_fiber(fake, bottom, size); }
inline void finish_switch(void* fake, const void** bottom, size_t* size) { __sanitizer_finish_switch_fiber(fake, bottom, size); }
inline void poison(const void* p, size_t n) { ASAN_POISON_MEMORY_REGION(p, n); }
inline void unpoison(const void* p, size_t n) { ASAN_UNPOISON_MEMORY_REGION(p, n); }
constexpr bool kAsan = true;
#else
inline void start_switch(void**, const void*, size_t) {}
inline void finish_switch(void*, const void** bottom, size_t* size) {
  if (bottom) *bottom = nullptr;
  if (size) *size = 0;
}
inline void poison(const void*, size_t) {}
inline void unpoison(const void*, size_t) {}
constexpr bool kAsan = false;
#endif
}  // namespace san

// ---- raw context switch
#ifdef ISEL_EMU_ASM_SWITCH
struct Context {
  void* sp = nullptr;
};
// Saves the callee-saved registers on the current stack, stores the stack pointer in *save,
// loads `load` as the stack pointer and pops the registers saved there (System V x86-64 ABI:
// rbx, rbp, r12-r15 are callee-saved; everything else is clobbered by any call).
__attribute__((naked, noinline)) inline void switch_stack(void** /*save*/, void* /*load*/) {
  __asm__(
      "pushq %rbp\n\t"
      "pushq %rbx\n\t"
      "pushq %r12\n\t"
      "pushq %r13\n\t"
      "pushq %r14\n\t"
      "pushq %r15\n\t"
      "movq %rsp, (%rdi)\n\t"
      "movq %rsi, %rsp\n\t"
      "popq %r15\n\t"
      "popq %r14\n\t"
      "popq %r13\n\t"
      "popq %r12\n\t"
      "popq %rbx\n\t"
      "popq %rbp\n\t"
      "ret\n\t");
}
// First code of a new fiber: calls r13(r12) on a 16-byte aligned stack; the callee never returns.
__attribute__((naked, noinline)) inline void fiber_trampoline() {
  __asm__(
      "movq %r12, %rdi\n\t"
      "andq $-16, %rsp\n\t"
      "callq *%r13\n\t"
      "ud2\n\t");
}
inline void raw_switch(Context* save, Context* to) { switch_stack(&save->sp, to->sp); }
#else
struct Context {
  ucontext_t uc;
};
inline void raw_switch(Context* save, Context* to) {
  if (swapcontext(&save->uc, &to->uc) != 0) std::abort();
}
#endif

// Thrown into the threads of a block being abandoned (a thread threw, or the block
// deadlocked); caught by the fiber's own loop, never seen by callers.
struct BlockAborted {};

enum class Schedule { forward, reverse };
enum class Wait : uint8_t { running, block, warp, done };
enum class WarpOp : uint8_t { syncwarp, shfl, shfl_up, shfl_down, shfl_xor, ballot, any, all };

inline const char* warp_op_name(WarpOp op) {
  switch (op) {
    case WarpOp::syncwarp: return "__syncwarp";
    case WarpOp::shfl: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_xor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    default: return "__all_sync";
  }
}

class Runner;

// One CUDA thread: its stack, saved registers, indices and what it is waiting for.
struct Fiber {
  Context ctx;
  Runner* runner = nullptr;
  unsigned char* mapping = nullptr;  // guard page, then the stack
  size_t mapping_size = 0;
  unsigned char* stack = nullptr;
  size_t stack_size = 0;
  void* tsan = nullptr;
  void* asan_fake = nullptr;
  int tid = 0;                 // linear thread index in the block
  dim3 thread_idx;
  Wait wait = Wait::running;
  int shared_decl = 0;         // ISEL_SHARED declarations reached in this block
  // the warp primitive in flight
  WarpOp op = WarpOp::syncwarp;
  unsigned mask = 0;
  uint64_t value = 0;
  int arg = 0;
  int width = 32;
  uint64_t result = 0;
};

// The fiber running now on this OS thread (null outside kernels).
inline thread_local Fiber* current_fiber = nullptr;

inline Fiber& current_or_throw(const char* what) {
  Fiber* f = current_fiber;
  if (!f) throw std::logic_error(std::string(what) + " was called outside an emulated kernel");
  return *f;
}

inline size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

[[noreturn]] inline void fiber_main(Fiber* f);
#ifndef ISEL_EMU_ASM_SWITCH
inline void fiber_main_uc(unsigned hi, unsigned lo) {
  fiber_main(reinterpret_cast<Fiber*>((static_cast<uintptr_t>(hi) << 32) | lo));
}
#endif

// Runs launches for one OS thread: a pool of fibers (reused across blocks and launches), the
// block's barrier and warp state, its storage, and the queue of runnable fibers.
class Runner {
 public:
  static constexpr size_t kStaticShared = 48 * 1024;  // CUDA's limit for static __shared__
  static constexpr size_t kMaxDynamicShared = 227 * 1024;
  static constexpr size_t kGap = 32;                  // poisoned / canary bytes after each array
  static constexpr int kMaxDecls = 128;
  static constexpr unsigned char kCanary = 0xA5;
#if defined(ISEL_EMU_TSAN) || defined(ISEL_EMU_ASAN)
  static constexpr size_t kStackBytes = 1024 * 1024;  // sanitizers grow frames
#else
  static constexpr size_t kStackBytes = 256 * 1024;
#endif

  static Runner& get() {
    static thread_local Runner r;
    return r;
  }

  Runner() {
    host_tsan_ = san::current_fiber();
    arena_bytes_ = kStaticShared + kMaxDecls * (kGap + 16);
    arena_ = static_cast<unsigned char*>(::operator new(arena_bytes_, std::align_val_t(64)));
    std::memset(arena_, 0xFF, arena_bytes_);
    const char* env = std::getenv("ISEL_EMU_SCHEDULE");
    if (env && std::strcmp(env, "reverse") == 0) schedule_ = Schedule::reverse;
  }
  ~Runner() {
    void* self = san::current_fiber();
    for (Fiber* f : pool_) {
      san::unpoison(f->stack, f->stack_size);  // stale poison must not outlive the mapping
      if (f->tsan) {
        // A parked fiber sits inside an ignore region (see make_fiber); TSan refuses to end a
        // fiber with ignores enabled, so close it in the fiber's name first.
        san::switch_to(f->tsan);
        san::ignore_end();
        san::switch_to(self);
        san::destroy_fiber(f->tsan);
      }
      munmap(f->mapping, f->mapping_size);
      delete f;
    }
    san::unpoison(arena_, arena_bytes_);
    ::operator delete(arena_, std::align_val_t(64));
  }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  Schedule schedule() const { return schedule_; }
  void set_schedule(Schedule s) { schedule_ = s; }

  // ---------------------------------------------------------------- launch (host side)
  void run(dim3 grid, dim3 block, size_t shmem, void (*fn)(void*), void* arg) {
    if (current_fiber) throw std::logic_error("isel::launch inside an emulated kernel: dynamic parallelism is not emulated");
    const unsigned long long nthreads = static_cast<unsigned long long>(block.x) * block.y * block.z;
    if (block.x == 0 || block.y == 0 || block.z == 0 || nthreads > 1024 || block.z > 64)
      fail_config("block (", block.x, ", ", block.y, ", ", block.z,
                  ") must have 1 to 1024 threads, with z at most 64");
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
      fail_config("grid (", grid.x, ", ", grid.y, ", ", grid.z,
                  ") must be non-empty, with x < 2^31 and y, z at most 65535");
    if (shmem > kMaxDynamicShared)
      fail_config("dynamic block storage of ", shmem, " bytes exceeds the ", kMaxDynamicShared, " bytes a block can have");
    T_ = static_cast<int>(nthreads);
    nwarps_ = (T_ + 31) / 32;
    while (static_cast<int>(pool_.size()) < T_) pool_.push_back(make_fiber());
    if (static_cast<int>(queue_.size()) < T_) queue_.resize(T_);
    warps_.assign(nwarps_, WarpState{});
    for (int t = 0; t < T_; ++t) {
      Fiber* f = pool_[t];
      f->tid = t;
      f->thread_idx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
    }
    blockDim = block;
    gridDim = grid;
    fn_ = fn;
    arg_ = arg;
    error_ = nullptr;
    failure_.clear();
    // block storage: a fresh layout for this kernel; everything poisoned until declared
    san::poison(arena_, arena_bytes_);
    ndecls_ = 0;
    arena_used_ = 0;
    std::unique_ptr<unsigned char, void (*)(unsigned char*)> dyn(nullptr, [](unsigned char* p) { ::operator delete(p, std::align_val_t(16)); });
    dyn_bytes_ = shmem;
    const size_t dyn_alloc = shmem + (san::kAsan ? 0 : kGap);
    dyn.reset(static_cast<unsigned char*>(::operator new(dyn_alloc == 0 ? 1 : dyn_alloc, std::align_val_t(16))));
    dyn_ = dyn.get();

    const unsigned long long nblocks = static_cast<unsigned long long>(grid.x) * grid.y * grid.z;
    for (unsigned long long b = 0; b < nblocks && failure_.empty() && !error_; ++b) {
      blockIdx = dim3(static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                      static_cast<unsigned>(b / (static_cast<unsigned long long>(grid.x) * grid.y)));
      run_block();
    }
    dyn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    if (!failure_.empty()) throw std::runtime_error(failure_);
  }

  // ---------------------------------------------------------------- device side
  int syncthreads(int pred, int mode) {  // mode 0: count, 1: and, 2: or (of pred over live threads)
    Fiber& f = current_or_throw("__syncthreads");
    if (aborting_) throw BlockAborted{};
    san::ignore_begin();
    const uint64_t gen = bar_gen_;
    san::release(&bar_sync_[gen & 1]);
    f.wait = Wait::block;
    ++bar_arrived_;
    bar_true_ += pred != 0;
    if (bar_arrived_ == live_) complete_barrier();
    switch_away(&f);
    const bool aborted = aborting_;
    const int count = static_cast<int>(f.result);
    const int arrived = f.arg;
    san::ignore_end();
    if (aborted) throw BlockAborted{};
    san::acquire(&bar_sync_[gen & 1]);
    if (mode == 1) return count == arrived;
    if (mode == 2) return count > 0;
    return count;
  }

  uint64_t warp_op(WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
    Fiber& f = current_or_throw(warp_op_name(op));
    if (aborting_) throw BlockAborted{};
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
      throw std::invalid_argument(std::string(warp_op_name(op)) + ": width (" + std::to_string(width) +
                                  ") must be a power of two in [1, 32]");
    san::ignore_begin();
    const int warp = f.tid >> 5, lane = f.tid & 31;
    WarpState& w = warps_[warp];
    const unsigned bit = 1u << lane;
    int r = -1;
    bool bad = !(mask & bit);
    for (int i = 0; i < static_cast<int>(w.rounds.size()) && !bad; ++i) {
      const Round& rd = w.rounds[i];
      if (rd.mask == mask) {
        bad = rd.op != op;
        r = i;
      } else if (rd.mask & mask) {
        bad = true;
      }
    }
    if (bad) {
      std::string err = warp_misuse(w, warp, lane, op, mask);
      san::ignore_end();
      throw std::invalid_argument(err);
    }
    if (r < 0) {
      w.rounds.push_back(Round{mask, 0, op});
      r = static_cast<int>(w.rounds.size()) - 1;
    }
    const uint64_t gen = w.syncs;
    if (op == WarpOp::syncwarp) san::release(&w.sync[gen & 1]);
    f.wait = Wait::warp;
    f.op = op;
    f.mask = mask;
    f.value = value;
    f.arg = arg;
    f.width = width;
    w.rounds[r].arrived |= bit;
    if (w.rounds[r].arrived == (mask & w.live)) complete_round(warp, r);
    switch_away(&f);
    const bool aborted = aborting_;
    const uint64_t result = f.result;
    san::ignore_end();
    if (aborted) throw BlockAborted{};
    // Only __syncwarp orders memory among its lanes. (The parity address is exact when all
    // live lanes take part; lanes of disjoint partial masks could see one another's edges.)
    if (op == WarpOp::syncwarp) san::acquire(&w.sync[gen & 1]);
    return result;
  }

  unsigned active_mask() {
    Fiber& f = current_or_throw("__activemask");
    san::ignore_begin();
    unsigned live = warps_[f.tid >> 5].live;
    san::ignore_end();
    return live;
  }

  // ISEL_SHARED: the i-th declaration of every thread is the i-th array of the block.
  void* shared(size_t bytes, size_t align, const char* type) {
    Fiber& f = current_or_throw("ISEL_SHARED");
    if (align > 16) throw std::invalid_argument(std::string("ISEL_SHARED of ") + type + ": alignment above 16 is not emulated");
    san::ignore_begin();
    const int i = f.shared_decl++;
    std::string err;
    unsigned char* p = nullptr;
    if (i < ndecls_) {
      if (decls_[i].bytes != bytes)
        err = "block storage #" + std::to_string(i) + " is declared with " + std::to_string(bytes) + " bytes by thread " +
              std::to_string(f.tid) + " but " + std::to_string(decls_[i].bytes) + " bytes by another thread";
      p = arena_ + decls_[i].offset;
    } else if (i >= kMaxDecls) {
      err = "more than " + std::to_string(kMaxDecls) + " ISEL_SHARED declarations in one kernel";
    } else {
      size_t total = bytes;
      for (int j = 0; j < ndecls_; ++j) total += decls_[j].bytes;
      const size_t offset = arena_used_;
      const size_t end = offset + ((bytes + 15) & ~size_t(15)) + kGap;
      if (total > kStaticShared) {
        err = "block storage of " + std::to_string(total) + " bytes (ISEL_SHARED #" + std::to_string(i) + ", " +
              std::to_string(bytes) + " bytes of " + type + ") exceeds CUDA's " + std::to_string(kStaticShared) +
              " bytes of static shared memory";
      } else {
        decls_[ndecls_++] = Decl{offset, bytes, end};
        arena_used_ = end;
        p = arena_ + offset;
        san::unpoison(p, bytes);
        std::memset(p, 0xFF, bytes);  // garbage, not what the previous kernel left
        if (!san::kAsan) std::memset(p + bytes, kCanary, end - offset - bytes);
      }
    }
    san::ignore_end();
    if (!err.empty()) throw std::invalid_argument(err);
    return p;
  }

  void* dynamic_shared() {
    current_or_throw("ISEL_SHARED_DYNAMIC");
    return dyn_;
  }

  // ---------------------------------------------------------------- fiber side
  // The body of one CUDA thread for the current block.
  void run_thread(Fiber* f) {
    san::acquire(&block_start_sync_);
    if (!aborting_) {
      try {
        fn_(arg_);
      } catch (BlockAborted&) {
      } catch (...) {
        san::ignore_begin();
        if (!error_) error_ = std::current_exception();
        aborting_ = true;
        san::ignore_end();
      }
    }
    san::release(&block_end_sync_);
  }

  // A thread has left the kernel: it no longer counts at barriers (as on the GPU, where an
  // exited thread does not hold up __syncthreads); then run the next fiber.
  void thread_exit(Fiber* f) {
    san::ignore_begin();
    f->wait = Wait::done;
    --live_;
    WarpState& w = warps_[f->tid >> 5];
    w.live &= ~(1u << (f->tid & 31));
    for (int i = 0; i < static_cast<int>(w.rounds.size());) {
      const Round& rd = w.rounds[i];
      if (rd.arrived != 0 && rd.arrived == (rd.mask & w.live)) complete_round(f->tid >> 5, i);  // removes round i
      else ++i;
    }
    if (bar_arrived_ > 0 && bar_arrived_ == live_) complete_barrier();
    switch_away(f);
    san::ignore_end();
  }

  void on_fiber_start() {
    const void* bottom = nullptr;
    size_t size = 0;
    san::finish_switch(nullptr, &bottom, &size);
    if (switching_from_host_) {
      host_bottom_ = bottom;
      host_size_ = size;
    }
  }

 private:
  struct Round {
    unsigned mask = 0, arrived = 0;
    WarpOp op = WarpOp::syncwarp;
  };
  struct WarpState {
    unsigned live = 0;
    std::vector<Round> rounds;
    uint64_t syncs = 0;
    char sync[2] = {};
  };
  struct Decl {
    size_t offset, bytes, end;
  };

  template <class... Parts>
  [[noreturn]] static void fail_config(const Parts&... parts) {
    std::ostringstream out;
    out << "isel::launch (emulated): ";
    (out << ... << parts);
    throw std::invalid_argument(out.str());
  }
  static std::string hex(unsigned v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
  }
  // Why lane `lane` may not call `op` with `mask` now (the slow path of warp_op).
  __attribute__((cold, noinline)) std::string warp_misuse(const WarpState& w, int warp, int lane, WarpOp op,
                                                          unsigned mask) const {
    if (!(mask & (1u << lane)))
      return describe_lane(warp, lane) + " calls " + warp_op_name(op) + " with mask " + hex(mask) + ", which leaves it out";
    for (const Round& rd : w.rounds) {
      if (rd.mask == mask && rd.op != op)
        return describe_lane(warp, lane) + " calls " + warp_op_name(op) + " while lanes " + hex(rd.arrived) +
               " of the same mask " + hex(mask) + " wait in " + warp_op_name(rd.op);
      if (rd.mask != mask && (rd.mask & mask))
        return describe_lane(warp, lane) + " calls " + warp_op_name(op) + " with mask " + hex(mask) +
               ", overlapping mask " + hex(rd.mask) + " of lanes waiting in " + warp_op_name(rd.op);
    }
    return "warp primitive misuse";
  }
  std::string describe_lane(int warp, int lane) const {
    return "thread " + std::to_string(warp * 32 + lane) + " (warp " + std::to_string(warp) + ", lane " +
           std::to_string(lane) + ")";
  }

  Fiber* make_fiber() {
    auto* f = new Fiber();
    f->runner = this;
    const size_t guard = page_size();
    f->mapping_size = kStackBytes + guard;
    void* m = mmap(nullptr, f->mapping_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      delete f;
      throw std::bad_alloc();
    }
    f->mapping = static_cast<unsigned char*>(m);
    mprotect(f->mapping, guard, PROT_NONE);  // a stack overflow faults instead of corrupting
    f->stack = f->mapping + guard;
    f->stack_size = kStackBytes;
    f->tsan = san::create_fiber(static_cast<int>(pool_.size()));  // the pool index is its thread index
    // Every switch happens inside an ignore region of both fibers (jump's callers open one);
    // a new fiber starts inside one too, which fiber_main closes.
    if (f->tsan) {
      void* self = san::current_fiber();
      san::switch_to(f->tsan);
      san::ignore_begin();
      san::switch_to(self);
    }
#ifdef ISEL_EMU_ASM_SWITCH
    void** sp = reinterpret_cast<void**>(f->stack + f->stack_size);
    *--sp = nullptr;                                                  // alignment slot
    *--sp = reinterpret_cast<void*>(&fiber_trampoline);               // ret target
    *--sp = nullptr;                                                  // rbp: ends frame-pointer walks
    *--sp = nullptr;                                                  // rbx
    *--sp = f;                                                        // r12: argument
    *--sp = reinterpret_cast<void*>(static_cast<void (*)(Fiber*)>(&fiber_main));  // r13
    *--sp = nullptr;                                                  // r14
    *--sp = nullptr;                                                  // r15
    f->ctx.sp = sp;
#else
    if (getcontext(&f->ctx.uc) != 0) std::abort();
    f->ctx.uc.uc_stack.ss_sp = f->stack;
    f->ctx.uc.uc_stack.ss_size = f->stack_size;
    f->ctx.uc.uc_link = nullptr;
    const auto addr = reinterpret_cast<uintptr_t>(f);
    makecontext(&f->ctx.uc, reinterpret_cast<void (*)()>(&fiber_main_uc), 2, static_cast<unsigned>(addr >> 32),
                static_cast<unsigned>(addr & 0xffffffffu));
#endif
    return f;
  }

  void push(Fiber* f) { queue_[(qhead_ + qcount_++) % T_] = f; }
  Fiber* pop() {
    if (qcount_ == 0) return nullptr;
    Fiber* f = queue_[qhead_];
    qhead_ = (qhead_ + 1) % T_;
    --qcount_;
    return f;
  }
  Fiber* in_order(int i) const { return pool_[schedule_ == Schedule::forward ? i : T_ - 1 - i]; }

  // Switches from `from` (null: the host) to `to` (null: the host). Returns when `from` is
  // resumed. Always called between san::ignore_begin and ignore_end.
  void jump(Fiber* from, Fiber* to) {
    current_fiber = to;
    switching_from_host_ = from == nullptr;
    void** fake = from ? &from->asan_fake : &host_asan_fake_;
    if (to) san::start_switch(fake, to->stack, to->stack_size);
    else san::start_switch(fake, host_bottom_, host_size_);
    san::switch_to(to ? to->tsan : host_tsan_);
    raw_switch(from ? &from->ctx : &host_ctx_, to ? &to->ctx : &host_ctx_);
    // resumed
    const void* bottom = nullptr;
    size_t size = 0;
    san::finish_switch(*fake, &bottom, &size);
    if (switching_from_host_ && from) {
      host_bottom_ = bottom;
      host_size_ = size;
    }
  }

  // The current fiber stops (waiting or done): run the next runnable fiber, or the host when
  // there is none.
  void switch_away(Fiber* from) {
    Fiber* next = pop();
    if (next == from) return;
    jump(from, next);
  }

  void complete_barrier() {
    const int count = bar_true_;
    for (int i = 0; i < T_; ++i) {
      Fiber* f = in_order(i);
      if (f->wait == Wait::block) {
        f->wait = Wait::running;
        f->result = static_cast<uint64_t>(count);
        f->arg = bar_arrived_;
        push(f);
      }
    }
    bar_arrived_ = 0;
    bar_true_ = 0;
    ++bar_gen_;
  }

  // Lane j's source for a shuffle, following PTX shfl.sync: out-of-segment sources (and
  // sources that are not taking part, which CUDA leaves undefined) give the lane its own value.
  static int shuffle_source(const Fiber& f, int lane) {
    const int width = f.width;
    const int seg = lane & ~(width - 1);
    const int last = seg + width - 1;
    switch (f.op) {
      case WarpOp::shfl: return seg + (f.arg & (width - 1));
      case WarpOp::shfl_up: {
        int s = lane - (f.arg & 31);
        return s >= seg ? s : -1;
      }
      case WarpOp::shfl_down: {
        int s = lane + (f.arg & 31);
        return s <= last ? s : -1;
      }
      default: {  // xor: lanes of earlier segments are reachable, later ones are not
        int s = lane ^ (f.arg & 31);
        return s <= last ? s : -1;
      }
    }
  }

  void complete_round(int warp, int r) {
    WarpState& w = warps_[warp];
    const Round rd = w.rounds[r];
    w.rounds.erase(w.rounds.begin() + r);
    Fiber* const* lanes = pool_.data() + warp * 32;
    const int width = std::min(32, T_ - warp * 32);
    unsigned votes = 0;
    for (int l = 0; l < width; ++l)
      if ((rd.arrived >> l) & 1u) votes |= (lanes[l]->value != 0 ? 1u : 0u) << l;
    for (int i = 0; i < width; ++i) {
      const int l = schedule_ == Schedule::forward ? i : width - 1 - i;
      if (!((rd.arrived >> l) & 1u)) continue;
      Fiber& f = *lanes[l];
      switch (rd.op) {
        case WarpOp::syncwarp: f.result = 0; break;
        case WarpOp::ballot: f.result = votes; break;
        case WarpOp::any: f.result = votes != 0; break;
        case WarpOp::all: f.result = votes == rd.arrived; break;
        default: {
          int s = shuffle_source(f, l);
          f.result = (s >= 0 && s < width && ((rd.arrived >> s) & 1u)) ? lanes[s]->value : f.value;
        }
      }
      f.wait = Wait::running;
      push(&f);
    }
    if (rd.op == WarpOp::syncwarp) ++w.syncs;
  }

  void run_block() {
    // fresh block state
    live_ = T_;
    bar_arrived_ = 0;
    bar_true_ = 0;
    aborting_ = false;
    for (int w = 0; w < nwarps_; ++w) {
      int width = std::min(32, T_ - w * 32);
      warps_[w].live = width == 32 ? 0xffffffffu : ((1u << width) - 1u);
      warps_[w].rounds.clear();
    }
    qhead_ = 0;
    qcount_ = 0;
    for (int i = 0; i < T_; ++i) {
      Fiber* f = in_order(i);
      f->wait = Wait::running;
      f->shared_decl = 0;
      push(f);
    }
    // storage is garbage at block start (0xFF), the gaps hold the canary
    for (int i = 0; i < ndecls_; ++i) {
      std::memset(arena_ + decls_[i].offset, 0xFF, decls_[i].bytes);
      if (!san::kAsan) std::memset(arena_ + decls_[i].offset + decls_[i].bytes, kCanary, decls_[i].end - decls_[i].offset - decls_[i].bytes);
    }
    std::memset(dyn_, 0xFF, dyn_bytes_);
    if (!san::kAsan) std::memset(dyn_ + dyn_bytes_, kCanary, kGap);

    san::release(&block_start_sync_);
    san::ignore_begin();
    jump(nullptr, pop());
    // Back on the host: no fiber is runnable. Threads still waiting are deadlocked (or are
    // being abandoned after an error): resume them so they unwind.
    if (live_ > 0 && !aborting_) {
      failure_ = deadlock_message();
      aborting_ = true;
    }
    while (live_ > 0) {
      for (int i = 0; i < T_; ++i) {
        Fiber* f = in_order(i);
        if (f->wait == Wait::block || f->wait == Wait::warp) {
          f->wait = Wait::running;
          push(f);
        }
      }
      jump(nullptr, pop());
    }
    san::ignore_end();
    san::acquire(&block_end_sync_);
    check_canaries();
  }

  void check_canaries() {
    if (san::kAsan || !failure_.empty() || error_) return;
    for (int i = 0; i < ndecls_; ++i) {
      const unsigned char* gap = arena_ + decls_[i].offset + decls_[i].bytes;
      const size_t n = decls_[i].end - decls_[i].offset - decls_[i].bytes;
      for (size_t k = 0; k < n; ++k)
        if (gap[k] != kCanary) {
          failure_ = "emulated kernel wrote past the end of block storage #" + std::to_string(i) + " (" +
                     std::to_string(decls_[i].bytes) + " bytes), at byte " + std::to_string(decls_[i].bytes + k) +
                     " in block " + block_name();
          return;
        }
    }
    for (size_t k = 0; k < kGap; ++k)
      if (dyn_[dyn_bytes_ + k] != kCanary) {
        failure_ = "emulated kernel wrote past the end of its dynamic block storage (" + std::to_string(dyn_bytes_) +
                   " bytes), at byte " + std::to_string(dyn_bytes_ + k) + " in block " + block_name();
        return;
      }
  }

  static std::string block_name() {
    return "(" + std::to_string(blockIdx.x) + ", " + std::to_string(blockIdx.y) + ", " + std::to_string(blockIdx.z) + ")";
  }

  std::string wait_description(const Fiber& f) const {
    switch (f.wait) {
      case Wait::done: return "exited";
      case Wait::block: return "wait at __syncthreads";
      case Wait::warp:
        return std::string("wait at ") + warp_op_name(f.op) + " (warp " + std::to_string(f.tid >> 5) + ", mask " +
               hex(f.mask) + ")";
      default: return "running";
    }
  }

  std::string deadlock_message() const {
    std::ostringstream out;
    out << "emulated kernel deadlocked in block " << block_name()
        << ": no thread can go on (a barrier or warp primitive that some live threads never reach)";
    int start = 0;
    std::string what = wait_description(*pool_[0]);
    for (int t = 1; t <= T_; ++t) {
      std::string next = t < T_ ? wait_description(*pool_[t]) : std::string();
      if (t == T_ || next != what) {
        out << "; threads " << start << (t - 1 > start ? "-" + std::to_string(t - 1) : std::string()) << " " << what;
        start = t;
        what = next;
      }
    }
    return out.str();
  }

  // pool and queue
  std::vector<Fiber*> pool_;
  std::vector<Fiber*> queue_;
  size_t qhead_ = 0, qcount_ = 0;
  Schedule schedule_ = Schedule::forward;
  // launch
  int T_ = 0, nwarps_ = 0;
  void (*fn_)(void*) = nullptr;
  void* arg_ = nullptr;
  std::exception_ptr error_;
  std::string failure_;
  // block
  int live_ = 0;
  bool aborting_ = false;
  int bar_arrived_ = 0, bar_true_ = 0;
  uint64_t bar_gen_ = 0;
  char bar_sync_[2] = {};
  char block_start_sync_ = 0, block_end_sync_ = 0;
  std::vector<WarpState> warps_;
  // block storage
  unsigned char* arena_ = nullptr;
  size_t arena_bytes_ = 0, arena_used_ = 0;
  Decl decls_[kMaxDecls] = {};
  int ndecls_ = 0;
  unsigned char* dyn_ = nullptr;
  size_t dyn_bytes_ = 0;
  // host context
  Context host_ctx_{};
  void* host_tsan_ = nullptr;
  void* host_asan_fake_ = nullptr;
  const void* host_bottom_ = nullptr;
  size_t host_size_ = 0;
  bool switching_from_host_ = false;
};

// A fiber's life: run the kernel for one block, leave, and wait to be given the next block.
[[noreturn]] inline void fiber_main(Fiber* f) {
  Runner& r = *f->runner;
  r.on_fiber_start();
  san::ignore_end();  // opened for this fiber by make_fiber
  for (;;) {
    r.run_thread(f);
    r.thread_exit(f);
  }
}

template <class T>
uint64_t to_slot(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp primitives move at most 8 bytes");
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

template <class T>
T* shared_alloc(size_t count, const char* type) {
  return static_cast<T*>(current_or_throw("ISEL_SHARED").runner->shared(count * sizeof(T), alignof(T), type));
}
template <class T>
T* shared_dynamic() {
  return static_cast<T*>(current_or_throw("ISEL_SHARED_DYNAMIC").runner->dynamic_shared());
}

template <class T>
uint64_t warp_call(WarpOp op, unsigned mask, T v, int arg, int width) {
  return current_or_throw(warp_op_name(op)).runner->warp_op(op, mask, to_slot(v), arg, width);
}

// The order in which the threads of a block run between barriers, for launches made from the
// calling thread (initially ISEL_EMU_SCHEDULE=reverse in the environment, else forward).
inline void set_schedule(Schedule s) { Runner::get().set_schedule(s); }
inline Schedule schedule() { return Runner::get().schedule(); }

// A schedule for the launches made in a scope (the previous one comes back, also on a throw).
class ScheduleScope {
 public:
  explicit ScheduleScope(Schedule s) : saved_(schedule()) { set_schedule(s); }
  ~ScheduleScope() { set_schedule(saved_); }
  ScheduleScope(const ScheduleScope&) = delete;
  ScheduleScope& operator=(const ScheduleScope&) = delete;

 private:
  Schedule saved_;
};

// ---- atomics: CUDA's overload set (so code that would not compile for the GPU does not
// compile here either), relaxed as CUDA's are.
template <class T>
T atomic_add(T* p, T v) {
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
template <class T, class F>
T atomic_update(T* p, F f) {  // old -> f(old), returns old
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(p, &old, f(old), false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
  return old;
}

}  // namespace emu

// Runs kernel(args...) over the grid (see the top of this file).
template <class... KArgs, class... Args>
void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t shmem, cudaStream_t, Args... args) {
  static_assert(sizeof...(KArgs) == sizeof...(Args), "isel::launch: wrong number of kernel arguments");
  auto call = [&]() { kernel(static_cast<KArgs>(args)...); };
  using Call = decltype(call);
  emu::Runner::get().run(grid, block, shmem, [](void* c) { (*static_cast<Call*>(c))(); }, &call);
}

}  // namespace isel

// threadIdx differs per fiber: a reference to the running fiber's own copy (stable across
// barriers, unlike a thread-local that the switch would overwrite).
#define threadIdx (static_cast<const dim3&>(::isel::emu::current_fiber->thread_idx))

#define ISEL_SHARED(T, name, count) T* name = ::isel::emu::shared_alloc<T>(count, #T)
#define ISEL_SHARED_DYNAMIC(T, name) T* name = ::isel::emu::shared_dynamic<T>()

inline void __syncthreads() { isel::emu::current_or_throw("__syncthreads").runner->syncthreads(0, 0); }
inline int __syncthreads_count(int pred) { return isel::emu::current_or_throw("__syncthreads_count").runner->syncthreads(pred, 0); }
inline int __syncthreads_and(int pred) { return isel::emu::current_or_throw("__syncthreads_and").runner->syncthreads(pred, 1); }
inline int __syncthreads_or(int pred) { return isel::emu::current_or_throw("__syncthreads_or").runner->syncthreads(pred, 2); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  isel::emu::warp_call(isel::emu::WarpOp::syncwarp, mask, 0, 0, 32);
}
// Fibers share one OS thread, so ordering within it is program order; a compiler barrier keeps
// the compiler from moving memory accesses across the fence.
inline void __threadfence() { __asm__ __volatile__("" ::: "memory"); }
inline void __threadfence_block() { __threadfence(); }
inline unsigned __activemask() { return isel::emu::current_or_throw("__activemask").runner->active_mask(); }

template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  return isel::emu::from_slot<T>(isel::emu::warp_call(isel::emu::WarpOp::shfl, mask, v, src, width));
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return isel::emu::from_slot<T>(isel::emu::warp_call(isel::emu::WarpOp::shfl_up, mask, v, static_cast<int>(delta), width));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return isel::emu::from_slot<T>(isel::emu::warp_call(isel::emu::WarpOp::shfl_down, mask, v, static_cast<int>(delta), width));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return isel::emu::from_slot<T>(isel::emu::warp_call(isel::emu::WarpOp::shfl_xor, mask, v, lane_mask, width));
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return static_cast<unsigned>(isel::emu::warp_call(isel::emu::WarpOp::ballot, mask, pred != 0 ? 1 : 0, 0, 32));
}
inline int __any_sync(unsigned mask, int pred) {
  return static_cast<int>(isel::emu::warp_call(isel::emu::WarpOp::any, mask, pred != 0 ? 1 : 0, 0, 32));
}
inline int __all_sync(unsigned mask, int pred) {
  return static_cast<int>(isel::emu::warp_call(isel::emu::WarpOp::all, mask, pred != 0 ? 1 : 0, 0, 32));
}

// ---- atomics (return the old value, as CUDA's)
inline int atomicAdd(int* p, int v) { return isel::emu::atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return isel::emu::atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return isel::emu::atomic_add(p, v); }
inline float atomicAdd(float* p, float v) { return isel::emu::atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return isel::emu::atomic_add(p, v); }
inline int atomicSub(int* p, int v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicSub(unsigned* p, unsigned v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned* p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicExch(unsigned long long* p, unsigned long long v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline float atomicExch(float* p, float v) {
  float old;
  __atomic_exchange(p, &v, &old, __ATOMIC_RELAXED);
  return old;
}
#define ISEL_EMU_MINMAX(T)                                                                              \
  inline T atomicMin(T* p, T v) { return isel::emu::atomic_update(p, [v](T o) { return v < o ? v : o; }); } \
  inline T atomicMax(T* p, T v) { return isel::emu::atomic_update(p, [v](T o) { return v > o ? v : o; }); }
ISEL_EMU_MINMAX(int)
ISEL_EMU_MINMAX(unsigned)
ISEL_EMU_MINMAX(long long)
ISEL_EMU_MINMAX(unsigned long long)
#undef ISEL_EMU_MINMAX
#define ISEL_EMU_BITS(T)                                                                               \
  inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }                 \
  inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }                   \
  inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }                 \
  inline T atomicCAS(T* p, T compare, T val) {                                                         \
    __atomic_compare_exchange_n(p, &compare, val, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);          \
    return compare;                                                                                     \
  }
ISEL_EMU_BITS(int)
ISEL_EMU_BITS(unsigned)
ISEL_EMU_BITS(unsigned long long)
#undef ISEL_EMU_BITS
inline unsigned short atomicCAS(unsigned short* p, unsigned short compare, unsigned short val) {
  __atomic_compare_exchange_n(p, &compare, val, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;
}
inline unsigned atomicInc(unsigned* p, unsigned limit) {
  return isel::emu::atomic_update(p, [limit](unsigned o) { return o >= limit ? 0u : o + 1u; });
}
inline unsigned atomicDec(unsigned* p, unsigned limit) {
  return isel::emu::atomic_update(p, [limit](unsigned o) { return (o == 0u || o > limit) ? limit : o - 1u; });
}
