// Fused decoder-layer steps (decoder_ops.hpp). Each kernel has a portable version and an AVX-512
// one that performs the same float operations in the same order, so both give the same bits
// (common/simd.hpp chooses): the compiler's clone of the portable loops for the memory-bound
// norm and RoPE, intrinsics for the exp-bound SiLU and cross-entropy, which it did not vectorise.
#include "decoder/decoder_ops.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.hpp"
#include "common/parallel.hpp"
#include "common/simd.hpp"

namespace isel::decoder {
namespace {

#define ISEL_INLINE inline __attribute__((always_inline))

ISEL_INLINE float widen(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN kept quiet: the same rounding as torch's float -> bfloat16.
ISEL_INLINE uint16_t narrow(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;
  return static_cast<uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

// exp(x) to ~2 ulp, branch-free and call-free so that loops over it vectorise: x = n ln2 + r,
// n rounded to nearest by the 1.5 * 2^23 trick (whose low mantissa bits then hold n), e^r on
// [-ln2/2, ln2/2] by its Taylor polynomial of degree 7, 2^n by the exponent bits. Clamped to
// [-87, 88]: no denormals, no overflow (silu's 1 + exp(-g) then stays below ~1.7e38).
ISEL_INLINE float exp_clamped(float x) {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float shifted = x * 1.44269504088896341f + kShift;
  const float n = shifted - kShift;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  uint32_t bits;
  std::memcpy(&bits, &shifted, 4);
  bits = (bits - 0x4B400000u + 127u) << 23;  // n + 127 in the exponent field
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

ISEL_INLINE void norm_row(const float* h, int64_t cols, const float* w, float eps, uint16_t* out) {
  // 16 partial sums, lane k taking elements k, k + 16, ...: the AVX-512 version's order
  float part[16] = {};
  int64_t j = 0;
  for (; j + 16 <= cols; j += 16)
    for (int k = 0; k < 16; ++k) part[k] += h[j + k] * h[j + k];
  for (; j < cols; ++j) part[j % 16] += h[j] * h[j];
  float sum = 0.0f;
  for (int k = 0; k < 16; ++k) sum += part[k];
  const float inv = 1.0f / std::sqrt(sum / static_cast<float>(cols) + eps);
  for (j = 0; j < cols; ++j) out[j] = narrow(h[j] * inv * w[j]);
}

ISEL_INLINE void norm_rows(float* h, const uint16_t* y, int64_t lo, int64_t hi, int64_t cols, const float* w,
                           float eps, uint16_t* out) {
  for (int64_t r = lo; r < hi; ++r) {
    float* row = h + r * cols;
    if (y != nullptr) {
      const uint16_t* add = y + r * cols;
      for (int64_t j = 0; j < cols; ++j) row[j] += widen(add[j]);
    }
    norm_row(row, cols, w, eps, out + r * cols);
  }
}

ISEL_INLINE void silu_rows(const uint16_t* gate, const uint16_t* up, int64_t lo, int64_t hi, int64_t inter,
                           int64_t stride, uint16_t* out) {
  for (int64_t r = lo; r < hi; ++r) {
    const uint16_t* g = gate + r * stride;
    const uint16_t* u = up + r * stride;
    uint16_t* o = out + r * inter;
    for (int64_t j = 0; j < inter; ++j) {
      const float gj = widen(g[j]);
      o[j] = narrow(gj / (1.0f + exp_clamped(-gj)) * widen(u[j]));
    }
  }
}

ISEL_INLINE void rope_rows(uint16_t* x, int64_t lo, int64_t hi, int64_t heads, int64_t head_dim, int64_t stride,
                           const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t t = lo; t < hi; ++t) {
    const float* c = cos + t * head_dim;
    const float* s = sin + t * head_dim;
    for (int64_t h = 0; h < heads; ++h) {
      uint16_t* a = x + t * stride + h * head_dim;
      uint16_t* b = a + half;
      for (int64_t j = 0; j < half; ++j) {
        const float aj = widen(a[j]), bj = widen(b[j]);
        a[j] = narrow(aj * c[j] - bj * s[j]);
        b[j] = narrow(bj * c[half + j] + aj * s[half + j]);
      }
    }
  }
}

ISEL_INLINE void nll_rows(const uint16_t* logits, int64_t lo, int64_t hi, int64_t vocab, const int64_t* targets,
                          float* out) {
  constexpr int64_t kBlock = 1024;  // float partial sums over a block, then a double total
  for (int64_t r = lo; r < hi; ++r) {
    const uint16_t* row = logits + r * vocab;
    float top[16];
    for (int k = 0; k < 16; ++k) top[k] = -INFINITY;
    int64_t j = 0;
    for (; j + 16 <= vocab; j += 16)
      for (int k = 0; k < 16; ++k) top[k] = std::max(top[k], widen(row[j + k]));
    for (; j < vocab; ++j) top[0] = std::max(top[0], widen(row[j]));
    float peak = top[0];
    for (int k = 1; k < 16; ++k) peak = std::max(peak, top[k]);
    double total = 0.0;
    for (int64_t b = 0; b < vocab; b += kBlock) {
      const int64_t end = std::min(vocab, b + kBlock);
      float part[16] = {};
      for (j = b; j + 16 <= end; j += 16)
        for (int k = 0; k < 16; ++k) part[k] += exp_clamped(widen(row[j + k]) - peak);
      for (; j < end; ++j) part[0] += exp_clamped(widen(row[j]) - peak);
      for (int k = 0; k < 16; ++k) total += part[k];
    }
    // a NaN logit makes the peak or the total NaN; an infinite peak, (inf - inf) NaN
    out[r] = static_cast<float>(static_cast<double>(peak) + std::log(total) - widen(row[targets[r]]));
  }
}

void norm_rows_base(float* h, const uint16_t* y, int64_t lo, int64_t hi, int64_t cols, const float* w, float eps,
                    uint16_t* out) {
  norm_rows(h, y, lo, hi, cols, w, eps, out);
}
void silu_rows_base(const uint16_t* gate, const uint16_t* up, int64_t lo, int64_t hi, int64_t inter, int64_t stride,
                    uint16_t* out) {
  silu_rows(gate, up, lo, hi, inter, stride, out);
}
void rope_rows_base(uint16_t* x, int64_t lo, int64_t hi, int64_t heads, int64_t hd, int64_t stride, const float* c,
                    const float* s) {
  rope_rows(x, lo, hi, heads, hd, stride, c, s);
}

void nll_rows_base(const uint16_t* logits, int64_t lo, int64_t hi, int64_t vocab, const int64_t* targets, float* out) {
  nll_rows(logits, lo, hi, vocab, targets, out);
}

#ifdef ISEL_X86
// GCC 12 warns inside its own avx512fintrin.h (the undefined vectors some intrinsics start from)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// 16 lanes of exactly the scalar operations above, in the same order (no FMA): the same bits.
// _mm512_max_ps(c, x) / _mm512_min_ps(c, x) return x when x is NaN, as std::max(x, c) does.
ISEL_AVX512 inline __m512 widen16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

ISEL_AVX512 inline void narrow16(uint16_t* p, __m512 f) {
  const __m512i u = _mm512_castps_si512(f);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), odd), 16);
  const __m512i nan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  const __mmask16 is_nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(is_nan, rounded, nan)));
}

ISEL_AVX512 inline __m512 exp16(__m512 x) {
  const __m512 shift = _mm512_set1_ps(12582912.0f);
  x = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-87.0f), x));
  const __m512 shifted = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), shift);
  const __m512 n = _mm512_sub_ps(shifted, shift);
  const __m512 r = _mm512_sub_ps(_mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(0.693145751953125f))),
                                 _mm512_mul_ps(n, _mm512_set1_ps(1.42860682030941723e-6f)));
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  for (float c : {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f})
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(c));
  const __m512i bits = _mm512_slli_epi32(
      _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000)), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

ISEL_AVX512 void nll_rows_avx512(const uint16_t* logits, int64_t lo, int64_t hi, int64_t vocab, const int64_t* targets,
                                 float* out) {
  constexpr int64_t kBlock = 1024;
  alignas(64) float lanes[16];
  for (int64_t r = lo; r < hi; ++r) {
    const uint16_t* row = logits + r * vocab;
    __m512 top = _mm512_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 16 <= vocab; j += 16) top = _mm512_max_ps(widen16(row + j), top);
    _mm512_store_ps(lanes, top);
    for (; j < vocab; ++j) lanes[0] = std::max(lanes[0], widen(row[j]));
    float peak = lanes[0];
    for (int k = 1; k < 16; ++k) peak = std::max(peak, lanes[k]);
    const __m512 vpeak = _mm512_set1_ps(peak);
    double total = 0.0;
    for (int64_t b = 0; b < vocab; b += kBlock) {
      const int64_t end = std::min(vocab, b + kBlock);
      __m512 part = _mm512_setzero_ps();
      for (j = b; j + 16 <= end; j += 16) part = _mm512_add_ps(part, exp16(_mm512_sub_ps(widen16(row + j), vpeak)));
      _mm512_store_ps(lanes, part);
      for (; j < end; ++j) lanes[0] += exp_clamped(widen(row[j]) - peak);
      for (int k = 0; k < 16; ++k) total += lanes[k];
    }
    out[r] = static_cast<float>(static_cast<double>(peak) + std::log(total) - widen(row[targets[r]]));
  }
}

ISEL_AVX512 void silu_rows_avx512(const uint16_t* gate, const uint16_t* up, int64_t lo, int64_t hi, int64_t inter,
                                  int64_t stride, uint16_t* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t r = lo; r < hi; ++r) {
    const uint16_t* g = gate + r * stride;
    const uint16_t* u = up + r * stride;
    uint16_t* o = out + r * inter;
    int64_t j = 0;
    for (; j + 16 <= inter; j += 16) {
      const __m512 gj = widen16(g + j);
      const __m512 e = exp16(_mm512_xor_ps(gj, _mm512_set1_ps(-0.0f)));  // -gj, NaN sign included
      narrow16(o + j, _mm512_mul_ps(_mm512_div_ps(gj, _mm512_add_ps(one, e)), widen16(u + j)));
    }
    for (; j < inter; ++j) {
      const float gj = widen(g[j]);
      o[j] = narrow(gj / (1.0f + exp_clamped(-gj)) * widen(u[j]));
    }
  }
}

// norm and RoPE are memory-bound: the compiler's vectorisation of the portable loops ran as fast
// as intrinsics did
ISEL_AVX512 void norm_rows_avx512(float* h, const uint16_t* y, int64_t lo, int64_t hi, int64_t cols, const float* w,
                                  float eps, uint16_t* out) {
  norm_rows(h, y, lo, hi, cols, w, eps, out);
}
ISEL_AVX512 void rope_rows_avx512(uint16_t* x, int64_t lo, int64_t hi, int64_t heads, int64_t hd, int64_t stride,
                                  const float* c, const float* s) {
  rope_rows(x, lo, hi, heads, hd, stride, c, s);
}
#endif

bool use_avx512() {
#ifdef ISEL_X86
  return simd_level() == SimdLevel::avx512;
#else
  return false;
#endif
}

// Rows a thread takes at least: below this the work runs on the caller's thread alone.
constexpr int64_t kMinRows = 32;

void norm_dispatch(float* h, const uint16_t* y, int64_t rows, int64_t cols, const float* w, float eps,
                   uint16_t* out, int threads) {
  require(rows >= 0 && cols > 0, "rms_norm: needs cols > 0 (got rows ", rows, ", cols ", cols, ")");
  require(std::isfinite(eps) && eps >= 0.0f, "rms_norm: eps must be finite and >= 0 (got ", eps, ")");
  auto fn = &norm_rows_base;
#ifdef ISEL_X86
  if (use_avx512()) fn = &norm_rows_avx512;
#endif
  parallel_for(rows, threads, [&](int64_t lo, int64_t hi, int) { fn(h, y, lo, hi, cols, w, eps, out); }, kMinRows);
}

}  // namespace

void token_nll(const uint16_t* logits, int64_t rows, int64_t vocab, const int64_t* targets, float* out,
               int threads) {
  require(rows >= 0 && vocab > 0, "token_nll: needs vocab > 0 (got rows ", rows, ", vocab ", vocab, ")");
  for (int64_t r = 0; r < rows; ++r)
    require(targets[r] >= 0 && targets[r] < vocab, "token_nll: targets[", r, "] = ", targets[r],
            " is outside [0, ", vocab, ")");
  auto fn = &nll_rows_base;
#ifdef ISEL_X86
  if (use_avx512()) fn = &nll_rows_avx512;
#endif
  parallel_for(rows, threads, [&](int64_t lo, int64_t hi, int) { fn(logits, lo, hi, vocab, targets, out); }, 1);
}

void rms_norm(const float* h, int64_t rows, int64_t cols, const float* w, float eps, uint16_t* out, int threads) {
  // no add: h is only read
  norm_dispatch(const_cast<float*>(h), nullptr, rows, cols, w, eps, out, threads);
}

void add_rms_norm(float* h, const uint16_t* y, int64_t rows, int64_t cols, const float* w, float eps,
                  uint16_t* out, int threads) {
  norm_dispatch(h, y, rows, cols, w, eps, out, threads);
}

void silu_mul(const uint16_t* gate, const uint16_t* up, int64_t rows, int64_t inter, int64_t stride, uint16_t* out,
              int threads) {
  require(rows >= 0 && inter > 0, "silu_mul: needs inter > 0 (got rows ", rows, ", inter ", inter, ")");
  require(stride >= inter, "silu_mul: row stride ", stride, " is shorter than inter ", inter);
  auto fn = &silu_rows_base;
#ifdef ISEL_X86
  if (use_avx512()) fn = &silu_rows_avx512;
#endif
  parallel_for(rows, threads, [&](int64_t lo, int64_t hi, int) { fn(gate, up, lo, hi, inter, stride, out); }, kMinRows);
}

void rope(uint16_t* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t row_stride, const float* cos,
          const float* sin, int threads) {
  require(tokens >= 0 && heads > 0 && head_dim > 0 && head_dim % 2 == 0, "rope: needs heads > 0 and an even head_dim (got ",
          heads, ", ", head_dim, ")");
  require(row_stride >= heads * head_dim, "rope: row_stride ", row_stride, " is shorter than heads * head_dim");
  auto fn = &rope_rows_base;
#ifdef ISEL_X86
  if (use_avx512()) fn = &rope_rows_avx512;
#endif
  parallel_for(tokens, threads, [&](int64_t lo, int64_t hi, int) { fn(x, lo, hi, heads, head_dim, row_stride, cos, sin); },
               kMinRows);
}

}  // namespace isel::decoder
