// The emulator's own checks: kernels written as a .cu file would be (through
// common/cuda_compat.cuh), run on the emulated grid, compared with host results computed
// independently. Included by emu_core.cpp (assembly fiber switch) and emu_core_ucontext.cpp
// (the portable swapcontext switch), so both back ends pass the same checks.
//
// Nothing here is racy: these programs run under ThreadSanitizer and AddressSanitizer too, where
// any report fails the test. The deliberately broken kernels live in emu_faults.cpp.
#pragma once

#ifndef ITERSELECT_CUDA_EMULATION
#error "the emulator checks need ITERSELECT_CUDA_EMULATION (isel_emu defines it publicly)"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <thread>
#include <vector>

#include "common/cuda_compat.cuh"
#include "tests/harness.hpp"

static_assert(isel::kCudaEmulation, "the emulator checks must build against the emulation");

namespace emu_checks {

using isel::launch;
using isel::emu::Schedule;

constexpr Schedule kSchedules[] = {Schedule::forward, Schedule::reverse};

// Restores the schedule on scope exit, so one check cannot change another's.
struct ScheduleScope {
  Schedule saved = isel::emu::schedule();
  explicit ScheduleScope(Schedule s) { isel::emu::set_schedule(s); }
  ~ScheduleScope() { isel::emu::set_schedule(saved); }
};

inline const char* name(Schedule s) { return s == Schedule::forward ? "forward" : "reverse"; }

inline uint32_t hash32(uint32_t x) {  // deterministic test data
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// ------------------------------------------------------------------ block reduction
// Each thread folds a grid-stride slice, then the block folds in shared memory: the part above
// the largest power of two onto the part below, then halving, a __syncthreads after each step.
template <class T>
__global__ void block_sum_kernel(const T* in, int n, T* partial) {
  ISEL_SHARED(T, s, 1024);
  const int tid = threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y;
  const int nt = blockDim.x * blockDim.y * blockDim.z;
  T acc = T(0);
  for (int i = blockIdx.x * nt + tid; i < n; i += gridDim.x * nt) acc += in[i];
  s[tid] = acc;
  __syncthreads();
  int p = 1;
  while (p * 2 <= nt) p *= 2;
  if (tid < nt - p) s[tid] += s[tid + p];
  __syncthreads();
  for (int h = p / 2; h > 0; h /= 2) {
    if (tid < h) s[tid] += s[tid + h];
    __syncthreads();
  }
  if (tid == 0) partial[blockIdx.x] = s[0];
}

// The same float operations in the same order, on the host.
template <class T>
std::vector<T> block_sum_reference(const std::vector<T>& in, int blocks, int nt) {
  const int n = static_cast<int>(in.size());
  std::vector<T> out(blocks);
  for (int b = 0; b < blocks; ++b) {
    std::vector<T> s(nt);
    for (int t = 0; t < nt; ++t) {
      T acc = T(0);
      for (int i = b * nt + t; i < n; i += blocks * nt) acc += in[i];
      s[t] = acc;
    }
    int p = 1;
    while (p * 2 <= nt) p *= 2;
    for (int t = 0; t < nt - p; ++t) s[t] += s[t + p];
    for (int h = p / 2; h > 0; h /= 2)
      for (int t = 0; t < h; ++t) s[t] += s[t + h];
    out[b] = s[0];
  }
  return out;
}

template <class T>
void check_block_sum(dim3 block, int blocks, int n) {
  std::vector<T> in(n);
  for (int i = 0; i < n; ++i) in[i] = static_cast<T>(static_cast<int>(hash32(i) % 2001) - 1000) / T(8);
  const int nt = block.x * block.y * block.z;
  const std::vector<T> want = block_sum_reference(in, blocks, nt);
  for (Schedule sch : kSchedules) {
    ScheduleScope scope(sch);
    std::vector<T> got(blocks, T(-12345));
    launch(block_sum_kernel<T>, dim3(blocks), block, 0, nullptr, static_cast<const T*>(in.data()), n, got.data());
    for (int b = 0; b < blocks; ++b)
      EXPECT(got[b] == want[b], "block", b, "of", blocks, "threads", nt, "n", n, "schedule", name(sch), "got", got[b],
             "want", want[b]);
  }
}

ISEL_CHECK_CASE(block_reduction_syncthreads) {
  check_block_sum<int>(dim3(256), 7, 5000);
  check_block_sum<float>(dim3(64), 13, 3001);     // 3001: not a multiple of the block size
  check_block_sum<double>(dim3(1024), 2, 4099);   // the largest block
  check_block_sum<float>(dim3(96), 5, 1000);      // not a power of two
  check_block_sum<float>(dim3(48), 3, 100);       // a partial warp
  check_block_sum<int>(dim3(1), 4, 17);           // one thread per block
  check_block_sum<float>(dim3(16, 8), 6, 2500);   // 2-D block, linear thread id
  check_block_sum<int>(dim3(8, 4, 2), 3, 700);    // 3-D block
}

// ------------------------------------------------------------------ thread indices
__global__ void index_kernel(int* out) {
  const int nt = blockDim.x * blockDim.y * blockDim.z;
  const int tid = threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y;
  const int b = blockIdx.x + blockIdx.y * gridDim.x + blockIdx.z * gridDim.x * gridDim.y;
  const dim3& mine = threadIdx;  // a reference must stay this thread's across a barrier
  __syncthreads();
  int* o = out + 6 * (b * nt + tid);
  o[0] = mine.x;
  o[1] = mine.y;
  o[2] = mine.z;
  o[3] = blockIdx.x;
  o[4] = blockIdx.y;
  o[5] = blockIdx.z;
}

ISEL_CHECK_CASE(thread_and_block_indices) {
  const dim3 grid(3, 2, 2), block(5, 3, 2);
  const int nt = 30, nb = 12;
  std::vector<int> out(6 * nt * nb, -1);
  launch(index_kernel, grid, block, 0, nullptr, out.data());
  for (int b = 0; b < nb; ++b)
    for (int t = 0; t < nt; ++t) {
      const int* o = &out[6 * (b * nt + t)];
      const int want[6] = {t % 5, (t / 5) % 3, t / 15, b % 3, (b / 3) % 2, b / 6};
      for (int k = 0; k < 6; ++k) EXPECT(o[k] == want[k], "block", b, "thread", t, "field", k, "got", o[k], "want", want[k]);
    }
}

// ------------------------------------------------------------------ warp primitives
// Every lane writes what each primitive gave it; the host recomputes it from the lane values.
__global__ void warp_kernel(const int* in, int* out) {
  const int t = threadIdx.x, lane = t & 31;
  const int v = in[blockIdx.x * blockDim.x + t];
  int* o = out + 10 * (blockIdx.x * blockDim.x + t);
  // shuffle-down tree: lane 0 holds the warp's sum
  int sum = v;
  for (int w = 16; w >= 1; w >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, w);
  o[0] = sum;
  // butterfly: every lane holds the sum
  int all = v;
  for (int w = 1; w < 32; w <<= 1) all += __shfl_xor_sync(0xffffffffu, all, w);
  o[1] = all;
  o[2] = __shfl_sync(0xffffffffu, v, 7);          // broadcast lane 7
  o[3] = __shfl_sync(0xffffffffu, v, lane + 3, 8);  // within groups of 8, wrapping
  int scan = v;                                    // inclusive prefix sum
  for (int w = 1; w < 32; w <<= 1) {
    int up = __shfl_up_sync(0xffffffffu, scan, w);
    if (lane >= w) scan += up;
  }
  o[4] = scan;
  const unsigned ballot = __ballot_sync(0xffffffffu, v % 3 == 0);
  o[5] = static_cast<int>(ballot);
  o[6] = __popc(ballot);
  o[7] = __any_sync(0xffffffffu, v > 900);
  o[8] = __all_sync(0xffffffffu, v >= 0);
  o[9] = __shfl_xor_sync(0xffffffffu, v, 16, 16);  // earlier segments are reachable, later are not
}

ISEL_CHECK_CASE(warp_shuffle_ballot) {
  const int blocks = 3, threads = 96;
  std::vector<int> in(blocks * threads), out(10 * blocks * threads, -1);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int>(hash32(static_cast<uint32_t>(i) + 7) % 1000);
  for (Schedule sch : kSchedules) {
    ScheduleScope scope(sch);
    launch(warp_kernel, dim3(blocks), dim3(threads), 0, nullptr, static_cast<const int*>(in.data()), out.data());
    for (int w0 = 0; w0 < blocks * threads; w0 += 32) {
      const int* v = &in[w0];
      int total = 0;
      unsigned ballot = 0;
      bool any = false, all = true;
      for (int l = 0; l < 32; ++l) {
        total += v[l];
        ballot |= (v[l] % 3 == 0 ? 1u : 0u) << l;
        any = any || v[l] > 900;
        all = all && v[l] >= 0;
      }
      int scan = 0;
      for (int l = 0; l < 32; ++l) {
        const int* o = &out[10 * (w0 + l)];
        scan += v[l];
        if (l == 0) EXPECT(o[0] == total, "shfl_down sum, warp", w0 / 32, name(sch), o[0], total);
        EXPECT(o[1] == total, "shfl_xor sum, lane", l, o[1], total);
        EXPECT(o[2] == v[7], "shfl broadcast, lane", l, o[2], v[7]);
        EXPECT(o[3] == v[(l & ~7) + ((l + 3) & 7)], "shfl width 8, lane", l, o[3]);
        EXPECT(o[4] == scan, "shfl_up scan, lane", l, o[4], scan);
        EXPECT(static_cast<unsigned>(o[5]) == ballot, "ballot, lane", l, o[5], ballot);
        EXPECT(o[6] == __builtin_popcount(ballot), "popc of ballot, lane", l);
        EXPECT(o[7] == int(any) && o[8] == int(all), "any/all, lane", l, o[7], o[8]);
        EXPECT(o[9] == (l >= 16 ? v[l - 16] : v[l]), "shfl_xor width 16 mask 16, lane", l, o[9]);
      }
    }
  }
}

// 8-byte values, a partial warp, and two halves of a warp using disjoint masks at once.
__global__ void warp_mixed_kernel(const double* in, double* out, long long* idx_out) {
  const int t = threadIdx.x, lane = t & 31;
  double v = in[t];
  long long idx = 1000LL * t + (1LL << 40);
  double m = v;
  long long mi = idx;
  if (lane < 16) {
    for (int w = 8; w >= 1; w >>= 1) {  // argmax over lanes 0-15 only
      double ov = __shfl_xor_sync(0x0000ffffu, m, w, 16);
      long long oi = __shfl_xor_sync(0x0000ffffu, mi, w, 16);
      if (ov > m || (ov == m && oi < mi)) {
        m = ov;
        mi = oi;
      }
    }
  } else {
    for (int w = 8; w >= 1; w >>= 1) m += __shfl_down_sync(0xffff0000u, m, w, 16);  // sum of 16-31
    __syncwarp(0xffff0000u);
  }
  out[t] = m;
  idx_out[t] = mi;
}

ISEL_CHECK_CASE(warp_partial_masks_and_8_byte_values) {
  const int threads = 48;  // warp 1 has 16 lanes
  std::vector<double> in(threads), out(threads);
  std::vector<long long> idx(threads);
  for (int i = 0; i < threads; ++i) in[i] = static_cast<double>(hash32(i) % 97) * 0.25;
  for (Schedule sch : kSchedules) {
    ScheduleScope scope(sch);
    launch(warp_mixed_kernel, dim3(1), dim3(threads), 0, nullptr, static_cast<const double*>(in.data()), out.data(), idx.data());
    for (int w = 0; w < 2; ++w) {
      int best = w * 32;
      for (int l = 0; l < 16; ++l)
        if (in[w * 32 + l] > in[best]) best = w * 32 + l;
      for (int l = 0; l < 16; ++l) {
        EXPECT(out[w * 32 + l] == in[best], "argmax value, warp", w, "lane", l, out[w * 32 + l], in[best]);
        EXPECT(idx[w * 32 + l] == 1000LL * best + (1LL << 40), "argmax index, warp", w, "lane", l, idx[w * 32 + l]);
      }
    }
    // lanes 16-31 of warp 0: shuffle-down tree over 16 lanes; lane 16 holds the sum
    double sum = 0;
    double part[16];
    for (int l = 0; l < 16; ++l) part[l] = in[16 + l];
    for (int w = 8; w >= 1; w >>= 1)
      for (int l = 0; l < 16; ++l) part[l] = part[l] + (l + w < 16 ? part[l + w] : part[l]);
    sum = part[0];
    EXPECT(out[16] == sum, "sum of lanes 16-31", out[16], sum, name(sch));
  }
}

// ------------------------------------------------------------------ atomics
struct AtomicOut {
  int i_count;
  float f_sum;
  double d_sum;
  unsigned long long u64_sum;
  int i_min, i_max;
  unsigned long long u64_min, u64_max;
  long long ll_min, ll_max;
  unsigned u_and, u_or, u_xor;
  unsigned inc, dec;
  int cas_count;
  float cas_fmax;
  int exch_last;
};

__device__ float atomic_max_float(float* p, float v) {  // the classic CAS loop on the bits
  int* ip = reinterpret_cast<int*>(p);
  int old = atomicAdd(ip, 0), assumed;  // an atomic read: a plain one races with the CAS
  do {
    assumed = old;
    if (__int_as_float(assumed) >= v) break;
    old = atomicCAS(ip, assumed, __float_as_int(v));
  } while (old != assumed);
  return __int_as_float(old);
}

__global__ void atomics_kernel(AtomicOut* o, int* tickets, int n) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= n) return;
  const uint32_t h = emu_checks::hash32(g);
  const int old = atomicAdd(&o->i_count, 1);
  tickets[old] = g;  // every old value is handed out exactly once
  atomicAdd(&o->f_sum, 1.0f);
  atomicAdd(&o->d_sum, 0.5 * (g % 7));
  atomicAdd(&o->u64_sum, (1ULL << 33) + static_cast<unsigned long long>(g));
  atomicMin(&o->i_min, static_cast<int>(h % 100000) - 50000);
  atomicMax(&o->i_max, static_cast<int>(h % 100000) - 50000);
  atomicMin(&o->u64_min, (static_cast<unsigned long long>(h) << 20) | 1u);
  atomicMax(&o->u64_max, (static_cast<unsigned long long>(h) << 20) | 1u);
  atomicMin(&o->ll_min, -static_cast<long long>(h) * 1000);
  atomicMax(&o->ll_max, -static_cast<long long>(h) * 1000);
  atomicAnd(&o->u_and, ~(1u << (g % 32)) | (h & 0x80000000u));
  atomicOr(&o->u_or, 1u << (h % 31));
  atomicXor(&o->u_xor, h);
  atomicInc(&o->inc, 9u);
  atomicDec(&o->dec, 9u);
  int c = 0;  // a counter through atomicCAS only (a plain read here would race with it)
  for (;;) {
    int seen = atomicCAS(&o->cas_count, c, c + 1);
    if (seen == c) break;
    c = seen;
  }
  atomic_max_float(&o->cas_fmax, static_cast<float>(h % 100003) * 0.5f);
  atomicExch(&o->exch_last, g);
}

ISEL_CHECK_CASE(atomics_from_many_blocks) {
  const int blocks = isel::test::kSanitized ? 9 : 40, threads = 256;
  const int n = blocks * threads - 77;  // the last block is partly idle
  AtomicOut o{};
  o.i_min = INT32_MAX;
  o.i_max = INT32_MIN;
  o.u64_min = ~0ULL;
  o.u64_max = 0;
  o.ll_min = INT64_MAX;
  o.ll_max = INT64_MIN;
  o.u_and = ~0u;
  o.u_or = 0;
  o.u_xor = 0;
  o.inc = 0;
  o.dec = 0;
  o.cas_count = 0;
  o.cas_fmax = -1.0f;
  o.exch_last = -1;
  std::vector<int> tickets(n, -1);
  launch(atomics_kernel, dim3(blocks), dim3(threads), 0, nullptr, &o, tickets.data(), n);

  int i_min = INT32_MAX, i_max = INT32_MIN;
  unsigned long long u64_min = ~0ULL, u64_max = 0, u64_sum = 0;
  long long ll_min = INT64_MAX, ll_max = INT64_MIN;
  unsigned u_and = ~0u, u_or = 0, u_xor = 0;
  double d_sum = 0;
  float fmax = -1.0f;
  for (int g = 0; g < n; ++g) {
    const uint32_t h = hash32(g);
    i_min = std::min(i_min, static_cast<int>(h % 100000) - 50000);
    i_max = std::max(i_max, static_cast<int>(h % 100000) - 50000);
    u64_min = std::min(u64_min, (static_cast<unsigned long long>(h) << 20) | 1u);
    u64_max = std::max(u64_max, (static_cast<unsigned long long>(h) << 20) | 1u);
    ll_min = std::min(ll_min, -static_cast<long long>(h) * 1000);
    ll_max = std::max(ll_max, -static_cast<long long>(h) * 1000);
    u_and &= ~(1u << (g % 32)) | (h & 0x80000000u);
    u_or |= 1u << (h % 31);
    u_xor ^= h;
    d_sum += 0.5 * (g % 7);
    u64_sum += (1ULL << 33) + static_cast<unsigned long long>(g);
    fmax = std::max(fmax, static_cast<float>(h % 100003) * 0.5f);
  }
  EXPECT(o.i_count == n, o.i_count, n);
  std::vector<int> sorted = tickets;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < n; ++i) EXPECT(sorted[i] == i, "atomicAdd handed out old value", i, "not exactly once");
  EXPECT(o.f_sum == static_cast<float>(n), o.f_sum, n);  // exact below 2^24
  EXPECT(o.d_sum == d_sum, o.d_sum, d_sum);              // multiples of 0.5: exact in any order
  EXPECT(o.u64_sum == u64_sum, o.u64_sum, u64_sum);
  EXPECT(o.i_min == i_min && o.i_max == i_max, o.i_min, i_min, o.i_max, i_max);
  EXPECT(o.u64_min == u64_min && o.u64_max == u64_max, o.u64_min, u64_min, o.u64_max, u64_max);
  EXPECT(o.ll_min == ll_min && o.ll_max == ll_max, o.ll_min, ll_min, o.ll_max, ll_max);
  EXPECT(o.u_and == u_and && o.u_or == u_or && o.u_xor == u_xor, o.u_and, u_and, o.u_or, u_or, o.u_xor, u_xor);
  EXPECT(o.inc == static_cast<unsigned>(n % 10), "atomicInc wraps at 9:", o.inc, n % 10);
  EXPECT(o.dec == static_cast<unsigned>((10 - n % 10) % 10), "atomicDec wraps to 9:", o.dec);
  EXPECT(o.cas_count == n, o.cas_count, n);
  EXPECT(o.cas_fmax == fmax, o.cas_fmax, fmax);
  EXPECT(o.exch_last >= 0 && o.exch_last < n, o.exch_last);
}

// ------------------------------------------------------------------ shared-memory transpose
template <int TILE, int ROWS>
__global__ void transpose_kernel(const float* in, float* out, int rows, int cols) {
  ISEL_SHARED(float, tile, TILE * (TILE + 1));  // +1 column: no bank conflicts on the GPU
  int x = blockIdx.x * TILE + threadIdx.x;
  int y = blockIdx.y * TILE + threadIdx.y;
  for (int j = 0; j < TILE; j += ROWS)
    if (x < cols && y + j < rows) tile[(threadIdx.y + j) * (TILE + 1) + threadIdx.x] = in[(y + j) * cols + x];
  __syncthreads();
  x = blockIdx.y * TILE + threadIdx.x;
  y = blockIdx.x * TILE + threadIdx.y;
  for (int j = 0; j < TILE; j += ROWS)
    if (x < rows && y + j < cols) out[(y + j) * rows + x] = tile[threadIdx.x * (TILE + 1) + threadIdx.y + j];
}

template <int TILE, int ROWS>
void check_transpose(int rows, int cols) {
  std::vector<float> in(rows * cols), out(rows * cols, -1.0f);
  for (int i = 0; i < rows * cols; ++i) in[i] = static_cast<float>(i) + 0.5f;
  for (Schedule sch : kSchedules) {
    ScheduleScope scope(sch);
    std::fill(out.begin(), out.end(), -1.0f);
    dim3 grid((cols + TILE - 1) / TILE, (rows + TILE - 1) / TILE);
    launch(transpose_kernel<TILE, ROWS>, grid, dim3(TILE, ROWS), 0, nullptr, static_cast<const float*>(in.data()),
           out.data(), rows, cols);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c)
        EXPECT(out[c * rows + r] == in[r * cols + c], "tile", TILE, "x", ROWS, "size", rows, "x", cols, "at", r, c,
               name(sch), out[c * rows + r], in[r * cols + c]);
  }
}

ISEL_CHECK_CASE(shared_memory_tile_transpose) {
  check_transpose<32, 8>(70, 45);   // neither side a multiple of the tile
  check_transpose<16, 16>(33, 17);
  check_transpose<32, 8>(5, 3);     // smaller than one tile
  check_transpose<8, 2>(64, 16);    // exact multiples
}

// ------------------------------------------------------------------ early exit
// Threads at and past `active` return at once; some more return after the first barrier. The
// rest go on through several __syncthreads and warp primitives, which must not wait for the
// threads that have left (as on the GPU).
__global__ void early_exit_kernel(int active, int second_cut, int* out, unsigned* ballots, int* sums) {
  ISEL_SHARED(int, s, 256);
  const int t = threadIdx.x;
  if (t >= active) return;
  s[t] = t + 1;
  __syncthreads();
  if (t >= second_cut) return;
  const unsigned b = __ballot_sync(0xffffffffu, 1);  // live lanes only
  int v = s[t];
  for (int w = 16; w >= 1; w >>= 1) v += __shfl_down_sync(0xffffffffu, v, w);
  if ((t & 31) == 0) {
    ballots[t >> 5] = b;
    sums[t >> 5] = v;
  }
  __syncthreads();
  __syncthreads();
  if (t == 0) {
    int total = 0;
    for (int i = 0; i < second_cut; ++i) total += s[i];
    *out = total;
  }
}

ISEL_CHECK_CASE(early_returning_threads) {
  struct Case {
    int threads, active, cut;
  } cases[] = {{256, 256, 256}, {256, 100, 70}, {64, 33, 20}, {128, 1, 1}, {96, 64, 40}, {256, 250, 3}};
  for (const Case& c : cases)
    for (Schedule sch : kSchedules) {
      ScheduleScope scope(sch);
      int out = -1;
      std::vector<unsigned> ballots(8, 0xdeadbeefu);
      std::vector<int> sums(8, -1);
      launch(early_exit_kernel, dim3(2), dim3(c.threads), 0, nullptr, c.active, c.cut, &out, ballots.data(), sums.data());
      EXPECT(out == c.cut * (c.cut + 1) / 2, "threads", c.threads, "active", c.active, "cut", c.cut, name(sch), out);
      for (int w = 0; w * 32 < c.cut; ++w) {
        const int live = std::min(32, c.cut - 32 * w);
        const unsigned want = live == 32 ? 0xffffffffu : (1u << live) - 1u;
        EXPECT(ballots[w] == want, "ballot of warp", w, "cut", c.cut, ballots[w], want);
        // Shuffles from lanes that left give the caller its own value (CUDA leaves it undefined):
        // the tree then counts some values twice; recompute that on the host.
        int part[32];
        for (int l = 0; l < 32; ++l) part[l] = l < live ? 32 * w + l + 1 : 0;
        for (int d = 16; d >= 1; d >>= 1)
          for (int l = 0; l < live; ++l) part[l] += (l + d < live) ? part[l + d] : part[l];
        EXPECT(sums[w] == part[0], "warp", w, "sum with", live, "live lanes", sums[w], part[0]);
      }
    }
}

// ------------------------------------------------------------------ barrier variants
__global__ void sync_variants_kernel(int* out) {
  const int t = threadIdx.x;
  out[0 * blockDim.x + t] = __syncthreads_count(t % 3 == 0);
  out[1 * blockDim.x + t] = __syncthreads_and(t < 1000);
  out[2 * blockDim.x + t] = __syncthreads_and(t != 5);
  out[3 * blockDim.x + t] = __syncthreads_or(t == 77);
  out[4 * blockDim.x + t] = __syncthreads_or(0);
}

ISEL_CHECK_CASE(syncthreads_count_and_or) {
  const int nt = 100;
  std::vector<int> out(5 * nt, -1);
  launch(sync_variants_kernel, dim3(1), dim3(nt), 0, nullptr, out.data());
  for (int t = 0; t < nt; ++t) {
    EXPECT(out[t] == 34, "count", out[t]);
    EXPECT(out[nt + t] == 1 && out[2 * nt + t] == 0, out[nt + t], out[2 * nt + t]);
    EXPECT(out[3 * nt + t] == 1 && out[4 * nt + t] == 0, out[3 * nt + t], out[4 * nt + t]);
  }
}

// ------------------------------------------------------------------ storage contents
// Block storage and cudaMalloc memory start as 0xFF bytes: NaN as floats, -1 as ints.
__global__ void uninitialized_kernel(float* f, int* dyn_word) {
  ISEL_SHARED(float, s, 64);
  ISEL_SHARED_DYNAMIC(int, d);
  if (threadIdx.x == 0) {
    *f = s[13];
    *dyn_word = d[2];
    s[13] = 1.0f;  // must not leak into the next block
    d[2] = 7;
  }
}

ISEL_CHECK_CASE(fresh_memory_is_garbage) {
  std::vector<float> f(3, 0.0f);
  std::vector<int> w(3, 0);
  for (int b = 0; b < 3; ++b) {
    launch(uninitialized_kernel, dim3(1), dim3(32), 64, nullptr, &f[b], &w[b]);
    EXPECT(std::isnan(f[b]) && w[b] == -1, "launch", b, f[b], w[b]);
  }
  float* dev = nullptr;
  CUDA_CHECK(cudaMalloc(&dev, 16 * sizeof(float)));
  EXPECT(std::isnan(dev[5]), dev[5]);
  CUDA_CHECK(cudaFree(dev));
}

ISEL_CHECK_CASE(cuda_check_names_the_call_sizes_and_place) {
  const int64_t bytes = 4096;
  const std::string oom = isel::test::thrown_message([&] {
    CUDA_CHECK(cudaErrorMemoryAllocation, "bytes = ", bytes);
  });
  EXPECT(oom.find("cudaErrorMemoryAllocation") != std::string::npos, oom);
  EXPECT(oom.find("in cudaErrorMemoryAllocation with bytes = 4096 at csrc/tests/emu_core_checks.hpp:") !=
             std::string::npos, oom);
  bool bad_alloc = false;
  try {
    CUDA_CHECK(cudaErrorMemoryAllocation);
  } catch (const std::bad_alloc&) {
    bad_alloc = true;  // Python's MemoryError
  }
  EXPECT(bad_alloc);
  const std::string failed = isel::test::thrown_message([] { CUDA_CHECK(cudaErrorLaunchFailure, "n = ", 7); });
  EXPECT(failed.find("cudaErrorLaunchFailure") != std::string::npos && failed.find("n = 7") != std::string::npos,
         failed);
  CUDA_CHECK(cudaSuccess, "never formatted");
}

// ------------------------------------------------------------------ misuse is an error
__global__ void deadlock_kernel() {
  if ((threadIdx.x & 31) < 16) __syncthreads();
  else __syncwarp();
}
__global__ void mask_leaves_lane_out_kernel(int* out) { out[threadIdx.x] = __shfl_sync(0xfffffff7u, 1, 0); }
__global__ void lanes_disagree_kernel(int* out) {
  if (threadIdx.x & 1) out[threadIdx.x] = __shfl_sync(0xffffffffu, 1, 0);
  else out[threadIdx.x] = static_cast<int>(__ballot_sync(0xffffffffu, 1));
}
__global__ void throwing_kernel(int thrower) {
  __syncthreads();
  if (static_cast<int>(threadIdx.x) == thrower) throw std::runtime_error("thread " + std::to_string(thrower) + " failed");
  __syncthreads();
}
__global__ void shared_mismatch_kernel() {
  ISEL_SHARED(float, s, threadIdx.x == 0 ? 10 : 20);
  s[0] = 0;
}
__global__ void too_much_shared_kernel() {
  ISEL_SHARED(double, s, 7000);  // 56 KB > 48 KB
  s[0] = 0;
}
__global__ void shared_overflow_kernel(int n) {
  ISEL_SHARED(int, s, 10);
  ISEL_SHARED(int, t, 4);
  if (threadIdx.x == 0) s[n] = 1;  // n == 10: one past the end
  if (threadIdx.x == 1) t[0] = 0;
}
__global__ void dynamic_overflow_kernel(int n) {
  ISEL_SHARED_DYNAMIC(float, d);
  if (threadIdx.x == 0) d[n] = 1.0f;
}
__global__ void nested_launch_kernel() { isel::launch(nested_launch_kernel, dim3(1), dim3(1), 0, nullptr); }
__global__ void empty_kernel() {}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

ISEL_CHECK_CASE(misuse_is_reported_not_hung) {
  using isel::test::thrown_message;
  ScheduleScope scope(Schedule::forward);  // the messages name the first thread to misbehave
  std::string m = thrown_message([] { launch(deadlock_kernel, dim3(2), dim3(64), 0, nullptr); });
  EXPECT(contains(m, "deadlocked in block (0, 0, 0)") && contains(m, "threads 0-15 wait at __syncthreads") &&
             contains(m, "threads 16-31 wait at __syncwarp (warp 0, mask 0xffffffff)"),
         m);
  std::vector<int> out(64);
  m = thrown_message([&] { launch(mask_leaves_lane_out_kernel, dim3(1), dim3(32), 0, nullptr, out.data()); });
  EXPECT(contains(m, "thread 3 (warp 0, lane 3) calls __shfl_sync with mask 0xfffffff7, which leaves it out"), m);
  m = thrown_message([&] { launch(lanes_disagree_kernel, dim3(1), dim3(64), 0, nullptr, out.data()); });
  EXPECT(contains(m, "calls __shfl_sync while lanes") || contains(m, "calls __ballot_sync while lanes"), m);
  m = thrown_message([] { launch(throwing_kernel, dim3(3), dim3(64), 0, nullptr, 37); });
  EXPECT(m == "thread 37 failed", m);
  m = thrown_message([] { launch(shared_mismatch_kernel, dim3(1), dim3(4), 0, nullptr); });
  EXPECT(contains(m, "block storage #0 is declared with 80 bytes by thread 1 but 40 bytes"), m);
  m = thrown_message([] { launch(too_much_shared_kernel, dim3(1), dim3(4), 0, nullptr); });
  EXPECT(contains(m, "exceeds CUDA's 49152 bytes"), m);
  m = thrown_message([] { launch(nested_launch_kernel, dim3(1), dim3(2), 0, nullptr); });
  EXPECT(contains(m, "dynamic parallelism is not emulated"), m);
  m = thrown_message([] { launch(empty_kernel, dim3(1), dim3(1025), 0, nullptr); });
  EXPECT(contains(m, "1 to 1024 threads"), m);
  m = thrown_message([] { launch(empty_kernel, dim3(0), dim3(32), 0, nullptr); });
  EXPECT(contains(m, "must be non-empty"), m);
  m = thrown_message([] { __syncthreads(); });
  EXPECT(contains(m, "outside an emulated kernel"), m);
  if (!isel::test::kAddressSanitizer) {  // under ASan these are ASan reports (see emu_faults.cpp)
    m = thrown_message([] { launch(shared_overflow_kernel, dim3(2), dim3(32), 0, nullptr, 10); });
    EXPECT(contains(m, "wrote past the end of block storage #0 (40 bytes), at byte 40 in block (0, 0, 0)"), m);
    m = thrown_message([] { launch(dynamic_overflow_kernel, dim3(1), dim3(32), 12, nullptr, 3); });
    EXPECT(contains(m, "past the end of its dynamic block storage (12 bytes), at byte 12"), m);
  }
  // the runner is usable after every failure
  std::vector<int> in(300, 1);
  std::vector<int> got(2, 0);
  launch(block_sum_kernel<int>, dim3(2), dim3(128), 0, nullptr, static_cast<const int*>(in.data()), 300, got.data());
  EXPECT(got[0] + got[1] == 300, got[0], got[1]);
}

// ------------------------------------------------------------------ several host threads
// Each host thread has its own runner; launches from several threads at once are independent.
ISEL_CHECK_CASE(launches_from_several_host_threads) {
  const int reps = isel::test::kSanitized ? 3 : 20;
  std::vector<std::string> errors(3);
  std::vector<std::thread> pool;
  for (int h = 0; h < 3; ++h)
    pool.emplace_back([&, h] {
      try {
        std::vector<float> in(999 + h);
        for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 17) + h;
        const auto want = block_sum_reference(in, 5, 64);
        for (int r = 0; r < reps; ++r) {
          std::vector<float> got(5);
          launch(block_sum_kernel<float>, dim3(5), dim3(64), 0, nullptr, static_cast<const float*>(in.data()),
                 static_cast<int>(in.size()), got.data());
          if (got != want) throw std::runtime_error("host thread " + std::to_string(h) + ": wrong sums");
        }
      } catch (const std::exception& e) {
        errors[h] = e.what();
      }
    });
  for (auto& t : pool) t.join();
  for (auto& e : errors) EXPECT(e.empty(), e);
}

}  // namespace emu_checks
