// Progress and cancellation hooks: how a long kernel reports progress and learns that the user
// pressed Ctrl-C, without knowing anything about Python. The bindings fill `on_progress` with a
// function that re-acquires the GIL, checks signals and updates a progress bar.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>

namespace isel {

// Thrown by a kernel when its hooks ask it to stop; the bindings turn it into the pending
// Python exception (KeyboardInterrupt).
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

struct Hooks {
  // Called from the thread that started the kernel, between blocks or steps, with the work
  // done so far out of `total`. Returns false to stop the kernel.
  std::function<bool(int64_t done, int64_t total)> on_progress;

  void tick(int64_t done, int64_t total) const {
    if (on_progress && !on_progress(done, total)) throw Cancelled();
  }
};

}  // namespace isel
