// Kernel checks for facility location: the CPU lazy greedy (facility_cpu.cpp) against a plain
// greedy written here from the exposed kernels (gains and update over the column view, every
// gain recomputed at every step), and the CUDA kernels (facility.cu) on the emulated grid against
// the CPU path. All share graph.hpp's column_gain, so picks, gains and the final representation
// must be equal bit for bit, not close.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "common/cuda_compat.cuh"
#include "facility/facility.hpp"
#include "facility/facility_cuda.hpp"
#include "tests/harness.hpp"

namespace {

namespace fl = isel::facility;
using isel::emu::Schedule;

// A graph in CSR form with typed storage (int32 indices; float or double values).
template <class V>
struct Csr {
  int64_t n_rows = 0, n_cols = 0;
  std::vector<int64_t> indptr{0};
  std::vector<int32_t> indices;
  std::vector<V> data;

  fl::Graph view() const {
    return {n_rows, n_cols, indptr.data(), indices.data(), data.data(), fl::IndexType::int32,
            std::is_same_v<V, float> ? fl::ValueType::float32 : fl::ValueType::float64,
            static_cast<int64_t>(indices.size())};
  }
};

// The column view the device greedy reads beside the graph: facility.hpp's transpose of it
// (device memory is host memory on the emulated grid).
template <class V>
struct Columns {
  fl::Transposed<int32_t, V> t;
  fl::Graph view;

  explicit Columns(const fl::Graph& g)
      : t(fl::transpose(fl::Typed<int32_t, V>{g.n_rows, g.n_cols, g.indptr, static_cast<const int32_t*>(g.indices),
                                               static_cast<const V*>(g.data)},
                        "the graph")),
        view{t.n_rows, t.n_cols, t.indptr.data(), t.indices.data(), t.data.data(), fl::IndexType::int32,
             g.value_type, static_cast<int64_t>(t.indices.size())} {}
};

struct Case {
  const char* what;
  int64_t n_points, n_cand, k;
  double density = 0.3;
  bool small_ints = false;   // values in {1, 2}: many exact ties
  int duplicate_cols = 0;    // columns copied from column 0: equal gains, lowest index must win
  std::vector<int64_t> selected = {};
  bool quality = false;
  double alpha = 0.5;
  int block_threads = 32;
  int max_blocks = 2;
};

template <class V>
Csr<V> make_graph(const Case& c, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> dense(static_cast<size_t>(c.n_points * c.n_cand), 0.0);
  for (auto& v : dense)
    if (u(gen) < c.density) v = c.small_ints ? 1.0 + (u(gen) < 0.5) : u(gen);
  for (int d = 1; d <= c.duplicate_cols && d < c.n_cand; ++d)
    for (int64_t i = 0; i < c.n_points; ++i) dense[i * c.n_cand + d * 3 % c.n_cand] = dense[i * c.n_cand];
  Csr<V> g;
  g.n_rows = c.n_points;
  g.n_cols = c.n_cand;
  for (int64_t i = 0; i < c.n_points; ++i) {
    for (int64_t j = 0; j < c.n_cand; ++j)
      if (dense[i * c.n_cand + j] != 0.0) {
        g.indices.push_back(static_cast<int32_t>(j));
        g.data.push_back(static_cast<V>(dense[i * c.n_cand + j]));
      }
    g.indptr.push_back(static_cast<int64_t>(g.indices.size()));
  }
  return g;
}

std::vector<double> make_quality(const Case& c) {
  std::vector<double> q(static_cast<size_t>(c.n_cand));
  std::mt19937 gen(static_cast<uint32_t>(c.n_cand * 17 + 3));
  std::normal_distribution<double> normal(0.0, 1.0);
  for (auto& v : q) v = c.small_ints ? static_cast<double>(gen() % 2) : normal(gen);
  return q;
}

struct Result {
  std::vector<int64_t> indices;
  std::vector<double> gains, current;
};

template <class V>
fl::Problem problem(const Case& c, const Csr<V>& g, const std::vector<double>& q) {
  fl::Problem p;
  p.graph = g.view();
  p.quality = c.quality ? q.data() : nullptr;
  p.quality_weight = c.alpha;
  p.k = c.k;
  p.selected = c.selected.empty() ? nullptr : c.selected.data();
  p.n_selected = static_cast<int64_t>(c.selected.size());
  p.threads = 2;
  return p;
}

Result output(const Case& c, fl::Output& o) {
  Result r;
  r.indices.assign(c.k, -1);
  r.gains.assign(c.k, -1.0);
  r.current.assign(c.n_points, -1.0);
  o.indices = r.indices.data();
  o.gains = r.gains.data();
  o.current = r.current.data();
  return r;
}

// The plain greedy from the kernels: the column view is the transpose (built here by hand).
template <class V>
Result run_plain(const Case& c, const Csr<V>& g, const std::vector<double>& q) {
  Csr<V> t;
  t.n_rows = g.n_cols;
  t.n_cols = g.n_rows;
  t.indptr.assign(g.n_cols + 1, 0);
  for (int64_t j = 0; j < g.n_cols; ++j) {
    for (int64_t i = 0; i < g.n_rows; ++i)
      for (int64_t e = g.indptr[i]; e < g.indptr[i + 1]; ++e)
        if (g.indices[e] == j) {
          t.indices.push_back(static_cast<int32_t>(i));
          t.data.push_back(g.data[e]);
        }
    t.indptr[j + 1] = static_cast<int64_t>(t.indices.size());
  }
  Result r;
  r.current.assign(c.n_points, 0.0);
  std::vector<bool> taken(c.n_cand, false);
  for (int64_t s : c.selected) {
    fl::update(t.view(), s, r.current.data());
    taken[s] = true;
  }
  std::vector<double> gains(c.n_cand);
  for (int64_t step = 0; step < c.k; ++step) {
    fl::gains(t.view(), r.current.data(), c.quality ? q.data() : nullptr, c.alpha, gains.data(), 1);
    int64_t best = -1;
    for (int64_t j = 0; j < c.n_cand; ++j)
      if (!taken[j] && (best < 0 || gains[j] > gains[best])) best = j;
    r.indices.push_back(best);
    r.gains.push_back(gains[best]);
    taken[best] = true;
    fl::update(t.view(), best, r.current.data());
  }
  return r;
}

template <class V>
Result run_cpu(const Case& c, const Csr<V>& g, const std::vector<double>& q) {
  fl::Output o;
  Result r = output(c, o);
  fl::greedy(problem(c, g, q), o, isel::Hooks{});
  return r;
}

template <class V>
Result run_emulated(const Case& c, const Csr<V>& g, const std::vector<double>& q, Schedule schedule) {
  fl::Output o;
  Result r = output(c, o);
  fl::cuda::Device dev;
  dev.block_threads = c.block_threads;
  dev.max_blocks = c.max_blocks;
  const Schedule saved = isel::emu::schedule();
  isel::emu::set_schedule(schedule);
  const fl::Problem p = problem(c, g, q);
  const Columns<V> columns(p.graph);
  try {
    fl::cuda::greedy(p, columns.view, o, dev, isel::Hooks{});
  } catch (...) {
    isel::emu::set_schedule(saved);
    throw;
  }
  isel::emu::set_schedule(saved);
  return r;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::string describe(const Case& c) {
  return std::string(c.what) + " [points=" + std::to_string(c.n_points) + " candidates=" + std::to_string(c.n_cand) +
         " k=" + std::to_string(c.k) + " selected=" + std::to_string(c.selected.size()) +
         (c.quality ? " quality alpha=" + std::to_string(c.alpha) : "") + " block=" + std::to_string(c.block_threads) +
         "x" + std::to_string(c.max_blocks) + "]";
}

void expect_equal(const Case& c, const Result& want, const Result& got, const char* who) {
  for (int64_t t = 0; t < c.k; ++t)
    EXPECT(got.indices[t] == want.indices[t], describe(c), who, "pick", t, "got", got.indices[t], "want",
           want.indices[t]);
  for (int64_t t = 0; t < c.k; ++t)
    EXPECT(same_bits(got.gains[t], want.gains[t]), describe(c), who, "gain of pick", t, "got", got.gains[t], "want",
           want.gains[t]);
  for (int64_t i = 0; i < c.n_points; ++i)
    EXPECT(same_bits(got.current[i], want.current[i]), describe(c), who, "current of point", i, "got",
           got.current[i], "want", want.current[i]);
}

template <class V = double>
void check_case(const Case& c, bool both_schedules = false) {
  const Csr<V> g = make_graph<V>(c, static_cast<uint32_t>(c.n_points * 131 + c.n_cand * 7 + c.k));
  const std::vector<double> q = make_quality(c);
  const Result cpu = run_cpu(c, g, q);
  expect_equal(c, run_plain(c, g, q), cpu, "CPU lazy vs plain:");
  expect_equal(c, cpu, run_emulated(c, g, q, Schedule::forward), "emulated CUDA vs CPU:");
  if (both_schedules) expect_equal(c, cpu, run_emulated(c, g, q, Schedule::reverse), "emulated CUDA (reverse) vs CPU:");
}

}  // namespace

ISEL_CHECK_CASE(facility_sparse_and_dense_graphs) {
  const int64_t n = isel::test::kSanitized ? 60 : 150;
  check_case({"sparse square graph", n, n, 25, 0.05}, true);
  check_case<float>({"sparse, float32 values", n, n, 25, 0.08});
  check_case({"dense graph: every pick marks all", 40, 40, 20, 1.0}, true);
  check_case({"rectangular, more points", n, 30, 30, 0.1});
  check_case({"rectangular, more candidates", 20, n, 40, 0.2});
}

ISEL_CHECK_CASE(facility_ties_go_to_the_lowest_index) {
  check_case({"small integers", 50, 50, 50, 0.2, true}, true);
  Case dup{"duplicated candidates", 40, 45, 45, 0.3, false, 8};
  check_case(dup, true);
  check_case({"nothing stored: gains all 0", 7, 9, 9, 0.0});
}

ISEL_CHECK_CASE(facility_quality_and_warm_start) {
  Case q{"quality", 80, 80, 30, 0.1};
  q.quality = true;
  for (double alpha : {0.0, 0.3, 1.0}) {
    q.alpha = alpha;
    check_case(q);
  }
  Case w{"warm start", 70, 70, 20, 0.1, false, 0, {4, 9, 69, 0}};
  w.quality = true;
  check_case(w, true);
  check_case({"pool of all but one", 12, 12, 1, 0.4, false, 0, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11}});
}

ISEL_CHECK_CASE(facility_block_shapes) {
  check_case({"one block of one warp", 90, 90, 15, 0.1, false, 0, {}, false, 0.5, 32, 1});
  check_case({"three warps, three blocks", 100, 100, 15, 0.1, false, 0, {}, false, 0.5, 96, 3}, true);
  check_case({"1024-thread blocks, uncapped", 50, 50, 10, 0.2, false, 0, {}, false, 0.5, 1024, 0});
  check_case({"one point, one candidate", 1, 1, 1, 1.0});
}

ISEL_CHECK_CASE(facility_errors_name_the_values) {
  Case c{"errors", 5, 4, 2, 0.5};
  Csr<double> g = make_graph<double>(c, 1);
  std::vector<double> q = make_quality(c);
  fl::Output o;
  Result r = output(c, o);
  auto cpu = [&](fl::Problem p) { fl::greedy(p, o, isel::Hooks{}); };
  auto emu = [&](fl::Problem p) {
    const Columns<double> columns(p.graph);
    fl::cuda::greedy(p, columns.view, o, fl::cuda::Device{}, isel::Hooks{});
  };
  for (auto run : {std::function<void(fl::Problem)>(cpu), std::function<void(fl::Problem)>(emu)}) {
    fl::Problem p = problem(c, g, q);
    p.k = 5;
    std::string m = isel::test::thrown_message([&] { run(p); });
    EXPECT(m.find("k (5) must be in [1, 4]") != std::string::npos, m);
    int64_t twice[] = {1, 1};
    p = problem(c, g, q);
    p.selected = twice;
    p.n_selected = 2;
    m = isel::test::thrown_message([&] { run(p); });
    EXPECT(m.find("selected[1] (1) appears more than once") != std::string::npos, m);
    Csr<double> bad = g;
    bad.data[0] = -1.0;
    p = problem(c, bad, q);
    m = isel::test::thrown_message([&] { run(p); });
    EXPECT(m.find("must hold finite values >= 0") != std::string::npos && m.find("holds -1") != std::string::npos, m);
    std::vector<double> nan_q = q;
    nan_q[2] = std::numeric_limits<double>::quiet_NaN();
    Case cq = c;
    cq.quality = true;
    m = isel::test::thrown_message([&] { run(problem(cq, g, nan_q)); });
    EXPECT(m.find("quality[2] (nan) must be finite") != std::string::npos, m);
  }
  fl::Problem p = problem(c, g, q);
  Columns<double> columns(p.graph);
  fl::cuda::Device dev;
  dev.block_threads = 48;
  std::string m = isel::test::thrown_message([&] { fl::cuda::greedy(p, columns.view, o, dev, isel::Hooks{}); });
  EXPECT(m.find("block_threads (48)") != std::string::npos, m);
  // The device path's own checks: the column view must match the graph and list points ascending.
  dev.block_threads = 32;
  auto device_message = [&](const fl::Graph& view) {
    return isel::test::thrown_message([&] { fl::cuda::greedy(p, view, o, dev, isel::Hooks{}); });
  };
  fl::Graph short_view = columns.view;
  short_view.nnz -= 1;
  m = device_message(short_view);
  EXPECT(m.find("the column view holds") != std::string::npos, m);
  std::vector<int32_t> swapped = columns.t.indices;
  int64_t col = 0;
  while (col < columns.t.n_rows && columns.t.indptr[col + 1] - columns.t.indptr[col] < 2) ++col;
  EXPECT(col < columns.t.n_rows, "no column with two points in the test graph");
  if (col < columns.t.n_rows) {
    std::swap(swapped[columns.t.indptr[col]], swapped[columns.t.indptr[col] + 1]);
    fl::Graph unsorted = columns.view;
    unsorted.indices = swapped.data();
    m = device_message(unsorted);
    EXPECT(m.find("must list the points of each column in ascending order (column " + std::to_string(col)) !=
               std::string::npos, m);
    swapped[columns.t.indptr[col] + 1] = swapped[columns.t.indptr[col]];
    m = device_message(unsorted);
    EXPECT(m.find("lists column " + std::to_string(col) + " more than once") != std::string::npos, m);
  }
  std::vector<int64_t> offsets = columns.t.indptr;
  offsets.back() += 1;
  fl::Graph long_offsets = columns.view;
  long_offsets.indptr = offsets.data();
  m = device_message(long_offsets);
  EXPECT(m.find("the graph's column view.indptr[-1]") != std::string::npos, m);
}

ISEL_TEST_MAIN()
