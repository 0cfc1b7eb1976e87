"""Validation and conversion of numpy / torch / cupy inputs.

The C++ kernels read raw host buffers; the CUDA kernels read arrays through DLPack. This module
turns whatever the user passed into one of those without copying, remembers what it was, and
turns results back into the input's kind and device.

Half precision stays half: float16 is passed as numpy float16, bfloat16 (torch, or numpy with
``ml_dtypes``) is passed as its raw ``uint16`` bits with the dtype tag ``"bfloat16"``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import param_error

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


def check_finite_rows(host: np.ndarray, dtype: str, name: str, func: str) -> None:
    """Raise ValueError naming the first row that holds NaN or inf (checked blockwise)."""
    for start in range(0, host.shape[0], _BLOCK_ROWS):
        rows = _nonfinite_rows(host[start:start + _BLOCK_ROWS], dtype)
        if rows.size:
            raise param_error(func, name, "finite (no NaN or inf)",
                              f"a non-finite value in row {start + int(rows[0])}")


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
