// _core bindings of the coverage family (TF-IDF, lazy-greedy coverage): convert, release the
// GIL, call; no logic.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <vector>

#include "bindings/arrays.hpp"
#include "bindings/call.hpp"
#include "bindings/registry.hpp"
#include "common/check.hpp"
#include "coverage/coverage.hpp"

namespace isel::bindings {
namespace {

// A numpy array that owns a std::vector's buffer (no copy).
template <class T, class Alloc>
py::array_t<T> to_numpy(std::vector<T, Alloc>&& v) {
  using Vector = std::vector<T, Alloc>;
  auto* owner = new Vector(std::move(v));
  py::capsule free_when_done(owner, [](void* p) { delete static_cast<Vector*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(owner->size()), owner->data(), free_when_done);
}

// Whether `a` holds T. Equivalence, not identity of the dtype object: a numpy.memmap (and other
// views) may carry its own descriptor for the same type.
template <class T>
bool holds(const py::array& a) {
  return py::isinstance<py::array_t<T>>(a);
}

// Code-point views of Python strings (PEP 393 storage: 1, 2 or 4 bytes a code point), valid while
// `texts` lives; the caller holds it for the whole call.
std::vector<coverage::TextView> text_views(const py::list& texts) {
  std::vector<coverage::TextView> views(texts.size());
  for (size_t i = 0; i < views.size(); ++i) {
    PyObject* s = texts[i].ptr();
    require(PyUnicode_Check(s), "texts[", i, "] must be a str");
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) != 0) throw py::error_already_set();
#endif
    views[i].data = PyUnicode_DATA(s);
    views[i].length = PyUnicode_GET_LENGTH(s);
    views[i].width = static_cast<int>(PyUnicode_KIND(s));
  }
  return views;
}

using WordRanges = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

py::tuple tfidf_or_counts(const py::list& texts, const WordRanges& word_ranges, int min_n, int max_n, bool float32,
                          bool paper_weighting, int threads, const py::object& progress, bool counts) {
  require(word_ranges.ndim() == 2 && word_ranges.shape(1) == 2, "word_ranges must have shape (r, 2)");
  std::vector<coverage::TextView> views = text_views(texts);
  coverage::TfidfOptions o;
  o.min_n = min_n;
  o.max_n = max_n;
  o.word_ranges = word_ranges.data();
  o.n_word_ranges = word_ranges.shape(0);
  o.float32 = float32;
  o.paper_weighting = paper_weighting;
  o.counts = counts;
  o.threads = threads;
  coverage::TfidfMatrix m = call_kernel(progress, [&](const Hooks& hooks) {
    return coverage::tfidf(views.data(), static_cast<int64_t>(views.size()), o, hooks);
  });
  py::object data = float32 ? py::object(to_numpy(std::move(m.data32))) : py::object(to_numpy(std::move(m.data64)));
  return py::make_tuple(m.n_cols, to_numpy(std::move(m.indptr)), to_numpy(std::move(m.indices)), data,
                        to_numpy(std::move(m.df)), to_numpy(std::move(m.idf)), to_numpy(std::move(m.vocabulary)),
                        to_numpy(std::move(m.vocabulary_offsets)));
}

py::tuple tfidf(const py::list& texts, const WordRanges& word_ranges, int min_n, int max_n, bool float32,
                bool paper_weighting, int threads, const py::object& progress) {
  return tfidf_or_counts(texts, word_ranges, min_n, max_n, float32, paper_weighting, threads, progress, false);
}

py::tuple ngram_counts(const py::list& texts, const WordRanges& word_ranges, int min_n, int max_n, int threads,
                       const py::object& progress) {
  return tfidf_or_counts(texts, word_ranges, min_n, max_n, false, false, threads, progress, true);
}

coverage::CsrView csr_view(const py::array& indptr, const py::array& indices, const py::array& data, int64_t n_rows,
                           int64_t n_cols) {
  for (const py::array* a : {&indptr, &indices, &data})
    require(a->ndim() == 1 && (a->flags() & py::array::c_style), "the CSR arrays must be 1-D and contiguous");
  coverage::CsrView x;
  x.n_rows = n_rows;
  x.n_cols = n_cols;
  if (holds<int32_t>(indptr) && holds<int32_t>(indices)) {
    x.index_type = coverage::IndexType::int32;
  } else if (holds<int64_t>(indptr) && holds<int64_t>(indices)) {
    x.index_type = coverage::IndexType::int64;
  } else {
    fail("indptr and indices must both be int32 or both int64");
  }
  if (holds<float>(data)) x.value_type = coverage::ValueType::float32;
  else if (holds<double>(data)) x.value_type = coverage::ValueType::float64;
  else fail("data must be float32 or float64");
  require(indptr.shape(0) == n_rows + 1, "indptr has ", indptr.shape(0), " entries; expected ", n_rows + 1);
  require(indices.shape(0) == data.shape(0), "indices (", indices.shape(0), ") and data (", data.shape(0),
          ") differ in length");
  x.nnz = indices.shape(0);
  x.indptr = indptr.data();
  x.indices = indices.data();
  x.data = data.data();
  return x;
}

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

const double* optional_doubles(const py::object& o, DoubleArray& keep, int64_t n, const char* name) {
  if (o.is_none()) return nullptr;
  keep = o.cast<DoubleArray>();
  require(keep.ndim() == 1 && keep.shape(0) == n, name, " must have ", n, " entries (got ", keep.size(), ")");
  return keep.data();
}

py::tuple greedy(const py::array& indptr, const py::array& indices, const py::array& data, int64_t n_rows,
                 int64_t n_cols, const py::object& weights, double decay, int64_t k,
                 const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& selected, int threads,
                 const py::object& progress) {
  coverage::GreedyProblem p;
  p.X = csr_view(indptr, indices, data, n_rows, n_cols);
  DoubleArray w;
  p.weights = optional_doubles(weights, w, n_rows, "weights");
  p.decay = decay;
  p.k = k;
  p.selected = selected.data();
  p.n_selected = selected.size();
  p.threads = threads;
  require(k >= 1, "k (", k, ") must be at least 1");
  py::array_t<int64_t> out_indices(k);
  py::array_t<double> out_gains(k);
  py::array_t<double> out_alpha(n_cols);
  coverage::GreedyOutput out;
  out.indices = out_indices.mutable_data();
  out.gains = out_gains.mutable_data();
  out.alpha = out_alpha.mutable_data();
  call_kernel(progress, [&](const Hooks& hooks) {
    coverage::greedy(p, out, hooks);
    return 0;
  });
  return py::make_tuple(out_indices, out_gains, out_alpha, out.refreshes);
}

py::array_t<double> row_gains(const py::array& indptr, const py::array& indices, const py::array& data,
                              int64_t n_rows, int64_t n_cols, const DoubleArray& alpha, const py::object& weights,
                              int threads) {
  coverage::CsrView x = csr_view(indptr, indices, data, n_rows, n_cols);
  require(alpha.ndim() == 1 && alpha.shape(0) == n_cols, "alpha must have ", n_cols, " entries (got ", alpha.size(), ")");
  DoubleArray w;
  const double* wp = optional_doubles(weights, w, n_rows, "weights");
  py::array_t<double> gains(n_rows);
  double* g = gains.mutable_data();
  py::gil_scoped_release release;
  coverage::row_gains(x, alpha.data(), wp, g, threads);
  return gains;
}

int64_t decay_row(const py::array& indptr, const py::array& indices, const py::array& data, int64_t n_rows,
                  int64_t n_cols, int64_t row, double decay, py::array alpha) {
  coverage::CsrView x = csr_view(indptr, indices, data, n_rows, n_cols);
  require(alpha.ndim() == 1 && alpha.shape(0) == n_cols && holds<double>(alpha) &&
              (alpha.flags() & py::array::c_style) && alpha.writeable(),
          "alpha must be a writable contiguous float64 array of ", n_cols, " entries");
  return coverage::decay_row(x, row, decay, static_cast<double*>(alpha.mutable_data()));
}

void register_coverage(py::module_& m) {
  m.def("coverage_tfidf", &tfidf, py::arg("texts"), py::arg("word_ranges"), py::arg("min_n"), py::arg("max_n"),
        py::arg("float32"), py::arg("paper_weighting"), py::arg("threads"), py::arg("progress"),
        "TF-IDF of word n-grams (scikit-learn's weighting or IterIT's Eq. 5); returns (n_cols, indptr, indices, data, df, idf, vocabulary_utf8, "
        "vocabulary_offsets).");
  m.def("coverage_ngram_counts", &ngram_counts, py::arg("texts"), py::arg("word_ranges"), py::arg("min_n"), py::arg("max_n"), py::arg("threads"),
        py::arg("progress"),
        "Raw n-gram counts in TF-IDF's layout; returns (n_cols, indptr, indices, counts, df, idf, vocabulary_utf8, "
        "vocabulary_offsets).");
  m.def("coverage_greedy", &greedy, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_rows"),
        py::arg("n_cols"), py::arg("weights"), py::arg("decay"), py::arg("k"), py::arg("selected"),
        py::arg("threads"), py::arg("progress"),
        "Exact lazy-greedy weighted coverage; returns (indices, gains, alpha, refreshes).");
  m.def("coverage_row_gains", &row_gains, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_rows"),
        py::arg("n_cols"), py::arg("alpha"), py::arg("weights"), py::arg("threads"),
        "gains[i] = w_i * sum_j alpha_j * x_ij for every row (canonical summation order).");
  m.def("coverage_decay_row", &decay_row, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("n_rows"),
        py::arg("n_cols"), py::arg("row"), py::arg("decay"), py::arg("alpha"),
        "alpha_j <- decay * alpha_j (in place) where the row is nonzero; returns how many changed.");
}

ISEL_REGISTER_BINDINGS(register_coverage);

}  // namespace
}  // namespace isel::bindings
