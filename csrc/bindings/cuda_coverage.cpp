// _cuda / _cuda_emu bindings of weighted coverage: the CSR matrix and the vectors checked at the
// boundary (bindings/device_arrays.hpp), the GIL released, the kernel called; no logic here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/call.hpp"
#include "bindings/device_arrays.hpp"
#include "bindings/registry.hpp"
#include "coverage/coverage_cuda.hpp"

namespace isel::bindings {
namespace {

struct Csr {
  Array indptr, indices, data;
  coverage::CsrView view;
};

// indptr (n + 1) and indices (nnz) of one integer type, data (nnz) float32 or float64.
Csr csr(Arrays& arrays, const py::object& indptr_obj, const py::object& indices_obj, const py::object& data_obj,
        int64_t n_cols) {
  Csr x{arrays.get(indptr_obj, "indptr"), arrays.get(indices_obj, "indices"), arrays.get(data_obj, "data"), {}};
  expect_dtype(x.indptr, {Elem::int32, Elem::int64});
  expect_shape(x.indptr, {-1});
  require(x.indptr.shape[0] >= 2, "indptr must have n_rows + 1 >= 2 entries (got ", x.indptr.shape[0], ")");
  expect_dtype(x.indices, {x.indptr.elem});
  expect_shape(x.indices, {-1});
  expect_dtype(x.data, kMessageElems);
  expect_shape(x.data, {x.indices.shape[0]});
  x.view.n_rows = x.indptr.shape[0] - 1;
  x.view.n_cols = n_cols;
  x.view.nnz = x.indices.shape[0];
  x.view.indptr = x.indptr.data;
  x.view.indices = x.indices.data;
  x.view.data = x.data.data;
  x.view.index_type = x.indptr.elem == Elem::int32 ? coverage::IndexType::int32 : coverage::IndexType::int64;
  x.view.value_type = x.data.elem == Elem::float32 ? coverage::ValueType::float32 : coverage::ValueType::float64;
  return x;
}

int64_t greedy(const py::object& indptr, const py::object& indices, const py::object& data, int64_t n_cols,
               const py::object& weights_obj, double decay, int64_t k,
               const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& selected,
               const py::object& out_indices_obj, const py::object& out_gains_obj, const py::object& out_alpha_obj,
               const py::object& stream, int block_threads, int max_blocks, const py::object& progress) {
  Arrays arrays(stream);
  Csr x = csr(arrays, indptr, indices, data, n_cols);
  const int64_t n = x.view.n_rows;
  Array weights;
  if (!weights_obj.is_none()) weights = float64_vector(arrays, weights_obj, "weights", n, false);
  Array out_indices = int64_output(arrays, out_indices_obj, "out_indices", k);
  Array out_gains = float64_vector(arrays, out_gains_obj, "out_gains", k, true);
  Array out_alpha = float64_vector(arrays, out_alpha_obj, "out_alpha", n_cols, true);
  require(selected.ndim() == 1, "selected must be 1-D (got ", selected.ndim(), " dimensions)");

  coverage::GreedyProblem p;
  p.X = x.view;
  p.weights = weights_obj.is_none() ? nullptr : weights.as<double>();
  p.decay = decay;
  p.k = k;
  p.selected = selected.data();
  p.n_selected = selected.size();
  coverage::GreedyOutput out;
  out.indices = out_indices.as<int64_t>();
  out.gains = out_gains.as<double>();
  out.alpha = out_alpha.as<double>();
  auto dev = launch_on(arrays, block_threads, max_blocks);
  call_kernel(progress, [&](const Hooks& hooks) {
    device::DeviceGuard on(arrays.device());
    coverage::cuda::greedy(p, out, dev, hooks);
    return 0;
  });
  return out.refreshes;
}

void row_gains(const py::object& indptr, const py::object& indices, const py::object& data, int64_t n_cols,
               const py::object& alpha_obj, const py::object& weights_obj, const py::object& out_obj,
               const py::object& stream, int block_threads, int max_blocks) {
  Arrays arrays(stream);
  Csr x = csr(arrays, indptr, indices, data, n_cols);
  const int64_t n = x.view.n_rows;
  Array alpha = float64_vector(arrays, alpha_obj, "alpha", n_cols, false);
  Array weights;
  if (!weights_obj.is_none()) weights = float64_vector(arrays, weights_obj, "weights", n, false);
  Array out = float64_vector(arrays, out_obj, "out", n, true);
  auto dev = launch_on(arrays, block_threads, max_blocks);
  py::gil_scoped_release release;
  device::DeviceGuard on(arrays.device());
  coverage::cuda::row_gains(x.view, alpha.as<double>(), weights_obj.is_none() ? nullptr : weights.as<double>(),
                            out.as<double>(), dev);
}

int64_t decay_row(const py::object& indptr, const py::object& indices, const py::object& data, int64_t n_cols,
                  int64_t row, double decay, const py::object& alpha_obj, const py::object& stream, int block_threads,
                  int max_blocks) {
  Arrays arrays(stream);
  Csr x = csr(arrays, indptr, indices, data, n_cols);
  Array alpha = float64_vector(arrays, alpha_obj, "alpha", n_cols, true);
  auto dev = launch_on(arrays, block_threads, max_blocks);
  py::gil_scoped_release release;
  device::DeviceGuard on(arrays.device());
  return coverage::cuda::decay_row(x.view, row, decay, alpha.as<double>(), dev);
}

void register_coverage(py::module_& m) {
  m.def("coverage_greedy", &greedy, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_cols"),
        py::arg("weights"), py::arg("decay"), py::arg("k"), py::arg("selected"), py::arg("out_indices"),
        py::arg("out_gains"), py::arg("out_alpha"), py::kw_only(), py::arg("stream") = py::none(),
        py::arg("block_threads") = 256, py::arg("max_blocks") = 0, py::arg("progress") = py::none(),
        "Exact lazy-greedy weighted coverage on the device; writes the picks, their gains and the final column "
        "weights into the given arrays, returns the number of stale gains recomputed.");
  m.def("coverage_row_gains", &row_gains, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_cols"),
        py::arg("alpha"), py::arg("weights"), py::arg("out"), py::kw_only(), py::arg("stream") = py::none(),
        py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        "out[i] = w_i * sum_j alpha_j * x_ij for every row (the canonical summation order).");
  m.def("coverage_decay_row", &decay_row, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_cols"),
        py::arg("row"), py::arg("decay"), py::arg("alpha"), py::kw_only(), py::arg("stream") = py::none(),
        py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        "alpha_j <- decay * alpha_j (in place, on the device) where the row is nonzero; returns how many changed.");
}

ISEL_REGISTER_BINDINGS(register_coverage);

}  // namespace
}  // namespace isel::bindings
