// _cuda / _cuda_emu bindings of k-center greedy: arrays checked at the boundary
// (bindings/device_arrays.hpp), the GIL released, the kernel called; no logic here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/call.hpp"
#include "bindings/device_arrays.hpp"
#include "bindings/registry.hpp"
#include "kcenter/kcenter_cuda.hpp"

namespace isel::bindings {
namespace {

void kcenter_greedy(const py::object& X_obj, int64_t k,
                    const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& selected,
                    const std::string& metric, int64_t seed_index, const py::object& indices_obj,
                    const py::object& values_obj, const py::object& min_sq_obj, const py::object& stream,
                    int block_threads, int max_blocks, const py::object& progress) {
  Arrays arrays(stream);
  Array X = arrays.get(X_obj, "X");
  expect_dtype(X, kFloatElems);
  expect_shape(X, {-1, -1});
  const int64_t n = X.shape[0];
  const Elem acc = X.elem == Elem::float64 ? Elem::float64 : Elem::float32;
  Array indices = arrays.get(indices_obj, "indices"), values = arrays.get(values_obj, "values"),
        min_sq = arrays.get(min_sq_obj, "min_sq");
  expect_dtype(indices, {Elem::int64});
  expect_shape(indices, {k});
  expect_dtype(values, {acc});
  expect_shape(values, {k});
  expect_dtype(min_sq, {acc});
  expect_shape(min_sq, {n});
  for (const Array* out : {&indices, &values, &min_sq}) expect_writable(*out);
  require(selected.ndim() == 1, "selected must be 1-D (got ", selected.ndim(), " dimensions)");

  kcenter::cuda::DeviceProblem p;
  p.X = X.data;
  p.dtype = X.float_dtype();
  p.n = n;
  p.d = X.shape[1];
  p.k = k;
  p.selected = selected.data();
  p.n_selected = selected.size();
  p.metric = kcenter::parse_metric(metric);
  p.seed_index = seed_index;
  p.stream = arrays.stream();
  p.block_threads = block_threads;
  p.max_blocks = max_blocks;
  kcenter::cuda::DeviceOutput out;
  out.indices = indices.as<int64_t>();
  out.values = values.data;
  out.min_sq = min_sq.data;
  call_kernel(progress, [&](const Hooks& hooks) {
    device::DeviceGuard on(arrays.device());
    kcenter::cuda::greedy(p, out, hooks);
    return 0;
  });
}

void register_kcenter(py::module_& m) {
  m.def("kcenter_greedy", &kcenter_greedy, py::arg("X"), py::arg("k"), py::arg("selected"), py::arg("metric"),
        py::arg("seed_index"), py::arg("indices"), py::arg("values"), py::arg("min_sq"), py::kw_only(),
        py::arg("stream") = py::none(), py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        py::arg("progress") = py::none(),
        "k-center greedy on the device. X: (n, d) float16/bfloat16/float32/float64; writes indices (k, int64), "
        "squared radii `values` (k) and squared min-distances `min_sq` (n), float32 (float64 for float64 X). "
        "Arrays: DLPack capsules or objects with __dlpack__ / __cuda_array_interface__, checked here; "
        "`stream`: the integer handle of the CUDA stream to run on.");
}

ISEL_REGISTER_BINDINGS(register_kcenter);

}  // namespace
}  // namespace isel::bindings
