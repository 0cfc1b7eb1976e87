// float16 / bfloat16 bit conversions, exact and identical to the hardware's: widening is exact,
// narrowing rounds to nearest even (NaN stays NaN). Host code and the CUDA emulation both use
// these, so half-precision inputs give the same floats on the CPU path and the emulated GPU path.
#pragma once

#include <cstdint>
#include <cstring>

namespace isel {

struct half_bits { uint16_t bits; };      // IEEE binary16, as numpy.float16 stores it
struct bfloat16_bits { uint16_t bits; };  // bfloat16, the top half of a binary32

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t man = h & 0x3FFu;
  if (exp == 0x1F) return bits_to_float(sign | 0x7F800000u | (man << 13));  // inf / NaN
  if (exp == 0) {
    if (man == 0) return bits_to_float(sign);  // signed zero
    // subnormal: value = man * 2^-24, exact in binary32
    float f = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  return bits_to_float(sign | ((exp + 112u) << 23) | (man << 13));
}

inline uint16_t float_to_half(float f) {
  uint32_t u = float_to_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return static_cast<uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u));
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to inf
  if (abs < 0x38800000u) {  // subnormal or zero in binary16
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half the smallest subnormal
    uint32_t man = (abs & 0x7FFFFFu) | 0x800000u;
    int shift = 126 - static_cast<int>(abs >> 23);  // 14..24
    uint32_t q = man >> shift;
    uint32_t rem = man & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t q = ((abs - 0x38000000u) >> 13);  // rebias exponent 127 -> 15
  uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;
  return static_cast<uint16_t>(sign | q);
}

inline float bfloat16_to_float(uint16_t b) { return bits_to_float(static_cast<uint32_t>(b) << 16); }

inline uint16_t float_to_bfloat16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// load_float(p, i): element i of a row of any stored type, widened to float (or double).
inline float load_float(const float* p, int64_t i) { return p[i]; }
inline double load_float(const double* p, int64_t i) { return p[i]; }
inline float load_float(const half_bits* p, int64_t i) { return half_to_float(p[i].bits); }
inline float load_float(const bfloat16_bits* p, int64_t i) { return bfloat16_to_float(p[i].bits); }

// The accumulation type of each storage type: half precision accumulates in float32.
template <class T> struct accum { using type = float; };
template <> struct accum<double> { using type = double; };
template <class T> using accum_t = typename accum<T>::type;

}  // namespace isel
