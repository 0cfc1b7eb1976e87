// Kernel checks for k-center greedy: the CUDA kernels (kcenter.cu) on the emulated grid against
// the CPU path (kcenter_cpu.cpp, lazy and plain loops) on small inputs. The design makes them
// bit-identical (the same float operations in the same order, common/distance.hpp), so picks,
// radii and every min-distance must be equal, not close.
//
// The other kernel families add their own <family>_emulated.cpp next to this one (see
// harness.hpp); the sanitizer builds (tools/sanitize.sh) then run them too.
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/cuda_compat.cuh"
#include "kcenter/kcenter.hpp"
#include "kcenter/kcenter_cuda.hpp"
#include "tests/harness.hpp"

namespace {

using isel::DType;
using isel::emu::Schedule;
using isel::kcenter::Metric;
namespace kc = isel::kcenter;

const char* dtype_name(DType t) {
  switch (t) {
    case DType::float16: return "float16";
    case DType::bfloat16: return "bfloat16";
    case DType::float32: return "float32";
    default: return "float64";
  }
}

struct Case {
  const char* what;
  int64_t n, d, k;
  DType dtype = DType::float32;
  Metric metric = Metric::euclidean;
  std::vector<int64_t> selected = {};
  int block_threads = 64;
  int max_blocks = 0;
  int64_t seed_index = 0;
  int duplicates = 0;  // rows copied from earlier rows: exact ties in every distance
  int64_t pool_batch = 0;
  std::vector<int64_t> zero_rows = {};  // rows set to zero (the cosine metric must refuse them)
};

// X in the case's storage type: normal floats rounded to it, some rows repeated.
std::vector<unsigned char> make_data(const Case& c, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<double> values(c.n * c.d);
  for (auto& v : values) v = normal(gen);
  for (int r = 0; r < c.duplicates; ++r) {
    int64_t dst = c.n - 1 - 3 * r, src = (7 * r) % std::max<int64_t>(1, c.n / 2);
    if (dst > src) std::memcpy(&values[dst * c.d], &values[src * c.d], sizeof(double) * c.d);
  }
  for (int64_t r : c.zero_rows) std::fill(values.begin() + r * c.d, values.begin() + (r + 1) * c.d, 0.0);
  const size_t elem = c.dtype == DType::float64 ? 8 : c.dtype == DType::float32 ? 4 : 2;
  std::vector<unsigned char> out(values.size() * elem);
  for (size_t i = 0; i < values.size(); ++i) {
    const float f = static_cast<float>(values[i]);
    switch (c.dtype) {
      case DType::float16: {
        uint16_t h = isel::float_to_half(f);
        std::memcpy(&out[2 * i], &h, 2);
        break;
      }
      case DType::bfloat16: {
        uint16_t b = isel::float_to_bfloat16(f);
        std::memcpy(&out[2 * i], &b, 2);
        break;
      }
      case DType::float32: std::memcpy(&out[4 * i], &f, 4); break;
      default: std::memcpy(&out[8 * i], &values[i], 8);
    }
  }
  return out;
}

struct Result {
  std::vector<int64_t> indices;
  std::vector<double> radii, min_distances;
};

// The case's data and settings, which the CPU and the CUDA problem structs name alike.
template <class Problem>
void describe(const Case& c, const std::vector<unsigned char>& X, Problem& p) {
  p.X = X.data();
  p.dtype = c.dtype;
  p.n = c.n;
  p.d = c.d;
  p.k = c.k;
  p.selected = c.selected.empty() ? nullptr : c.selected.data();
  p.n_selected = static_cast<int64_t>(c.selected.size());
  p.metric = c.metric;
  p.seed_index = c.seed_index;
}

Result run_cpu(const Case& c, const std::vector<unsigned char>& X, bool lazy, int threads) {
  kc::Problem p;
  describe(c, X, p);
  p.threads = threads;
  p.lazy = lazy;
  Result r;
  r.indices.assign(c.k, -1);
  r.radii.assign(c.k, -1.0);
  r.min_distances.assign(c.n, -1.0);
  kc::Output o;
  o.indices = r.indices.data();
  o.radii = r.radii.data();
  o.min_distances = r.min_distances.data();
  kc::greedy(p, o, isel::Hooks{});
  return r;
}

// The emulated CUDA path; host pointers stand in for device pointers.
Result run_emulated(const Case& c, const std::vector<unsigned char>& X, Schedule schedule) {
  kc::cuda::DeviceProblem p;
  describe(c, X, p);
  p.block_threads = c.block_threads;
  p.max_blocks = c.max_blocks;
  p.pool_batch = c.pool_batch;
  const bool wide = c.dtype == DType::float64;
  std::vector<int64_t> indices(c.k, -1);
  std::vector<double> values_d(c.k), min_d(c.n);
  std::vector<float> values_f(c.k), min_f(c.n);
  kc::cuda::DeviceOutput o;
  o.indices = indices.data();
  o.values = wide ? static_cast<void*>(values_d.data()) : values_f.data();
  o.min_sq = wide ? static_cast<void*>(min_d.data()) : min_f.data();
  {
    isel::emu::ScheduleScope scope(schedule);
    kc::cuda::greedy(p, o, isel::Hooks{});
  }
  // The kernels keep squared (scaled) distances; the CPU reports them through the same function.
  Result r;
  r.indices = indices;
  for (int64_t t = 0; t < c.k; ++t)
    r.radii.push_back(kc::reported_distance(wide ? values_d[t] : static_cast<double>(values_f[t]), c.metric));
  for (int64_t i = 0; i < c.n; ++i)
    r.min_distances.push_back(kc::reported_distance(wide ? min_d[i] : static_cast<double>(min_f[i]), c.metric));
  return r;
}

std::string describe(const Case& c) {
  std::string s = std::string(c.what) + " [n=" + std::to_string(c.n) + " d=" + std::to_string(c.d) +
                  " k=" + std::to_string(c.k) + " " + dtype_name(c.dtype) + " " +
                  (c.metric == Metric::cosine ? "cosine" : "euclidean") + " selected=" +
                  std::to_string(c.selected.size()) + " block=" + std::to_string(c.block_threads) +
                  " max_blocks=" + std::to_string(c.max_blocks) + "]";
  return s;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void expect_equal(const Case& c, const Result& want, const Result& got, const char* who) {
  for (int64_t t = 0; t < c.k; ++t)
    EXPECT(got.indices[t] == want.indices[t], describe(c), who, "pick", t, "got", got.indices[t], "want",
           want.indices[t]);
  for (int64_t t = 0; t < c.k; ++t)
    EXPECT(same_bits(got.radii[t], want.radii[t]), describe(c), who, "radius after pick", t, "got", got.radii[t],
           "want", want.radii[t]);
  for (int64_t i = 0; i < c.n; ++i)
    EXPECT(same_bits(got.min_distances[i], want.min_distances[i]), describe(c), who, "min distance of point", i,
           "got", got.min_distances[i], "want", want.min_distances[i]);
}

void check_case(const Case& c, bool both_schedules = false) {
  const auto X = make_data(c, static_cast<uint32_t>(c.n * 131 + c.d * 7 + c.k));
  const Result lazy = run_cpu(c, X, true, 2);
  const Result plain = run_cpu(c, X, false, 1);
  expect_equal(c, lazy, plain, "CPU plain vs lazy:");
  expect_equal(c, lazy, run_emulated(c, X, Schedule::forward), "emulated CUDA vs CPU:");
  if (both_schedules) expect_equal(c, lazy, run_emulated(c, X, Schedule::reverse), "emulated CUDA (reverse) vs CPU:");
}

constexpr DType kDtypes[] = {DType::float32, DType::float16, DType::bfloat16, DType::float64};

}  // namespace

ISEL_CHECK_CASE(kcenter_every_dtype_and_metric) {
  const int64_t n = isel::test::kSanitized ? 150 : 403;
  for (DType t : kDtypes)
    for (Metric m : {Metric::euclidean, Metric::cosine}) {
      Case c{"rows not a multiple of the block", n, 37, 12, t, m};  // d=37: a partial lane pass
      c.duplicates = 4;
      check_case(c, t == DType::float32);
    }
}

ISEL_CHECK_CASE(kcenter_warm_start) {
  for (DType t : kDtypes)
    for (Metric m : {Metric::euclidean, Metric::cosine}) {
      Case c{"warm start from a pool", 120, 20, 9, t, m, {5, 17, 100, 64}};
      check_case(c);
    }
  Case one{"a pool of one", 60, 8, 59, DType::float32, Metric::euclidean, {59}};  // every other point
  check_case(one, true);
}

ISEL_CHECK_CASE(kcenter_pool_pass_tiles_and_batches) {
  // Pools of many tiles (8 pool points a tile), in several batches, with d across chunks of 256
  // dimensions and rows that do not fill a warp's four.
  std::vector<int64_t> pool;
  for (int64_t i = 0; i < 61; ++i) pool.push_back((i * 37) % 150);
  for (DType t : {DType::float32, DType::bfloat16, DType::float64})
    for (Metric m : {Metric::euclidean, Metric::cosine}) {
      Case c{"a pool of 61 in batches of 16", 150, 300, 7, t, m, pool, 64, 3};
      c.pool_batch = 16;
      c.duplicates = 6;
      check_case(c, t == DType::float32 && m == Metric::cosine);
    }
  Case one{"a pool of 61 in one batch, d = 33", 150, 33, 5, DType::float16, Metric::euclidean, pool, 128};
  check_case(one);
}

ISEL_CHECK_CASE(kcenter_cosine_zero_rows_same_message) {
  // Two zero rows: both paths name the lower, whichever thread or warp meets it first.
  for (DType t : kDtypes) {
    Case c{"zero rows", 2500, 9, 3, t, Metric::cosine};  // enough rows for two CPU threads
    c.zero_rows = {2100, 57};
    const auto X = make_data(c, 5);
    const std::string cpu = isel::test::thrown_message([&] { run_cpu(c, X, true, 2); });
    const std::string emu = isel::test::thrown_message([&] { run_emulated(c, X, Schedule::reverse); });
    EXPECT(cpu == "row 57 of X has zero norm; the cosine metric is undefined for it", cpu);
    EXPECT(emu == cpu, emu);
  }
}

ISEL_CHECK_CASE(kcenter_block_shapes) {
  check_case({"one block, grid-stride rows", 50, 16, 10, DType::float32, Metric::euclidean, {}, 256, 1}, true);
  check_case({"one block of one warp", 90, 33, 8, DType::float64, Metric::cosine, {}, 32, 1});
  check_case({"three warps, three blocks", 200, 64, 11, DType::float16, Metric::euclidean, {}, 96, 3}, true);
  check_case({"N < 32", 20, 5, 7, DType::float32, Metric::euclidean, {}, 32});
  check_case({"N < 32, all points", 3, 2, 3, DType::bfloat16, Metric::euclidean, {}, 64});
  check_case({"d = 1", 77, 1, 10, DType::float32, Metric::euclidean, {}, 128});
  check_case({"d = 100, 1024-thread blocks", 70, 100, 6, DType::float32, Metric::cosine, {}, 1024});
  Case seeded{"seed index", 101, 12, 9, DType::float64, Metric::euclidean};
  seeded.seed_index = 77;
  check_case(seeded);
}

ISEL_CHECK_CASE(kcenter_ties_go_to_the_lowest_index) {
  // Many exact duplicates: every argmax has ties, which both paths break by the lowest index.
  Case c{"duplicated rows", 96, 6, 30, DType::float32, Metric::euclidean, {}, 64, 2};
  c.duplicates = 25;
  check_case(c, true);
  Case h{"duplicated rows, float16", 96, 6, 30, DType::float16, Metric::cosine, {3}, 32};
  h.duplicates = 25;
  check_case(h);
}

ISEL_TEST_MAIN()
