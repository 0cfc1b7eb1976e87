// parallel_for: the one way kernels use threads. A worker's exception is caught and rethrown on
// the caller's thread, so a bad input found inside a worker becomes a normal C++ exception.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace isel {

// Number of worker threads for a request: <= 0 means "all hardware threads".
inline int resolve_threads(int requested) {
  if (requested > 0) return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Calls fn(begin, end, worker) on `threads` contiguous, nearly equal chunks of [0, n).
// Chunks are contiguous so each worker streams its own rows (cache- and NUMA-friendly).
// Runs inline when one thread suffices, so small inputs pay no thread start-up.
template <class Fn>
void parallel_for(int64_t n, int threads, Fn&& fn, int64_t min_per_thread = 1024) {
  if (n <= 0) return;
  int t = std::max<int64_t>(1, std::min<int64_t>(resolve_threads(threads), n / std::max<int64_t>(1, min_per_thread)));
  if (t == 1) {
    fn(int64_t{0}, n, 0);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  auto run = [&](int w) {
    int64_t lo = n * w / t, hi = n * (w + 1) / t;
    try {
      fn(lo, hi, w);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  for (int w = 1; w < t; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace isel
