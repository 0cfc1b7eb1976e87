// numpy views of a facility-location graph and its optional arrays for the _core bindings (the
// _cuda / _cuda_emu bindings check device arrays instead: cuda_facility.cpp).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/arrays.hpp"
#include "common/check.hpp"
#include "facility/facility.hpp"

namespace isel::bindings {

namespace py = pybind11;

using FacilityIndptr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using FacilityDoubles = py::array_t<double, py::array::c_style | py::array::forcecast>;

// A CSR graph: int64 indptr (n_rows + 1), int32 or int64 indices, float32 or float64 data.
inline facility::Graph facility_graph(const FacilityIndptr& indptr, const py::array& indices, const py::array& data,
                                      int64_t n_rows, int64_t n_cols) {
  require(n_rows >= 0 && n_cols >= 0, "the graph's shape (", n_rows, ", ", n_cols, ") must be nonnegative");
  require(indptr.ndim() == 1 && indptr.shape(0) == n_rows + 1, "indptr must have ", n_rows + 1, " entries (got ",
          indptr.size(), ")");
  for (const py::array* a : {&indices, &data})
    require(a->ndim() == 1 && (a->flags() & py::array::c_style), "indices and data must be 1-D and contiguous");
  const int64_t nnz = indptr.data()[n_rows];
  require(indices.shape(0) == nnz && data.shape(0) == nnz, "indptr[-1] (", nnz, ") must equal the length of indices (",
          indices.shape(0), ") and of data (", data.shape(0), ")");
  facility::Graph g;
  g.n_rows = n_rows;
  g.n_cols = n_cols;
  g.indptr = indptr.data();
  g.indices = indices.data();
  g.data = data.data();
  if (holds<int32_t>(indices)) g.index_type = facility::IndexType::int32;
  else if (holds<int64_t>(indices)) g.index_type = facility::IndexType::int64;
  else fail("indices must be int32 or int64");
  if (holds<float>(data)) g.value_type = facility::ValueType::float32;
  else if (holds<double>(data)) g.value_type = facility::ValueType::float64;
  else fail("data must be float32 or float64");
  return g;
}

// An optional float64 array of n entries (None: nullptr); `keep` holds the converted array.
inline const double* facility_optional(const py::object& o, FacilityDoubles& keep, int64_t n, const char* name) {
  if (o.is_none()) return nullptr;
  keep = o.cast<FacilityDoubles>();
  require(keep.ndim() == 1 && keep.shape(0) == n, name, " must have ", n, " entries (got ", keep.size(), ")");
  return keep.data();
}

using FacilitySelected = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// What the greedy binding builds: the problem (pointing into the caller's arrays and into
// `quality`) and the output arrays the kernel fills.
struct FacilityCall {
  facility::Problem problem;
  FacilityDoubles quality;
  py::array_t<int64_t> indices;
  py::array_t<double> gains, current;
  facility::Output output;
};

inline FacilityCall facility_call(const FacilityIndptr& indptr, const py::array& indices, const py::array& data,
                                  int64_t n_rows, int64_t n_cols, const py::object& quality, double quality_weight,
                                  int64_t k, const FacilitySelected& selected) {
  require(k >= 1, "k (", k, ") must be at least 1");
  FacilityCall c;
  c.problem.graph = facility_graph(indptr, indices, data, n_rows, n_cols);
  c.problem.quality = facility_optional(quality, c.quality, n_cols, "quality");
  c.problem.quality_weight = quality_weight;
  c.problem.k = k;
  c.problem.selected = selected.data();
  c.problem.n_selected = selected.size();
  c.indices = py::array_t<int64_t>(k);
  c.gains = py::array_t<double>(k);
  c.current = py::array_t<double>(n_rows);
  c.output.indices = c.indices.mutable_data();
  c.output.gains = c.gains.mutable_data();
  c.output.current = c.current.mutable_data();
  return c;
}

}  // namespace isel::bindings
