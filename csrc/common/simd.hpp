// Which x86-64 vector path the CPU kernels take, chosen at run time (the build never assumes
// more than baseline x86-64: kernels carry per-function target attributes and are dispatched
// here). Every path performs the same float operations in the same order, so the choice
// changes speed, never a result; tests force each path and compare them bit for bit.
//
// The active path is the best the CPU supports, unless the environment variable
// ITERSELECT_SIMD (scalar | avx2 | avx512 | auto) read at first use, or set_simd_level(),
// asks for a lower one. Asking for a path the CPU lacks is an error, not a silent fallback.
#pragma once

#include <atomic>
#include <cstdlib>
#include <string>

#include "common/check.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define ISEL_X86 1
// Target attributes of the dispatched clones; avx512 is the x86-64-v4 set (F, BW, DQ, VL).
#define ISEL_AVX2 __attribute__((target("avx2,fma,f16c")))
#define ISEL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c")))
#endif

namespace isel {

enum class SimdLevel { scalar = 0, avx2 = 1, avx512 = 2 };

inline const char* simd_name(SimdLevel s) {
  switch (s) {
    case SimdLevel::avx512: return "avx512";
    case SimdLevel::avx2: return "avx2";
    default: return "scalar";
  }
}

// The instruction set extensions each path executes (for benchmark reports).
inline const char* simd_flags(SimdLevel s) {
  switch (s) {
    case SimdLevel::avx512: return "avx512f avx512bw avx512dq avx512vl fma f16c";
    case SimdLevel::avx2: return "avx2 fma f16c";
    default: return "x86-64 baseline (sse2)";
  }
}

// The best path this CPU (and its operating system's saved vector state) supports.
inline SimdLevel simd_supported() {
#ifdef ISEL_X86
  static const SimdLevel best = [] {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      __builtin_cpu_supports("f16c");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    return avx512 ? SimdLevel::avx512 : avx2 ? SimdLevel::avx2 : SimdLevel::scalar;
  }();
  return best;
#else
  return SimdLevel::scalar;
#endif
}

inline SimdLevel parse_simd(const std::string& name, const char* source) {
  SimdLevel want;
  if (name == "auto" || name.empty()) return simd_supported();
  if (name == "scalar") want = SimdLevel::scalar;
  else if (name == "avx2") want = SimdLevel::avx2;
  else if (name == "avx512") want = SimdLevel::avx512;
  else fail(source, " must be 'scalar', 'avx2', 'avx512' or 'auto' (got '", name, "')");
  require(static_cast<int>(want) <= static_cast<int>(simd_supported()), source, " asks for '", name,
          "' but this CPU supports at most '", simd_name(simd_supported()), "'; ask for '",
          simd_name(simd_supported()), "' or 'auto' (the default) instead");
  return want;
}

namespace detail {
inline std::atomic<int>& simd_choice() {
  static std::atomic<int> choice{-1};  // -1: not chosen yet
  return choice;
}
}  // namespace detail

// The path the kernels take now.
inline SimdLevel simd_level() {
  int c = detail::simd_choice().load(std::memory_order_relaxed);
  if (c >= 0) return static_cast<SimdLevel>(c);
  const char* env = std::getenv("ITERSELECT_SIMD");
  SimdLevel s = env ? parse_simd(env, "ITERSELECT_SIMD") : simd_supported();
  detail::simd_choice().store(static_cast<int>(s), std::memory_order_relaxed);
  return s;
}

// Forces a path ("auto": the best supported). Takes effect for kernels started afterwards.
inline void set_simd_level(const std::string& name) {
  detail::simd_choice().store(static_cast<int>(parse_simd(name, "the SIMD path")), std::memory_order_relaxed);
}

}  // namespace isel
