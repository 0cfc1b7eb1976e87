// _cuda / _cuda_emu bindings of dense affinity propagation. Matrices arrive as raw pointers
// (device memory for _cuda, host memory for _cuda_emu) that the Python layer keeps alive; small
// host arrays (preference, noise draws, exemplar flags, labels) as numpy arrays. No logic here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "affinity/affinity_cuda.hpp"
#include "bindings/call.hpp"
#include "bindings/registry.hpp"

namespace isel::bindings {
namespace {

using F64 = py::array_t<double, py::array::c_style | py::array::forcecast>;
using U8 = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

DType message_dtype(const std::string& dtype) {
  DType dt = parse_dtype(dtype);
  require(dt == DType::float32 || dt == DType::float64, "messages must be float32 or float64 (got ", dtype, ")");
  return dt;
}

affinity::cuda::Device device(uintptr_t stream, int block_threads, int max_blocks) {
  affinity::cuda::Device dev;
  dev.stream = reinterpret_cast<void*>(stream);
  dev.block_threads = block_threads;
  dev.max_blocks = max_blocks;
  return dev;
}

template <class T>
T* ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

void similarity_matrix(uintptr_t X, const std::string& x_dtype, int64_t n, int64_t d, const std::string& metric,
                       uintptr_t S, const std::string& s_dtype, uintptr_t stream, int block_threads, int max_blocks) {
  auto dev = device(stream, block_threads, max_blocks);
  py::gil_scoped_release release;
  affinity::cuda::similarity_matrix(ptr<const void>(X), parse_dtype(x_dtype), n, d, affinity::parse_metric(metric), ptr<void>(S),
                                    message_dtype(s_dtype), dev);
}

double median(uintptr_t values, const std::string& dtype, int64_t count, uintptr_t stream, int block_threads, int max_blocks) {
  auto dev = device(stream, block_threads, max_blocks);
  py::gil_scoped_release release;
  return affinity::cuda::median(ptr<const void>(values), message_dtype(dtype), count, dev);
}

void place_preference(uintptr_t S, const std::string& dtype, int64_t n, const F64& preference, uintptr_t stream,
                      int block_threads, int max_blocks) {
  require(preference.size() == 1 || preference.size() == n, "preference must have 1 or ", n, " values");
  auto dev = device(stream, block_threads, max_blocks);
  py::gil_scoped_release release;
  affinity::cuda::place_preference(ptr<void>(S), message_dtype(dtype), n, preference.data(),
                                   preference.size() == n && n != 1, dev);
}

void add_noise(uintptr_t S, const std::string& dtype, const F64& z, uintptr_t stream, int block_threads, int max_blocks) {
  auto dev = device(stream, block_threads, max_blocks);
  py::gil_scoped_release release;
  affinity::cuda::add_noise(ptr<void>(S), message_dtype(dtype), z.size(), z.data(), dev);
}

py::tuple offdiag_range(uintptr_t S, const std::string& dtype, int64_t n, uintptr_t stream, int block_threads, int max_blocks) {
  auto dev = device(stream, block_threads, max_blocks);
  double lo = 0, hi = 0;
  {
    py::gil_scoped_release release;
    affinity::cuda::offdiag_range(ptr<const void>(S), message_dtype(dtype), n, &lo, &hi, dev);
  }
  return py::make_tuple(lo, hi);
}

py::tuple dense_run(uintptr_t S, uintptr_t R, uintptr_t A, uintptr_t H, const std::string& dtype, int64_t n,
                    double damping, int64_t max_iter, int64_t convergence_iter, double history_weight,
                    double history_decay, uintptr_t stream, int block_threads, int max_blocks, const py::object& progress) {
  affinity::DenseProblem p;
  p.S = ptr<void>(S);
  p.R = ptr<void>(R);
  p.A = ptr<void>(A);
  p.H = H ? ptr<const void>(H) : nullptr;
  p.dtype = message_dtype(dtype);
  p.n = n;
  static_cast<affinity::Iteration&>(p) = {damping, max_iter, convergence_iter, history_weight, history_decay};
  auto dev = device(stream, block_threads, max_blocks);
  py::array_t<uint8_t> exemplar(n);
  uint8_t* e = exemplar.mutable_data();
  auto res = call_kernel(progress, [&](const Hooks& hooks) { return affinity::cuda::dense_run(p, e, dev, hooks); });
  return py::make_tuple(res.n_iter, res.converged, exemplar);
}

py::tuple dense_assign(uintptr_t S, const std::string& dtype, int64_t n, const U8& exemplar, uintptr_t stream,
                       int block_threads, int max_blocks) {
  require(exemplar.size() == n, "exemplar must have ", n, " entries");
  auto dev = device(stream, block_threads, max_blocks);
  py::array_t<int64_t> exemplars(n), labels(n);
  int64_t* ex = exemplars.mutable_data();
  int64_t* lab = labels.mutable_data();
  int64_t K;
  {
    py::gil_scoped_release release;
    K = affinity::cuda::dense_assign(ptr<const void>(S), message_dtype(dtype), n, exemplar.data(), ex, lab, dev);
  }
  return py::make_tuple(exemplars[py::slice(0, K, 1)], labels);
}

void representation_scores(uintptr_t R, uintptr_t A, const std::string& dtype, int64_t n, uintptr_t out,
                           uintptr_t stream, int block_threads, int max_blocks) {
  auto dev = device(stream, block_threads, max_blocks);
  py::gil_scoped_release release;
  affinity::cuda::representation_scores(ptr<const void>(R), ptr<const void>(A), message_dtype(dtype), n,
                                        ptr<double>(out), dev);
}

void register_affinity(py::module_& m) {
  m.def("affinity_similarity_matrix", &similarity_matrix, py::arg("X"), py::arg("x_dtype"), py::arg("n"), py::arg("d"),
        py::arg("metric"), py::arg("S"), py::arg("s_dtype"), py::arg("stream"), py::arg("block_threads"), py::arg("max_blocks"),
        "S <- similarity(x_i, x_j) on the device (n x n).");
  m.def("affinity_median", &median, py::arg("values"), py::arg("dtype"), py::arg("count"), py::arg("stream"),
        py::arg("block_threads"), py::arg("max_blocks"), "numpy.median of device values.");
  m.def("affinity_place_preference", &place_preference, py::arg("S"), py::arg("dtype"), py::arg("n"),
        py::arg("preference"), py::arg("stream"), py::arg("block_threads"), py::arg("max_blocks"), "The preference on the diagonal of S.");
  m.def("affinity_add_noise", &add_noise, py::arg("S"), py::arg("dtype"), py::arg("z"), py::arg("stream"),
        py::arg("block_threads"), py::arg("max_blocks"), "scikit-learn's tie-breaking noise on consecutive entries, given host draws z.");
  m.def("affinity_offdiag_range", &offdiag_range, py::arg("S"), py::arg("dtype"), py::arg("n"), py::arg("stream"),
        py::arg("block_threads"), py::arg("max_blocks"), "(smallest, largest) off-diagonal similarity.");
  m.def("affinity_dense_run", &dense_run, py::arg("S"), py::arg("R"), py::arg("A"), py::arg("H"), py::arg("dtype"),
        py::arg("n"), py::arg("damping"), py::arg("max_iter"), py::arg("convergence_iter"), py::arg("history_weight"),
        py::arg("history_decay"), py::arg("stream"), py::arg("block_threads"), py::arg("max_blocks"), py::arg("progress"),
        "Dense affinity propagation on the device; returns (n_iter, converged, exemplar mask).");
  m.def("affinity_dense_assign", &dense_assign, py::arg("S"), py::arg("dtype"), py::arg("n"), py::arg("exemplar"),
        py::arg("stream"), py::arg("block_threads"), py::arg("max_blocks"), "The final assignment; returns (sorted exemplars, labels).");
  m.def("affinity_representation_scores", &representation_scores, py::arg("R"), py::arg("A"), py::arg("dtype"),
        py::arg("n"), py::arg("out"), py::arg("stream"), py::arg("block_threads"), py::arg("max_blocks"),
        "colsum(A + R) - rowsum(A + R) + diag(A + R) into a device array of n doubles.");
}

ISEL_REGISTER_BINDINGS(register_affinity);

}  // namespace
}  // namespace isel::bindings
