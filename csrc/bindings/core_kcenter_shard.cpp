// _core bindings of a k-center shard (kcenter/shard.hpp), the per-process state of the
// distributed greedy: convert arrays, release the GIL, call; no logic.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>

#include "bindings/arrays.hpp"
#include "bindings/registry.hpp"
#include "kcenter/shard.hpp"

namespace isel::bindings {
namespace {

using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// Centers given as a numpy matrix in the shard's storage type (uint16 bits for bfloat16).
MatrixView centers_view(const py::array& centers, const std::string& dtype, int64_t d) {
  MatrixView c = matrix_view(centers, dtype, "centers");
  require(c.d == d, "centers have ", c.d, " columns; the shard has ", d);
  return c;
}

class KCenterShard {
 public:
  KCenterShard(const py::array& X, const std::string& dtype, const std::string& metric, int threads)
      : X_(X), dtype_(dtype) {
    MatrixView x = matrix_view(X, dtype, "X");
    const kcenter::Metric m = kcenter::parse_metric(metric);
    py::gil_scoped_release release;
    shard_ = std::make_unique<kcenter::Shard>(x.data, x.dtype, x.n, x.d, m, threads);
  }

  int64_t rows() const { return shard_->rows(); }
  int64_t n_centers() const { return shard_->n_centers(); }
  int64_t evaluations() const { return shard_->evaluations(); }

  void add_centers(const py::array& centers, const Int64Array& local) {
    MatrixView c = centers_view(centers, dtype_, shard_->dim());
    require(local.ndim() == 1 && local.shape(0) == c.n, "local must have one entry per center (", c.n, ")");
    py::gil_scoped_release release;
    shard_->add_centers(c.data, c.n, local.data());
  }

  void refresh_all() {
    py::gil_scoped_release release;
    shard_->refresh_all();
  }

  py::tuple top(int64_t m) {
    kcenter::ShardTop t;
    {
      py::gil_scoped_release release;
      t = shard_->top(m);
    }
    py::array_t<int64_t> index(static_cast<py::ssize_t>(t.index.size()), t.index.data());
    py::array_t<double> value(static_cast<py::ssize_t>(t.value.size()), t.value.data());
    return py::make_tuple(index, value, t.rest_index, t.rest_value);
  }

  py::array_t<double> min_distances() {
    py::array_t<double> out(shard_->rows());
    double* o = out.mutable_data();
    py::gil_scoped_release release;
    shard_->min_distances(o);
    return out;
  }

  py::tuple save() const {
    const bool wide = parse_dtype(dtype_) == DType::float64;
    py::array ub = wide ? py::array(py::array_t<double>(rows())) : py::array(py::array_t<float>(rows()));
    py::array_t<int32_t> stamp(rows());
    py::array_t<uint8_t> chosen(rows());
    shard_->save(ub.mutable_data(), stamp.mutable_data(), chosen.mutable_data());
    return py::make_tuple(ub, stamp, chosen);
  }

  void load(const py::array& ub, const py::array_t<int32_t, py::array::c_style | py::array::forcecast>& stamp,
            const py::array_t<uint8_t, py::array::c_style | py::array::forcecast>& chosen) {
    const py::ssize_t item = parse_dtype(dtype_) == DType::float64 ? 8 : 4;
    const int64_t n = rows();
    require(ub.ndim() == 1 && ub.shape(0) == n && ub.itemsize() == item && (ub.flags() & py::array::c_style),
            "ub must be a contiguous array of ", n, " float", item * 8, " values");
    require(stamp.ndim() == 1 && stamp.shape(0) == n && chosen.ndim() == 1 && chosen.shape(0) == n,
            "stamp and chosen must have ", n, " entries");
    shard_->load(ub.data(), stamp.data(), chosen.data());
  }

 private:
  py::array X_;  // keeps the rows alive
  std::string dtype_;
  std::unique_ptr<kcenter::Shard> shard_;
};

py::array_t<double> pair_sq(const py::array& rows, const py::array& centers, const std::string& dtype,
                            const std::string& metric, int threads) {
  MatrixView x = matrix_view(rows, dtype, "rows");
  MatrixView c = centers_view(centers, dtype, x.d);
  py::array_t<double> out({static_cast<py::ssize_t>(x.n), static_cast<py::ssize_t>(c.n)});
  double* o = out.mutable_data();
  const kcenter::Metric m = kcenter::parse_metric(metric);
  py::gil_scoped_release release;
  kcenter::pair_sq(x.data, x.n, c.data, c.n, x.d, x.dtype, m, o, threads);
  return out;
}

void register_kcenter_shard(py::module_& m) {
  py::class_<KCenterShard>(m, "KCenterShard",
                           "The lazy k-center state of a block of rows (one shard of the distributed greedy).")
      .def(py::init<const py::array&, const std::string&, const std::string&, int>(), py::arg("X"),
           py::arg("dtype"), py::arg("metric"), py::arg("threads"))
      .def_property_readonly("rows", &KCenterShard::rows)
      .def_property_readonly("n_centers", &KCenterShard::n_centers)
      .def_property_readonly("evaluations", &KCenterShard::evaluations)
      .def("add_centers", &KCenterShard::add_centers, py::arg("centers"), py::arg("local"),
           "Append centers (rows of the shard's dtype); local[c] is the center's row here or -1.")
      .def("refresh_all", &KCenterShard::refresh_all, "Bring every unchosen row up to date with every center.")
      .def("top", &KCenterShard::top, py::arg("m"),
           "The m best unchosen rows, exact: (rows, values, rest_row, rest_value); rest_row -1 when none is left.")
      .def("min_distances", &KCenterShard::min_distances, "Reported distances to the nearest center (0: chosen).")
      .def("save", &KCenterShard::save, "The per-row state: (ub, stamp, chosen).")
      .def("load", &KCenterShard::load, py::arg("ub"), py::arg("stamp"), py::arg("chosen"),
           "Restore a saved state into a shard without centers; then add back every center.");
  m.def("kcenter_pair_sq", &pair_sq, py::arg("rows"), py::arg("centers"), py::arg("dtype"), py::arg("metric"),
        py::arg("threads"), "Squared (scaled) canonical distances of rows to centers: an (m, c) float64 matrix.");
}

ISEL_REGISTER_BINDINGS(register_kcenter_shard);

}  // namespace
}  // namespace isel::bindings
