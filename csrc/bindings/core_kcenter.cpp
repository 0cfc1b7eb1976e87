// _core bindings of k-center greedy: convert arrays, release the GIL, call; no logic.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/arrays.hpp"
#include "bindings/call.hpp"
#include "bindings/registry.hpp"
#include "kcenter/kcenter.hpp"

namespace isel::bindings {
namespace {

py::tuple kcenter_greedy(const py::array& X, const std::string& dtype, int64_t k,
                         const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& selected,
                         const std::string& metric, int64_t seed_index, int threads, bool lazy,
                         bool with_min_distances, const py::object& progress) {
  MatrixView x = matrix_view(X, dtype, "X");
  kcenter::Problem p;
  p.X = x.data;
  p.dtype = x.dtype;
  p.n = x.n;
  p.d = x.d;
  p.k = k;
  p.selected = selected.data();
  p.n_selected = selected.size();
  p.metric = kcenter::parse_metric(metric);
  p.seed_index = seed_index;
  p.threads = threads;
  p.lazy = lazy;
  require(k >= 1, "k (", k, ") must be at least 1");
  py::array_t<int64_t> indices(k);
  py::array_t<double> radii(k);
  py::array_t<double> min_distances(with_min_distances ? x.n : 0);
  kcenter::Output out;
  out.indices = indices.mutable_data();
  out.radii = radii.mutable_data();
  out.min_distances = with_min_distances ? min_distances.mutable_data() : nullptr;
  call_kernel(progress, [&](const Hooks& hooks) {
    kcenter::greedy(p, out, hooks);
    return 0;
  });
  return py::make_tuple(indices, radii, with_min_distances ? py::object(min_distances) : py::none(),
                        out.distance_evaluations, out.final_evaluations, out.filtered_evaluations);
}

int64_t kcenter_update_step(const py::array& X, const std::string& dtype, int64_t center,
                            const std::string& metric, const py::object& inv_norms, py::array min_sq,
                            const py::object& mask, int threads) {
  MatrixView x = matrix_view(X, dtype, "X");
  const py::ssize_t acc_size = x.dtype == DType::float64 ? 8 : 4;
  require(min_sq.ndim() == 1 && min_sq.shape(0) == x.n && min_sq.itemsize() == acc_size &&
              (min_sq.flags() & py::array::c_style) && min_sq.writeable(),
          "min_sq must be a writable contiguous array of ", x.n, " float", acc_size * 8, " values");
  const void* inv = nullptr;
  py::array inv_arr;
  if (!inv_norms.is_none()) {
    inv_arr = inv_norms.cast<py::array>();
    require(inv_arr.ndim() == 1 && inv_arr.shape(0) == x.n && inv_arr.itemsize() == acc_size &&
                (inv_arr.flags() & py::array::c_style),
            "inv_norms must be a contiguous array of ", x.n, " float", acc_size * 8, " values");
    inv = inv_arr.data();
  }
  const uint8_t* m = nullptr;
  py::array_t<uint8_t, py::array::c_style | py::array::forcecast> mask_arr;
  if (!mask.is_none()) {
    mask_arr = mask.cast<py::array_t<uint8_t, py::array::c_style | py::array::forcecast>>();
    require(mask_arr.ndim() == 1 && mask_arr.shape(0) == x.n, "mask must have ", x.n, " entries");
    m = mask_arr.data();
  }
  void* ms = min_sq.mutable_data();
  py::gil_scoped_release release;
  return kcenter::update_step(x.data, x.dtype, x.n, x.d, center, kcenter::parse_metric(metric), inv, ms, m, threads);
}

void register_kcenter(py::module_& m) {
  m.def("kcenter_greedy", &kcenter_greedy, py::arg("X"), py::arg("dtype"), py::arg("k"), py::arg("selected"),
        py::arg("metric"), py::arg("seed_index"), py::arg("threads"), py::arg("lazy"),
        py::arg("with_min_distances"), py::arg("progress"),
        "Exact k-center greedy; returns (indices, radii, min_distances or None, evaluations while picking, "
        "evaluations after, of all evaluations those the bf16 filter ruled out).");
  m.def("kcenter_update_step", &kcenter_update_step, py::arg("X"), py::arg("dtype"), py::arg("center"),
        py::arg("metric"), py::arg("inv_norms"), py::arg("min_sq"), py::arg("mask"), py::arg("threads"),
        "One plain-loop step: min_sq <- min(min_sq, d(X, X[center])) in place; returns the argmax.");
}

ISEL_REGISTER_BINDINGS(register_kcenter);

}  // namespace
}  // namespace isel::bindings
