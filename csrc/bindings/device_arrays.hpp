// The array boundary of the _cuda and _cuda_emu modules: every array argument arrives as a DLPack
// capsule or an object with __dlpack__ (torch, cupy, numpy, JAX, ...) or __cuda_array_interface__
// (numba, older cupy), and is checked here, in C++, before a kernel sees it: the memory it lives
// in (CUDA device memory for _cuda; host memory for _cuda_emu, whose "device" is the CPU), all
// arrays of a call on one device, dtype, shape, C-contiguity and, for outputs, writability.
// Errors name the argument, what was expected and what was found.
//
// Streams: a call runs on one CUDA stream (the caller's framework's current stream, passed as
// its integer handle). __dlpack__ is asked for that stream, so the producer orders its pending
// work before ours; a __cuda_array_interface__ that names a stream is waited for with an event.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "bindings/dlpack.hpp"
#include "common/check.hpp"
#include "common/device_runtime.hpp"
#include "common/launch.hpp"
#include "common/dtype.hpp"

#ifndef ISEL_EMULATION
#error "ISEL_EMULATION must be 0 (_cuda) or 1 (_cuda_emu)"
#endif

namespace isel::bindings {

namespace py = pybind11;

enum class Elem { float16, bfloat16, float32, float64, int32, int64, uint8, other };

inline const char* elem_name(Elem e) {
  switch (e) {
    case Elem::float16: return "float16";
    case Elem::bfloat16: return "bfloat16";
    case Elem::float32: return "float32";
    case Elem::float64: return "float64";
    case Elem::int32: return "int32";
    case Elem::int64: return "int64";
    case Elem::uint8: return "uint8";
    default: return "another dtype";
  }
}

struct Array {
  const char* name = "";
  void* data = nullptr;
  Elem elem = Elem::other;
  std::string dtype;            // as found, for messages (e.g. "int16", "complex64")
  std::vector<int64_t> shape;
  bool readonly = false;
  std::string where;            // "cuda:0", "the CPU", ... for messages
  int device_id = -1;           // CUDA device, -1 when unknown or on the host
  py::object keep;              // the capsule or object that owns the memory, alive for the call

  int64_t size() const {
    int64_t s = 1;
    for (int64_t e : shape) s *= e;
    return s;
  }
  template <class T>
  T* as() const { return static_cast<T*>(data); }
  DType float_dtype() const {
    switch (elem) {
      case Elem::float16: return DType::float16;
      case Elem::bfloat16: return DType::bfloat16;
      case Elem::float32: return DType::float32;
      default: return DType::float64;
    }
  }
};

namespace detail {

inline std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] < 0 ? std::string("any") : std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::string dlpack_dtype_name(const dlpack::DataType& t, Elem* elem) {
  *elem = Elem::other;
  if (t.lanes == 1) {
    if (t.code == dlpack::kFloat && t.bits == 16) *elem = Elem::float16;
    if (t.code == dlpack::kFloat && t.bits == 32) *elem = Elem::float32;
    if (t.code == dlpack::kFloat && t.bits == 64) *elem = Elem::float64;
    if (t.code == dlpack::kBfloat && t.bits == 16) *elem = Elem::bfloat16;
    if (t.code == dlpack::kInt && t.bits == 32) *elem = Elem::int32;
    if (t.code == dlpack::kInt && t.bits == 64) *elem = Elem::int64;
    if (t.code == dlpack::kUInt && t.bits == 8) *elem = Elem::uint8;
  }
  if (*elem != Elem::other) return elem_name(*elem);
  const char* kind = t.code == dlpack::kInt ? "int" : t.code == dlpack::kUInt ? "uint" : t.code == dlpack::kFloat ? "float"
                     : t.code == dlpack::kBfloat ? "bfloat" : t.code == dlpack::kBool ? "bool" : t.code == 5 ? "complex"
                     : "type code ";
  std::string s = kind;
  if (t.code > dlpack::kBool && t.code != 5) s += std::to_string(t.code) + " of ";
  if (t.code != dlpack::kBool) s += std::to_string(t.bits);
  if (t.lanes != 1) s += " x" + std::to_string(t.lanes) + " lanes";
  return s;
}

inline std::string device_text(const dlpack::Device& d) {
  switch (d.device_type) {
    case dlpack::kCPU: return "the CPU";
    case dlpack::kCUDA: return "cuda:" + std::to_string(d.device_id);
    case dlpack::kCUDAHost: return "pinned host memory";
    case dlpack::kCUDAManaged: return "CUDA managed memory (device " + std::to_string(d.device_id) + ")";
    default: return "a device of DLPack type " + std::to_string(d.device_type);
  }
}

inline void check_contiguous(const char* name, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                             int64_t unit) {
  int64_t expect = unit, count = 1;
  for (int64_t e : shape) count *= e;
  if (count == 0 || strides.empty()) return;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != expect) {
      std::vector<int64_t> in_elements(strides);
      for (auto& s : in_elements) s /= unit;
      fail(name, " must be C-contiguous (got strides ", shape_text(in_elements), " elements for shape ",
           shape_text(shape), ")");
    }
    expect *= shape[i];
  }
}

// Fills `a` from a DLPack tensor (memory, shape, dtype, strides).
inline void from_tensor(Array& a, const dlpack::Tensor& t, bool readonly) {
  a.data = static_cast<char*>(t.data) + t.byte_offset;
  a.shape.assign(t.shape, t.shape + t.ndim);
  a.dtype = dlpack_dtype_name(t.dtype, &a.elem);
  a.readonly = readonly;
  a.where = device_text(t.device);
  if (t.strides != nullptr) check_contiguous(a.name, a.shape, std::vector<int64_t>(t.strides, t.strides + t.ndim), 1);
}

}  // namespace detail

// The arrays of one call: where they must live, the stream the call runs on, their device.
class Arrays {
 public:
  // stream: the integer handle of the CUDA stream the call runs on (None: the legacy default
  // stream); ignored by the emulated module.
  explicit Arrays(const py::object& stream) {
    if (!stream.is_none()) stream_ = stream.cast<int64_t>();
  }

  void* stream() const { return kEmulation ? nullptr : reinterpret_cast<void*>(stream_); }
  int device() const { return device_; }

  Array get(const py::handle& obj, const char* name) {
    Array a;
    a.name = name;
    if (PyCapsule_CheckExact(obj.ptr())) {
      read_capsule(a, py::reinterpret_borrow<py::object>(obj));
    } else if (py::hasattr(obj, "__dlpack__")) {
      read_capsule(a, export_dlpack(obj, name));
    } else if (py::hasattr(obj, "__cuda_array_interface__")) {
      if (kEmulation)
        fail(name, " must be a host array for the emulated device (got an object with only __cuda_array_interface__, "
                   "which describes CUDA memory)");
      read_interface(a, obj);
    } else {
      throw py::type_error(std::string(name) + " must be a DLPack capsule or an array with __dlpack__ or "
                           "__cuda_array_interface__ (got " + std::string(py::str(py::type::handle_of(obj).attr("__name__"))) + ")");
    }
    return a;
  }

 private:
  static constexpr bool kEmulation = ISEL_EMULATION != 0;

  // __dlpack__, versioned when the producer can (it then says whether the array is read-only).
  // The producer is told our stream only for CUDA memory (host producers refuse any stream), and
  // memory in the wrong place is refused before anything is exported.
  py::object export_dlpack(const py::handle& obj, const char* name) {
    bool cuda_memory = !kEmulation;
    if (py::hasattr(obj, "__dlpack_device__")) {
      py::tuple where = obj.attr("__dlpack_device__")();
      const dlpack::Device d{py::int_(where[0]).cast<int32_t>(), py::int_(where[1]).cast<int32_t>()};
      cuda_memory = d.device_type == dlpack::kCUDA || d.device_type == dlpack::kCUDAManaged;
      Array probe;
      probe.name = name;
      probe.where = detail::device_text(d);
      place(probe, d);
    }
    py::object fn = obj.attr("__dlpack__");
    py::dict kwargs;
    if (cuda_memory) kwargs["stream"] = stream_ == 0 ? int64_t{1} : stream_;  // 1: the legacy default stream
    kwargs["max_version"] = py::make_tuple(1, 0);
    try {
      return fn(**kwargs);
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_TypeError)) throw;
    }
    kwargs.attr("pop")("max_version");
    return fn(**kwargs);
  }

  void read_capsule(Array& a, py::object capsule) {
    PyObject* c = capsule.ptr();
    if (PyCapsule_IsValid(c, "dltensor_versioned")) {
      auto* m = static_cast<dlpack::ManagedTensorVersioned*>(PyCapsule_GetPointer(c, "dltensor_versioned"));
      require(m->version.major == 1, a.name, " is a DLPack ", m->version.major, ".", m->version.minor,
              " capsule; this build reads DLPack 1.x");
      detail::from_tensor(a, m->dl_tensor, (m->flags & dlpack::kFlagReadOnly) != 0);
      place(a, m->dl_tensor.device);
    } else if (PyCapsule_IsValid(c, "dltensor")) {
      auto* m = static_cast<dlpack::ManagedTensor*>(PyCapsule_GetPointer(c, "dltensor"));
      detail::from_tensor(a, m->dl_tensor, false);
      place(a, m->dl_tensor.device);
    } else {
      fail(a.name, " is a capsule that is not an unused DLPack tensor (its name is '",
           PyCapsule_GetName(c) ? PyCapsule_GetName(c) : "", "')");
    }
    a.keep = std::move(capsule);
  }

  // The memory must be this module's: CUDA (or managed) memory for _cuda, the host for _cuda_emu.
  void place(Array& a, const dlpack::Device& d) {
    if (kEmulation) {
      require(d.device_type == dlpack::kCPU || d.device_type == dlpack::kCUDAHost, a.name,
              " must be a host array for the emulated device (got an array on ", a.where, ")");
      return;
    }
    require(d.device_type == dlpack::kCUDA || d.device_type == dlpack::kCUDAManaged, a.name,
            " must be on a CUDA device (got an array on ", a.where, ")");
    same_device(a, d.device_id);
  }

  void same_device(Array& a, int id) {
    a.device_id = id;
    if (device_ < 0) {
      device_ = id;
      first_ = a.name;
    } else {
      require(id == device_, a.name, " is on cuda:", id, " but ", first_, " is on cuda:", device_,
              "; every array of a call must be on one device");
    }
  }

  void read_interface(Array& a, const py::handle& obj) {
    py::dict cai = obj.attr("__cuda_array_interface__");
    std::string typestr = py::str(cai["typestr"]);
    py::tuple shape = cai["shape"];
    py::tuple data = cai["data"];
    require(!cai.contains("mask") || cai["mask"].is_none(), a.name, " has a mask; masked arrays are not supported");
    for (auto e : shape) a.shape.push_back(e.cast<int64_t>());
    a.data = reinterpret_cast<void*>(data[0].cast<uintptr_t>());
    a.readonly = data[1].cast<bool>();
    a.where = "a CUDA device";
    a.dtype = typestr;
    const char order = typestr.empty() ? '?' : typestr[0];
    const std::string kind = typestr.size() > 1 ? typestr.substr(1) : "";
    if (order != '>') {
      if (kind == "f2") a.elem = Elem::float16;
      if (kind == "f4") a.elem = Elem::float32;
      if (kind == "f8") a.elem = Elem::float64;
      if (kind == "i4") a.elem = Elem::int32;
      if (kind == "i8") a.elem = Elem::int64;
      if (kind == "u1") a.elem = Elem::uint8;
    }
    if (a.elem != Elem::other) a.dtype = elem_name(a.elem);
    const int64_t unit = kind.size() > 1 ? std::stoll(kind.substr(1)) : 1;
    if (cai.contains("strides") && !cai["strides"].is_none()) {
      std::vector<int64_t> strides;
      for (auto s : py::tuple(cai["strides"])) strides.push_back(s.cast<int64_t>());
      detail::check_contiguous(a.name, a.shape, strides, unit);
    }
    if (cai.contains("stream") && !cai["stream"].is_none()) {
      const int64_t producer = cai["stream"].cast<int64_t>();
      // 1: the legacy default stream (handle 0); 2: the per-thread default stream (handle 2)
      device::stream_wait(reinterpret_cast<void*>(producer == 1 ? 0 : producer), stream());
    }
    a.keep = py::reinterpret_borrow<py::object>(obj);
  }

  int64_t stream_ = 0;
  int device_ = -1;
  const char* first_ = "";
};

// The launch shape of a call on `arrays`' stream.
inline device::Launch launch_on(const Arrays& arrays, int block_threads, int max_blocks) {
  device::Launch launch;
  launch.stream = arrays.stream();
  launch.block_threads = block_threads;
  launch.max_blocks = max_blocks;
  return launch;
}

// ---- what an argument must be

inline void expect_dtype(const Array& a, std::initializer_list<Elem> allowed) {
  for (Elem e : allowed)
    if (a.elem == e) return;
  std::string list;
  size_t i = 0;
  for (Elem e : allowed) {
    list += (i == 0 ? "" : i + 1 == allowed.size() ? " or " : ", ");
    list += elem_name(e);
    ++i;
  }
  fail(a.name, " must have dtype ", list, " (got ", a.dtype, ")");
}

// extents: the expected shape, -1 where any extent is allowed.
inline void expect_shape(const Array& a, const std::vector<int64_t>& extents) {
  bool ok = a.shape.size() == extents.size();
  for (size_t i = 0; ok && i < extents.size(); ++i) ok = extents[i] < 0 || extents[i] == a.shape[i];
  if (ok) return;
  if (a.shape.size() != extents.size())
    fail(a.name, " must be ", extents.size(), "-D with shape ", detail::shape_text(extents), " (got shape ",
         detail::shape_text(a.shape), ")");
  fail(a.name, " must have shape ", detail::shape_text(extents), " (got ", detail::shape_text(a.shape), ")");
}

inline void expect_writable(const Array& a) {
  require(!a.readonly, a.name, " must be writable (got a read-only array)");
}

// A 1-D array of `n` float64 values (one the kernel writes when `output`).
inline Array float64_vector(Arrays& arrays, const py::handle& obj, const char* name, int64_t n, bool output) {
  Array a = arrays.get(obj, name);
  expect_dtype(a, {Elem::float64});
  expect_shape(a, {n});
  if (output) expect_writable(a);
  return a;
}

// A 1-D array of `n` int64 values the kernel writes (picks).
inline Array int64_output(Arrays& arrays, const py::handle& obj, const char* name, int64_t n) {
  Array a = arrays.get(obj, name);
  expect_dtype(a, {Elem::int64});
  expect_shape(a, {n});
  expect_writable(a);
  return a;
}

constexpr std::initializer_list<Elem> kFloatElems = {Elem::float16, Elem::bfloat16, Elem::float32, Elem::float64};
constexpr std::initializer_list<Elem> kMessageElems = {Elem::float32, Elem::float64};

}  // namespace isel::bindings
