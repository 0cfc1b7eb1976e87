// _core bindings of the fused decoder-layer steps (decoder/decoder_ops.hpp). bfloat16 arrays come
// as 2-byte integer arrays (torch's `tensor.view(torch.int16).numpy()`), float32 ones as float32;
// all C-contiguous 2-D, shapes checked here. Outputs are written in place into arrays the caller owns.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/registry.hpp"
#include "common/check.hpp"
#include "decoder/decoder_ops.hpp"

namespace isel::bindings {
namespace {

namespace py = pybind11;

void check_2d(const py::array& a, const char* name, char kind, py::ssize_t itemsize, bool writable) {
  require(a.ndim() == 2, name, " must be 2-D (got ", a.ndim(), " dimensions)");
  require(a.flags() & py::array::c_style, name, " must be C-contiguous");
  require(a.dtype().kind() == kind && a.itemsize() == itemsize, name, " has the wrong dtype (want ",
          kind == 'f' ? "float32" : "bfloat16 bits as int16/uint16", ")");
  require(!writable || a.writeable(), name, " must be writable");
}

void check_bf16(const py::array& a, const char* name, bool writable) {
  const char k = a.dtype().kind();
  check_2d(a, name, k == 'u' ? 'u' : 'i', 2, writable);
}

void check_weight(const py::array_t<float, py::array::c_style>& w, py::ssize_t cols) {
  require(w.ndim() == 1 && w.shape(0) == cols, "weight must have one float32 value per column (", cols, ")");
}

uint16_t* bits(py::array& a) { return static_cast<uint16_t*>(a.mutable_data()); }
const uint16_t* bits_in(const py::array& a) { return static_cast<const uint16_t*>(a.data()); }

void add_rms_norm(py::array h, py::object y, py::array_t<float, py::array::c_style> w, float eps, py::array out,
                  int threads) {
  check_2d(h, "h", 'f', 4, !y.is_none());
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

void silu_mul(py::array gate_up, py::array out, int threads) {
  check_bf16(gate_up, "gate_up", false);
  check_bf16(out, "out", true);
  require(gate_up.shape(1) % 2 == 0 && out.shape(0) == gate_up.shape(0) && out.shape(1) * 2 == gate_up.shape(1),
          "gate_up must be (rows, 2 * inter) and out (rows, inter)");
  py::gil_scoped_release release;
  decoder::silu_mul(bits_in(gate_up), gate_up.shape(0), out.shape(1), bits(out), threads);
}

void rope(py::array x, int64_t offset, int64_t heads, int64_t head_dim, py::array_t<float, py::array::c_style> cos,
          py::array_t<float, py::array::c_style> sin, int threads) {
  check_bf16(x, "x", true);
  const int64_t tokens = x.shape(0), width = x.shape(1);
  require(offset >= 0 && heads > 0 && offset + heads * head_dim <= width, "rope: columns [", offset, ", ",
          offset + heads * head_dim, ") do not fit in x's ", width);
  for (const auto* t : {&cos, &sin})
    require(t->ndim() == 2 && t->shape(0) == tokens && t->shape(1) == head_dim,
            "cos and sin must be (tokens, head_dim) float32");
  uint16_t* p = bits(x) + offset;
  py::gil_scoped_release release;
  decoder::rope(p, tokens, heads, head_dim, width, cos.data(), sin.data(), threads);
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
  m.def("decoder_silu_mul", &silu_mul, py::arg("gate_up"), py::arg("out"), py::arg("threads") = 0,
        "out = bf16(silu(gate) * up) for gate_up = [gate | up] (bfloat16 bits).");
  m.def("decoder_rope", &rope, py::arg("x"), py::arg("offset"), py::arg("heads"), py::arg("head_dim"),
        py::arg("cos"), py::arg("sin"), py::arg("threads") = 0,
        "Rotary embedding in place on x[:, offset : offset + heads * head_dim] (bfloat16 bits).");
}

ISEL_REGISTER_BINDINGS(register_decoder);

}  // namespace
}  // namespace isel::bindings
