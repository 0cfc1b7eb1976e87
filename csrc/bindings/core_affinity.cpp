// _core bindings of affinity propagation: convert arrays, release the GIL, call; no logic.
// Message arrays (S, R, A, H) are numpy arrays the Python layer allocates; the kernels write
// into them in place, so nothing outlives the call.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "affinity/affinity.hpp"
#include "bindings/arrays.hpp"
#include "bindings/call.hpp"
#include "bindings/registry.hpp"

namespace isel::bindings {
namespace {

using I64 = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// A C-contiguous float32/float64 array of `count` items (writable when asked).
struct Messages {
  void* data;
  DType dtype;
};

Messages messages(const py::array& a, const char* name, int64_t count, bool writable) {
  require(a.dtype().kind() == 'f' && (a.itemsize() == 4 || a.itemsize() == 8), name,
          " must hold float32 or float64 values");
  require(a.flags() & py::array::c_style, name, " must be C-contiguous");
  require(a.size() == count, name, " must have ", count, " items (got ", a.size(), ")");
  require(!writable || a.writeable(), name, " must be writable");
  return {const_cast<void*>(a.data()), a.itemsize() == 4 ? DType::float32 : DType::float64};
}

Messages same_dtype(const py::array& a, const char* name, int64_t count, bool writable, DType dtype) {
  Messages m = messages(a, name, count, writable);
  require(m.dtype == dtype, name, " must have the dtype of S");
  return m;
}

void similarity_matrix(const py::array& X, const std::string& x_dtype, const std::string& metric, py::array S,
                       int threads, const py::object& progress) {
  MatrixView x = matrix_view(X, x_dtype, "X");
  Messages s = messages(S, "S", x.n * x.n, true);
  call_kernel(progress, [&](const Hooks& hooks) {
    affinity::similarity_matrix(x.data, x.dtype, x.n, x.d, affinity::parse_metric(metric), s.data, s.dtype, threads, hooks);
    return 0;
  });
}

void similarity_graph(const py::array& X, const std::string& x_dtype, const std::string& metric, const I64& indptr,
                      const I64& indices, py::array values, int threads) {
  MatrixView x = matrix_view(X, x_dtype, "X");
  require(indptr.size() == x.n + 1, "indptr must have ", x.n + 1, " entries");
  const int64_t nnz = indptr.data()[x.n];
  require(indices.size() == nnz, "indices must have ", nnz, " entries");
  Messages v = messages(values, "values", nnz, true);
  py::gil_scoped_release release;
  affinity::similarity_graph(x.data, x.dtype, x.n, x.d, affinity::parse_metric(metric), indptr.data(), indices.data(), v.data,
                             v.dtype, threads);
}

double median(const py::array& values, int threads) {
  Messages v = messages(values, "values", values.size(), false);
  py::gil_scoped_release release;
  return affinity::median(v.data, v.dtype, values.size(), threads);
}

void place_preference(py::array S, int64_t n,
                      const py::array_t<double, py::array::c_style | py::array::forcecast>& preference) {
  Messages s = messages(S, "S", n * n, true);
  require(preference.size() == 1 || preference.size() == n, "preference must have 1 or ", n, " values");
  affinity::place_preference(s.data, s.dtype, n, preference.data(), preference.size() == n && n != 1);
}

void add_noise(py::array S, const py::array_t<double, py::array::c_style | py::array::forcecast>& z) {
  Messages s = messages(S, "S", z.size(), true);
  py::gil_scoped_release release;
  affinity::add_noise(s.data, s.dtype, z.size(), z.data());
}

py::tuple offdiag_range(const py::array& S, int64_t n) {
  Messages s = messages(S, "S", n * n, false);
  double lo = 0, hi = 0;
  {
    py::gil_scoped_release release;
    affinity::offdiag_range(s.data, s.dtype, n, &lo, &hi);
  }
  return py::make_tuple(lo, hi);
}

affinity::DenseProblem dense_problem(py::array& S, py::array& R, py::array& A, const py::object& H, int64_t n,
                                     double damping, int64_t max_iter, int64_t convergence_iter, double history_weight,
                                     double history_decay, int threads) {
  affinity::DenseProblem p;
  Messages s = messages(S, "S", n * n, true);
  p.S = s.data;
  p.dtype = s.dtype;
  p.R = same_dtype(R, "R", n * n, true, s.dtype).data;
  p.A = same_dtype(A, "A", n * n, true, s.dtype).data;
  if (!H.is_none()) p.H = same_dtype(H.cast<py::array>(), "history", n * n, false, s.dtype).data;
  p.n = n;
  static_cast<affinity::Iteration&>(p) = {damping, max_iter, convergence_iter, history_weight, history_decay, threads};
  return p;
}

py::tuple dense_run(py::array S, py::array R, py::array A, const py::object& H, int64_t n, double damping,
                    int64_t max_iter, int64_t convergence_iter, double history_weight, double history_decay,
                    int threads, const py::object& progress) {
  auto p = dense_problem(S, R, A, H, n, damping, max_iter, convergence_iter, history_weight, history_decay, threads);
  py::array_t<uint8_t> exemplar(n);
  uint8_t* e = exemplar.mutable_data();
  auto res = call_kernel(progress, [&](const Hooks& hooks) { return affinity::dense_run(p, e, hooks); });
  return py::make_tuple(res.n_iter, res.converged, exemplar);
}

void dense_row_pass(py::array S, py::array R, py::array A, const py::object& H, int64_t n, double damping,
                    int64_t t, double alpha, const py::array& colsum, int threads) {
  auto p = dense_problem(S, R, A, H, n, damping, 1, 1, alpha, 1.0, threads);
  Messages c = same_dtype(colsum, "colsum", n, false, p.dtype);
  py::gil_scoped_release release;
  affinity::dense_row_pass(p, t, alpha, c.data);
}

void dense_column_pass(py::array S, py::array R, py::array A, int64_t n, double damping, py::array colsum,
                       py::array diag_a, int threads) {
  auto p = dense_problem(S, R, A, py::none(), n, damping, 1, 1, 0.0, 1.0, threads);
  Messages c = same_dtype(colsum, "colsum", n, true, p.dtype);
  Messages d = same_dtype(diag_a, "diag_a", n, true, p.dtype);
  py::gil_scoped_release release;
  affinity::dense_column_pass(p, c.data, d.data);
}

void dense_finish(py::array S, py::array R, py::array A, int64_t n, double damping, const py::array& colsum,
                  int threads) {
  auto p = dense_problem(S, R, A, py::none(), n, damping, 1, 1, 0.0, 1.0, threads);
  Messages c = same_dtype(colsum, "colsum", n, false, p.dtype);
  py::gil_scoped_release release;
  affinity::dense_finish(p, c.data);
}

py::tuple dense_assign(const py::array& S, int64_t n,
                       const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& exemplar, int threads) {
  Messages s = messages(S, "S", n * n, false);
  require(exemplar.size() == n, "exemplar must have ", n, " entries");
  py::array_t<int64_t> exemplars(n), labels(n);
  int64_t* ex = exemplars.mutable_data();
  int64_t* lab = labels.mutable_data();
  int64_t K;
  {
    py::gil_scoped_release release;
    K = affinity::dense_assign(s.data, s.dtype, n, exemplar.data(), ex, lab, threads);
  }
  return py::make_tuple(exemplars[py::slice(0, K, 1)], labels);
}

py::tuple knn_graph(const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& neighbors, int threads) {
  require(neighbors.ndim() == 2, "neighbors must be a 2-D array (n, k)");
  const int64_t n = neighbors.shape(0), k = neighbors.shape(1);
  py::array_t<int64_t> indptr(n + 1);
  int64_t nnz;
  {
    py::gil_scoped_release release;
    nnz = affinity::knn_graph(neighbors.data(), n, k, indptr.mutable_data(), nullptr, nullptr, nullptr, threads);
  }
  py::array_t<int64_t> indices(nnz), transpose(nnz), diagonal(n);
  {
    py::gil_scoped_release release;
    affinity::knn_graph(neighbors.data(), n, k, indptr.mutable_data(), indices.mutable_data(),
                        transpose.mutable_data(), diagonal.mutable_data(), threads);
  }
  return py::make_tuple(indptr, indices, transpose, diagonal);
}

struct GraphArrays {
  I64 indptr, indices, transpose, diagonal;
};

affinity::SparseProblem sparse_problem(const GraphArrays& g, py::array& S, py::array& R, py::array& A,
                                       const py::object& H, double damping, int64_t max_iter, int64_t convergence_iter,
                                       double history_weight, double history_decay, int threads) {
  affinity::SparseProblem p;
  const int64_t n = g.indptr.size() - 1;
  require(n >= 1 && g.diagonal.size() == n, "indptr and diagonal must describe the same number of rows");
  p.g.n = n;
  p.g.indptr = g.indptr.data();
  const int64_t nnz = p.g.indptr[n];
  require(g.indices.size() == nnz && g.transpose.size() == nnz, "indices and transpose must have ", nnz, " entries");
  p.g.indices = g.indices.data();
  p.g.transpose = g.transpose.data();
  p.g.diagonal = g.diagonal.data();
  Messages s = messages(S, "S", nnz, true);
  p.S = s.data;
  p.dtype = s.dtype;
  p.R = same_dtype(R, "R", nnz, true, s.dtype).data;
  p.A = same_dtype(A, "A", nnz, true, s.dtype).data;
  if (!H.is_none()) p.H = same_dtype(H.cast<py::array>(), "history", nnz, false, s.dtype).data;
  static_cast<affinity::Iteration&>(p) = {damping, max_iter, convergence_iter, history_weight, history_decay, threads};
  return p;
}

py::tuple sparse_run(const I64& indptr, const I64& indices, const I64& transpose, const I64& diagonal, py::array S,
                     py::array R, py::array A, const py::object& H, double damping, int64_t max_iter,
                     int64_t convergence_iter, double history_weight, double history_decay, int threads,
                     const py::object& progress) {
  GraphArrays g{indptr, indices, transpose, diagonal};
  auto p = sparse_problem(g, S, R, A, H, damping, max_iter, convergence_iter, history_weight, history_decay, threads);
  py::array_t<uint8_t> exemplar(p.g.n);
  uint8_t* e = exemplar.mutable_data();
  auto res = call_kernel(progress, [&](const Hooks& hooks) { return affinity::sparse_run(p, e, hooks); });
  return py::make_tuple(res.n_iter, res.converged, exemplar);
}

py::tuple sparse_offdiag_range(const I64& indptr, const I64& indices, const I64& transpose, const I64& diagonal,
                               py::array S) {
  GraphArrays g{indptr, indices, transpose, diagonal};
  py::array R = S, A = S;
  auto p = sparse_problem(g, S, R, A, py::none(), 0.5, 1, 1, 0.0, 1.0, 1);
  double lo = 0, hi = 0;
  {
    py::gil_scoped_release release;
    affinity::sparse_offdiag_range(p, &lo, &hi);
  }
  return py::make_tuple(lo, hi);
}

py::tuple sparse_assign(const I64& indptr, const I64& indices, const I64& transpose, const I64& diagonal,
                        py::array S, const py::array& X, const std::string& x_dtype, const std::string& metric,
                        const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& exemplar, int threads) {
  GraphArrays g{indptr, indices, transpose, diagonal};
  py::array R = S, A = S;
  auto p = sparse_problem(g, S, R, A, py::none(), 0.5, 1, 1, 0.0, 1.0, threads);
  MatrixView x = matrix_view(X, x_dtype, "X");
  require(x.n == p.g.n, "X has ", x.n, " rows; the graph has ", p.g.n);
  require(exemplar.size() == p.g.n, "exemplar must have ", p.g.n, " entries");
  py::array_t<int64_t> exemplars(p.g.n), labels(p.g.n);
  int64_t* ex = exemplars.mutable_data();
  int64_t* lab = labels.mutable_data();
  int64_t K;
  {
    py::gil_scoped_release release;
    K = affinity::sparse_assign(p, x.data, x.dtype, x.d, affinity::parse_metric(metric), exemplar.data(), ex, lab);
  }
  return py::make_tuple(exemplars[py::slice(0, K, 1)], labels);
}

py::array_t<double> representation_scores(const py::array& R, const py::array& A, int64_t n, int threads) {
  Messages r = messages(R, "R", n * n, false);
  Messages a = same_dtype(A, "A", n * n, false, r.dtype);
  py::array_t<double> out(n);
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    affinity::representation_scores(r.data, a.data, r.dtype, n, o, threads);
  }
  return out;
}

void register_affinity(py::module_& m) {
  m.def("affinity_similarity_matrix", &similarity_matrix, py::arg("X"), py::arg("x_dtype"), py::arg("metric"),
        py::arg("S"), py::arg("threads"), py::arg("progress"), "S <- similarity(x_i, x_j) in place (n x n).");
  m.def("affinity_similarity_graph", &similarity_graph, py::arg("X"), py::arg("x_dtype"), py::arg("metric"),
        py::arg("indptr"), py::arg("indices"), py::arg("values"), py::arg("threads"),
        "values[e] <- similarity(x_i, x_j) for every stored entry (i, j) of a CSR pattern, in place.");
  m.def("affinity_median", &median, py::arg("values"), py::arg("threads"), "numpy.median of a float array.");
  m.def("affinity_place_preference", &place_preference, py::arg("S"), py::arg("n"), py::arg("preference"),
        "The preference (one value or n) on the diagonal of S.");
  m.def("affinity_add_noise", &add_noise, py::arg("S"), py::arg("z"),
        "scikit-learn's tie-breaking noise on consecutive entries of S, given its normal draws z.");
  m.def("affinity_offdiag_range", &offdiag_range, py::arg("S"), py::arg("n"),
        "(smallest, largest) off-diagonal similarity.");
  m.def("affinity_dense_run", &dense_run, py::arg("S"), py::arg("R"), py::arg("A"), py::arg("H"), py::arg("n"),
        py::arg("damping"), py::arg("max_iter"), py::arg("convergence_iter"), py::arg("history_weight"),
        py::arg("history_decay"), py::arg("threads"), py::arg("progress"),
        "Dense affinity propagation; returns (n_iter, converged, exemplar mask). R and A are written.");
  m.def("affinity_dense_row_pass", &dense_row_pass, py::arg("S"), py::arg("R"), py::arg("A"), py::arg("H"),
        py::arg("n"), py::arg("damping"), py::arg("t"), py::arg("alpha"), py::arg("colsum"), py::arg("threads"),
        "Row pass of iteration t: A_{t-1} (when t > 0, from colsum_{t-1}) and R_t, in place.");
  m.def("affinity_dense_column_pass", &dense_column_pass, py::arg("S"), py::arg("R"), py::arg("A"), py::arg("n"),
        py::arg("damping"), py::arg("colsum"), py::arg("diag_a"), py::arg("threads"),
        "Column pass: colsum_t and the diagonal of A_t, in place.");
  m.def("affinity_dense_finish", &dense_finish, py::arg("S"), py::arg("R"), py::arg("A"), py::arg("n"),
        py::arg("damping"), py::arg("colsum"), py::arg("threads"), "Writes A_t from colsum_t (the last A update).");
  m.def("affinity_dense_assign", &dense_assign, py::arg("S"), py::arg("n"), py::arg("exemplar"), py::arg("threads"),
        "scikit-learn's final assignment; returns (sorted exemplars, labels).");
  m.def("affinity_knn_graph", &knn_graph, py::arg("neighbors"), py::arg("threads"),
        "Symmetrized kNN graph with the diagonal: (indptr, indices, transpose, diagonal).");
  m.def("affinity_sparse_run", &sparse_run, py::arg("indptr"), py::arg("indices"), py::arg("transpose"),
        py::arg("diagonal"), py::arg("S"), py::arg("R"), py::arg("A"), py::arg("H"), py::arg("damping"),
        py::arg("max_iter"), py::arg("convergence_iter"), py::arg("history_weight"), py::arg("history_decay"),
        py::arg("threads"), py::arg("progress"), "Sparse affinity propagation on a graph.");
  m.def("affinity_sparse_offdiag_range", &sparse_offdiag_range, py::arg("indptr"), py::arg("indices"),
        py::arg("transpose"), py::arg("diagonal"), py::arg("S"), "(smallest, largest) off-diagonal stored similarity.");
  m.def("affinity_sparse_assign", &sparse_assign, py::arg("indptr"), py::arg("indices"), py::arg("transpose"),
        py::arg("diagonal"), py::arg("S"), py::arg("X"), py::arg("x_dtype"), py::arg("metric"), py::arg("exemplar"),
        py::arg("threads"), "The final assignment on a graph; returns (sorted exemplars, labels).");
  m.def("affinity_representation_scores", &representation_scores, py::arg("R"), py::arg("A"), py::arg("n"),
        py::arg("threads"), "colsum(A + R) - rowsum(A + R) + diag(A + R), in double.");
}

ISEL_REGISTER_BINDINGS(register_affinity);

}  // namespace
}  // namespace isel::bindings
