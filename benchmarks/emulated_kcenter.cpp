// How fast is the CUDA emulation? k-center greedy (kcenter.cu) on the emulated grid against the
// CPU path (kcenter_cpu.cpp) on the same data, in one run. Gaussian float32 data, N=1000, d=64,
// k=20, 64-thread blocks unless given: emulated_kcenter [N d k block_threads].
// Build (from the repository root; -ffp-contract=off as CMake sets it):
//   g++ -std=c++17 -O2 -ffp-contract=off -DITERSELECT_CUDA_EMULATION=1 -Icsrc \
//       -x c++ csrc/kcenter/kcenter.cu -x none csrc/kcenter/kcenter_cpu.cpp \
//       benchmarks/emulated_kcenter.cpp -o build/emulated_kcenter -pthread
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "kcenter/kcenter.hpp"
#include "kcenter/kcenter_cuda.hpp"

using namespace isel::kcenter;

template <class Fn>
double best_of(int reps, Fn fn) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1000, d = argc > 2 ? std::atoll(argv[2]) : 64,
                k = argc > 3 ? std::atoll(argv[3]) : 20;
  const int bt = argc > 4 ? std::atoi(argv[4]) : 64;
  std::vector<float> X(n * d);
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  for (auto& v : X) v = normal(gen);

  std::vector<int64_t> cpu_idx(k), emu_idx(k);
  std::vector<double> radii(k), mind(n);
  std::vector<float> values(k), min_sq(n);
  Problem p;
  p.X = X.data();
  p.n = n;
  p.d = d;
  p.k = k;
  p.threads = 1;
  Output o;
  o.indices = cpu_idx.data();
  o.radii = radii.data();
  o.min_distances = mind.data();
  p.lazy = false;
  const double t_plain = best_of(3, [&] { greedy(p, o, isel::Hooks{}); });
  p.lazy = true;
  const double t_lazy = best_of(3, [&] { greedy(p, o, isel::Hooks{}); });

  cuda::DeviceProblem dp;
  dp.X = X.data();
  dp.n = n;
  dp.d = d;
  dp.k = k;
  dp.block_threads = bt;
  cuda::DeviceOutput dout;
  dout.indices = emu_idx.data();
  dout.values = values.data();
  dout.min_sq = min_sq.data();
  const double t_emu = best_of(3, [&] { cuda::greedy(dp, dout, isel::Hooks{}); });

  std::printf("k-center greedy, float32 Gaussian N=%lld d=%lld k=%lld, best of 3, one CPU thread\n",
              static_cast<long long>(n), static_cast<long long>(d), static_cast<long long>(k));
  std::printf("  %-36s %9.4f s   1.0x\n", "CPU plain loop", t_plain);
  std::printf("  %-36s %9.4f s   %.2fx\n", "CPU lazy", t_lazy, t_lazy / t_plain);
  std::printf("  %-28s(%4d thr) %9.4f s   %.0fx   same picks: %s\n", "CUDA kernels, emulated grid", bt, t_emu,
              t_emu / t_plain, cpu_idx == emu_idx ? "yes" : "NO");
  return cpu_idx == emu_idx ? 0 : 1;
}
