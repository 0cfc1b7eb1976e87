// iterselect._cuda (nvcc-built kernels) and iterselect._cuda_emu (the same .cu sources built
// with the host compiler against the CPU emulation of the grid). The cuda_*.cpp bindings files
// take arrays through DLPack (bindings/device_arrays.hpp): device memory for _cuda, host memory
// (numpy, CPU torch tensors) for _cuda_emu, so one source serves both.
#include "bindings/registry.hpp"

#ifndef ISEL_CUDA_MODULE
#error "ISEL_CUDA_MODULE must name the module (_cuda or _cuda_emu)"
#endif

PYBIND11_MODULE(ISEL_CUDA_MODULE, m) {
  m.doc() = "iterselect CUDA kernels";
  m.attr("emulation") = pybind11::bool_(ISEL_EMULATION != 0);
  for (auto reg : isel::bindings::registry()) reg(m);
}
