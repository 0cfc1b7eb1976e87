// Blocked squared distances in the canonical order of common/distance.hpp: a tile of 4 rows
// against 4 columns (centers) at once, so each loaded element serves four distances and the
// working set stays in registers and L1. Every one of the 16 distances is bit-identical to
// sqdist() of the same pair on every path: each keeps its own 32 partials, accumulated in the
// same element order, folded by the same tree.
//
// The operands are packed: rows and columns already widened to the accumulation type A (and
// multiplied by their inverse norms for the cosine metric, see widen_row), zero-padded to dp,
// a multiple of 32; the padding adds fma(0, 0, p) == p to a partial, which changes nothing.
// All four rows and four columns must be readable (callers pad a ragged edge with any row).
//
// The vector kernels take one lane group of the 32 partials at a time (16 float lanes on
// AVX-512: two groups; 8 on AVX2: four), which leaves one accumulator per pair and room in the
// register file for the whole 4 x 4 tile.
#pragma once

#include <cstdint>

#include "common/distance.hpp"
#include "common/simd.hpp"

namespace isel {

constexpr int kTile = 4;        // rows and columns of a tile
constexpr int64_t kPadTo = 32;  // packed rows are zero-padded to a multiple of this

inline int64_t padded_dim(int64_t d) { return (d + kPadTo - 1) / kPadTo * kPadTo; }

// out[4*q + m] = squared distance of packed row m (at r + m*rs) to packed column q (c + q*cs).
template <class A>
using TileFn = void (*)(const A* r, int64_t rs, const A* c, int64_t cs, int64_t dp, A* out);

template <class A>
void tile_scalar(const A* r, int64_t rs, const A* c, int64_t cs, int64_t dp, A* out) {
  for (int q = 0; q < kTile; ++q)
    for (int m = 0; m < kTile; ++m) out[kTile * q + m] = sqdist_scalar<A, A>(r + m * rs, c + q * cs, dp, false, A(1));
}

#ifdef ISEL_X86
namespace simd {

#pragma GCC diagnostic push  // see distance.hpp: GCC 12's undefined pass-through registers
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// AVX-512, float: group 0 (partials 0-15) then group 1 (16-31) for all 16 pairs; then the
// fold of 16 pairs at once, as a transpose: each level adds the same partials as
// fold_avx512 does for one pair (+16, +8, +4, +2, +1), two pairs' halves per register.
ISEL_AVX512 inline void tile_avx512(const float* r, int64_t rs, const float* c, int64_t cs, int64_t dp, float* out) {
  __m512 g0[16], acc[16];  // pair p = 4*m + q
  for (int g = 0; g < 2; ++g) {
#pragma GCC unroll 16
    for (int p = 0; p < 16; ++p) acc[p] = _mm512_setzero_ps();
    for (int64_t j = 16 * g; j < dp; j += 32) {
      const __m512 x0 = _mm512_loadu_ps(r + j), x1 = _mm512_loadu_ps(r + rs + j);
      const __m512 x2 = _mm512_loadu_ps(r + 2 * rs + j), x3 = _mm512_loadu_ps(r + 3 * rs + j);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const __m512 cv = _mm512_loadu_ps(c + q * cs + j);
        __m512 t0 = _mm512_sub_ps(x0, cv), t1 = _mm512_sub_ps(x1, cv);
        __m512 t2 = _mm512_sub_ps(x2, cv), t3 = _mm512_sub_ps(x3, cv);
        acc[q] = _mm512_fmadd_ps(t0, t0, acc[q]);
        acc[4 + q] = _mm512_fmadd_ps(t1, t1, acc[4 + q]);
        acc[8 + q] = _mm512_fmadd_ps(t2, t2, acc[8 + q]);
        acc[12 + q] = _mm512_fmadd_ps(t3, t3, acc[12 + q]);
      }
    }
    if (g == 0) {
#pragma GCC unroll 16
      for (int p = 0; p < 16; ++p) g0[p] = acc[p];
    }
  }
  __m512 u[8], w[4], y[2];
#pragma GCC unroll 16
  for (int p = 0; p < 16; ++p) acc[p] = _mm512_add_ps(g0[p], acc[p]);  // +16
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)  // +8: lanes 0-7 pair 2i, lanes 8-15 pair 2i+1
    u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2 * i], acc[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(acc[2 * i], acc[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)  // +4: 128-bit quarter k holds pair 4i + k
    w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)  // +2: quarter k holds pairs 8i + k (lanes 0-1), 8i + 4 + k (2-3)
    y[i] = _mm512_add_ps(_mm512_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  // +1: lane 4k + l holds pair 4l + k, i.e. (row l, column k): the out[] layout
  _mm512_storeu_ps(out, _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                      _mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 1, 3, 1))));
}

// AVX-512, double: four groups of 8 lanes; each pair's four group registers are kept and
// folded by fold_avx512.
ISEL_AVX512 inline void tile_avx512(const double* r, int64_t rs, const double* c, int64_t cs, int64_t dp,
                                    double* out) {
  __m512d part[16][4];
  for (int g = 0; g < 4; ++g) {
    __m512d acc[16];
#pragma GCC unroll 16
    for (int p = 0; p < 16; ++p) acc[p] = _mm512_setzero_pd();
    for (int64_t j = 8 * g; j < dp; j += 32) {
      __m512d x[4];
#pragma GCC unroll 4
      for (int m = 0; m < 4; ++m) x[m] = _mm512_loadu_pd(r + m * rs + j);
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const __m512d cv = _mm512_loadu_pd(c + q * cs + j);
#pragma GCC unroll 4
        for (int m = 0; m < 4; ++m) {
          __m512d t = _mm512_sub_pd(x[m], cv);
          acc[4 * m + q] = _mm512_fmadd_pd(t, t, acc[4 * m + q]);
        }
      }
    }
#pragma GCC unroll 16
    for (int p = 0; p < 16; ++p) part[p][g] = acc[p];
  }
  for (int m = 0; m < 4; ++m)
    for (int q = 0; q < 4; ++q) out[4 * q + m] = fold_avx512(part[4 * m + q]);
}

#pragma GCC diagnostic pop

ISEL_AVX2 inline __m256 load_v(const float* p) { return _mm256_loadu_ps(p); }
ISEL_AVX2 inline __m256d load_v(const double* p) { return _mm256_loadu_pd(p); }
ISEL_AVX2 inline __m256 diff_sq(__m256 x, __m256 cv, __m256 acc) {
  __m256 t = _mm256_sub_ps(x, cv);
  return _mm256_fmadd_ps(t, t, acc);
}
ISEL_AVX2 inline __m256d diff_sq(__m256d x, __m256d cv, __m256d acc) {
  __m256d t = _mm256_sub_pd(x, cv);
  return _mm256_fmadd_pd(t, t, acc);
}

// AVX2 (16 registers): two halves of 2 rows x 4 columns; W lanes a register, 32 / W groups,
// each pair's group registers folded by fold_avx2.
template <class A>
ISEL_AVX2 inline void tile_avx2(const A* r, int64_t rs, const A* c, int64_t cs, int64_t dp, A* out) {
  using V = decltype(load_v(r));
  constexpr int W = 32 / sizeof(A), G = 32 / W;
  for (int half = 0; half < 2; ++half) {
    const A* rh = r + 2 * half * rs;
    V part[8][G];
    for (int g = 0; g < G; ++g) {
      V acc[8];
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) acc[p] = V{};
      for (int64_t j = W * g; j < dp; j += 32) {
        const V x0 = load_v(rh + j), x1 = load_v(rh + rs + j);
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          const V cv = load_v(c + q * cs + j);
          acc[q] = diff_sq(x0, cv, acc[q]);
          acc[4 + q] = diff_sq(x1, cv, acc[4 + q]);
        }
      }
#pragma GCC unroll 8
      for (int p = 0; p < 8; ++p) part[p][g] = acc[p];
    }
    for (int m = 0; m < 2; ++m)
      for (int q = 0; q < 4; ++q) out[4 * q + 2 * half + m] = fold_avx2(part[4 * m + q]);
  }
}

}  // namespace simd
#endif

// The tile kernel of a path (resolved once per kernel call, not per tile).
template <class A>
TileFn<A> tile_kernel(SimdLevel level) {
#ifdef ISEL_X86
  switch (level) {
    case SimdLevel::avx512: return static_cast<TileFn<A>>(&simd::tile_avx512);
    case SimdLevel::avx2: return &simd::tile_avx2<A>;
    default: break;
  }
#endif
  return &tile_scalar<A>;
}

}  // namespace isel
