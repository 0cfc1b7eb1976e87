"""Validation and conversion of numpy / torch / cupy inputs.

The C++ kernels read raw host buffers; the CUDA kernels read raw device pointers. This module
turns whatever the user passed into one of those without copying (DLPack for torch and cupy),
remembers what it was, and turns results back into the input's kind and device.

Half precision stays half: float16 is passed as numpy float16, bfloat16 (torch, or numpy with
``ml_dtypes``) is passed as its raw ``uint16`` bits with the dtype tag ``"bfloat16"``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .exceptions import param_error

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# finiteness is checked a block of this many bytes at a time, so that no temporary grows with
# the input (a block of rows would be gigabytes for a wide precomputed similarity matrix)
_BLOCK_BYTES = 32 << 20


@dataclass(frozen=True)
class Matrix:
    """A validated 2-D float input: a host view (``host``) or a device pointer (``ptr``).

    ``host`` is a C-contiguous numpy array (uint16 bits for bfloat16) when the data lives on the
    CPU, else ``None``; ``ptr`` is the device address for CUDA inputs.
    """

    obj: object
    kind: str  # "numpy" | "torch" | "cupy"
    device: str  # "cpu" | "cuda"
    dtype: str  # one of FLOAT_DTYPES
    shape: tuple
    host: np.ndarray | None
    ptr: int = 0
    max_abs: float | None = None  # largest |value|, known once a host input was checked

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
    ptr = 0
    max_abs = None
    if device == "cpu":
        host = _host_view(X, kind, dtype)
        if check_finite:
            max_abs = check_finite_rows(host, dtype, name, func)
    elif kind == "torch":
        X = X.contiguous() if not X.is_contiguous() else X
        ptr = X.data_ptr()
    else:
        import cupy  # noqa: F401  (cupy input means cupy is importable)

        X = X if X.flags.c_contiguous else X.copy()
        ptr = X.data.ptr
    return Matrix(obj=X, kind=kind, device=device, dtype=dtype, shape=tuple(shape), host=host, ptr=ptr,
                  max_abs=max_abs)


def checked_finite(m: Matrix, name: str, func: str) -> Matrix:
    """``m`` after the finiteness check that ``as_matrix(..., check_finite=False)`` put off (for
    callers that first refuse an input too large to work on, before reading all of it)."""
    if m.on_cuda or m.max_abs is not None:
        return m
    return replace(m, max_abs=check_finite_rows(m.host, m.dtype, name, func))


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


def check_finite_rows(host: np.ndarray, dtype: str, name: str, func: str) -> float:
    """Raise ValueError naming the first row that holds NaN or inf; else return the largest
    absolute value. Read in blocks of at most 32 MiB."""
    step = max(1, _BLOCK_BYTES // max(1, host.shape[1] * host.itemsize))
    largest = 0.0
    for start in range(0, host.shape[0], step):
        block = host[start:start + step]
        if dtype == "bfloat16":  # largest magnitude: the largest bit pattern without the sign
            top = int((block & 0x7FFF).max())
            ok = top < 0x7F80
            value = float(np.array([top << 16], dtype=np.uint32).view(np.float32)[0])
        else:
            hi, lo = block.max(), block.min()  # NaN propagates into both
            ok = bool(np.isfinite(hi) and np.isfinite(lo))
            value = max(float(hi), -float(lo)) if ok else 0.0
        if not ok:
            rows = _nonfinite_rows(block, dtype)
            raise param_error(func, name, "finite (no NaN or inf)",
                              f"a non-finite value in row {start + int(rows[0])}")
        largest = max(largest, value)
    return largest


def _device_max_abs(m: Matrix, name: str, func: str) -> float:
    """The largest |value| of a CUDA input (no copy of it), refusing NaN or inf."""
    if m.kind == "torch":
        lo, hi = (float(v) for v in m.obj.aminmax())
    else:
        lo, hi = float(m.obj.min()), float(m.obj.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise param_error(func, name, "finite (no NaN or inf)", "a non-finite value")
    return max(hi, -lo)


def check_magnitude(m: Matrix, name: str, func: str, *, terms: float, what: str,
                    compute: str | None = None, fix: str | None = None) -> None:
    """Refuse an input whose arithmetic would overflow: ``terms * max|x|**2`` must be below the
    largest float of ``compute`` (the type the kernel computes in; by default float64 for
    float64 input, else float32). ``terms`` bounds what the kernel sums, e.g. ``4 * d`` for
    a squared distance between two rows of ``d`` values, each difference at most
    ``2 * max|x|``. Overflow would not fail: it would turn distances into inf and the answer
    into an arbitrary one, so it is refused with the cause and the fix.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect._arrays import as_matrix, check_magnitude
    >>> m = as_matrix(np.full((3, 4), 1e30, dtype=np.float32), "X", "f")
    >>> check_magnitude(m, "X", "f", terms=16, what="squared distances")
    Traceback (most recent call last):
    ...
    ValueError: The 'X' parameter of f must be small enough that squared distances fit in float32 (values up to 4.6e+18 in magnitude). Got 'values up to 1e+30' instead. Scale the data (e.g. divide it by its largest absolute value) or pass it as float64.
    """
    compute = compute or ("float64" if m.dtype == "float64" else "float32")
    largest = _device_max_abs(m, name, func) if m.on_cuda else m.max_abs
    if largest is None:
        largest = check_finite_rows(m.host, m.dtype, name, func)
    limit = math.sqrt(float(np.finfo(compute).max) / terms)
    if largest < limit:
        return
    if fix is None:
        fix = ("Scale the data (e.g. divide it by its largest absolute value)"
               + (" or pass it as float64." if compute == "float32" else "."))
    msg = param_error(func, name, f"small enough that {what} fit in {compute} (values up to "
                      f"{limit:.2g} in magnitude)", f"values up to {largest:.3g}").args[0]
    raise ValueError(f"{msg} {fix}")


def to_float64(m: Matrix) -> np.ndarray:
    """A float64 host copy of a host matrix (used by references and small helpers)."""
    if m.dtype == "bfloat16":
        return (m.host.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return m.host.astype(np.float64)


def to_float32(m: Matrix) -> np.ndarray:
    """A float32 host array of a host matrix (a view when it already is float32)."""
    if m.dtype == "bfloat16":
        return (m.host.astype(np.uint32) << 16).view(np.float32)
    return m.host.astype(np.float32, copy=False)


def like_input(values: np.ndarray, m: Matrix):
    """Return host ``values`` as the kind and device of the input ``m`` (numpy stays numpy)."""
    if m.kind == "torch":
        import torch

        out = torch.from_numpy(np.ascontiguousarray(values))
        return out.to(m.obj.device) if m.on_cuda else out
    if m.kind == "cupy":
        import cupy

        return cupy.asarray(values)
    return values


def host_float32(m: Matrix) -> np.ndarray:
    """A C-contiguous float32 host array of ``m``; CUDA inputs are copied to the host (once)."""
    if not m.on_cuda:
        return np.ascontiguousarray(to_float32(m))
    if m.kind == "torch":
        return m.obj.detach().float().cpu().numpy()
    import cupy

    return cupy.asnumpy(m.obj.astype(cupy.float32))


def detached(values):
    """``values`` ready for ``np.asarray``: a torch tensor detached from autograd (a tensor that
    requires grad cannot become a numpy array) and moved to the host, a cupy array copied to
    the host; anything else as it is."""
    mod = array_kind(values)
    if mod == "torch":
        return values.detach().cpu().numpy()
    if mod == "cupy":
        return values.get()
    return values


def host_vector(values, name: str, func: str, *, kind: str) -> np.ndarray:
    """A 1-D host numpy array from numpy / list / torch (any device) / cupy input.

    1-D vectors (labels, scores) are small next to the (N, d) embeddings, so a CUDA vector is
    copied to the host here.
    """
    values = detached(values)
    try:
        arr = np.asarray(values)
    except Exception as exc:
        raise param_error(func, name, f"a 1-D array of {kind}", type(values).__name__, TypeError) from exc
    if arr.ndim != 1:
        raise param_error(func, name, f"a 1-D array of {kind}", f"an array of shape {arr.shape}")
    return arr
