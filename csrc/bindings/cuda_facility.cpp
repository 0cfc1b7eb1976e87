// _cuda / _cuda_emu bindings of facility location. The graph and the outputs are host arrays
// (the kernel copies the graph to the device once); no logic here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/call.hpp"
#include "bindings/facility_arrays.hpp"
#include "bindings/registry.hpp"
#include "facility/facility_cuda.hpp"

namespace isel::bindings {
namespace {

py::tuple facility_greedy(const FacilityIndptr& indptr, const py::array& indices, const py::array& data, int64_t n_rows,
                          int64_t n_cols, const py::object& quality, double quality_weight, int64_t k,
                          const FacilitySelected& selected, uintptr_t stream, int block_threads, int max_blocks,
                          const py::object& progress) {
  FacilityCall c = facility_call(indptr, indices, data, n_rows, n_cols, quality, quality_weight, k, selected);
  facility::cuda::Device dev;
  dev.stream = reinterpret_cast<void*>(stream);
  dev.block_threads = block_threads;
  dev.max_blocks = max_blocks;
  call_kernel(progress, [&](const Hooks& hooks) {
    facility::cuda::greedy(c.problem, c.output, dev, hooks);
    return 0;
  });
  return py::make_tuple(c.indices, c.gains, c.current);
}

void register_facility(py::module_& m) {
  m.def("facility_greedy", &facility_greedy, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_rows"),
        py::arg("n_cols"), py::arg("quality"), py::arg("quality_weight"), py::arg("k"), py::arg("selected"),
        py::arg("stream"), py::arg("block_threads"), py::arg("max_blocks"), py::arg("progress"),
        "Facility-location greedy on the device (graph copied from host memory); returns (indices, gains, current).");
}

ISEL_REGISTER_BINDINGS(register_facility);

}  // namespace
}  // namespace isel::bindings
