// Affinity propagation's CUDA kernels on the CPU emulation of the grid against the CPU path,
// bit for bit (similarities, messages, exemplars, labels, median, scores), and the sparse path
// on the complete graph against the dense one. Built with ITERSELECT_BUILD_CTESTS=ON; run under
// ThreadSanitizer / AddressSanitizer with ITERSELECT_SANITIZER=thread|address.
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "affinity/affinity.hpp"
#include "affinity/affinity_cuda.hpp"

using namespace isel;

static int failures = 0;

template <class T>
static void expect_equal(const std::vector<T>& a, const std::vector<T>& b, const char* what) {
  if (a.size() != b.size() || std::memcmp(a.data(), b.data(), sizeof(T) * a.size()) != 0) {
    std::printf("FAIL: %s differ\n", what);
    ++failures;
  }
}

template <class T>
static void run_case(int64_t n, int64_t d, affinity::Metric metric, DType dt, int block_threads, int max_blocks,
                     bool history) {
  std::mt19937 gen(static_cast<unsigned>(n * 31 + d));
  std::normal_distribution<float> normal;
  std::vector<float> X(n * d);
  for (auto& x : X) x = normal(gen);
  Hooks hooks;
  affinity::cuda::Device dev;
  dev.block_threads = block_threads;
  dev.max_blocks = max_blocks;

  std::vector<T> S1(n * n), S2(n * n);
  affinity::similarity_matrix(X.data(), DType::float32, n, d, metric, S1.data(), dt, 2, hooks);
  affinity::cuda::similarity_matrix(X.data(), DType::float32, n, d, metric, S2.data(), dt, dev);
  expect_equal(S1, S2, "similarities");
  const double m1 = affinity::median(S1.data(), dt, n * n, 2);
  const double m2 = affinity::cuda::median(S2.data(), dt, n * n, dev);
  if (m1 != m2) {
    std::printf("FAIL: median %.17g vs %.17g\n", m1, m2);
    ++failures;
  }
  affinity::place_preference(S1.data(), dt, n, &m1, false);
  affinity::cuda::place_preference(S2.data(), dt, n, &m2, false, dev);
  std::vector<double> z(n * n);
  for (auto& v : z) v = normal(gen);
  affinity::add_noise(S1.data(), dt, n * n, z.data());
  affinity::cuda::add_noise(S2.data(), dt, n * n, z.data(), dev);
  expect_equal(S1, S2, "noisy similarities");

  std::vector<T> H(n * n);
  for (auto& h : H) h = static_cast<T>(0.1f * normal(gen));
  std::vector<T> R1(n * n), A1(n * n), R2(n * n), A2(n * n);
  affinity::DenseProblem p;
  p.S = S1.data();
  p.R = R1.data();
  p.A = A1.data();
  p.H = history ? H.data() : nullptr;
  p.dtype = dt;
  p.n = n;
  p.damping = 0.7;
  p.max_iter = 60;
  p.convergence_iter = 10;
  p.threads = 2;
  std::vector<uint8_t> e1(n), e2(n);
  auto r1 = affinity::dense_run(p, e1.data(), hooks);
  p.S = S2.data();
  p.R = R2.data();
  p.A = A2.data();
  auto r2 = affinity::cuda::dense_run(p, e2.data(), dev, hooks);
  if (r1.n_iter != r2.n_iter || r1.converged != r2.converged) {
    std::printf("FAIL: iterations %lld/%d vs %lld/%d\n", static_cast<long long>(r1.n_iter), r1.converged,
                static_cast<long long>(r2.n_iter), r2.converged);
    ++failures;
  }
  expect_equal(R1, R2, "responsibilities");
  expect_equal(A1, A2, "availabilities");
  expect_equal(e1, e2, "exemplar flags");

  std::vector<int64_t> ex1(n), lab1(n), ex2(n), lab2(n);
  const int64_t k1 = affinity::dense_assign(S1.data(), dt, n, e1.data(), ex1.data(), lab1.data(), 2);
  const int64_t k2 = affinity::cuda::dense_assign(S2.data(), dt, n, e2.data(), ex2.data(), lab2.data(), dev);
  if (k1 != k2) {
    std::printf("FAIL: %lld vs %lld exemplars\n", static_cast<long long>(k1), static_cast<long long>(k2));
    ++failures;
  }
  expect_equal(ex1, ex2, "exemplars");
  expect_equal(lab1, lab2, "labels");

  std::vector<double> sc1(n), sc2(n);
  affinity::representation_scores(R1.data(), A1.data(), dt, n, sc1.data(), 2);
  affinity::cuda::representation_scores(R2.data(), A2.data(), dt, n, sc2.data(), dev);
  expect_equal(sc1, sc2, "representation scores");

  // sparse on the complete graph == dense
  std::vector<int64_t> nb(n * (n - 1));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0, c = 0; j < n; ++j)
      if (j != i) nb[i * (n - 1) + c++] = j;
  std::vector<int64_t> indptr(n + 1);
  const int64_t nnz = affinity::knn_graph(nb.data(), n, n - 1, indptr.data(), nullptr, nullptr, nullptr, 2);
  std::vector<int64_t> indices(nnz), transpose(nnz), diagonal(n);
  affinity::knn_graph(nb.data(), n, n - 1, indptr.data(), indices.data(), transpose.data(), diagonal.data(), 2);
  affinity::SparseProblem sp;
  sp.g = {n, indptr.data(), indices.data(), transpose.data(), diagonal.data()};
  std::vector<T> Ss(S1), Rs(nnz), As(nnz);  // complete graph: CSR order is the dense row-major order
  sp.S = Ss.data();
  sp.R = Rs.data();
  sp.A = As.data();
  sp.H = history ? H.data() : nullptr;
  sp.dtype = dt;
  sp.damping = 0.7;
  sp.max_iter = 60;
  sp.convergence_iter = 10;
  sp.threads = 2;
  std::vector<uint8_t> es(n);
  auto rs = affinity::sparse_run(sp, es.data(), hooks);
  if (rs.n_iter != r1.n_iter || rs.converged != r1.converged) {
    std::printf("FAIL: sparse iterations differ\n");
    ++failures;
  }
  expect_equal(Rs, R1, "sparse responsibilities");
  expect_equal(As, A1, "sparse availabilities");
  std::vector<int64_t> exs(n), labs(n);
  const int64_t ks = affinity::sparse_assign(sp, X.data(), DType::float32, d, metric, es.data(), exs.data(), labs.data());
  if (ks != k1) ++failures;
  expect_equal(exs, ex1, "sparse exemplars");
  expect_equal(labs, lab1, "sparse labels");
}

int main() {
  run_case<float>(37, 10, affinity::Metric::euclidean, DType::float32, 32, 2, false);
  run_case<double>(45, 7, affinity::Metric::cosine, DType::float64, 64, 1, true);
  run_case<float>(20, 33, affinity::Metric::sqeuclidean, DType::float32, 64, 0, true);
  if (failures) {
    std::printf("%d failure(s)\n", failures);
    return 1;
  }
  std::printf("affinity emulation: all equal\n");
  return 0;
}
