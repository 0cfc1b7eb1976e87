// Runtime dtype tags and the dispatch from a tag to the C++ storage type.
#pragma once

#include <string>

#include "common/check.hpp"
#include "common/half.hpp"

namespace isel {

enum class DType { float16, bfloat16, float32, float64 };

inline DType parse_dtype(const std::string& name) {
  if (name == "float16") return DType::float16;
  if (name == "bfloat16") return DType::bfloat16;
  if (name == "float32") return DType::float32;
  if (name == "float64") return DType::float64;
  fail("unsupported dtype '", name, "' (expected float16, bfloat16, float32 or float64)");
}

// Calls fn(T{}) with T the storage type of `dt` (half types as their raw-bits structs).
template <class Fn>
decltype(auto) dispatch_dtype(DType dt, Fn&& fn) {
  switch (dt) {
    case DType::float16: return fn(half_bits{});
    case DType::bfloat16: return fn(bfloat16_bits{});
    case DType::float32: return fn(float{});
    default: return fn(double{});
  }
}

}  // namespace isel
