// Raw views of numpy arrays for the kernels: C-contiguous check, shape, dtype tag.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "common/check.hpp"
#include "common/dtype.hpp"

namespace isel::bindings {

namespace py = pybind11;

// Whether `a` holds elements of type T, by numpy's type equivalence. Not by dtype identity: an
// array unpickled (e.g. from Ray's object store) carries a dtype object of its own.
template <class T>
inline bool holds(const py::array& a) {
  return py::isinstance<py::array_t<T>>(a);
}

// A C-contiguous (n, d) matrix whose items hold `dtype` (half types as 2-byte raw bits).
struct MatrixView {
  const void* data;
  int64_t n, d;
  DType dtype;
};

inline MatrixView matrix_view(const py::array& a, const std::string& dtype, const char* name) {
  require(a.ndim() == 2, name, " must be 2-D (got ", a.ndim(), " dimensions)");
  require(a.flags() & py::array::c_style, name, " must be C-contiguous");
  DType dt = parse_dtype(dtype);
  const py::ssize_t want = dt == DType::float64 ? 8 : dt == DType::float32 ? 4 : 2;
  require(a.itemsize() == want, name, " has items of ", a.itemsize(), " bytes; dtype ", dtype, " needs ", want);
  return {a.data(), a.shape(0), a.shape(1), dt};
}

}  // namespace isel::bindings
