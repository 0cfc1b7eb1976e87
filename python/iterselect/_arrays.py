"""The one array layer: numpy / torch / cupy inputs, validated and converted, and results back.

The C++ kernels read raw host buffers; the CUDA kernels read arrays through DLPack. This module
turns whatever the user passed into one of those without copying, remembers what it was, and
turns results back into the input's kind and device (:func:`as_matrix`; :func:`like`,
:func:`like_input` and :func:`results_like` for results). It also holds what every family needs
of arrays: the array kind (:func:`array_kind`), bfloat16 widening and host copies
(:func:`host_values`, :func:`to_float32`, :func:`to_float64`, :func:`copy_host`,
:func:`host_array`, :func:`host_float32`), any array as a host numpy array (:func:`to_host`) and
1-D host vectors (:func:`host_vector`), the zero-row check of the cosine metric
(:func:`check_nonzero_rows`, one message everywhere) and the arrays a CUDA kernel reads and
writes (:func:`device_arrays`, :func:`host_dlpack`).

Half precision stays half: float16 is passed as numpy float16, bfloat16 (torch, or numpy with
``ml_dtypes``) is passed as its raw ``uint16`` bits with the dtype tag ``"bfloat16"``. Where
numbers are read in Python, bfloat16 is widened to float32 here (exactly) and nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ._memory import device_available, host_available
from .exceptions import param_error

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_BLOCK_ROWS = 65536  # finiteness is checked a block at a time so no N x d temporary is made


@dataclass(frozen=True)
class Matrix:
    """A validated 2-D float input: a host view (``host``) or a C-contiguous device array (``obj``).

    ``host`` is a C-contiguous numpy array (uint16 bits for bfloat16) when the data lives on the
    CPU, else ``None``; CUDA inputs are made C-contiguous in ``obj`` and reach the kernels through
    DLPack.
    """

    obj: object
    kind: str  # "numpy" | "torch" | "cupy"
    device: str  # "cpu" | "cuda"
    dtype: str  # one of FLOAT_DTYPES
    shape: tuple
    host: np.ndarray | None

    @property
    def on_cuda(self) -> bool:
        return self.device == "cuda"


def array_kind(obj) -> str:
    """'numpy', 'torch' or 'cupy' (by module, so neither framework has to be installed)."""
    mod = type(obj).__module__.split(".")[0]
    if mod == "torch":
        return "torch"
    if mod == "cupy":
        return "cupy"
    return "numpy"


def _torch_dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "")


def as_matrix(X, name: str, func: str, *, check_finite: bool = True, min_rows: int = 1) -> Matrix:
    """Validate a (N, d) float matrix and return a zero-copy :class:`Matrix` view of it."""
    kind = array_kind(X)
    if kind == "torch":
        dtype = _torch_dtype_name(X)
        shape = tuple(X.shape)
        device = "cuda" if X.is_cuda else "cpu"
    elif kind == "cupy":
        dtype = str(X.dtype)
        shape = tuple(X.shape)
        device = "cuda"
    else:
        if not isinstance(X, np.ndarray):
            try:
                X = np.asarray(X)
            except Exception as exc:  # ragged lists and the like
                raise param_error(func, name, "a 2-D array of floats", type(X).__name__, TypeError) from exc
        dtype = X.dtype.name
        shape = X.shape
        device = "cpu"
    if dtype not in FLOAT_DTYPES:
        raise param_error(func, name, f"an array of dtype {', '.join(FLOAT_DTYPES)}",
                          f"dtype {dtype}", TypeError)
    if len(shape) != 2:
        raise param_error(func, name, "a 2-D array of shape (n_samples, n_features)",
                          f"an array of shape {shape}")
    if shape[0] < min_rows or shape[1] < 1:
        raise param_error(func, name, f"a non-empty 2-D array with at least {min_rows} row(s)",
                          f"an array of shape {shape}")
    host = None
    if device == "cpu":
        host = _host_view(X, kind, dtype)
        if check_finite:
            check_finite_rows(host, dtype, name, func)
    elif kind == "torch":
        X = X.contiguous() if not X.is_contiguous() else X
    else:
        X = X if X.flags.c_contiguous else X.copy()
    return Matrix(obj=X, kind=kind, device=device, dtype=dtype, shape=tuple(shape), host=host)


def _host_view(X, kind: str, dtype: str) -> np.ndarray:
    if kind == "torch":
        import torch

        t = X.detach()
        if not t.is_contiguous():
            t = t.contiguous()
        if dtype == "bfloat16":
            return t.view(torch.int16).numpy().view(np.uint16)
        return t.numpy()
    arr = np.ascontiguousarray(X)
    if dtype == "bfloat16":  # ml_dtypes.bfloat16
        return arr.view(np.uint16)
    return arr


def _nonfinite_rows(block: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bfloat16":
        bad = (block & 0x7F80) == 0x7F80  # exponent all ones: inf or NaN
    else:
        bad = ~np.isfinite(block)
    return np.flatnonzero(bad.any(axis=1))


def check_finite_rows(host: np.ndarray, dtype: str, name: str, func: str, offset: int = 0) -> None:
    """Raise ValueError naming the first row that holds NaN or inf (checked blockwise); rows
    are numbered from ``offset`` (a shard's first row)."""
    for start in range(0, host.shape[0], _BLOCK_ROWS):
        rows = _nonfinite_rows(host[start:start + _BLOCK_ROWS], dtype)
        if rows.size:
            raise param_error(func, name, "finite (no NaN or inf)",
                              f"a non-finite value in row {offset + start + int(rows[0])}")


def widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """float32 values of bfloat16 numbers held as their raw ``uint16`` bits (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def host_values(m: Matrix, rows=None) -> np.ndarray:
    """The host matrix's numbers as a numpy float array: bfloat16 bits widened to float32, every
    other dtype as it is (a view). ``rows``: a slice or index array of the rows wanted."""
    host = m.host if rows is None else m.host[rows]
    return widen_bfloat16(host) if m.dtype == "bfloat16" else host


def host_rows(m: Matrix, rows, dtype=np.float32) -> np.ndarray:
    """Rows of ``m`` (a slice or an index array) as a host ``dtype`` array: a copy of those rows
    only (a CUDA matrix's rows are taken and converted on the device, then copied)."""
    if not m.on_cuda:
        return host_values(m, rows).astype(dtype, copy=False)
    if m.kind == "torch":
        import torch

        t = m.obj.detach()
        t = t[rows] if isinstance(rows, slice) else t[torch.as_tensor(rows, device=t.device)]
        return t.to(getattr(torch, np.dtype(dtype).name)).cpu().numpy()
    import cupy

    return cupy.asnumpy(m.obj[rows].astype(dtype))


def row_blocks(m: Matrix, dtype=np.float32, rows: int | None = None):
    """Yield ``(start, block)``: consecutive rows of a host matrix as ``dtype``, about 64 MiB at
    a time, so that a memory-mapped input is never converted (or read into memory) whole."""
    if rows is None:
        rows = max(1, (1 << 26) // (max(1, m.shape[1]) * np.dtype(dtype).itemsize))
    for start in range(0, m.shape[0], rows):
        yield start, host_rows(m, slice(start, start + rows), dtype)


def to_float64(m: Matrix) -> np.ndarray:
    """A float64 host copy of a host matrix (used by references and small helpers)."""
    return host_values(m).astype(np.float64)


def to_float32(m: Matrix) -> np.ndarray:
    """A float32 host array of a host matrix (a view when it already is float32)."""
    return host_values(m).astype(np.float32, copy=False)


def copy_host(m: Matrix, out: np.ndarray) -> None:
    """Copy a host matrix into ``out`` (converting to its dtype), a block of rows at a time."""
    rows = max(1, (1 << 24) // max(1, out.shape[1]))
    for r0 in range(0, out.shape[0], rows):
        r1 = min(out.shape[0], r0 + rows)
        out[r0:r1] = host_values(m, slice(r0, r1))


def zero_row_error(func: str, name: str, row: int) -> ValueError:
    """The one message for a row of zero norm where a cosine needs a direction."""
    return param_error(func, name, "rows of non-zero norm (the cosine of a zero row is undefined)",
                       f"a zero row at index {row}")


def check_nonzero_rows(m: Matrix, name: str, func: str, offset: int = 0) -> None:
    """Raise :func:`zero_row_error` for the lowest row of ``m`` that is all zeros (host: a block
    at a time; CUDA: on the device, one bool per row copied back); host rows are numbered from
    ``offset`` (a shard's first row)."""
    if m.on_cuda:
        obj = m.obj
        zero = ~(obj != 0).any(axis=1) if m.kind == "cupy" else ~(obj != 0).any(dim=1)
        rows = np.flatnonzero(zero.get() if m.kind == "cupy" else zero.cpu().numpy())
        if rows.size:
            raise zero_row_error(func, name, int(rows[0]))
        return
    for start in range(0, m.shape[0], _BLOCK_ROWS):
        block = m.host[start:start + _BLOCK_ROWS]
        if m.dtype in ("bfloat16", "float16"):  # any bit but the sign: -0.0 is zero too
            nonzero = (block.view(np.uint16) & 0x7FFF) != 0
        else:
            nonzero = block != 0
        rows = np.flatnonzero(~nonzero.any(axis=1))
        if rows.size:
            raise zero_row_error(func, name, offset + start + int(rows[0]))


def like(values: np.ndarray, obj):
    """Return host ``values`` as the kind and device of the array ``obj`` (numpy, lists and
    scipy matrices: numpy as it is)."""
    kind = array_kind(obj)
    if kind == "torch":
        import torch

        out = torch.from_numpy(np.ascontiguousarray(values))
        return out.to(obj.device) if obj.is_cuda else out
    if kind == "cupy":
        import cupy

        return cupy.asarray(values)
    return values


def like_input(values: np.ndarray, m: Matrix):
    """Return host ``values`` as the kind and device of the input ``m`` (numpy stays numpy)."""
    return like(values, m.obj)


def results_like(result, obj):
    """The result dataclass ``result`` with every numpy array field in the kind and device of
    ``obj`` (unchanged for numpy input): how a function returns its result as its input's kind."""
    if array_kind(obj) == "numpy":
        return result
    changes = {}
    for f in fields(result):
        value = getattr(result, f.name)
        if isinstance(value, np.ndarray):
            changes[f.name] = like(value, obj)
    return replace(result, **changes)


def host_array(m: Matrix, dtype=None) -> np.ndarray:
    """The numbers of ``m`` as a host numpy array: a host matrix as :func:`host_values` gives
    it (a view; bfloat16 widened to float32), a CUDA matrix copied to the host once; ``dtype``
    converts (on the device, before the copy)."""
    if not m.on_cuda:
        values = host_values(m)
        return values if dtype is None else values.astype(dtype, copy=False)
    if m.kind == "torch":
        import torch

        t = m.obj.detach()
        if dtype is not None:
            t = t.to(getattr(torch, np.dtype(dtype).name))
        elif m.dtype == "bfloat16":
            t = t.float()
        return t.cpu().numpy()
    import cupy

    return cupy.asnumpy(m.obj if dtype is None else m.obj.astype(dtype))


def host_float32(m: Matrix) -> np.ndarray:
    """A C-contiguous float32 host array of ``m``; CUDA inputs are copied to the host (once)."""
    return np.ascontiguousarray(host_array(m, np.float32))


def to_host(values) -> np.ndarray:
    """Any array (numpy, list, torch on any device, cupy; bfloat16 widened to float32) as a host
    numpy array. For vectors and small matrices: a CUDA array is copied to the host."""
    mod = array_kind(values)
    if mod == "torch":
        t = values.detach().cpu()
        values = (t.float() if str(t.dtype) == "torch.bfloat16" else t).numpy()
    elif mod == "cupy":
        values = values.get()
    arr = np.asarray(values)
    if arr.dtype.name == "bfloat16":  # ml_dtypes
        arr = arr.astype(np.float32)
    return arr


def host_vector(values, name: str, func: str, *, kind: str) -> np.ndarray:
    """A 1-D host numpy array from numpy / list / torch (any device) / cupy input.

    1-D vectors (labels, scores) are small next to the (N, d) embeddings, so a CUDA vector is
    copied to the host here.
    """
    try:
        arr = to_host(values)
    except Exception as exc:
        raise param_error(func, name, f"a 1-D array of {kind}", type(values).__name__, TypeError) from exc
    if arr.ndim != 1:
        raise param_error(func, name, f"a 1-D array of {kind}", f"an array of shape {arr.shape}")
    return arr


# ---------------------------------------------------------------------------------------------
# Arrays on the device a CUDA kernel reads and writes: torch or cupy on a GPU, numpy for the
# emulated grid. One interface, so that each family's driver allocates and passes arrays the same
# way (the bindings read them through DLPack and check their device, dtype and shape).

class _HostArrays:
    """Host numpy arrays for the CPU emulation of the grid."""

    stream = None

    def __init__(self, m: Matrix):
        self.m = m

    def empty(self, shape, dtype):
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    def x(self, func: str):
        return host_dlpack(self.m, func)

    @staticmethod
    def from_host(a: np.ndarray):
        return a

    @staticmethod
    def to_host(a) -> np.ndarray:
        return a

    def copy_matrix(self, mat: Matrix, dtype):
        out = np.empty(mat.shape, dtype=dtype)
        copy_host(mat, out)
        return out

    def available(self) -> int:
        return host_available()


class _TorchArrays:
    """torch tensors on the input's CUDA device (the current one for host input), on its
    current stream."""

    def __init__(self, m: Matrix | None):
        import torch

        self.torch, self.m = torch, m
        self.device = m.obj.device if m is not None else torch.device("cuda", torch.cuda.current_device())
        self.stream = torch.cuda.current_stream(self.device).cuda_stream

    def _dt(self, dtype):
        return getattr(self.torch, np.dtype(dtype).name)

    def empty(self, shape, dtype):
        return self.torch.empty(shape, dtype=self._dt(dtype), device=self.device)

    def zeros(self, shape, dtype):
        return self.torch.zeros(shape, dtype=self._dt(dtype), device=self.device)

    def x(self, func: str):
        return self.m.obj

    def from_host(self, a: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    @staticmethod
    def to_host(a) -> np.ndarray:
        return a.cpu().numpy()

    def copy_matrix(self, mat: Matrix, dtype):
        return mat.obj.to(dtype=self._dt(dtype), copy=True).contiguous()

    def available(self) -> int:
        return device_available(self.m.obj)


class _CupyArrays:
    """cupy arrays on the current device and stream."""

    def __init__(self, m: Matrix | None):
        import cupy

        self.cupy, self.m = cupy, m
        self.stream = cupy.cuda.get_current_stream().ptr

    def empty(self, shape, dtype):
        return self.cupy.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return self.cupy.zeros(shape, dtype=dtype)

    def x(self, func: str):
        return self.m.obj

    def from_host(self, a: np.ndarray):
        return self.cupy.asarray(a)

    @staticmethod
    def to_host(a) -> np.ndarray:
        return a.get()

    def copy_matrix(self, mat: Matrix, dtype):
        return self.cupy.array(mat.obj, dtype=dtype, copy=True, order="C")

    def available(self) -> int:
        return device_available(self.m.obj)


def device_arrays(m: Matrix | None, backend: str):
    """Where a CUDA kernel run on ``backend`` ("cuda" or "cuda-emulation") for input ``m`` puts
    its arrays: ``empty``, ``zeros``, ``x(func)`` (the input, as the module reads it),
    ``from_host`` / ``to_host`` (explicit copies of small or requested arrays), ``copy_matrix``,
    ``available`` (bytes free) and ``stream`` (None on the emulated grid). ``m=None``: the input
    is on the host and the caller copies what the kernel needs with ``from_host`` (torch when it
    sees a CUDA device, else cupy)."""
    if backend == "cuda-emulation":
        return _HostArrays(m)
    kind = m.kind if m is not None else ("torch" if _torch_sees_cuda() else "cupy")
    return _TorchArrays(m) if kind == "torch" else _CupyArrays(m)


def _torch_sees_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def host_dlpack(m: Matrix, func: str):
    """A host matrix as an object the emulated CUDA module reads through DLPack, without a copy.

    numpy arrays export themselves; bfloat16 (held as uint16 bits) is exported as a torch bfloat16
    view of the same memory, since numpy cannot describe bfloat16 to DLPack.
    """
    if m.dtype != "bfloat16":
        return m.host
    try:
        import torch
    except ImportError:
        raise RuntimeError(f"{func}: backend='cuda-emulation' with bfloat16 input needs torch "
                           "(to describe bfloat16 through DLPack)") from None
    return torch.from_numpy(m.host.view(np.int16)).view(torch.bfloat16)
