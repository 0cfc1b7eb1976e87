// Kernel checks for weighted coverage: the CUDA kernels (coverage.cu) on the emulated grid against
// the CPU path (greedy.cpp) on small CSR matrices. Both compute every gain in the canonical order
// of coverage.hpp, so picks, gains, column weights and row gains must be equal bit for bit, and
// the same bad matrix must give the same message.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/cuda_compat.cuh"
#include "coverage/coverage.hpp"
#include "coverage/coverage_cuda.hpp"
#include "tests/harness.hpp"

namespace {

namespace cov = isel::coverage;
using isel::emu::Schedule;

// A CSR matrix with int32 or int64 indices and float or double values, kept as bytes.
struct Matrix {
  int64_t n = 0, m = 0;
  bool wide_index = false, wide_value = true;
  std::vector<int64_t> indptr;
  std::vector<int64_t> cols;
  std::vector<double> values;
  // storage in the chosen types
  std::vector<unsigned char> indptr_bytes, cols_bytes, value_bytes;

  void pack() {
    auto put = [](std::vector<unsigned char>& out, const auto& v, bool wide, auto narrow) {
      using Narrow = decltype(narrow);
      using Wide = std::decay_t<decltype(v[0])>;
      out.resize(v.size() * (wide ? sizeof(Wide) : sizeof(Narrow)));
      for (size_t i = 0; i < v.size(); ++i) {
        if (wide) std::memcpy(&out[i * sizeof(Wide)], &v[i], sizeof(Wide));
        else {
          Narrow x = static_cast<Narrow>(v[i]);
          std::memcpy(&out[i * sizeof(Narrow)], &x, sizeof(Narrow));
        }
      }
    };
    put(indptr_bytes, indptr, wide_index, int32_t{});
    put(cols_bytes, cols, wide_index, int32_t{});
    put(value_bytes, values, wide_value, float{});
  }

  cov::CsrView view() const {
    cov::CsrView x;
    x.n_rows = n;
    x.n_cols = m;
    x.nnz = static_cast<int64_t>(cols.size());
    x.indptr = indptr_bytes.data();
    x.indices = cols_bytes.data();
    x.data = value_bytes.data();
    x.index_type = wide_index ? cov::IndexType::int64 : cov::IndexType::int32;
    x.value_type = wide_value ? cov::ValueType::float64 : cov::ValueType::float32;
    return x;
  }
};

struct Spec {
  const char* what;
  int64_t n, m;
  double density;
  int max_row = 0;          // a few rows get this many entries (several rounds of 32)
  int duplicate_rows = 0;   // rows copied from earlier ones: exact ties in every gain
  bool repeated_columns = false;  // some rows hold a column twice (not canonical, same on both paths)
  bool wide_index = false, wide_value = true;
};

Matrix make_matrix(const Spec& s, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Matrix x;
  x.n = s.n;
  x.m = s.m;
  x.wide_index = s.wide_index;
  x.wide_value = s.wide_value;
  x.indptr.push_back(0);
  for (int64_t i = 0; i < s.n; ++i) {
    std::vector<int64_t> row;
    const bool long_row = s.max_row > 0 && i % 7 == 3;
    for (int64_t j = 0; j < s.m; ++j)
      if (unit(gen) < (long_row ? 1.0 : s.density)) row.push_back(j);
    if (long_row && static_cast<int64_t>(row.size()) > s.max_row) row.resize(s.max_row);
    if (s.repeated_columns && !row.empty() && i % 3 == 0) row.push_back(row.front());
    const int64_t src = i - 1 - i % 5;
    const bool copy = i >= s.n - s.duplicate_rows && src >= 0;
    if (copy) {
      row.assign(x.cols.begin() + x.indptr[src], x.cols.begin() + x.indptr[src + 1]);
      for (int64_t e = x.indptr[src]; e < x.indptr[src + 1]; ++e) x.values.push_back(x.values[e]);
    } else {
      for (size_t e = 0; e < row.size(); ++e) x.values.push_back(e % 11 == 5 ? 0.0 : unit(gen));  // some stored zeros
    }
    x.cols.insert(x.cols.end(), row.begin(), row.end());
    x.indptr.push_back(static_cast<int64_t>(x.cols.size()));
  }
  if (!s.wide_value)  // the CPU reads the float values; make the reference see the same numbers
    for (auto& v : x.values) v = static_cast<float>(v);
  x.pack();
  return x;
}

struct Run {
  std::vector<int64_t> indices;
  std::vector<double> gains, alpha;

  // Output arrays sized for p, filled with values no kernel writes.
  cov::GreedyOutput outputs(const cov::GreedyProblem& p) {
    indices.assign(p.k, -1);
    gains.assign(p.k, -1.0);
    alpha.assign(p.X.n_cols, -1.0);
    cov::GreedyOutput out;
    out.indices = indices.data();
    out.gains = gains.data();
    out.alpha = alpha.data();
    return out;
  }
};

cov::GreedyProblem problem(const Matrix& x, const std::vector<double>* weights, double decay, int64_t k,
                           const std::vector<int64_t>& selected) {
  cov::GreedyProblem p;
  p.X = x.view();
  p.weights = weights ? weights->data() : nullptr;
  p.decay = decay;
  p.k = k;
  p.selected = selected.empty() ? nullptr : selected.data();
  p.n_selected = static_cast<int64_t>(selected.size());
  p.threads = 2;
  return p;
}

Run run_cpu(const cov::GreedyProblem& p) {
  Run r;
  cov::GreedyOutput out = r.outputs(p);
  cov::greedy(p, out, isel::Hooks{});
  return r;
}

Run run_emulated(const cov::GreedyProblem& p, int block_threads, int max_blocks, Schedule schedule) {
  Run r;
  cov::GreedyOutput out = r.outputs(p);
  cov::cuda::Device dev;
  dev.block_threads = block_threads;
  dev.max_blocks = max_blocks;
  isel::emu::ScheduleScope scope(schedule);
  cov::cuda::greedy(p, out, dev, isel::Hooks{});
  return r;
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void expect_same(const Run& want, const Run& got, const std::string& what) {
  for (size_t t = 0; t < want.indices.size(); ++t)
    EXPECT(got.indices[t] == want.indices[t], what, "pick", t, "got", got.indices[t], "want", want.indices[t]);
  for (size_t t = 0; t < want.gains.size(); ++t)
    EXPECT(same_bits(got.gains[t], want.gains[t]), what, "gain", t, "got", got.gains[t], "want", want.gains[t]);
  for (size_t j = 0; j < want.alpha.size(); ++j)
    EXPECT(same_bits(got.alpha[j], want.alpha[j]), what, "alpha", j, "got", got.alpha[j], "want", want.alpha[j]);
}

std::string name(const Spec& s, double decay, int64_t k, size_t pool, int bt, int mb) {
  return std::string(s.what) + " [n=" + std::to_string(s.n) + " m=" + std::to_string(s.m) + " " +
         (s.wide_index ? "int64" : "int32") + "/" + (s.wide_value ? "float64" : "float32") +
         " decay=" + std::to_string(decay) + " k=" + std::to_string(k) + " pool=" + std::to_string(pool) +
         " block=" + std::to_string(bt) + " max_blocks=" + std::to_string(mb) + "]";
}

void check_greedy(const Spec& s, double decay, int64_t k, std::vector<int64_t> pool = {}, bool weighted = true,
                  int bt = 64, int mb = 0, bool both_schedules = false) {
  const Matrix x = make_matrix(s, static_cast<uint32_t>(s.n * 977 + s.m * 31 + k));
  std::vector<double> w(s.n);
  std::mt19937 gen(static_cast<uint32_t>(s.n + 5));
  std::uniform_real_distribution<double> unit(0.2, 1.0);
  for (auto& v : w) v = unit(gen);
  const auto p = problem(x, weighted ? &w : nullptr, decay, k, pool);
  const Run cpu = run_cpu(p);
  const std::string what = name(s, decay, k, pool.size(), bt, mb);
  expect_same(cpu, run_emulated(p, bt, mb, Schedule::forward), what + " emulated vs CPU:");
  if (both_schedules) expect_same(cpu, run_emulated(p, bt, mb, Schedule::reverse), what + " emulated (reverse) vs CPU:");
}

const int64_t kN = isel::test::kSanitized ? 70 : 160;

}  // namespace

ISEL_CHECK_CASE(coverage_every_index_and_value_type) {
  for (bool wide_index : {false, true})
    for (bool wide_value : {false, true}) {
      Spec s{"random rows", kN, 45, 0.15, 0, 0, false, wide_index, wide_value};
      check_greedy(s, 0.1, 25, {}, true, 64, 0, wide_index && !wide_value);
    }
}

ISEL_CHECK_CASE(coverage_decays_and_weights) {
  Spec s{"random rows", kN, 40, 0.2};
  for (double decay : {0.0, 0.1, 0.5, 1.0}) check_greedy(s, decay, 20);
  check_greedy(s, 0.3, 20, {}, false);
  check_greedy(s, 0.1, kN);  // every row, down to gains of zero
}

ISEL_CHECK_CASE(coverage_long_rows_and_ties) {
  Spec s{"rows of up to 150 entries", 90, 200, 0.05, 150};
  check_greedy(s, 0.2, 30, {}, true, 96, 2, true);
  Spec d{"duplicated rows", 80, 30, 0.2, 0, 30};
  check_greedy(d, 0.5, 40, {}, false, 64, 0, true);  // unweighted: exact ties everywhere
  check_greedy(d, 0.0, 40, {}, true, 32, 1);
}

ISEL_CHECK_CASE(coverage_warm_start) {
  Spec s{"random rows", kN, 50, 0.15, 60};
  check_greedy(s, 0.1, 15, {3, 10, 11, 40, 2});
  check_greedy(s, 0.0, 15, {0});
  std::vector<int64_t> most;
  for (int64_t i = 0; i + 5 < s.n; ++i) most.push_back(i);
  check_greedy(s, 0.5, 5, most);  // a pool of all but five rows
}

ISEL_CHECK_CASE(coverage_odd_shapes) {
  check_greedy({"one row", 1, 5, 0.5}, 0.1, 1);
  check_greedy({"one column", 40, 1, 0.5}, 0.1, 12);
  check_greedy({"no columns", 10, 0, 0.5}, 0.1, 4);
  check_greedy({"empty rows", 30, 20, 0.02}, 0.1, 30);
  check_greedy({"fewer rows than a warp, one warp a block", 20, 10, 0.3}, 0.2, 20, {}, true, 32, 1, true);
  check_greedy({"1024-thread blocks", 50, 10, 0.3}, 0.2, 10, {}, true, 1024);
  check_greedy({"repeated columns", 60, 25, 0.2, 0, 0, true}, 0.3, 30);
}

ISEL_CHECK_CASE(coverage_gains_and_decay_kernels) {
  for (bool wide_index : {false, true}) {
    Spec s{"gains", 70, 300, 0.05, 120, 0, true, wide_index, !wide_index};
    const Matrix x = make_matrix(s, 7);
    std::vector<double> alpha(s.m), w(s.n);
    std::mt19937 gen(3);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (auto& a : alpha) a = unit(gen);
    for (auto& v : w) v = unit(gen);
    const std::vector<double>* choices[] = {nullptr, &w};
    for (const std::vector<double>* weights : choices) {
      std::vector<double> g_cpu(s.n), g_emu(s.n, -1.0);
      const double* wp = weights ? weights->data() : nullptr;
      cov::row_gains(x.view(), alpha.data(), wp, g_cpu.data(), 2);
      cov::cuda::Device dev;
      dev.block_threads = 64;
      cov::cuda::row_gains(x.view(), alpha.data(), wp, g_emu.data(), dev);
      for (int64_t i = 0; i < s.n; ++i)
        EXPECT(same_bits(g_cpu[i], g_emu[i]), "row gain", i, "CPU", g_cpu[i], "emulated", g_emu[i]);
    }
    for (int64_t row : {int64_t{0}, int64_t{3}, s.n - 1}) {
      std::vector<double> a_cpu = alpha, a_emu = alpha;
      const int64_t c1 = cov::decay_row(x.view(), row, 0.3, a_cpu.data());
      cov::cuda::Device dev;
      const int64_t c2 = cov::cuda::decay_row(x.view(), row, 0.3, a_emu.data(), dev);
      EXPECT(c1 == c2, "changed weights of row", row, "CPU", c1, "emulated", c2);
      for (int64_t j = 0; j < s.m; ++j) EXPECT(same_bits(a_cpu[j], a_emu[j]), "alpha", j, "after decaying row", row);
    }
  }
}

ISEL_CHECK_CASE(coverage_bad_matrices_same_message_on_both_paths) {
  Spec s{"bad", 12, 6, 0.5, 0, 0, false, true, true};
  auto message_pair = [&](auto&& spoil) {
    Matrix x = make_matrix(s, 11);
    spoil(x);
    x.pack();
    const auto p = problem(x, nullptr, 0.1, 2, {});
    const std::string cpu = isel::test::thrown_message([&] { run_cpu(p); });
    const std::string emu = isel::test::thrown_message([&] { run_emulated(p, 64, 0, Schedule::forward); });
    EXPECT(cpu == emu, "CPU says", cpu, "emulated says", emu);
    return cpu;
  };
  // Two bad rows: both paths name the lower one.
  std::string m = message_pair([](Matrix& x) {
    x.values[x.indptr[9]] = -1.0;
    x.values[x.indptr[4]] = std::numeric_limits<double>::quiet_NaN();
  });
  EXPECT(m.find("(row 4, column") != std::string::npos, m);
  m = message_pair([](Matrix& x) { x.cols[x.indptr[7]] = 6; });
  EXPECT(m.find("X row 7 has column 6 outside [0, 6)") != std::string::npos, m);
  m = message_pair([](Matrix& x) { std::swap(x.indptr[5], x.indptr[6]); });
  EXPECT(m.find("X.indptr must be nondecreasing") != std::string::npos, m);
  m = message_pair([](Matrix& x) { x.indptr.back() -= 1; });
  EXPECT(m.find("X.indptr[-1]") != std::string::npos, m);
  // Weights: the lowest bad one.
  const Matrix x = make_matrix(s, 11);
  std::vector<double> w(s.n, 1.0);
  w[8] = -2.0;
  w[10] = std::numeric_limits<double>::infinity();
  const auto p = problem(x, &w, 0.1, 2, {});
  const std::string cpu = isel::test::thrown_message([&] { run_cpu(p); });
  const std::string emu = isel::test::thrown_message([&] { run_emulated(p, 64, 0, Schedule::forward); });
  EXPECT(cpu == emu && cpu.find("weights[8] (-2)") != std::string::npos, cpu, emu);
}

ISEL_TEST_MAIN()
