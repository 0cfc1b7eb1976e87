// _cuda / _cuda_emu bindings of k-center greedy. Arrays arrive as raw pointers (device memory
// for _cuda, host memory for _cuda_emu) that the Python layer keeps alive; no logic here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/call.hpp"
#include "bindings/registry.hpp"
#include "kcenter/kcenter_cuda.hpp"

namespace isel::bindings {
namespace {

void kcenter_greedy(uintptr_t X, const std::string& dtype, int64_t n, int64_t d, int64_t k,
                    const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& selected,
                    const std::string& metric, int64_t seed_index, uintptr_t stream, uintptr_t out_indices,
                    uintptr_t out_values, uintptr_t out_min_sq, int block_threads, int max_blocks,
                    const py::object& progress) {
  kcenter::cuda::DeviceProblem p;
  p.X = reinterpret_cast<const void*>(X);
  p.dtype = parse_dtype(dtype);
  p.n = n;
  p.d = d;
  p.k = k;
  p.selected = selected.data();
  p.n_selected = selected.size();
  p.metric = kcenter::parse_metric(metric);
  p.seed_index = seed_index;
  p.stream = reinterpret_cast<void*>(stream);
  p.block_threads = block_threads;
  p.max_blocks = max_blocks;
  kcenter::cuda::DeviceOutput out;
  out.indices = reinterpret_cast<int64_t*>(out_indices);
  out.values = reinterpret_cast<void*>(out_values);
  out.min_sq = reinterpret_cast<void*>(out_min_sq);
  call_kernel(progress, [&](const Hooks& hooks) {
    kcenter::cuda::greedy(p, out, hooks);
    return 0;
  });
}

void register_kcenter(py::module_& m) {
  m.def("kcenter_greedy", &kcenter_greedy, py::arg("X"), py::arg("dtype"), py::arg("n"), py::arg("d"), py::arg("k"),
        py::arg("selected"), py::arg("metric"), py::arg("seed_index"), py::arg("stream"), py::arg("out_indices"),
        py::arg("out_values"), py::arg("out_min_sq"), py::arg("block_threads"), py::arg("max_blocks"),
        py::arg("progress"),
        "k-center greedy on the device; writes indices, squared radii and squared min-distances.");
}

ISEL_REGISTER_BINDINGS(register_kcenter);

}  // namespace
}  // namespace isel::bindings
