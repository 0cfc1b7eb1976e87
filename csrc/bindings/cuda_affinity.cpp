// _cuda / _cuda_emu bindings of dense affinity propagation: device arrays checked at the boundary
// (bindings/device_arrays.hpp); small host arrays (preference, noise draws, exemplar flags) as
// numpy arrays. No logic here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "affinity/affinity_cuda.hpp"
#include "bindings/call.hpp"
#include "bindings/device_arrays.hpp"
#include "bindings/registry.hpp"

namespace isel::bindings {
namespace {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using U8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

// A square message matrix (n x n, float32 or float64).
Array square(Arrays& arrays, const py::handle& obj, const char* name, int64_t n = -1) {
  Array a = arrays.get(obj, name);
  expect_dtype(a, kMessageElems);
  expect_shape(a, {n, n});
  require(a.shape[0] == a.shape[1], name, " must be square (got shape (", a.shape[0], ", ", a.shape[1], "))");
  return a;
}

void similarity_matrix(const py::object& X_obj, const std::string& metric, const py::object& S_obj,
                       const py::object& stream, int block_threads, int max_blocks) {
  Arrays arrays(stream);
  Array X = arrays.get(X_obj, "X");
  expect_dtype(X, kFloatElems);
  expect_shape(X, {-1, -1});
  Array S = square(arrays, S_obj, "S", X.shape[0]);
  expect_writable(S);
  auto dev = launch_on(arrays, block_threads, max_blocks);
  py::gil_scoped_release release;
  device::DeviceGuard on(arrays.device());
  affinity::cuda::similarity_matrix(X.data, X.float_dtype(), X.shape[0], X.shape[1], affinity::parse_metric(metric),
                                    S.data, S.float_dtype(), dev);
}

double median(const py::object& values_obj, const py::object& stream, int block_threads, int max_blocks) {
  Arrays arrays(stream);
  Array v = arrays.get(values_obj, "values");
  expect_dtype(v, kMessageElems);
  auto dev = launch_on(arrays, block_threads, max_blocks);
  py::gil_scoped_release release;
  device::DeviceGuard on(arrays.device());
  return affinity::cuda::median(v.data, v.float_dtype(), v.size(), dev);
}

void place_preference(const py::object& S_obj, const F64& preference, const py::object& stream, int block_threads,
                      int max_blocks) {
  Arrays arrays(stream);
  Array S = square(arrays, S_obj, "S");
  expect_writable(S);
  const int64_t n = S.shape[0];
  require(preference.size() == 1 || preference.size() == n, "preference must have 1 or ", n, " values (got ",
          preference.size(), ")");
  auto dev = launch_on(arrays, block_threads, max_blocks);
  py::gil_scoped_release release;
  device::DeviceGuard on(arrays.device());
  affinity::cuda::place_preference(S.data, S.float_dtype(), n, preference.data(), preference.size() == n && n != 1, dev);
}

void add_noise(const py::object& S_obj, const F64& z, const py::object& stream, int block_threads, int max_blocks) {
  Arrays arrays(stream);
  Array S = arrays.get(S_obj, "S");
  expect_dtype(S, kMessageElems);
  expect_writable(S);
  require(z.size() == S.size(), "z must have one draw per entry of S (", S.size(), "; got ", z.size(), ")");
  auto dev = launch_on(arrays, block_threads, max_blocks);
  py::gil_scoped_release release;
  device::DeviceGuard on(arrays.device());
  affinity::cuda::add_noise(S.data, S.float_dtype(), z.size(), z.data(), dev);
}

py::tuple offdiag_range(const py::object& S_obj, const py::object& stream, int block_threads, int max_blocks) {
  Arrays arrays(stream);
  Array S = square(arrays, S_obj, "S");
  auto dev = launch_on(arrays, block_threads, max_blocks);
  double lo = 0, hi = 0;
  {
    py::gil_scoped_release release;
    device::DeviceGuard on(arrays.device());
    affinity::cuda::offdiag_range(S.data, S.float_dtype(), S.shape[0], &lo, &hi, dev);
  }
  return py::make_tuple(lo, hi);
}

py::tuple dense_run(const py::object& S_obj, const py::object& R_obj, const py::object& A_obj, const py::object& H_obj,
                    double damping, int64_t max_iter, int64_t convergence_iter, double history_weight,
                    double history_decay, const py::object& stream, int block_threads, int max_blocks,
                    const py::object& progress) {
  Arrays arrays(stream);
  Array S = square(arrays, S_obj, "S");
  const int64_t n = S.shape[0];
  Array R = square(arrays, R_obj, "R", n), A = square(arrays, A_obj, "A", n);
  expect_writable(R);
  expect_writable(A);
  for (const Array* m : {&R, &A})
    require(m->elem == S.elem, m->name, " must have S's dtype ", S.dtype, " (got ", m->dtype, ")");
  Array H;
  if (!H_obj.is_none()) {
    H = square(arrays, H_obj, "H", n);
    require(H.elem == S.elem, "H must have S's dtype ", S.dtype, " (got ", H.dtype, ")");
  }
  affinity::DenseProblem p;
  p.S = S.data;
  p.R = R.data;
  p.A = A.data;
  p.H = H_obj.is_none() ? nullptr : H.data;
  p.dtype = S.float_dtype();
  p.n = n;
  static_cast<affinity::Iteration&>(p) = {damping, max_iter, convergence_iter, history_weight, history_decay};
  auto dev = launch_on(arrays, block_threads, max_blocks);
  py::array_t<uint8_t> exemplar(n);
  uint8_t* e = exemplar.mutable_data();
  auto res = call_kernel(progress, [&](const Hooks& hooks) {
    device::DeviceGuard on(arrays.device());
    return affinity::cuda::dense_run(p, e, dev, hooks);
  });
  return py::make_tuple(res.n_iter, res.converged, exemplar);
}

py::tuple dense_assign(const py::object& S_obj, const U8& exemplar, const py::object& stream, int block_threads,
                       int max_blocks) {
  Arrays arrays(stream);
  Array S = square(arrays, S_obj, "S");
  const int64_t n = S.shape[0];
  require(exemplar.size() == n, "exemplar must have ", n, " entries (got ", exemplar.size(), ")");
  auto dev = launch_on(arrays, block_threads, max_blocks);
  py::array_t<int64_t> exemplars(n), labels(n);
  int64_t* ex = exemplars.mutable_data();
  int64_t* lab = labels.mutable_data();
  int64_t K;
  {
    py::gil_scoped_release release;
    device::DeviceGuard on(arrays.device());
    K = affinity::cuda::dense_assign(S.data, S.float_dtype(), n, exemplar.data(), ex, lab, dev);
  }
  return py::make_tuple(exemplars[py::slice(0, K, 1)], labels);
}

void representation_scores(const py::object& R_obj, const py::object& A_obj, const py::object& out_obj,
                           const py::object& stream, int block_threads, int max_blocks) {
  Arrays arrays(stream);
  Array R = square(arrays, R_obj, "R");
  const int64_t n = R.shape[0];
  Array A = square(arrays, A_obj, "A", n);
  require(A.elem == R.elem, "A must have R's dtype ", R.dtype, " (got ", A.dtype, ")");
  Array out = arrays.get(out_obj, "out");
  expect_dtype(out, {Elem::float64});
  expect_shape(out, {n});
  expect_writable(out);
  auto dev = launch_on(arrays, block_threads, max_blocks);
  py::gil_scoped_release release;
  device::DeviceGuard on(arrays.device());
  affinity::cuda::representation_scores(R.data, A.data, R.float_dtype(), n, out.as<double>(), dev);
}

void register_affinity(py::module_& m) {
  m.def("affinity_similarity_matrix", &similarity_matrix, py::arg("X"), py::arg("metric"), py::arg("S"), py::kw_only(),
        py::arg("stream") = py::none(), py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        "S <- similarity(x_i, x_j) on the device; X (n, d), S (n, n) float32 or float64.");
  m.def("affinity_median", &median, py::arg("values"), py::kw_only(), py::arg("stream") = py::none(),
        py::arg("block_threads") = 256, py::arg("max_blocks") = 0, "numpy.median of a float32/float64 device array.");
  m.def("affinity_place_preference", &place_preference, py::arg("S"), py::arg("preference"), py::kw_only(),
        py::arg("stream") = py::none(), py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        "The preference (1 or n host values) on the diagonal of S.");
  m.def("affinity_add_noise", &add_noise, py::arg("S"), py::arg("z"), py::kw_only(), py::arg("stream") = py::none(),
        py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        "scikit-learn's tie-breaking noise on every entry of S (a block of rows), given one host draw per entry.");
  m.def("affinity_offdiag_range", &offdiag_range, py::arg("S"), py::kw_only(), py::arg("stream") = py::none(),
        py::arg("block_threads") = 256, py::arg("max_blocks") = 0, "(smallest, largest) off-diagonal similarity.");
  m.def("affinity_dense_run", &dense_run, py::arg("S"), py::arg("R"), py::arg("A"), py::arg("H"), py::arg("damping"),
        py::arg("max_iter"), py::arg("convergence_iter"), py::arg("history_weight"), py::arg("history_decay"),
        py::kw_only(), py::arg("stream") = py::none(), py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        py::arg("progress") = py::none(),
        "Dense affinity propagation on the device; returns (n_iter, converged, exemplar mask).");
  m.def("affinity_dense_assign", &dense_assign, py::arg("S"), py::arg("exemplar"), py::kw_only(),
        py::arg("stream") = py::none(), py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        "The final assignment; returns (sorted exemplars, labels).");
  m.def("affinity_representation_scores", &representation_scores, py::arg("R"), py::arg("A"), py::arg("out"),
        py::kw_only(), py::arg("stream") = py::none(), py::arg("block_threads") = 256, py::arg("max_blocks") = 0,
        "colsum(A + R) - rowsum(A + R) + diag(A + R) into `out`, a device array of n float64.");
}

ISEL_REGISTER_BINDINGS(register_affinity);

}  // namespace
}  // namespace isel::bindings
