// A low-precision filter in front of k-center's exact refresh: from bf16 dot products it
// proves, for most row/center pairs, that the exact squared distance cannot lower the row's
// bound, and the exact (canonical float32) distances of a tile are computed only when some
// pair is not proven. Skipping such a pair never changes a result: its exact distance is at
// least the bound, so min(bound, distance) is the bound. Picks, radii and min distances stay
// bit-identical with the filter on or off; only the work changes.
//
// The bound, for packed float rows x, c (already widened and scaled, dp elements; D the exact
// real ||x - c||^2, D^ the canonical float32 value the tiles compute):
//   * bf16 rounding (to nearest even, u = 2^-8) of both vectors: |x.c - x~.c~| <= (2u + u^2)
//     sum|x_i c_i| <= (2u + u^2) ||x|| ||c|| (Cauchy-Schwarz);
//   * the float32 sum of the exact bf16 products, in any order with at most dp additions in a
//     chain: |s - x~.c~| <= gamma(dp) (1 + u)^2 ||x|| ||c||, gamma(n) = n 2^-24 / (1 - n 2^-24);
//     denormals (inputs and products below 2^-126, treated as zero by the hardware, and
//     sums flushed to zero) add at most 2^-126 (||x||_1 + ||c||_1 + dp), covered by the slack
//     1e-36 dp (||x|| + ||c|| + 1);
//   * D = ||x||^2 + ||c||^2 - 2 x.c >= nx + nc - 2 s - 2 E, E = rel ||x|| ||c|| + slack, with the
//     norms summed in double (relative error far below the 1e-12 margin applied to them);
//   * D^ sums non-negative terms, each rounded at most dp + 8 times: D^ >= D (1 - gamma(dp + 8)).
// A pair is skipped when that lower bound on D^ is >= the row's bound. Rows or centers with a
// squared norm above 1e30 (where bf16 could overflow) are never skipped, nor is a non-finite dot.
//
// The filter's dot products come in blocks of 16 rows x 16 centers: one AMX tile product
// (TDPBF16PS: 16 x 16 x 32 bf16 multiply-adds an instruction) per 32 dimensions. Centers are
// stored in AMX's pair-interleaved layout, 16 to a block; rows are plain bf16 rows.
//
// Modes: "amx" (AMX-BF16), "scalar" (the same blocks and bound in software: slower than no
// filter, it exists so that every machine tests the filter's logic), "off". "auto" is amx where
// the CPU and the operating system allow AMX, else off. The environment variable
// ITERSELECT_KCENTER_FILTER, read at first use, or set_kcenter_filter() chooses; asking for amx
// where it is not available is an error.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "common/check.hpp"
#include "common/simd.hpp"

#if defined(__linux__) && (defined(__x86_64__) || defined(_M_X64))
#include <sys/syscall.h>
#include <unistd.h>
#define ISEL_AMX 1
#define ISEL_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f")))
#endif

namespace isel::kcenter {

#pragma GCC diagnostic push  // see common/distance.hpp: GCC 12's undefined pass-through registers
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

enum class FilterMode { off = 0, scalar = 1, amx = 2 };

inline const char* filter_name(FilterMode m) {
  switch (m) {
    case FilterMode::amx: return "amx";
    case FilterMode::scalar: return "scalar";
    default: return "off";
  }
}

// AMX needs the CPU's AMX-TILE and AMX-BF16 and the kernel's permission for the tile state
// (asked for once per process).
inline bool amx_supported() {
#ifdef ISEL_AMX
  static const bool ok = [] {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16")) return false;
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

inline FilterMode parse_filter(const std::string& name, const char* source) {
  if (name == "auto" || name.empty()) return amx_supported() ? FilterMode::amx : FilterMode::off;
  if (name == "off") return FilterMode::off;
  if (name == "scalar") return FilterMode::scalar;
  if (name != "amx") fail(source, " must be 'off', 'scalar', 'amx' or 'auto' (got '", name, "')");
  require(amx_supported(), source, " asks for 'amx' but this CPU or its operating system does not offer AMX-BF16; "
          "ask for 'off' or 'auto' (the default) instead");
  return FilterMode::amx;
}

namespace detail {
inline std::atomic<int>& filter_choice() {
  static std::atomic<int> choice{-1};  // -1: not chosen yet
  return choice;
}
}  // namespace detail

// The filter k-center runs started now use.
inline FilterMode filter_mode() {
  const int c = detail::filter_choice().load(std::memory_order_relaxed);
  if (c >= 0) return static_cast<FilterMode>(c);
  const char* env = std::getenv("ITERSELECT_KCENTER_FILTER");
  const FilterMode m = env ? parse_filter(env, "ITERSELECT_KCENTER_FILTER") : parse_filter("auto", "");
  detail::filter_choice().store(static_cast<int>(m), std::memory_order_relaxed);
  return m;
}

inline void set_filter_mode(const std::string& name) {
  detail::filter_choice().store(static_cast<int>(parse_filter(name, "the k-center filter")),
                                std::memory_order_relaxed);
}

constexpr int64_t kBlock = 16;  // rows and centers of a filter block

// Four blocks of dots: out[256*i + 16*m + q] ~ dot(row m, center q of block i): rows at
// rows + m*dp (bf16), four consecutive center blocks in the pair-interleaved layout (see
// pack_center); dp a multiple of 32.
using BlocksFn = void (*)(const uint16_t* rows, const uint16_t* centers, int64_t dp, float* out);

inline uint16_t bf16_round(float v) {  // to nearest even; NaN stays NaN
  uint32_t b;
  std::memcpy(&b, &v, 4);
  if ((b & 0x7f800000u) == 0x7f800000u) return static_cast<uint16_t>((b >> 16) | ((b & 0xffffu) ? 0x40u : 0u));
  b += 0x7fffu + ((b >> 16) & 1u);
  return static_cast<uint16_t>(b >> 16);
}

inline float bf16_value(uint16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float v;
  std::memcpy(&v, &b, 4);
  return v;
}

inline void pack_row(const float* x, int64_t dp, uint16_t* out) {
  for (int64_t j = 0; j < dp; ++j) out[j] = bf16_round(x[j]);
}

#ifdef ISEL_AMX
// The same rounding (to nearest even) with AVX-512-BF16, which every AMX CPU has.
__attribute__((target("avx512f,avx512bf16"))) inline void pack_row_avx512bf16(const float* x, int64_t dp,
                                                                              uint16_t* out) {
  for (int64_t j = 0; j < dp; j += 16) {
    const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + j));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), reinterpret_cast<const __m256i&>(h));
  }
}
#endif

// Center q of its block (0-15) into the block's storage: for each 32 dimensions a 16 x 16 grid
// of element pairs, [pair p][center q] = elements 2p, 2p + 1 (what TDPBF16PS reads as B).
inline void pack_center(const float* c, int64_t dp, int q, uint16_t* block) {
  for (int64_t j = 0; j < dp; j += 32)
    for (int p = 0; p < 16; ++p) {
      uint16_t* dst = block + j * kBlock + 32 * p + 2 * q;
      dst[0] = bf16_round(c[j + 2 * p]);
      dst[1] = bf16_round(c[j + 2 * p + 1]);
    }
}

inline void block_scalar(const uint16_t* rows, const uint16_t* centers, int64_t dp, float* out) {
  for (int m = 0; m < kBlock; ++m)
    for (int q = 0; q < kBlock; ++q) {
      float s = 0.0f;  // each product of two bf16 values is exact in float
      for (int64_t j = 0; j < dp; j += 32)
        for (int p = 0; p < 16; ++p)
          for (int e = 0; e < 2; ++e)
            s += bf16_value(rows[m * dp + j + 2 * p + e]) * bf16_value(centers[j * kBlock + 32 * p + 2 * q + e]);
      out[kBlock * m + q] = s;
    }
}

#ifdef ISEL_AMX
// The tile configuration (64 bytes, palette 1): tiles 0-3 four 16 x 16 float results, tile 4
// the 16 x 32 bf16 rows, tiles 5 and 6 blocks of centers (16 x 16 pairs), alternating.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16};
};

// Four consecutive center blocks at once (each row tile loaded once for four products; four
// independent accumulations). Configures the tiles itself: other code on the thread (oneDNN,
// say) may configure them its own way between two calls.
ISEL_AMX_TARGET inline void blocks4_amx(const uint16_t* rows, const uint16_t* centers, int64_t dp, float* out) {
  static const TileConfig config;
  _tile_loadconfig(&config);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const int64_t block = kBlock * dp;  // one center block's bf16 elements
  for (int64_t j = 0; j < dp; j += 32) {
    const uint16_t* c = centers + j * kBlock;
    _tile_loadd(4, rows + j, dp * 2);
    _tile_loadd(5, c, 64);
    _tile_dpbf16ps(0, 4, 5);
    _tile_loadd(6, c + block, 64);
    _tile_dpbf16ps(1, 4, 6);
    _tile_loadd(5, c + 2 * block, 64);
    _tile_dpbf16ps(2, 4, 5);
    _tile_loadd(6, c + 3 * block, 64);
    _tile_dpbf16ps(3, 4, 6);
  }
  _tile_stored(0, out, 64);
  _tile_stored(1, out + kBlock * kBlock, 64);
  _tile_stored(2, out + 2 * kBlock * kBlock, 64);
  _tile_stored(3, out + 3 * kBlock * kBlock, 64);
  _tile_release();
}
#endif

inline void blocks4_scalar(const uint16_t* rows, const uint16_t* centers, int64_t dp, float* out) {
  for (int i = 0; i < 4; ++i) block_scalar(rows, centers + i * kBlock * dp, dp, out + i * kBlock * kBlock);
}

struct Bf16Filter {
  FilterMode mode = FilterMode::off;
  BlocksFn blocks4 = nullptr;
  void (*pack)(const float* x, int64_t dp, uint16_t* out) = &pack_row;
  double rel = 0.0, keep = 1.0, slack = 0.0;

  Bf16Filter() = default;
  Bf16Filter(FilterMode m, int64_t dp) : mode(m) {
    if (m == FilterMode::off) return;
    blocks4 = &blocks4_scalar;
#ifdef ISEL_AMX
    if (m == FilterMode::amx) {
      blocks4 = &blocks4_amx;
      if (__builtin_cpu_supports("avx512bf16")) pack = &pack_row_avx512bf16;
    }
#endif
    const auto gamma = [](double n) { return n * 0x1p-24 / (1.0 - n * 0x1p-24); };
    const double u = 0x1p-8;
    rel = 2 * u + u * u + gamma(static_cast<double>(dp)) * (1 + u) * (1 + u);
    keep = 1.0 - gamma(static_cast<double>(dp + 8));
    slack = 1e-36 * static_cast<double>(dp);
  }
  bool on() const { return mode != FilterMode::off; }

  // A packed float row's squared norm (in double: eight independent sums, so the loop is not
  // one long chain of dependent additions) and its square root.
  struct Norm {
    double sq = 0.0, root = 0.0;
  };
  static Norm norm(const float* x, int64_t dp) {
    double part[8] = {};
    for (int64_t j = 0; j < dp; j += 8)
      for (int l = 0; l < 8; ++l) part[l] += static_cast<double>(x[j + l]) * static_cast<double>(x[j + l]);
    const double sq = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    return {sq, std::sqrt(sq)};
  }

  // What the mask pass needs of a center: its squared norm lowered by the margin (-inf when
  // too large to filter: the bound then fails) and its norm.
  static void center_terms(const Norm& c, double* sq_lo, double* root) {
    *sq_lo = c.sq <= 1e30 ? c.sq * (1 - 1e-12) : -std::numeric_limits<double>::infinity();
    *root = c.root;
  }

  // Bit q set when the canonical squared distance of row x (bound ub) and center q of 16 (its
  // terms at sq_lo[q], root[q]; filter dot s[q]) is surely >= ub; the bound of the header:
  // ((|x|^2 + |c|^2)(1 - 1e-12) - 2 s - 2 E (1 + 1e-12)) keep >= ub, E = rel |x||c| +
  // slack (|x| + |c| + 1). The margins 1e-12 cover the double arithmetic here.
  uint16_t mask16(const Norm& x, double ub, const double* sq_lo, const double* root, const float* s) const {
    if (!(x.sq <= 1e30)) return 0;
#ifdef ISEL_AMX
    if (mode == FilterMode::amx) return mask16_avx512(x, ub, sq_lo, root, s);
#endif
    const double a = x.sq * (1 - 1e-12), rx = rel * x.root + slack, sx = slack * (x.root + 1.0);
    uint16_t m = 0;
    for (int q = 0; q < 16; ++q) {
      const double e = (rx * root[q] + sx) * (1 + 1e-12);
      const double lower = ((a + sq_lo[q]) - 2.0 * static_cast<double>(s[q]) - 2.0 * e) * keep;
      m = static_cast<uint16_t>(m | ((lower >= ub ? 1u : 0u) << q));
    }
    return m;
  }

#ifdef ISEL_AMX
  ISEL_AVX512 uint16_t mask16_avx512(const Norm& x, double ub, const double* sq_lo, const double* root,
                                     const float* s) const {
    const __m512d a = _mm512_set1_pd(x.sq * (1 - 1e-12)), rx = _mm512_set1_pd(rel * x.root + slack);
    const __m512d sx = _mm512_set1_pd(slack * (x.root + 1.0)), up = _mm512_set1_pd(1 + 1e-12);
    const __m512d k = _mm512_set1_pd(keep), u = _mm512_set1_pd(ub), two = _mm512_set1_pd(2.0);
    uint16_t m = 0;
    for (int h = 0; h < 2; ++h) {
      const __m512d e = _mm512_mul_pd(_mm512_fmadd_pd(rx, _mm512_loadu_pd(root + 8 * h), sx), up);
      const __m512d sd = _mm512_cvtps_pd(_mm256_loadu_ps(s + 8 * h));
      const __m512d sum = _mm512_sub_pd(_mm512_sub_pd(_mm512_add_pd(a, _mm512_loadu_pd(sq_lo + 8 * h)),
                                                      _mm512_mul_pd(two, sd)),
                                        _mm512_mul_pd(two, e));
      const __mmask8 ge = _mm512_cmp_pd_mask(_mm512_mul_pd(sum, k), u, _CMP_GE_OQ);
      m = static_cast<uint16_t>(m | (static_cast<unsigned>(ge) << (8 * h)));
    }
    return m;
  }
#endif
};

#pragma GCC diagnostic pop

}  // namespace isel::kcenter
