// The similarity graph of the facility-location family and the two pieces of arithmetic every
// path shares: a candidate's marginal gain and the update after a pick. Header-only, because
// the CPU kernels (facility_cpu.cpp) and the CUDA kernels (facility.cu, built alone into
// _cuda and _cuda_emu) must run this very code: the gain below is compiled for the host and,
// under nvcc, for the device (--fmad=false keeps nvcc from fusing its multiply and add), so
// every path computes the same bits.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/check.hpp"
#include "common/parallel.hpp"

#if defined(__CUDACC__)
#define ISEL_HOST_DEVICE __host__ __device__
#else
#define ISEL_HOST_DEVICE
#endif

namespace isel::facility {

enum class IndexType { int32, int64 };
enum class ValueType { float32, float64 };

// A sparse matrix in CSR form: row r stores the entries (indices[e], data[e]) for e in
// [indptr[r], indptr[r + 1]). The greedy reads its similarity graph this way (rows: the points
// to represent, columns: the candidates) and its column view too (rows: candidates, columns:
// points), which is the same struct over the transpose.
struct Graph {
  int64_t n_rows = 0, n_cols = 0;
  const int64_t* indptr = nullptr;  // n_rows + 1, from 0, nondecreasing
  const void* indices = nullptr;    // indptr[n_rows] column ids
  const void* data = nullptr;       // indptr[n_rows] finite values >= 0
  IndexType index_type = IndexType::int32;
  ValueType value_type = ValueType::float64;
  int64_t nnz = -1;                 // entries indices and data hold, when known (the device path needs it)
};

// The same with its element types known.
template <class I, class V>
struct Typed {
  int64_t n_rows = 0, n_cols = 0;
  const int64_t* indptr = nullptr;
  const I* indices = nullptr;
  const V* data = nullptr;
};

template <class Fn>
decltype(auto) dispatch(const Graph& g, Fn&& fn) {
  auto typed = [&](auto index_tag, auto value_tag) {
    using I = decltype(index_tag);
    using V = decltype(value_tag);
    return fn(Typed<I, V>{g.n_rows, g.n_cols, g.indptr, static_cast<const I*>(g.indices),
                          static_cast<const V*>(g.data)});
  };
  if (g.index_type == IndexType::int32) {
    if (g.value_type == ValueType::float32) return typed(int32_t{}, float{});
    return typed(int32_t{}, double{});
  }
  if (g.value_type == ValueType::float32) return typed(int64_t{}, float{});
  return typed(int64_t{}, double{});
}

// A candidate's diversity gain: sum over the points i it represents of max(0, s - current_i),
// in double, in the order the column view stores them (ascending points). `current` only
// rises, so every term, and the sum (rounding is monotone), only falls: a stale gain is an
// upper bound of the current one, which makes the lazy greedy exact.
template <class I, class V>
ISEL_HOST_DEVICE inline double column_gain(const int64_t* colptr, const I* rows, const V* vals, int64_t j,
                                           const double* current) {
  double sum = 0.0;
  for (int64_t e = colptr[j], end = colptr[j + 1]; e < end; ++e) {
    const double s = static_cast<double>(vals[e]);
    const double c = current[rows[e]];
    sum = sum + (s > c ? s - c : 0.0);
  }
  return sum;
}

// QDIT's mix of diversity and quality (see facility.hpp): without quality, the diversity gain
// itself; with it, (1 - alpha) * diversity + alpha * quality_j.
struct Mix {
  const double* quality = nullptr;
  double diversity_weight = 1.0;  // 1 - alpha
  double quality_weight = 0.0;    // alpha

  Mix() = default;
  Mix(const double* q, double alpha) : quality(q), diversity_weight(1.0 - alpha), quality_weight(alpha) {}

  ISEL_HOST_DEVICE double operator()(int64_t j, double diversity) const {
    if (quality == nullptr) return diversity;
    return diversity_weight * diversity + quality_weight * quality[j];
  }
};

// The checks of a CSR matrix, one message each. check_csr runs them on the host; the device path
// (facility.cu) finds the lowest offending offset or row on the device and runs them on that one,
// so both say the same. `what` names the matrix in the messages.
inline void check_dimensions(int64_t n_rows, int64_t n_cols, bool int32_indices, const char* what) {
  require(n_rows >= 0 && n_cols >= 0, what, " has a negative shape (", n_rows, " x ", n_cols, ")");
  require(n_rows < (int64_t{1} << 32) - 1 && n_cols < (int64_t{1} << 32) - 1, what, " is ", n_rows, " x ", n_cols,
          "; at most 2^32 - 2 rows and columns are supported");
  if (int32_indices)  // the transpose stores row ids in the index type
    require(n_rows <= INT32_MAX && n_cols <= INT32_MAX, what, " is ", n_rows, " x ", n_cols,
            "; int32 indices need both dimensions below 2^31 (pass int64 indices)");
}

// indptr[i] given indptr[i - 1] (`before`; unused for i == 0).
inline void check_offset(const char* what, int64_t i, int64_t before, int64_t value) {
  if (i == 0) {
    require(value == 0, what, ".indptr[0] (", value, ") must be 0");
    return;
  }
  require(value >= before, what, ".indptr must be nondecreasing (indptr[", i, "] = ", value, " < indptr[", i - 1,
          "] = ", before, ")");
}

inline void check_stored(const char* what, int64_t last, int64_t nnz) {
  require(last == nnz, what, ".indptr[-1] (", last, ") must equal the number of stored entries (", nnz, ")");
}

// The `len` entries of row r: columns in [0, n_cols), values finite and >= 0.
template <class I, class V>
void check_row(const char* what, int64_t r, const I* cols, const V* vals, int64_t len, int64_t n_cols) {
  for (int64_t e = 0; e < len; ++e) {
    const int64_t c = static_cast<int64_t>(cols[e]);
    require(c >= 0 && c < n_cols, what, " row ", r, " has column ", c, " outside [0, ", n_cols, ")");
    const double v = static_cast<double>(vals[e]);
    require(std::isfinite(v) && v >= 0.0, what, " must hold finite values >= 0 (row ", r, ", column ", c, " holds ", v,
            ")");
  }
}

// In a column view (rows: candidates), candidate j lists point `point` right after `before`: the
// points of a column must ascend (the order column_gain sums in), and a repeat is a point whose
// row of the graph lists the column twice. `graph` names the graph the view is of.
inline void check_column_order(const char* graph, int64_t j, int64_t before, int64_t point) {
  require(point != before, graph, " row ", point, " lists column ", j, " more than once");
  require(point > before, graph, "'s column view must list the points of each column in ascending order (column ", j,
          " lists point ", point, " after point ", before, ")");
}

template <class I, class V>
void check_csr(const Typed<I, V>& g, const char* what, int threads) {
  check_dimensions(g.n_rows, g.n_cols, sizeof(I) == 4, what);
  require(g.indptr != nullptr, what, " has no indptr");
  check_offset(what, 0, 0, g.indptr[0]);
  for (int64_t r = 0; r < g.n_rows; ++r) check_offset(what, r + 1, g.indptr[r], g.indptr[r + 1]);
  parallel_for(g.n_rows, threads, [&](int64_t lo, int64_t hi, int) {
    for (int64_t r = lo; r < hi; ++r)
      check_row(what, r, g.indices + g.indptr[r], g.data + g.indptr[r], g.indptr[r + 1] - g.indptr[r], g.n_cols);
  }, 4096);
}

// The transpose of a checked CSR matrix, with its own storage. A stable counting sort: the
// entries of each output row come in ascending column order of the input (its rows), which is
// the order column_gain sums them in. A column listed twice in one input row is an error.
template <class I, class V>
struct Transposed {
  std::vector<int64_t> indptr;
  std::vector<I> indices;
  std::vector<V> data;
  int64_t n_rows = 0, n_cols = 0;

  Typed<I, V> view() const { return {n_rows, n_cols, indptr.data(), indices.data(), data.data()}; }
};

template <class I, class V>
Transposed<I, V> transpose(const Typed<I, V>& g, const char* what) {
  Transposed<I, V> t;
  t.n_rows = g.n_cols;
  t.n_cols = g.n_rows;
  const int64_t nnz = g.indptr[g.n_rows];
  t.indptr.assign(static_cast<size_t>(g.n_cols) + 1, 0);
  for (int64_t e = 0; e < nnz; ++e) ++t.indptr[static_cast<size_t>(g.indices[e]) + 1];
  for (int64_t c = 0; c < g.n_cols; ++c) t.indptr[c + 1] += t.indptr[c];
  t.indices.resize(static_cast<size_t>(nnz));
  t.data.resize(static_cast<size_t>(nnz));
  std::vector<int64_t> next(t.indptr.begin(), t.indptr.end() - 1);
  for (int64_t r = 0; r < g.n_rows; ++r)
    for (int64_t e = g.indptr[r]; e < g.indptr[r + 1]; ++e) {
      const int64_t slot = next[static_cast<size_t>(g.indices[e])]++;
      t.indices[slot] = static_cast<I>(r);
      t.data[slot] = g.data[e];
    }
  for (int64_t c = 0; c < g.n_cols; ++c)
    for (int64_t e = t.indptr[c] + 1; e < t.indptr[c + 1]; ++e)
      check_column_order(what, c, static_cast<int64_t>(t.indices[e - 1]), static_cast<int64_t>(t.indices[e]));
  return t;
}

}  // namespace isel::facility
