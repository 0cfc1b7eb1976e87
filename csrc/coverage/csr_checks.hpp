// The checks of a coverage matrix (CSR, nonnegative and finite), with one message each, shared by
// the CPU path and the device path (which finds the lowest offending row on the device and
// re-checks that row on the host, so both throw the same text for the same matrix).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/check.hpp"
#include "coverage/coverage.hpp"

namespace isel::coverage::checks {

inline void rows(int64_t n_rows, int64_t n_cols) {
  require(n_rows >= 1 && n_cols >= 0, "X must have at least one row (got ", n_rows, " x ", n_cols, ")");
}

// indptr[0] must be 0; indptr[i] (i >= 1) must not be below indptr[i - 1].
template <class I>
void indptr_entry(int64_t i, I previous, I value) {
  if (i == 0) require(value == 0, "X.indptr[0] (", static_cast<int64_t>(value), ") must be 0");
  else
    require(value >= previous, "X.indptr must be nondecreasing (indptr[", i, "] = ", static_cast<int64_t>(value),
            " < indptr[", i - 1, "] = ", static_cast<int64_t>(previous), ")");
}

template <class I>
bool entry_ok(I col, double value, int64_t n_cols) {
  return col >= 0 && col < n_cols && std::isfinite(value) && value >= 0.0;
}

// Throws for the first bad entry of row `row` (its `len` entries start at cols / values).
template <class I, class V>
void row(int64_t row, const I* cols, const V* values, int64_t len, int64_t n_cols) {
  for (int64_t e = 0; e < len; ++e) {
    const int64_t j = cols[e];
    require(j >= 0 && j < n_cols, "X row ", row, " has column ", j, " outside [0, ", n_cols, ")");
    const double v = static_cast<double>(values[e]);
    require(std::isfinite(v) && v >= 0.0, "X must be nonnegative and finite (row ", row, ", column ", j, " holds ",
            v, ")");
  }
}

// indptr[n] must equal the number of stored entries, when the caller knows it (nnz >= 0).
inline void stored_entries(int64_t last, int64_t nnz) {
  if (nnz >= 0)
    require(last == nnz, "X.indptr[-1] (", last, ") must equal the number of stored entries (", nnz, ")");
}

inline void decay(double b) {
  require(std::isfinite(b) && b >= 0.0 && b <= 1.0, "decay (", b, ") must be in [0, 1]");
}

inline void row_index(int64_t row, int64_t n_rows) {
  require(row >= 0 && row < n_rows, "row (", row, ") must be in [0, ", n_rows - 1, "]");
}

inline void weight(int64_t i, double w) {
  require(std::isfinite(w) && w >= 0.0, "weights[", i, "] (", w, ") must be finite and nonnegative");
}

// The greedy's host-side arguments: decay, the selected rows (host array) and k.
inline void selection(const GreedyProblem& p) {
  decay(p.decay);
  check_selection(p.selected, p.n_selected, p.X.n_rows, p.k, "rows");
}

}  // namespace isel::coverage::checks
