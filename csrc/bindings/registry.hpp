// Each bindings file registers its functions here (ISEL_REGISTER_BINDINGS), and the module's
// init calls every registrar, so adding a kernel family never edits a shared file.
#pragma once

#include <pybind11/pybind11.h>

#include <vector>

namespace isel::bindings {

using Registrar = void (*)(pybind11::module_&);

inline std::vector<Registrar>& registry() {
  static std::vector<Registrar> all;
  return all;
}

struct AutoRegister {
  explicit AutoRegister(Registrar r) { registry().push_back(r); }
};

}  // namespace isel::bindings

#define ISEL_CONCAT_INNER(a, b) a##b
#define ISEL_CONCAT(a, b) ISEL_CONCAT_INNER(a, b)
#define ISEL_REGISTER_BINDINGS(fn) \
  static const ::isel::bindings::AutoRegister ISEL_CONCAT(isel_register_, __LINE__)(fn)
