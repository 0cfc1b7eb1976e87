// float16 / bfloat16 conversions (common/half.hpp, and the emulated __float2half & co. built
// on them) against an independent reference: the nearest representable value found by exact
// arithmetic in double (ties to the even significand, overflow to infinity where IEEE 754 puts
// it), plus bit patterns known from the standard. Every half and bfloat16 value is checked
// exhaustively for widening; narrowing is checked on every value, every midpoint between
// neighbours and the floats next to each midpoint, plus a sweep across all float bit patterns.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/cuda_compat.cuh"
#include "common/half.hpp"
#include "tests/harness.hpp"

namespace {

using isel::bits_to_float;
using isel::float_to_bits;

double half_value(uint16_t h) {  // the value of a finite half, from the definition
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const double mag = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -mag : mag;
}

// Nearest half to a finite float, by search over the ordered non-negative halves.
uint16_t ref_float_to_half(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double x = std::fabs(static_cast<double>(f));
  // 65504 is the largest half; the next step would be 65536, so 65520 and up round to infinity
  if (x >= 65520.0) return sign | 0x7C00;
  uint16_t lo = 0, hi = 0x7BFF;  // largest half <= x
  while (lo < hi) {
    uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (half_value(mid) <= x) lo = mid;
    else hi = static_cast<uint16_t>(mid - 1);
  }
  if (lo == 0x7BFF) return sign | lo;
  const double below = x - half_value(lo), above = half_value(lo + 1) - x;  // exact (Sterbenz)
  uint16_t r = below < above ? lo : above < below ? static_cast<uint16_t>(lo + 1) : ((lo & 1) ? lo + 1 : lo);
  return sign | r;
}

uint16_t ref_float_to_bfloat16(float f) {
  const uint32_t u = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const double x = std::fabs(static_cast<double>(f));
  const uint16_t lo = static_cast<uint16_t>((u & 0x7FFFFFFF) >> 16);  // truncation: largest <= x
  if ((u & 0xFFFF) == 0) return sign | lo;
  // the next bfloat16 up; past the largest finite one, IEEE rounding compares with 2^128
  const uint16_t up = static_cast<uint16_t>(lo + 1);
  const double up_value = up == 0x7F80 ? std::ldexp(1.0, 128) : static_cast<double>(bits_to_float(static_cast<uint32_t>(up) << 16));
  const double below = x - static_cast<double>(bits_to_float(static_cast<uint32_t>(lo) << 16)), above = up_value - x;
  uint16_t r = below < above ? lo : above < below ? up : ((lo & 1) ? up : lo);
  return sign | r;
}

bool is_half_nan(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0; }
bool is_bf16_nan(uint16_t b) { return (b & 0x7F80) == 0x7F80 && (b & 0x7F) != 0; }

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

void check_half(float f) {
  const uint16_t got = isel::float_to_half(f);
  if (std::isnan(f)) {
    EXPECT(is_half_nan(got) && (got & 0x8000) == ((float_to_bits(f) >> 16) & 0x8000), "NaN", hex(float_to_bits(f)), hex(got));
    return;
  }
  const uint16_t want = ref_float_to_half(f);
  EXPECT(got == want, "float_to_half of", hex(float_to_bits(f)), "=", f, "got", hex(got), "want", hex(want));
  EXPECT(__float2half_rn(f).x == got && __float2half(f).x == got, "the emulated intrinsic differs at", f);
}

void check_bf16(float f) {
  const uint16_t got = isel::float_to_bfloat16(f);
  if (std::isnan(f)) {
    EXPECT(is_bf16_nan(got) && (got & 0x8000) == ((float_to_bits(f) >> 16) & 0x8000), "NaN", hex(float_to_bits(f)), hex(got));
    return;
  }
  const uint16_t want = ref_float_to_bfloat16(f);
  EXPECT(got == want, "float_to_bfloat16 of", hex(float_to_bits(f)), "=", f, "got", hex(got), "want", hex(want));
  EXPECT(__float2bfloat16_rn(f).x == got && __float2bfloat16(f).x == got, "the emulated intrinsic differs at", f);
}

float next_up(float f) { return std::nextafter(f, INFINITY); }
float next_down(float f) { return std::nextafter(f, -INFINITY); }

}  // namespace

ISEL_CHECK_CASE(half_widening_every_value) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float got = isel::half_to_float(static_cast<uint16_t>(h));
    EXPECT(__half2float(__half{static_cast<uint16_t>(h)}) == got || std::isnan(got), "intrinsic at", hex(h));
    if ((h & 0x7C00) == 0x7C00) {  // inf / NaN keep sign and payload
      EXPECT(float_to_bits(got) == (((h & 0x8000u) << 16) | 0x7F800000u | ((h & 0x3FFu) << 13)), hex(h), hex(float_to_bits(got)));
    } else {
      EXPECT(static_cast<double>(got) == half_value(static_cast<uint16_t>(h)) && std::signbit(got) == bool(h & 0x8000),
             "half", hex(h), "widened to", got, "not", half_value(static_cast<uint16_t>(h)));
    }
  }
}

ISEL_CHECK_CASE(bfloat16_widening_every_value) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float got = isel::bfloat16_to_float(static_cast<uint16_t>(b));
    EXPECT(float_to_bits(got) == b << 16, hex(b), hex(float_to_bits(got)));
    EXPECT(float_to_bits(__bfloat162float(__nv_bfloat16{static_cast<uint16_t>(b)})) == b << 16, "intrinsic at", hex(b));
  }
}

ISEL_CHECK_CASE(half_known_bit_patterns) {
  struct {
    float f;
    uint16_t h;
  } known[] = {
      {1.0f, 0x3C00},         {-2.0f, 0xC000},        {0.1f, 0x2E66},         {1.0f / 3.0f, 0x3555},
      {65504.0f, 0x7BFF},     {65519.99f, 0x7BFF},    {65520.0f, 0x7C00},     {1e10f, 0x7C00},
      {-1e10f, 0xFC00},       {INFINITY, 0x7C00},     {-INFINITY, 0xFC00},    {0.0f, 0x0000},
      {-0.0f, 0x8000},        {std::ldexp(1.0f, -24), 0x0001},                {std::ldexp(1.0f, -25), 0x0000},
      {std::ldexp(1.5f, -25), 0x0001},                {std::ldexp(3.0f, -25), 0x0002},  // ties to even
      {std::ldexp(1.0f, -14), 0x0400},                {std::ldexp(1023.0f, -24), 0x03FF},
      {std::ldexp(2047.0f, -25), 0x0400},             // rounds up from the largest subnormal
      {1.0f + std::ldexp(1.0f, -11), 0x3C00},         {1.0f + std::ldexp(3.0f, -11), 0x3C02},
      {std::ldexp(1.0f, -130), 0x0000},               // a float subnormal
  };
  for (const auto& k : known) {
    EXPECT(isel::float_to_half(k.f) == k.h, k.f, hex(isel::float_to_half(k.f)), hex(k.h));
    check_half(k.f);
  }
  EXPECT(is_half_nan(isel::float_to_half(NAN)) && is_half_nan(isel::float_to_half(-NAN)));
  EXPECT(is_half_nan(isel::float_to_half(bits_to_float(0x7F800001u))), "a signalling NaN with a low payload");
}

ISEL_CHECK_CASE(bfloat16_known_bit_patterns) {
  struct {
    uint32_t f;
    uint16_t b;
  } known[] = {
      {0x3F800000u, 0x3F80}, {0x3F808000u, 0x3F80},  // 1 + 2^-8: a tie, to even
      {0x3F818000u, 0x3F82},                         // 1 + 3*2^-8: a tie, to even (up)
      {0x3F808001u, 0x3F81}, {0x3DCCCCCDu, 0x3DCD},  // 0.1
      {0x7F7FFFFFu, 0x7F80},                         // FLT_MAX rounds to infinity
      {0x7F7F7FFFu, 0x7F7F}, {0xFF800000u, 0xFF80}, {0x80000000u, 0x8000},
      {0x00000001u, 0x0000},                         // the smallest subnormal float
      {0x00008000u, 0x0000}, {0x00018000u, 0x0002},  // subnormal ties
  };
  for (const auto& k : known) {
    const float f = bits_to_float(k.f);
    EXPECT(isel::float_to_bfloat16(f) == k.b, hex(k.f), hex(isel::float_to_bfloat16(f)), hex(k.b));
    check_bf16(f);
  }
  const uint16_t q = isel::float_to_bfloat16(bits_to_float(0x7F800001u));  // payload only in the low bits
  EXPECT(is_bf16_nan(q), "a NaN whose payload is below bfloat16's bits must stay NaN, got", hex(q));
}

ISEL_CHECK_CASE(narrowing_every_value_midpoint_and_neighbour) {
  // For every pair of neighbours a < b of each format: a, b, their midpoint (a tie) and the
  // floats just below and above it, with both signs.
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const float a = isel::half_to_float(static_cast<uint16_t>(h));
    const float b = h + 1 < 0x7C00 ? isel::half_to_float(static_cast<uint16_t>(h + 1)) : 65536.0f;
    const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);  // exact: 12 significant bits
    for (float f : {a, mid, next_down(mid), next_up(mid)}) {
      check_half(f);
      check_half(-f);
    }
  }
  for (uint32_t t = 0; t < 0x7F80; ++t) {
    const float a = bits_to_float(t << 16);
    const float mid = bits_to_float((t << 16) | 0x8000u);  // exactly halfway to the next bfloat16
    for (float f : {a, mid, next_down(mid), next_up(mid)}) {
      check_bf16(f);
      check_bf16(-f);
    }
  }
}

ISEL_CHECK_CASE(narrowing_sweep_over_float_bit_patterns) {
  // A stride through all 2^32 patterns (prime, so every exponent and many significands appear).
  const uint64_t stride = isel::test::kSanitized ? 40009 : 997;
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += stride) {
    const float f = bits_to_float(static_cast<uint32_t>(u));
    check_half(f);
    check_bf16(f);
  }
}

ISEL_TEST_MAIN()
