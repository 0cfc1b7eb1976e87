// Row-to-center squared distances in one canonical float order, shared by the CPU kernels and
// (re-implemented as warp code in the .cu files) the GPU kernels, so both give the same bits:
//
//   32 partial sums; element j goes into partial (j mod 32) as fma(diff, diff, partial),
//   j increasing; then the partials are folded as a warp's shuffle-down tree: p[l] += p[l+16],
//   then +8, +4, +2, +1, and p[0] is the result.
//
// diff is x[j] - c[j] (euclidean), or x[j]*inv_norm_x - c[j] with c already scaled by its
// inverse norm (cosine: 1 - cos(x, c) = 0.5 * ||x/|x| - c/|c|||^2, exactly 0 for duplicates).
// Half-precision rows are widened exactly to float; accumulation is float (double for double).
// x86-64 CPUs with AVX2+FMA+F16C take a vector path chosen at run time (no -march=native); it
// performs the same operations in the same order as the scalar path.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/half.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define ISEL_X86 1
#endif

namespace isel {

// ---- scalar reference of the canonical order (any storage type)
template <class A>
inline A fold_partials(A* p) {
  for (int w = 16; w >= 1; w >>= 1)
    for (int l = 0; l < w; ++l) p[l] = p[l] + p[l + w];
  return p[0];
}

template <class T, class A = accum_t<T>>
inline A sqdist_scalar(const T* x, const A* c, int64_t d, bool scaled, A inv_x) {
  A p[32] = {};
  for (int64_t j = 0; j < d; ++j) {
    A xj = load_float(x, j);
    A diff = scaled ? xj * inv_x - c[j] : xj - c[j];
    p[j & 31] = std::fma(diff, diff, p[j & 31]);
  }
  return fold_partials(p);
}

#ifdef ISEL_X86
namespace simd {

#define ISEL_AVX2 __attribute__((target("avx2,fma,f16c")))

ISEL_AVX2 inline __m256 load8(const float* x) { return _mm256_loadu_ps(x); }
ISEL_AVX2 inline __m256 load8(const half_bits* x) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
}
ISEL_AVX2 inline __m256 load8(const bfloat16_bits* x) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// float accumulation: four 8-lane registers hold the 32 partials in order.
template <class T>
ISEL_AVX2 inline float sqdist_f(const T* x, const float* c, int64_t d, bool scaled, float inv_x) {
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  const __m256 ix = _mm256_set1_ps(inv_x);
  int64_t j = 0;
  for (; j + 32 <= d; j += 32) {
    for (int r = 0; r < 4; ++r) {
      __m256 xv = load8(x + j + 8 * r);
      if (scaled) xv = _mm256_mul_ps(xv, ix);
      __m256 diff = _mm256_sub_ps(xv, _mm256_loadu_ps(c + j + 8 * r));
      a[r] = _mm256_fmadd_ps(diff, diff, a[r]);
    }
  }
  if (j < d) {  // tail: finish the same partials one element at a time
    alignas(32) float p[32];
    for (int r = 0; r < 4; ++r) _mm256_store_ps(p + 8 * r, a[r]);
    for (; j < d; ++j) {
      float xj = load_float(x, j);
      float diff = scaled ? xj * inv_x - c[j] : xj - c[j];
      p[j & 31] = std::fma(diff, diff, p[j & 31]);
    }
    for (int r = 0; r < 4; ++r) a[r] = _mm256_load_ps(p + 8 * r);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3]));  // +16, then +8
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));    // +4
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));                                            // +2
  q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));                                        // +1
  return _mm_cvtss_f32(q);
}

// double accumulation: eight 4-lane registers hold the 32 partials in order.
ISEL_AVX2 inline double sqdist_d(const double* x, const double* c, int64_t d, bool scaled, double inv_x) {
  __m256d a[8];
  for (auto& r : a) r = _mm256_setzero_pd();
  const __m256d ix = _mm256_set1_pd(inv_x);
  int64_t j = 0;
  for (; j + 32 <= d; j += 32) {
    for (int r = 0; r < 8; ++r) {
      __m256d xv = _mm256_loadu_pd(x + j + 4 * r);
      if (scaled) xv = _mm256_mul_pd(xv, ix);
      __m256d diff = _mm256_sub_pd(xv, _mm256_loadu_pd(c + j + 4 * r));
      a[r] = _mm256_fmadd_pd(diff, diff, a[r]);
    }
  }
  if (j < d) {
    alignas(32) double p[32];
    for (int r = 0; r < 8; ++r) _mm256_store_pd(p + 4 * r, a[r]);
    for (; j < d; ++j) {
      double diff = scaled ? x[j] * inv_x - c[j] : x[j] - c[j];
      p[j & 31] = std::fma(diff, diff, p[j & 31]);
    }
    for (int r = 0; r < 8; ++r) a[r] = _mm256_load_pd(p + 4 * r);
  }
  __m256d s0 = _mm256_add_pd(_mm256_add_pd(a[0], a[4]), _mm256_add_pd(a[2], a[6]));  // lanes 0-3, 8-11 -> 0-3
  __m256d s1 = _mm256_add_pd(_mm256_add_pd(a[1], a[5]), _mm256_add_pd(a[3], a[7]));  // lanes 4-7
  __m256d t = _mm256_add_pd(s0, s1);                                                   // +4
  __m128d q = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));     // +2
  q = _mm_add_sd(q, _mm_unpackhi_pd(q, q));                                            // +1
  return _mm_cvtsd_f64(q);
}

inline bool available() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         __builtin_cpu_supports("f16c");
  return ok;
}

}  // namespace simd
#endif

// The dispatching entry point: same result on every path.
template <class T, class A = accum_t<T>>
inline A sqdist(const T* x, const A* c, int64_t d, bool scaled = false, A inv_x = A(1)) {
#ifdef ISEL_X86
  if (simd::available()) {
    if constexpr (std::is_same_v<T, double>) return simd::sqdist_d(x, c, d, scaled, inv_x);
    else return simd::sqdist_f(x, c, d, scaled, inv_x);
  }
#endif
  return sqdist_scalar<T, A>(x, c, d, scaled, inv_x);
}

// 1 / ||x|| in the canonical order (the cosine metric's row scale).
template <class T, class A = accum_t<T>>
inline A inverse_norm(const T* x, int64_t d, const A* zeros) {
  return A(1) / std::sqrt(sqdist<T, A>(x, zeros, d));
}

}  // namespace isel
