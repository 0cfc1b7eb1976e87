// How every binding calls a kernel: GIL released, progress and Ctrl-C through isel::Hooks.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <memory>
#include <utility>

#include "common/hooks.hpp"

namespace isel::bindings {

namespace py = pybind11;

// Hooks whose on_progress re-acquires the GIL at most every 50 ms, checks for Ctrl-C and
// calls `progress(done, total)` when it is not None. A pending Python error stops the kernel.
inline Hooks make_hooks(const py::object& progress) {
  Hooks hooks;
  auto last = std::make_shared<std::chrono::steady_clock::time_point>();
  const py::object* callback = &progress;  // outlives the kernel call (see call_kernel)
  hooks.on_progress = [callback, last](int64_t done, int64_t total) -> bool {
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - *last < std::chrono::milliseconds(50)) return true;
    *last = now;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) return false;
    if (!callback->is_none()) {
      try {
        (*callback)(done, total);
      } catch (py::error_already_set& e) {
        e.restore();
        return false;
      }
    }
    return true;
  };
  return hooks;
}

// Runs fn(hooks) with the GIL released; a cancelled kernel re-raises the pending Python error
// (KeyboardInterrupt after Ctrl-C).
template <class Fn>
auto call_kernel(const py::object& progress, Fn&& fn) {
  Hooks hooks = make_hooks(progress);
  try {
    py::gil_scoped_release release;
    return std::forward<Fn>(fn)(hooks);
  } catch (const Cancelled&) {
    throw py::error_already_set();
  }
}

}  // namespace isel::bindings
