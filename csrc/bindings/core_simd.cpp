// _core bindings of the SIMD path choice (common/simd.hpp): which vector path the CPU kernels
// take, and a way to force one (tests compare the paths bit for bit; benchmarks report it).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bindings/registry.hpp"
#include "common/simd.hpp"
#include "kcenter/bf16_filter.hpp"

namespace isel::bindings {
namespace {

namespace py = pybind11;

py::dict simd_info() {
  py::dict info;
  const SimdLevel active = simd_level();
  info["path"] = simd_name(active);
  info["flags"] = simd_flags(active);
  std::vector<std::string> paths;
  for (int s = 0; s <= static_cast<int>(simd_supported()); ++s) paths.push_back(simd_name(static_cast<SimdLevel>(s)));
  info["supported"] = paths;
  return info;
}

void register_simd(py::module_& m) {
  m.def("simd_info", &simd_info,
        "The CPU kernels' vector path: {'path', 'flags' (the extensions it executes), 'supported'}.");
  m.def("kcenter_filter", [] {
    py::dict info;
    info["filter"] = kcenter::filter_name(kcenter::filter_mode());
    std::vector<std::string> modes{"off", "scalar"};
    if (kcenter::amx_supported()) modes.emplace_back("amx");
    info["supported"] = modes;
    return info;
  }, "k-center's bf16 filter in front of the exact refresh (kcenter/bf16_filter.hpp): {'filter', 'supported'}.");
  m.def("set_kcenter_filter", &kcenter::set_filter_mode, py::arg("mode"),
        "Choose k-center's filter: 'off', 'scalar' (the bound in software, for tests), 'amx' "
        "(AMX-BF16 tiles) or 'auto' (amx where available, else off). Results are identical in every "
        "mode; ITERSELECT_KCENTER_FILTER sets the same at start-up.");
  m.def("set_simd", &set_simd_level, py::arg("path"),
        "Force the CPU kernels' vector path: 'scalar', 'avx2', 'avx512' or 'auto' (the best supported). "
        "Results are identical on every path; ITERSELECT_SIMD sets the same at start-up.");
}

ISEL_REGISTER_BINDINGS(register_simd);

}  // namespace
}  // namespace isel::bindings
