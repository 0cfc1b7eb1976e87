// _core bindings of the fused decoder-layer steps (decoder/decoder_ops.hpp). bfloat16 arrays come
// as 2-byte integer arrays (torch's `tensor.view(torch.int16).numpy()`), float32 ones as float32;
// 2-D and C-contiguous, except the inputs of SiLU and RoPE, which may be column slices of a wider
// product; shapes checked here. Outputs are written in place into arrays the caller owns.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/registry.hpp"
#include "common/check.hpp"
#include "decoder/decoder_ops.hpp"

namespace isel::bindings {
namespace {

namespace py = pybind11;

void check_float32(const py::array& a, const char* name, bool writable) {
  require(a.ndim() == 2, name, " must be 2-D (got ", a.ndim(), " dimensions)");
  require(a.flags() & py::array::c_style, name, " must be C-contiguous");
  require(a.dtype().kind() == 'f' && a.itemsize() == 4, name, " has the wrong dtype (want float32)");
  require(!writable || a.writeable(), name, " must be writable");
}

// A 2-D bfloat16 array whose columns are adjacent (a row stride of its own is fine: a column slice
// of a wider product); returns the row stride in elements.
int64_t bf16_rows(const py::array& a, const char* name, bool writable) {
  require(a.ndim() == 2, name, " must be 2-D (got ", a.ndim(), " dimensions)");
  require((a.dtype().kind() == 'u' || a.dtype().kind() == 'i') && a.itemsize() == 2, name,
          " has the wrong dtype (want bfloat16 bits as int16/uint16)");
  require(!writable || a.writeable(), name, " must be writable");
  if (a.size() == 0 || a.shape(0) == 1) return a.shape(1);  // no stride is ever followed
  require(a.shape(1) <= 1 || a.strides(1) == 2, name, "'s columns must be adjacent (unit column stride)");
  require(a.strides(0) % 2 == 0 && a.strides(0) >= 2 * a.shape(1), name,
          " must have non-negative, non-overlapping rows");
  return a.strides(0) / 2;
}

void check_bf16(const py::array& a, const char* name, bool writable) {
  bf16_rows(a, name, writable);
  require(a.flags() & py::array::c_style, name, " must be C-contiguous");
}

void check_weight(const py::array_t<float, py::array::c_style>& w, py::ssize_t cols) {
  require(w.ndim() == 1 && w.shape(0) == cols, "weight must have one float32 value per column (", cols, ")");
}

uint16_t* bits(py::array& a) { return static_cast<uint16_t*>(a.mutable_data()); }
const uint16_t* bits_in(const py::array& a) { return static_cast<const uint16_t*>(a.data()); }

void add_rms_norm(py::array h, py::object y, py::array_t<float, py::array::c_style> w, float eps, py::array out,
                  int threads) {
  check_float32(h, "h", !y.is_none());
  check_bf16(out, "out", true);
  require(out.shape(0) == h.shape(0) && out.shape(1) == h.shape(1), "out must have h's shape");
  check_weight(w, h.shape(1));
  const int64_t rows = h.shape(0), cols = h.shape(1);
  if (y.is_none()) {
    const float* hp = static_cast<const float*>(h.data());
    py::gil_scoped_release release;
    decoder::rms_norm(hp, rows, cols, w.data(), eps, bits(out), threads);
    return;
  }
  py::array add = y.cast<py::array>();
  check_bf16(add, "y", false);
  require(add.shape(0) == rows && add.shape(1) == cols, "y must have h's shape");
  float* hp = static_cast<float*>(h.mutable_data());
  py::gil_scoped_release release;
  decoder::add_rms_norm(hp, bits_in(add), rows, cols, w.data(), eps, bits(out), threads);
}

void silu_mul(py::array gate, py::array up, py::array out, int threads) {
  const int64_t stride = bf16_rows(gate, "gate", false);
  require(bf16_rows(up, "up", false) == stride, "gate and up must have the same row stride");
  check_bf16(out, "out", true);
  require(gate.shape(0) == up.shape(0) && gate.shape(1) == up.shape(1) && out.shape(0) == gate.shape(0) &&
              out.shape(1) == gate.shape(1),
          "gate, up and out must have the same shape");
  const uint16_t* g = bits_in(gate);
  const uint16_t* u = bits_in(up);
  py::gil_scoped_release release;
  decoder::silu_mul(g, u, gate.shape(0), gate.shape(1), stride, bits(out), threads);
}

void rope(py::array x, int64_t heads, int64_t head_dim, py::array_t<float, py::array::c_style> cos,
          py::array_t<float, py::array::c_style> sin, int threads) {
  const int64_t stride = bf16_rows(x, "x", true);
  const int64_t tokens = x.shape(0);
  require(heads > 0 && heads * head_dim <= x.shape(1), "rope: ", heads, " heads of ", head_dim,
          " do not fit in x's ", x.shape(1), " columns");
  for (const auto* t : {&cos, &sin})
    require(t->ndim() == 2 && t->shape(0) == tokens && t->shape(1) == head_dim,
            "cos and sin must be (tokens, head_dim) float32");
  uint16_t* p = bits(x);
  py::gil_scoped_release release;
  decoder::rope(p, tokens, heads, head_dim, stride, cos.data(), sin.data(), threads);
}

py::array_t<float> token_nll(py::array logits, py::array_t<int64_t, py::array::c_style> targets, int threads) {
  check_bf16(logits, "logits", false);
  require(targets.ndim() == 1 && targets.shape(0) == logits.shape(0), "targets must hold one int64 per row of logits");
  py::array_t<float> out(logits.shape(0));
  const uint16_t* lp = bits_in(logits);
  const int64_t* tp = targets.data();
  float* op = out.mutable_data();
  const int64_t rows = logits.shape(0), vocab = logits.shape(1);
  {
    py::gil_scoped_release release;
    decoder::token_nll(lp, rows, vocab, tp, op, threads);
  }
  return out;
}

void register_decoder(py::module_& m) {
  m.def("decoder_token_nll", &token_nll, py::arg("logits"), py::arg("targets"), py::arg("threads") = 0,
        "Per row: logsumexp(logits) - logits[target], float32, from bfloat16 bits (rows, vocab).");
  m.def("decoder_add_rms_norm", &add_rms_norm, py::arg("h"), py::arg("y"), py::arg("weight"), py::arg("eps"),
        py::arg("out"), py::arg("threads") = 0,
        "h += y (bfloat16 bits; None: no add, h untouched), then out = bf16(rms_norm(h) * weight); h float32.");
  m.def("decoder_silu_mul", &silu_mul, py::arg("gate"), py::arg("up"), py::arg("out"), py::arg("threads") = 0,
        "out = bf16(silu(gate) * up) (bfloat16 bits; gate and up may be column slices of one product).");
  m.def("decoder_rope", &rope, py::arg("x"), py::arg("heads"), py::arg("head_dim"), py::arg("cos"), py::arg("sin"),
        py::arg("threads") = 0,
        "Rotary embedding in place on the first heads * head_dim columns of x (bfloat16 bits; x may be a "
        "column slice of a wider product).");
}

ISEL_REGISTER_BINDINGS(register_decoder);

}  // namespace
}  // namespace isel::bindings
