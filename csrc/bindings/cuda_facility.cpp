// _cuda / _cuda_emu bindings of facility location: the graph, its column view, quality and the
// outputs checked at the boundary (bindings/device_arrays.hpp), the GIL released, the kernel
// called; no logic here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/call.hpp"
#include "bindings/device_arrays.hpp"
#include "bindings/registry.hpp"
#include "facility/facility_cuda.hpp"

namespace isel::bindings {
namespace {

struct GraphArrays {
  Array indptr, indices, data;
  facility::Graph view;
};

// A CSR view: int64 indptr (n_rows + 1), int32 or int64 indices (`index` when given), data
// float32 or float64 (`value` when given) with one value per index. names: indptr, indices, data.
// The caller sets view.n_cols.
GraphArrays graph(Arrays& arrays, const py::object& indptr, const py::object& indices, const py::object& data,
                  const char* const names[3], Elem index = Elem::other, Elem value = Elem::other) {
  GraphArrays g{arrays.get(indptr, names[0]), arrays.get(indices, names[1]), arrays.get(data, names[2]), {}};
  expect_dtype(g.indptr, {Elem::int64});
  expect_shape(g.indptr, {-1});
  require(g.indptr.shape[0] >= 1, names[0], " must have n_rows + 1 >= 1 entries (got 0)");
  if (index == Elem::other) expect_dtype(g.indices, {Elem::int32, Elem::int64});
  else expect_dtype(g.indices, {index});
  expect_shape(g.indices, {-1});
  if (value == Elem::other) expect_dtype(g.data, kMessageElems);
  else expect_dtype(g.data, {value});
  expect_shape(g.data, {g.indices.shape[0]});
  g.view.n_rows = g.indptr.shape[0] - 1;
  g.view.nnz = g.indices.shape[0];
  g.view.indptr = g.indptr.as<int64_t>();
  g.view.indices = g.indices.data;
  g.view.data = g.data.data;
  g.view.index_type = g.indices.elem == Elem::int32 ? facility::IndexType::int32 : facility::IndexType::int64;
  g.view.value_type = g.data.elem == Elem::float32 ? facility::ValueType::float32 : facility::ValueType::float64;
  return g;
}

void greedy(const py::object& indptr, const py::object& indices, const py::object& data, const py::object& col_indptr,
            const py::object& col_indices, const py::object& col_data, const py::object& quality_obj,
            double quality_weight, int64_t k, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& selected,
            const py::object& out_indices_obj, const py::object& out_gains_obj, const py::object& out_current_obj,
            const py::object& stream, int block_threads, int max_blocks, const py::object& progress) {
  require(k >= 1, "k (", k, ") must be at least 1");
  Arrays arrays(stream);
  static const char* const kRows[3] = {"indptr", "indices", "data"};
  static const char* const kColumns[3] = {"col_indptr", "col_indices", "col_data"};
  GraphArrays rows = graph(arrays, indptr, indices, data, kRows);
  GraphArrays cols = graph(arrays, col_indptr, col_indices, col_data, kColumns, rows.indices.elem, rows.data.elem);
  const int64_t n_cand = cols.view.n_rows;  // the column view's rows are the candidates
  rows.view.n_cols = n_cand;
  cols.view.n_cols = rows.view.n_rows;
  Array quality;
  if (!quality_obj.is_none()) quality = float64_vector(arrays, quality_obj, "quality", n_cand, false);
  Array out_indices = int64_output(arrays, out_indices_obj, "out_indices", k);
  Array out_gains = float64_vector(arrays, out_gains_obj, "out_gains", k, true);
  Array out_current = float64_vector(arrays, out_current_obj, "out_current", rows.view.n_rows, true);
  require(selected.ndim() == 1, "selected must be 1-D (got ", selected.ndim(), " dimensions)");

  facility::Problem p;
  p.graph = rows.view;
  p.quality = quality_obj.is_none() ? nullptr : quality.as<double>();
  p.quality_weight = quality_weight;
  p.k = k;
  p.selected = selected.data();
  p.n_selected = selected.size();
  facility::Output out;
  out.indices = out_indices.as<int64_t>();
  out.gains = out_gains.as<double>();
  out.current = out_current.as<double>();
  auto dev = launch_on(arrays, block_threads, max_blocks);
  call_kernel(progress, [&](const Hooks& hooks) {
    device::DeviceGuard on(arrays.device());
    facility::cuda::greedy(p, cols.view, out, dev, hooks);
    return 0;
  });
}

void register_facility(py::module_& m) {
  m.def("facility_greedy", &greedy, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("col_indptr"),
        py::arg("col_indices"), py::arg("col_data"), py::arg("quality"), py::arg("quality_weight"), py::arg("k"),
        py::arg("selected"), py::arg("out_indices"), py::arg("out_gains"), py::arg("out_current"), py::kw_only(),
        py::arg("stream") = py::none(), py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        py::arg("progress") = py::none(),
        "Facility-location greedy on the device. The graph (CSR: rows are points, columns candidates) and its "
        "column view (CSR of the transpose, each candidate's points ascending) as device arrays; writes the picks "
        "(k, int64), their gains (k) and each point's final representation (n_points), float64. `stream`: the "
        "integer handle of the CUDA stream to run on.");
}

ISEL_REGISTER_BINDINGS(register_facility);

}  // namespace
}  // namespace isel::bindings
