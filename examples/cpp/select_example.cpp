// k-center greedy, weighted coverage and facility location on plain arrays, through the installed C++ package.
// Prints the picks and exits with 1 if they are not the expected ones (CI runs it).
#include <cstdint>
#include <cstdio>
#include <vector>

#include <iterselect/iterselect.hpp>

namespace {

int check(bool ok, const char* what) {
  std::printf("%s: %s\n", what, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}

// Six points on a line (float32, row-major n x d), one already in the pool: the first pick is
// the point farthest from it, the second the point farthest from both.
int kcenter_example() {
  const std::vector<float> X = {0.0f, 1.0f, 2.0f, 6.0f, 7.0f, 10.0f};
  const std::vector<int64_t> pool = {0};
  isel::kcenter::Problem p;
  p.X = X.data();
  p.dtype = isel::DType::float32;
  p.n = 6;
  p.d = 1;
  p.k = 2;
  p.selected = pool.data();
  p.n_selected = 1;
  std::vector<int64_t> picks(2);
  std::vector<double> radii(2), min_distances(6);
  isel::kcenter::Output out;
  out.indices = picks.data();
  out.radii = radii.data();
  out.min_distances = min_distances.data();
  isel::kcenter::greedy(p, out, isel::Hooks{});
  std::printf("k-center picks %lld %lld, radii %g %g\n", static_cast<long long>(picks[0]),
              static_cast<long long>(picks[1]), radii[0], radii[1]);
  return check(picks[0] == 5 && picks[1] == 3 && radii[0] == 4.0 && radii[1] == 2.0, "k-center");
}

// Three rows over three columns (CSR): row 1 covers the most, then row 0's columns are
// decayed (0.1) and row 2's own column wins.
int coverage_example() {
  const std::vector<int64_t> indptr = {0, 2, 5, 6};
  const std::vector<int64_t> indices = {0, 1, 0, 1, 2, 2};
  const std::vector<double> data = {1.0, 1.0, 1.0, 1.0, 0.1, 0.9};
  isel::coverage::GreedyProblem p;
  p.X.n_rows = 3;
  p.X.n_cols = 3;
  p.X.indptr = indptr.data();
  p.X.indices = indices.data();
  p.X.data = data.data();
  p.X.index_type = isel::coverage::IndexType::int64;
  p.X.value_type = isel::coverage::ValueType::float64;
  p.decay = 0.1;
  p.k = 3;
  std::vector<int64_t> picks(3);
  std::vector<double> gains(3);
  isel::coverage::GreedyOutput out;
  out.indices = picks.data();
  out.gains = gains.data();
  isel::coverage::greedy(p, out, isel::Hooks{});
  std::printf("coverage picks %lld %lld %lld, gains %g %g %g\n", static_cast<long long>(picks[0]),
              static_cast<long long>(picks[1]), static_cast<long long>(picks[2]), gains[0], gains[1], gains[2]);
  return check(picks[0] == 1 && picks[1] == 0 && picks[2] == 2, "coverage");
}

// Three points, each a candidate, with a CSR similarity graph (row i: the candidates that may
// represent point i). Candidate 1 represents the most (gain 0.8 + 1.0 + 0.1), then candidate 2
// adds the most to point 2 (1.0 - 0.1).
int facility_example() {
  const std::vector<int64_t> indptr = {0, 2, 5, 7};
  const std::vector<int64_t> indices = {0, 1, 0, 1, 2, 1, 2};
  const std::vector<double> data = {1.0, 0.8, 0.8, 1.0, 0.1, 0.1, 1.0};
  isel::facility::Problem p;
  p.graph.n_rows = 3;
  p.graph.n_cols = 3;
  p.graph.indptr = indptr.data();
  p.graph.indices = indices.data();
  p.graph.data = data.data();
  p.graph.index_type = isel::facility::IndexType::int64;
  p.graph.value_type = isel::facility::ValueType::float64;
  p.k = 2;
  std::vector<int64_t> picks(2);
  std::vector<double> gains(2);
  isel::facility::Output out;
  out.indices = picks.data();
  out.gains = gains.data();
  isel::facility::greedy(p, out, isel::Hooks{});
  std::printf("facility location picks %lld %lld, gains %g %g\n", static_cast<long long>(picks[0]),
              static_cast<long long>(picks[1]), gains[0], gains[1]);
  return check(picks[0] == 1 && picks[1] == 2, "facility location");
}

// A bad call throws std::invalid_argument with the values; it never aborts.
int error_example() {
  isel::kcenter::Problem p;
  const std::vector<float> X = {0.0f, 1.0f};
  p.X = X.data();
  p.n = 2;
  p.d = 1;
  p.k = 5;
  std::vector<int64_t> picks(5);
  std::vector<double> radii(5), min_distances(2);
  isel::kcenter::Output out{picks.data(), radii.data(), min_distances.data()};
  try {
    isel::kcenter::greedy(p, out, isel::Hooks{});
  } catch (const std::invalid_argument& e) {
    std::printf("k = 5 of 2 points: %s\n", e.what());
    return 0;
  }
  return check(false, "invalid k throws");
}

}  // namespace

int main() { return kcenter_example() + coverage_example() + facility_example() + error_example(); }
