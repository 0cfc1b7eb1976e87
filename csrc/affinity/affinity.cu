// Dense affinity propagation on CUDA (and, through common/cuda_compat.cuh, on the CPU
// emulation of the grid). Every float operation is an explicit round-to-nearest intrinsic and
// happens in the CPU path's order (see affinity.hpp and affinity_cuda.hpp), so the device
// returns the CPU path's messages, exemplars and labels bit for bit.
#include "common/cuda_compat.cuh"
#include "common/device_buffer.cuh"
#include "common/device_math.cuh"
#include "common/zero_row.cuh"
#include "common/check.hpp"
#include "affinity/affinity_cuda.hpp"
#include "affinity/convergence.hpp"
#include "affinity/labels.hpp"
#include "affinity/radix.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

namespace isel::affinity::cuda {
namespace {

using namespace isel::device;

constexpr unsigned kFull = 0xffffffffu;

#if defined(__CUDACC__)
#define ISEL_AFF_UNROLL _Pragma("unroll")
#define ISEL_AFF_UNROLL4 _Pragma("unroll 4")
#else
#define ISEL_AFF_UNROLL _Pragma("GCC unroll 32")
#define ISEL_AFF_UNROLL4 _Pragma("GCC unroll 4")
#endif


template <class T>
__device__ __forceinline__ T positive(T r) { return r > T(0) ? r : T(0); }

// A_ik <- A_ik * d - T_ik * (1 - d), T_ik = max(Rp_ik - colsum_k, 0) (R_kk - colsum_k on the diagonal)
template <class T>
__device__ __forceinline__ T availability(T a, T r, T colsum_k, bool diagonal, T damping, T keep) {
  T t = diagonal ? op_sub(r, colsum_k) : positive(op_sub(positive(r), colsum_k));
  return op_sub(op_mul(a, damping), op_mul(t, keep));
}

using Buffer = device::Buffer;

template <class Fn>
decltype(auto) dispatch_messages(DType dt, Fn&& fn) {
  require(dt == DType::float32 || dt == DType::float64, "affinity propagation messages must be float32 or float64");
  if (dt == DType::float32) return fn(float{});
  return fn(double{});
}

// ------------------------------------------------------------------ similarities

// Squared (scaled) distance of rows x and y in the canonical order: 32 partial sums (entry e
// into partial e mod 32, fma, e increasing), folded p[l] += p[l + w] for w = 16, 8, 4, 2, 1.
// y == nullptr: the squared norm of x.
template <class TX, class A>
__device__ A pair_sq(const TX* x, const TX* y, int64_t d, bool scaled, A inv_x, A inv_y) {
  A p[32];
ISEL_AFF_UNROLL
  for (int l = 0; l < 32; ++l) p[l] = A(0);
  for (int64_t base = 0; base < d; base += 32) {
ISEL_AFF_UNROLL
    for (int l = 0; l < 32; ++l) {
      const int64_t e = base + l;
      if (e < d) {
        A a = dev_load(x, e);
        A b = y ? A(dev_load(y, e)) : A(0);
        if (scaled) {
          a = op_mul(a, inv_x);
          b = op_mul(b, inv_y);
        }
        const A diff = op_sub(a, b);
        p[l] = op_fma(diff, diff, p[l]);
      }
    }
  }
ISEL_AFF_UNROLL
  for (int w = 16; w >= 1; w >>= 1)
ISEL_AFF_UNROLL
    for (int l = 0; l < w; ++l) p[l] = op_add(p[l], p[l + w]);
  return p[0];
}

// inv[i] = 1 / ||x_i||; zero rows are noted for the host's check.
template <class TX, class A>
__global__ void inverse_norms_kernel(const TX* X, int64_t n, int64_t d, A* inv, unsigned long long* zero_row) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const A sq = pair_sq<TX, A>(X + i * d, static_cast<const TX*>(nullptr), d, false, A(1), A(1));
    inv[i] = op_div(A(1), op_sqrt(sq));
    if (sq == A(0)) note_zero_row(zero_row, i);
  }
}

// One thread per pair (i <= j); S_ij and S_ji both written. metric: 0 euclidean,
// 1 sqeuclidean, 2 cosine. A thread keeps its column j while its block walks the rows i
// (grid-stride over y), so the block's rows x_j stay in L1 and x_i is a broadcast.
template <class TX, class A, class T>
__global__ void similarity_kernel(const TX* X, int64_t n, int64_t d, int metric, const A* inv, T* S) {
  const bool cosine = metric == 2;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < n;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x)
    for (int64_t i = blockIdx.y; i <= j; i += gridDim.y) {
      const A sq = pair_sq<TX, A>(X + i * d, X + j * d, d, cosine, cosine ? inv[i] : A(1), cosine ? inv[j] : A(1));
      A s;
      if (metric == 0) s = -op_sqrt(sq);
      else if (metric == 1) s = -sq;
      else s = -op_mul(A(0.5), sq);
      const T v = static_cast<T>(s);
      S[i * n + j] = v;
      S[j * n + i] = v;
    }
}

// ------------------------------------------------------------------ preference, noise, median

template <class T>
__global__ void preference_kernel(T* S, int64_t n, const double* pref, bool per_sample) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    S[i * n + i] = static_cast<T>(per_sample ? pref[i] : pref[0]);
}

template <class T>
__global__ void noise_kernel(T* S, int64_t count, const double* z, T eps, T tiny100) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T t = op_mul(eps, S[e]);
    t = op_add(t, tiny100);
    t = op_mul(t, static_cast<T>(z[e]));
    S[e] = op_add(S[e], t);
  }
}

template <class T>
__global__ void histogram_kernel(const T* v, int64_t count, int shift, typename detail::Keys<T>::U mask,
                                 typename detail::Keys<T>::U p0, typename detail::Keys<T>::U p1, bool same,
                                 unsigned long long* hist) {
  using K = detail::Keys<T>;
  using U = typename K::U;
  ISEL_SHARED(unsigned int, h, 512);
  for (int b = threadIdx.x; b < 512; b += blockDim.x) h[b] = 0;
  __syncthreads();
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < count;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const U k = K::key(v[e]);
    const unsigned digit = static_cast<unsigned>((k >> shift) & 0xffu);
    if ((k & mask) == p0) atomicAdd(&h[digit], 1u);
    if (!same && (k & mask) == p1) atomicAdd(&h[256 + digit], 1u);
  }
  __syncthreads();
  for (int b = threadIdx.x; b < 512; b += blockDim.x)
    if (h[b]) atomicAdd(&hist[b], static_cast<unsigned long long>(h[b]));
}

template <class T>
__global__ void offdiag_kernel(const T* S, int64_t n, typename detail::Keys<T>::U* lo,
                               typename detail::Keys<T>::U* hi) {
  using K = detail::Keys<T>;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n * n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if (e / n == e % n) continue;
    const auto k = K::key(S[e]);
    atomicMin(lo, k);
    atomicMax(hi, k);
  }
}

// ------------------------------------------------------------------ message passes

// Top two of (value, position) kept by one lane; positions disjoint between lanes.
template <class T>
struct Top {
  T m1;
  long long i1;
  T m2;
};

template <class T>
__device__ __forceinline__ void top_push(Top<T>& b, T x, long long p) {
  if (x > b.m1) {
    b.m2 = b.m1;
    b.m1 = x;
    b.i1 = p;
  } else {
    b.m2 = x > b.m2 ? x : b.m2;
  }
}

template <class T>
__device__ __forceinline__ void top_merge(Top<T>& a, T m1, long long i1, T m2) {
  if (m1 > a.m1 || (m1 == a.m1 && i1 < a.i1)) {
    const T lost = a.m1;
    a.m2 = m2 > lost ? m2 : lost;
    a.m1 = m1;
    a.i1 = i1;
  } else {
    a.m2 = a.m2 > m1 ? a.m2 : m1;
  }
}

// One warp per row: A_{t-1} (when update) and R_t, as dense_cpu.cpp's row pass. The lanes'
// top-two trackers meet in block storage and lane 0 merges them in lane order (values are only
// compared, so this is exact): two warp barriers a row, cheap on the device and in emulation.
template <class T>
__global__ void row_kernel(const T* S, T* A, T* R, const T* H, const T* colsum, int64_t n, bool update, T damping,
                           T keep, bool history, T alpha, T oma, T neg_inf) {
  ISEL_SHARED(T, sm1, 1024);
  ISEL_SHARED(T, sm2, 1024);
  ISEL_SHARED(long long, si1, 1024);
  const int lane = threadIdx.x & 31;
  const int base = threadIdx.x - lane;  // this warp's slots
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x >> 5) + (threadIdx.x >> 5); i < n; i += warps) {
    const T* s = S + i * n;
    T* a = A + i * n;
    T* r = R + i * n;
    Top<T> b{neg_inf, 0x7fffffffffffffffLL, neg_inf};
    for (int64_t k = lane; k < n; k += 32) {
      T av = a[k];
      if (update) {
        av = availability(av, r[k], colsum[k], k == i, damping, keep);
        a[k] = av;
      }
      top_push(b, op_add(av, s[k]), static_cast<long long>(k));
    }
    sm1[threadIdx.x] = b.m1;
    sm2[threadIdx.x] = b.m2;
    si1[threadIdx.x] = b.i1;
    __syncwarp(kFull);
    if (lane == 0) {
      for (int l = 1; l < 32; ++l) top_merge(b, sm1[base + l], si1[base + l], sm2[base + l]);
      sm1[base] = b.m1;
      sm2[base] = b.m2;
      si1[base] = b.i1;
    }
    __syncwarp(kFull);
    const T y = sm1[base];
    const long long top = si1[base];
    const T y2 = sm2[base];
    __syncwarp(kFull);  // every lane has read the result before the slots are reused
    for (int64_t k = lane; k < n; k += 32) {
      const T rn = op_sub(s[k], k == top ? y2 : y);
      T rv = op_add(op_mul(r[k], damping), op_mul(rn, keep));
      if (history) rv = op_add(op_mul(alpha, H[i * n + k]), op_mul(oma, rv));
      r[k] = rv;
    }
  }
}

// One thread per column: colsum_t (rows in order), the diagonal of A_t, E_t and the run
// lengths; counts[0] += exemplars, counts[1] += points whose E has not been constant for
// `window` iterations.
template <class T>
__global__ void column_kernel(const T* R, const T* A, int64_t n, T* colsum, T damping, T keep, uint8_t* E, int64_t* run,
                              int64_t window, bool first, unsigned long long* counts) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    T sum = k == 0 ? R[0] : positive(R[k]);
    ISEL_AFF_UNROLL4  // independent loads in flight; the additions stay in row order
    for (int64_t i = 1; i < n; ++i) {
      const T r = R[i * n + k];
      sum = op_add(sum, i == k ? r : positive(r));
    }
    colsum[k] = sum;
    const T rkk = R[k * n + k];
    const T da = availability(A[k * n + k], rkk, sum, true, damping, keep);
    const uint8_t e = op_add(da, rkk) > T(0) ? 1 : 0;
    int64_t len = 1;
    if (!first && e == E[k]) len = run[k] < window ? run[k] + 1 : run[k];
    E[k] = e;
    run[k] = len;
    if (e) atomicAdd(&counts[0], 1ull);
    if (len < window) atomicAdd(&counts[1], 1ull);
  }
}

// The last A update alone, every entry.
template <class T>
__global__ void finish_kernel(T* A, const T* R, const T* colsum, int64_t n, T damping, T keep) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n * n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e / n, k = e % n;
    A[e] = availability(A[e], R[e], colsum[k], i == k, damping, keep);
  }
}

// ------------------------------------------------------------------ assignment, scores

template <class T>
__global__ void assign_kernel(const T* S, int64_t n, const int64_t* I, int64_t K, int64_t* c) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T* row = S + i * n;
    int64_t bk = 0;
    T best = row[I[0]];
    for (int64_t k = 1; k < K; ++k) {
      const T v = row[I[k]];
      if (v > best) {
        best = v;
        bk = k;
      }
    }
    c[i] = bk;
  }
}

// sums[s] = sum over the members r of slot s's cluster, in order, of S[r, members[s]] (double).
template <class T>
__global__ void refine_kernel(const T* S, int64_t n, const int64_t* members, const int64_t* start,
                              const int64_t* slot_cluster, double* sums) {
  for (int64_t s = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; s < n;
       s += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t k = slot_cluster[s], j = members[s];
    double acc = static_cast<double>(S[members[start[k]] * n + j]);
    for (int64_t r = start[k] + 1; r < start[k + 1]; ++r) acc = op_add(acc, static_cast<double>(S[members[r] * n + j]));
    sums[s] = acc;
  }
}

template <class T>
__global__ void score_columns_kernel(const T* R, const T* A, int64_t n, double* col) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n;
       k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double acc = op_add(static_cast<double>(A[k]), static_cast<double>(R[k]));
    for (int64_t i = 1; i < n; ++i)
      acc = op_add(acc, op_add(static_cast<double>(A[i * n + k]), static_cast<double>(R[i * n + k])));
    col[k] = acc;
  }
}

template <class T>
__global__ void score_rows_kernel(const T* R, const T* A, int64_t n, const double* col, double* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const T* a = A + i * n;
    const T* r = R + i * n;
    double acc = op_add(static_cast<double>(a[0]), static_cast<double>(r[0]));
    for (int64_t k = 1; k < n; ++k) acc = op_add(acc, op_add(static_cast<double>(a[k]), static_cast<double>(r[k])));
    const double diag = op_add(static_cast<double>(a[i]), static_cast<double>(r[i]));
    out[i] = op_add(op_sub(col[i], acc), diag);
  }
}

// ------------------------------------------------------------------ host drivers

template <class T>
RunResult run(const DenseProblem& p, uint8_t* exemplar, const Device& dev, const Hooks& hooks) {
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const int64_t n = p.n;
  const int bt = dev.block_threads;
  T* S = static_cast<T*>(p.S);
  T* R = static_cast<T*>(p.R);
  T* A = static_cast<T*>(p.A);
  const T* H = static_cast<const T*>(p.H);
  CUDA_CHECK(cudaMemsetAsync(R, 0, sizeof(T) * n * n, stream));
  CUDA_CHECK(cudaMemsetAsync(A, 0, sizeof(T) * n * n, stream));
  Buffer cs_a(sizeof(T) * n), cs_b(sizeof(T) * n), e_buf(n), run_buf(sizeof(int64_t) * n),
      counts_buf(2 * sizeof(unsigned long long));
  T* prev = cs_a.as<T>();
  T* next = cs_b.as<T>();
  auto* counts = counts_buf.as<unsigned long long>();
  const T damping = static_cast<T>(p.damping), keep = static_cast<T>(1.0 - p.damping);
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const int row_blocks = blocks_for(n, bt / 32, dev);
  const int col_blocks = blocks_for(n, bt, dev);
  double alpha = p.history_weight;
  unsigned long long host_counts[2];
  RunResult res;
  for (int64_t t = 0; t < p.max_iter; ++t) {
    launch(row_kernel<T>, dim3(row_blocks), dim3(bt), 0, stream, static_cast<const T*>(S), A, R, H,
           static_cast<const T*>(prev), n, t > 0, damping, keep, H != nullptr, static_cast<T>(alpha),
           static_cast<T>(1.0 - alpha), neg_inf);
    CUDA_CHECK(cudaMemsetAsync(counts, 0, 2 * sizeof(unsigned long long), stream));
    launch(column_kernel<T>, dim3(col_blocks), dim3(bt), 0, stream, static_cast<const T*>(R), static_cast<const T*>(A),
           n, next, damping, keep, e_buf.as<uint8_t>(), run_buf.as<int64_t>(), p.convergence_iter, t == 0, counts);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(host_counts, counts, sizeof(host_counts), cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    std::swap(prev, next);  // prev = colsum_t
    alpha *= p.history_decay;
    res.n_iter = t + 1;
    if (converged_at(t, p.convergence_iter, static_cast<int64_t>(host_counts[1]), static_cast<int64_t>(host_counts[0]))) {
      res.converged = true;
      break;
    }
    hooks.tick(t + 1, p.max_iter);
  }
  launch(finish_kernel<T>, dim3(blocks_for(n * n, bt, dev)), dim3(bt), 0, stream, A, static_cast<const T*>(R),
         static_cast<const T*>(prev), n, damping, keep);
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaMemcpyAsync(exemplar, e_buf.get(), n, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return res;
}

template <class T>
int64_t assign(const T* S, int64_t n, const uint8_t* exemplar, int64_t* exemplars, int64_t* labels, const Device& dev) {
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const int bt = dev.block_threads;
  std::vector<int64_t> I;
  for (int64_t i = 0; i < n; ++i)
    if (exemplar[i]) I.push_back(i);
  const int64_t K = static_cast<int64_t>(I.size());
  if (K == 0) {
    std::fill(labels, labels + n, int64_t{-1});
    return 0;
  }
  Buffer I_dev(sizeof(int64_t) * K), c_dev(sizeof(int64_t) * n);
  std::vector<int64_t> c(n);
  auto assign_once = [&]() {
    CUDA_CHECK(cudaMemcpyAsync(I_dev.get(), I.data(), sizeof(int64_t) * K, cudaMemcpyHostToDevice, stream));
    launch(assign_kernel<T>, dim3(blocks_for(n, bt, dev)), dim3(bt), 0, stream, S, n, static_cast<const int64_t*>(I_dev.as<int64_t>()),
           K, c_dev.as<int64_t>());
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(c.data(), c_dev.get(), sizeof(int64_t) * n, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int64_t k = 0; k < K; ++k) c[I[k]] = k;
  };
  assign_once();
  // refinement: sums on the device, the argmax per cluster on the host
  detail::Groups g = detail::group_by_cluster(c.data(), n, K);
  std::vector<int64_t> slot_cluster(n);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t s = g.start[k]; s < g.start[k + 1]; ++s) slot_cluster[s] = k;
  Buffer members_dev(sizeof(int64_t) * n), start_dev(sizeof(int64_t) * (K + 1)), slot_dev(sizeof(int64_t) * n),
      sums_dev(sizeof(double) * n);
  CUDA_CHECK(cudaMemcpyAsync(members_dev.get(), g.members.data(), sizeof(int64_t) * n, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaMemcpyAsync(start_dev.get(), g.start.data(), sizeof(int64_t) * (K + 1), cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaMemcpyAsync(slot_dev.get(), slot_cluster.data(), sizeof(int64_t) * n, cudaMemcpyHostToDevice, stream));
  launch(refine_kernel<T>, dim3(blocks_for(n, bt, dev)), dim3(bt), 0, stream, S, n,
         static_cast<const int64_t*>(members_dev.as<int64_t>()), static_cast<const int64_t*>(start_dev.as<int64_t>()),
         static_cast<const int64_t*>(slot_dev.as<int64_t>()), sums_dev.as<double>());
  CUDA_CHECK(cudaGetLastError());
  std::vector<double> sums(n);
  CUDA_CHECK(cudaMemcpyAsync(sums.data(), sums_dev.get(), sizeof(double) * n, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  for (int64_t k = 0; k < K; ++k) {
    int64_t best = g.start[k];
    for (int64_t s = g.start[k] + 1; s < g.start[k + 1]; ++s)
      if (sums[s] > sums[best]) best = s;
    I[k] = g.members[best];
  }
  assign_once();
  return detail::finish_labels(I, c.data(), n, exemplars, labels);
}

template <class T>
double select_median(const T* v, int64_t count, const Device& dev) {
  using K = detail::Keys<T>;
  using U = typename K::U;
  auto stream = static_cast<cudaStream_t>(dev.stream);
  detail::RadixPair sel;
  sel.want[0] = (count - 1) / 2;
  sel.want[1] = std::min((count - 1) / 2 + 1, count - 1);
  Buffer hist_dev(512 * sizeof(unsigned long long));
  unsigned long long hist[512];
  for (int shift = K::kBits - 8; shift >= 0; shift -= 8) {
    CUDA_CHECK(cudaMemsetAsync(hist_dev.get(), 0, sizeof(hist), stream));
    launch(histogram_kernel<T>, dim3(blocks_for(count, dev.block_threads, dev, 4096)), dim3(dev.block_threads), 0, stream, v,
           count, shift, static_cast<U>(sel.mask), static_cast<U>(sel.prefix[0]), static_cast<U>(sel.prefix[1]),
           sel.same(), hist_dev.as<unsigned long long>());
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(hist, hist_dev.get(), sizeof(hist), cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    sel.choose(shift, [&](int bin) { return static_cast<int64_t>(hist[bin]); });
  }
  const double a = K::value(static_cast<U>(sel.prefix[0])), b = K::value(static_cast<U>(sel.prefix[1]));
  return count % 2 == 1 ? a : (a + b) / 2.0;
}

}  // namespace

void similarity_matrix(const void* X, DType x_dtype, int64_t n, int64_t d, Metric metric, void* S, DType s_dtype,
                       const Device& dev) {
  check_launch(dev);
  require(n >= 1 && d >= 1, "X must be non-empty (got ", n, " x ", d, ")");
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const int bt = dev.block_threads;
  const int m = metric == Metric::euclidean ? 0 : metric == Metric::sqeuclidean ? 1 : 2;
  dispatch_dtype(x_dtype, [&](auto xtag) {
    using TX = decltype(xtag);
    using A = accum_t<TX>;
    dispatch_messages(s_dtype, [&](auto stag) {
      using T = decltype(stag);
      const TX* x = static_cast<const TX*>(X);
      Buffer inv(metric == Metric::cosine ? sizeof(A) * n : 0, "inverse norms");
      if (metric == Metric::cosine) {
        device::ZeroRowCheck zero_rows(stream);
        launch(inverse_norms_kernel<TX, A>, dim3(blocks_for(n, bt, dev)), dim3(bt), 0, stream, x, n, d, inv.as<A>(),
               zero_rows.flag());
        zero_rows.throw_if_found();
      }
      const dim3 grid(blocks_for(n, bt, dev), static_cast<unsigned>(blocks_for(n, 1, dev, 64)));
      launch(similarity_kernel<TX, A, T>, grid, dim3(bt), 0, stream, x, n, d, m, static_cast<const A*>(inv.as<A>()),
             static_cast<T*>(S));
      CUDA_CHECK(cudaGetLastError());
      CUDA_CHECK(cudaStreamSynchronize(stream));
    });
  });
}

double median(const void* values, DType dtype, int64_t count, const Device& dev) {
  check_launch(dev);
  require(count >= 1, "the median needs at least one value");
  return dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    return select_median<T>(static_cast<const T*>(values), count, dev);
  });
}

void place_preference(void* S, DType dtype, int64_t n, const double* preference, bool per_sample, const Device& dev) {
  check_launch(dev);
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const int64_t count = per_sample ? n : 1;
  Buffer pref(sizeof(double) * count);
  CUDA_CHECK(cudaMemcpyAsync(pref.get(), preference, sizeof(double) * count, cudaMemcpyHostToDevice, stream));
  dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(preference_kernel<T>, dim3(blocks_for(n, dev.block_threads, dev)), dim3(dev.block_threads), 0, stream,
           static_cast<T*>(S), n, static_cast<const double*>(pref.as<double>()), per_sample);
  });
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void add_noise(void* S, DType dtype, int64_t count, const double* z, const Device& dev) {
  check_launch(dev);
  auto stream = static_cast<cudaStream_t>(dev.stream);
  Buffer zd(sizeof(double) * count);
  CUDA_CHECK(cudaMemcpyAsync(zd.get(), z, sizeof(double) * count, cudaMemcpyHostToDevice, stream));
  dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T eps = std::numeric_limits<T>::epsilon();
    const T tiny100 = static_cast<T>(std::numeric_limits<T>::min() * T(100));
    launch(noise_kernel<T>, dim3(blocks_for(count, dev.block_threads, dev, 4096)), dim3(dev.block_threads), 0, stream,
           static_cast<T*>(S), count, static_cast<const double*>(zd.as<double>()), eps, tiny100);
  });
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

void offdiag_range(const void* S, DType dtype, int64_t n, double* lo, double* hi, const Device& dev) {
  check_launch(dev);
  require(n >= 2, "the off-diagonal range needs n >= 2 (got ", n, ")");
  auto stream = static_cast<cudaStream_t>(dev.stream);
  dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    using K = detail::Keys<T>;
    using U = typename K::U;
    Buffer keys(2 * sizeof(U));
    U init[2] = {~U(0), U(0)};
    CUDA_CHECK(cudaMemcpyAsync(keys.get(), init, sizeof(init), cudaMemcpyHostToDevice, stream));
    launch(offdiag_kernel<T>, dim3(blocks_for(n * n, dev.block_threads, dev, 4096)), dim3(dev.block_threads), 0, stream,
           static_cast<const T*>(S), n, keys.as<U>(), keys.as<U>() + 1);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaMemcpyAsync(init, keys.get(), sizeof(init), cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    *lo = K::value(init[0]);
    *hi = K::value(init[1]);
  });
}

RunResult dense_run(const DenseProblem& p, uint8_t* exemplar, const Device& dev, const Hooks& hooks) {
  check_launch(dev);
  require(p.n >= 2, "affinity propagation needs at least 2 points (got ", p.n, ")");
  require(p.S && p.R && p.A, "S, R and A must be given");
  require(p.damping >= 0.5 && p.damping < 1.0, "damping (", p.damping, ") must be in [0.5, 1)");
  require(p.max_iter >= 1 && p.convergence_iter >= 1, "max_iter and convergence_iter must be at least 1");
  return dispatch_messages(p.dtype, [&](auto tag) { return run<decltype(tag)>(p, exemplar, dev, hooks); });
}

int64_t dense_assign(const void* S, DType dtype, int64_t n, const uint8_t* exemplar, int64_t* exemplars,
                     int64_t* labels, const Device& dev) {
  check_launch(dev);
  require(n >= 1, "n (", n, ") must be at least 1");
  return dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    return assign<T>(static_cast<const T*>(S), n, exemplar, exemplars, labels, dev);
  });
}

void representation_scores(const void* R, const void* A, DType dtype, int64_t n, double* out, const Device& dev) {
  check_launch(dev);
  require(n >= 1, "n (", n, ") must be at least 1");
  auto stream = static_cast<cudaStream_t>(dev.stream);
  const int bt = dev.block_threads;
  Buffer col(sizeof(double) * n);
  dispatch_messages(dtype, [&](auto tag) {
    using T = decltype(tag);
    launch(score_columns_kernel<T>, dim3(blocks_for(n, bt, dev)), dim3(bt), 0, stream, static_cast<const T*>(R),
           static_cast<const T*>(A), n, col.as<double>());
    launch(score_rows_kernel<T>, dim3(blocks_for(n, bt, dev)), dim3(bt), 0, stream, static_cast<const T*>(R),
           static_cast<const T*>(A), n, static_cast<const double*>(col.as<double>()), out);
  });
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace isel::affinity::cuda
