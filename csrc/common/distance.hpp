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
// The vector paths (AVX2 and AVX-512, common/simd.hpp picks one at run time, no -march=native)
// perform the same operations in the same order as the scalar path: lane l of the partial
// registers is partial l, and their fold adds the same pairs of partials. Elements past d are
// never added (masked, or zero on both sides, where fma(0, 0, p) == p).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/half.hpp"
#include "common/simd.hpp"

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

// ---- AVX2: 8 float or 4 double lanes

ISEL_AVX2 inline __m256 load8(const float* x) { return _mm256_loadu_ps(x); }
ISEL_AVX2 inline __m256 load8(const half_bits* x) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
}
ISEL_AVX2 inline __m256 load8(const bfloat16_bits* x) {
  __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

// The fold of 32 float partials held as a[r] = partials 8r..8r+7.
ISEL_AVX2 inline float fold_avx2(const __m256* a) {
  __m256 s = _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[1], a[3]));  // +16, then +8
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));    // +4
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));                                            // +2
  q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));                                        // +1
  return _mm_cvtss_f32(q);
}

// ... of 32 double partials held as a[r] = partials 4r..4r+3.
ISEL_AVX2 inline double fold_avx2(const __m256d* a) {
  __m256d s0 = _mm256_add_pd(_mm256_add_pd(a[0], a[4]), _mm256_add_pd(a[2], a[6]));  // lanes 0-3, 8-11 -> 0-3
  __m256d s1 = _mm256_add_pd(_mm256_add_pd(a[1], a[5]), _mm256_add_pd(a[3], a[7]));  // lanes 4-7
  __m256d t = _mm256_add_pd(s0, s1);                                                   // +4
  __m128d q = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));     // +2
  q = _mm_add_sd(q, _mm_unpackhi_pd(q, q));                                            // +1
  return _mm_cvtsd_f64(q);
}

// float accumulation: four 8-lane registers hold the 32 partials in order.
template <class T>
ISEL_AVX2 inline float sqdist_avx2(const T* x, const float* c, int64_t d, bool scaled, float inv_x) {
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
  return fold_avx2(a);
}

// double accumulation: eight 4-lane registers hold the 32 partials in order.
ISEL_AVX2 inline double sqdist_avx2(const double* x, const double* c, int64_t d, bool scaled, double inv_x) {
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
  return fold_avx2(a);
}

// ---- AVX-512: 16 float or 8 double lanes; tails by masked loads and masked fma

// GCC 12's AVX-512 intrinsics pass an undefined register through (_mm512_undefined_*), which
// its flow analysis reports as uninitialized once inlined; the values are never read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

ISEL_AVX512 inline __m512 load16(const float* x, __mmask16 m) { return _mm512_maskz_loadu_ps(m, x); }
ISEL_AVX512 inline __m512 load16(const half_bits* x, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x));
}
ISEL_AVX512 inline __m512 load16(const bfloat16_bits* x, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x)), 16));
}
ISEL_AVX512 inline __m512 load16(const float* x) { return _mm512_loadu_ps(x); }
ISEL_AVX512 inline __m512 load16(const half_bits* x) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
}
ISEL_AVX512 inline __m512 load16(const bfloat16_bits* x) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x))), 16));
}

// Mask of the first n (< 16 or more) lanes.
ISEL_AVX512 inline __mmask16 first16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u);
}
ISEL_AVX512 inline __mmask8 first8(int64_t n) { return n >= 8 ? __mmask8(0xFF) : __mmask8((1u << n) - 1u); }

// The fold of 32 float partials held as lo = partials 0..15, hi = 16..31.
ISEL_AVX512 inline float fold_avx512(__m512 lo, __m512 hi) {
  __m512 s = _mm512_add_ps(lo, hi);                                                          // +16
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));         // +8
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));             // +4
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));                                                    // +2
  q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));                                                // +1
  return _mm_cvtss_f32(q);
}

// ... of 32 double partials held as a[r] = partials 8r..8r+7.
ISEL_AVX512 inline double fold_avx512(const __m512d* a) {
  __m512d s = _mm512_add_pd(_mm512_add_pd(a[0], a[2]), _mm512_add_pd(a[1], a[3]));          // +16, +8
  __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));        // +4
  __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));            // +2
  q = _mm_add_sd(q, _mm_unpackhi_pd(q, q));                                                  // +1
  return _mm_cvtsd_f64(q);
}

template <class T>
ISEL_AVX512 inline float sqdist_avx512(const T* x, const float* c, int64_t d, bool scaled, float inv_x) {
  __m512 a[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  const __m512 ix = _mm512_set1_ps(inv_x);
  for (int64_t j = 0; j < d; j += 32) {
    for (int r = 0; r < 2; ++r) {
      const int64_t left = d - j - 16 * r;
      if (left <= 0) break;
      const __mmask16 m = first16(left);
      __m512 xv = left >= 16 ? load16(x + j + 16 * r) : load16(x + j + 16 * r, m);
      if (scaled) xv = _mm512_mul_ps(xv, ix);
      __m512 diff = _mm512_sub_ps(xv, left >= 16 ? _mm512_loadu_ps(c + j + 16 * r) : load16(c + j + 16 * r, m));
      a[r] = _mm512_mask3_fmadd_ps(diff, diff, a[r], m);  // lanes past d keep their partial
    }
  }
  return fold_avx512(a[0], a[1]);
}

ISEL_AVX512 inline double sqdist_avx512(const double* x, const double* c, int64_t d, bool scaled, double inv_x) {
  __m512d a[4];
  for (auto& r : a) r = _mm512_setzero_pd();
  const __m512d ix = _mm512_set1_pd(inv_x);
  for (int64_t j = 0; j < d; j += 32) {
    for (int r = 0; r < 4; ++r) {
      const int64_t left = d - j - 8 * r;
      if (left <= 0) break;
      const __mmask8 m = first8(left);
      __m512d xv = _mm512_maskz_loadu_pd(m, x + j + 8 * r);
      if (scaled) xv = _mm512_mul_pd(xv, ix);
      __m512d diff = _mm512_sub_pd(xv, _mm512_maskz_loadu_pd(m, c + j + 8 * r));
      a[r] = _mm512_mask3_fmadd_pd(diff, diff, a[r], m);
    }
  }
  return fold_avx512(a);
}

// Row x widened to A (and multiplied by inv_x when scaled) into out[0, d), zeros in [d, dp).
template <class T>
ISEL_AVX512 inline void widen_avx512(const T* x, int64_t d, int64_t dp, bool scaled, float inv_x, float* out) {
  const __m512 ix = _mm512_set1_ps(inv_x);
  for (int64_t j = 0; j < dp; j += 16) {
    const int64_t left = d - j;
    __m512 v = left >= 16 ? load16(x + j) : left > 0 ? load16(x + j, first16(left)) : _mm512_setzero_ps();
    if (scaled && left > 0) v = _mm512_maskz_mul_ps(first16(left), v, ix);
    if (dp - j >= 16) _mm512_storeu_ps(out + j, v);
    else _mm512_mask_storeu_ps(out + j, first16(dp - j), v);
  }
}

template <class T>
ISEL_AVX2 inline void widen_avx2(const T* x, int64_t d, int64_t dp, bool scaled, float inv_x, float* out) {
  const __m256 ix = _mm256_set1_ps(inv_x);
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
    __m256 v = load8(x + j);
    if (scaled) v = _mm256_mul_ps(v, ix);
    _mm256_storeu_ps(out + j, v);
  }
  for (; j < d; ++j) out[j] = scaled ? load_float(x, j) * inv_x : load_float(x, j);
  for (; j < dp; ++j) out[j] = 0.0f;
}

#pragma GCC diagnostic pop

}  // namespace simd
#endif

// The dispatching entry point: same result on every path.
template <class T, class A = accum_t<T>>
inline A sqdist(const T* x, const A* c, int64_t d, bool scaled = false, A inv_x = A(1)) {
#ifdef ISEL_X86
  switch (simd_level()) {
    case SimdLevel::avx512: return simd::sqdist_avx512(x, c, d, scaled, inv_x);
    case SimdLevel::avx2: return simd::sqdist_avx2(x, c, d, scaled, inv_x);
    default: break;
  }
#endif
  return sqdist_scalar<T, A>(x, c, d, scaled, inv_x);
}

// Row x in the accumulation type, multiplied by inv_x when scaled (the very products the
// distance functions form), zero-padded from d to dp: the packed rows of the blocked kernels.
template <class T, class A = accum_t<T>>
inline void widen_row(const T* x, int64_t d, int64_t dp, bool scaled, A inv_x, A* out) {
#ifdef ISEL_X86
  if constexpr (std::is_same_v<A, float>) {
    switch (simd_level()) {
      case SimdLevel::avx512: return simd::widen_avx512(x, d, dp, scaled, inv_x, out);
      case SimdLevel::avx2: return simd::widen_avx2(x, d, dp, scaled, inv_x, out);
      default: break;
    }
  }
#endif
  int64_t j = 0;
  for (; j < d; ++j) out[j] = scaled ? load_float(x, j) * inv_x : load_float(x, j);
  for (; j < dp; ++j) out[j] = A(0);
}

// 1 / ||x|| in the canonical order (the cosine metric's row scale).
template <class T, class A = accum_t<T>>
inline A inverse_norm(const T* x, int64_t d, const A* zeros) {
  return A(1) / std::sqrt(sqdist<T, A>(x, zeros, d));
}

}  // namespace isel
