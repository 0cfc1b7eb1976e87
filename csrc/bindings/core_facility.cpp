// _core bindings of facility location (lazy greedy, gain and update kernels): convert, release
// the GIL, call; no logic.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/arrays.hpp"
#include "bindings/call.hpp"
#include "bindings/facility_arrays.hpp"
#include "bindings/registry.hpp"
#include "facility/facility.hpp"

namespace isel::bindings {
namespace {

py::tuple greedy(const FacilityIndptr& indptr, const py::array& indices, const py::array& data, int64_t n_rows,
                 int64_t n_cols, const py::object& quality, double quality_weight, int64_t k,
                 const FacilitySelected& selected, int threads, const py::object& progress) {
  FacilityCall c = facility_call(indptr, indices, data, n_rows, n_cols, quality, quality_weight, k, selected);
  c.problem.threads = threads;
  call_kernel(progress, [&](const Hooks& hooks) {
    facility::greedy(c.problem, c.output, hooks);
    return 0;
  });
  return py::make_tuple(c.indices, c.gains, c.current, c.output.evaluations);
}

py::array_t<double> gains(const FacilityIndptr& indptr, const py::array& indices, const py::array& data,
                          int64_t n_candidates, int64_t n_points, const FacilityDoubles& current,
                          const py::object& quality, double quality_weight, int threads) {
  facility::Graph columns = facility_graph(indptr, indices, data, n_candidates, n_points);
  require(current.ndim() == 1 && current.shape(0) == n_points, "current must have ", n_points, " entries (got ",
          current.size(), ")");
  FacilityDoubles q;
  const double* qp = facility_optional(quality, q, n_candidates, "quality");
  py::array_t<double> out(n_candidates);
  double* o = out.mutable_data();
  py::gil_scoped_release release;
  facility::gains(columns, current.data(), qp, quality_weight, o, threads);
  return out;
}

int64_t update(const FacilityIndptr& indptr, const py::array& indices, const py::array& data, int64_t n_candidates,
               int64_t n_points, int64_t candidate, py::array current) {
  facility::Graph columns = facility_graph(indptr, indices, data, n_candidates, n_points);
  require(current.ndim() == 1 && current.shape(0) == n_points && holds<double>(current) &&
              (current.flags() & py::array::c_style) && current.writeable(),
          "current must be a writable contiguous float64 array of ", n_points, " entries");
  return facility::update(columns, candidate, static_cast<double*>(current.mutable_data()));
}

void register_facility(py::module_& m) {
  m.def("facility_greedy", &greedy, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_rows"),
        py::arg("n_cols"), py::arg("quality"), py::arg("quality_weight"), py::arg("k"), py::arg("selected"),
        py::arg("threads"), py::arg("progress"),
        "Exact lazy-greedy facility location on a CSR similarity graph (rows: points, columns: candidates); "
        "returns (indices, gains, current, evaluations).");
  m.def("facility_gains", &gains, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_candidates"),
        py::arg("n_points"), py::arg("current"), py::arg("quality"), py::arg("quality_weight"), py::arg("threads"),
        "Every candidate's marginal gain, from the column view (CSR of the transpose: rows are candidates).");
  m.def("facility_update", &update, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_candidates"),
        py::arg("n_points"), py::arg("candidate"), py::arg("current"),
        "current_i <- max(current_i, s_ij) in place for the points of candidate j; returns how many changed.");
}

ISEL_REGISTER_BINDINGS(register_facility);

}  // namespace
}  // namespace isel::bindings
