// iterselect._core: the CPU kernels. The functions come from the core_*.cpp bindings files.
#include "bindings/registry.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "iterselect CPU kernels (C++17, threads)";
  for (auto reg : isel::bindings::registry()) reg(m);
}
