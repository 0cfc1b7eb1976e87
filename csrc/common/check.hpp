// Argument checks that throw std::invalid_argument with the offending values; pybind11 turns it
// into Python's ValueError. Used at the top of every kernel entry point (the Python layer has
// already validated; these guard direct C++ callers and keep a bad call from ever aborting).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace isel {

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw std::invalid_argument(out.str());
}

template <class... Parts>
inline void require(bool ok, const Parts&... parts) {
  if (!ok) fail(parts...);
}

// The one message for a zero row under the cosine metric, on every path (CPU and CUDA); callers
// report the lowest such row.
[[noreturn]] inline void fail_zero_norm(long long row) {
  fail("row ", row, " of X has zero norm; the cosine metric is undefined for it");
}

}  // namespace isel
