// Argument checks that throw std::invalid_argument with the offending values; pybind11 turns it
// into Python's ValueError. Used at the top of every kernel entry point (the Python layer has
// already validated; these guard direct C++ callers and keep a bad call from ever aborting).
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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

// The budget check of the greedy selectors: `selected` holds distinct indices into [0, n), fewer
// than n of them, and k is in [1, n - n_selected]; `items` names what is picked ("rows", ...).
inline void check_selection(const int64_t* selected, int64_t n_selected, int64_t n, int64_t k, const char* items) {
  require(n_selected >= 0 && n_selected < n, "selected has ", n_selected, " ", items,
          "; it must have fewer than the number of ", items, " (", n, ")");
  std::vector<uint8_t> seen(static_cast<size_t>(n), 0);
  for (int64_t s = 0; s < n_selected; ++s) {
    const int64_t i = selected[s];
    require(i >= 0 && i < n, "selected[", s, "] (", i, ") must be in [0, ", n - 1, "]");
    require(!seen[i], "selected[", s, "] (", i, ") appears more than once");
    seen[i] = 1;
  }
  const int64_t room = n - n_selected;
  require(k >= 1 && k <= room, "k (", k, ") must be in [1, ", room, "], the number of ", items, " not selected");
}

// The one message for a zero row under the cosine metric, on every path (CPU and CUDA); callers
// report the lowest such row.
[[noreturn]] inline void fail_zero_norm(long long row) {
  fail("row ", row, " of X has zero norm; the cosine metric is undefined for it");
}

}  // namespace isel
