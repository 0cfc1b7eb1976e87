"""The CUDA path of the coverage family: a matrix's CSR parts in its own framework, checked with the
CPU path's messages, and the compiled kernels called on them.

``backend="cuda"`` takes torch CUDA tensors (sparse CSR or COO, or dense) and cupy arrays (cupyx
sparse or dense); ``backend="cuda-emulation"`` runs the same kernels on the CPU emulation of the
grid, with CPU torch tensors standing in for device ones (scipy and numpy inputs arrive there as
the CPU path's canonical CSR). Nothing is copied between host and device except O(n) vectors the
caller gives on the host (weights, alpha), and a few scalars.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .. import _backends
from .._arrays import to_host
from .._progress import progress_callback
from .._validation import param_error


def nonnegative_error(func: str, value, row: int, column: int) -> ValueError:
    """The error for a negative or non-finite entry of X, the same on every backend."""
    return param_error(func, "X", "a nonnegative matrix of finite values",
                       f"{float(value)!r} at row {row}, column {column}")


def framework(X) -> str:
    """'torch', 'cupy' (cupy and cupyx) or 'numpy' (scipy and everything else), by module."""
    mod = type(X).__module__.split(".")[0]
    if mod == "torch":
        return "torch"
    return "cupy" if mod in ("cupy", "cupyx") else "numpy"


def on_cuda(X) -> bool:
    kind = framework(X)
    return kind == "cupy" or (kind == "torch" and X.is_cuda)


@dataclass(frozen=True)
class Parts:
    """A CSR matrix as three 1-D arrays of one framework (on one device), the kernels' input."""

    indptr: object
    indices: object
    data: object
    shape: tuple
    kind: str  # "torch" | "cupy" | "numpy"
    device: object = None  # the torch device (torch only)

    @property
    def stream(self):
        """The CUDA stream the kernels run on (None on the host)."""
        if self.kind == "cupy" or (self.kind == "torch" and self.data.is_cuda):
            return _backends.stream_of(self.data)
        return None

    def empty(self, n: int, dtype: str):
        if self.kind == "torch":
            import torch

            return torch.empty(n, dtype=getattr(torch, dtype), device=self.device)
        if self.kind == "cupy":
            import cupy

            return cupy.empty(n, dtype=dtype)
        return np.empty(n, dtype=dtype)

    def first_bad(self, a):
        """Index of the first negative or non-finite value of ``a`` (None if there is none)."""
        if self.kind == "torch":
            import torch

            found = torch.nonzero(~torch.isfinite(a) | (a < 0))
            return int(found[0, 0]) if found.numel() else None
        xp = _namespace(self.kind)
        found = xp.flatnonzero(~xp.isfinite(a) | (a < 0))
        return int(found[0]) if found.size else None

    def vector(self, values, n: int, name: str, func: str, what: str):
        """``values`` (host or this framework's device) as a float64 vector of n checked values here.

        Host values are checked on the host, then copied (O(n)); device values are checked where
        they are. The messages are the CPU path's.
        """
        if framework(values) != self.kind or self.kind == "numpy":
            host = to_host(values)
            _check_shape_dtype(host.shape, host.dtype, n, name, func, what)
            host = np.ascontiguousarray(host, dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(host) | (host < 0))
            if bad.size:
                raise param_error(func, name, "nonnegative and finite", f"{float(host[bad[0]])!r} at position {int(bad[0])}")
            return self.from_host(host)
        _check_shape_dtype(tuple(values.shape), _dtype_of(values), n, name, func, what)
        if self.kind == "torch":
            import torch

            out = values.to(device=self.device, dtype=torch.float64).contiguous()
        else:
            out = _namespace("cupy").ascontiguousarray(values, dtype="float64")
        bad = self.first_bad(out)
        if bad is not None:
            raise param_error(func, name, "nonnegative and finite", f"{float(out[bad])!r} at position {bad}")
        return out

    def from_host(self, host: np.ndarray):
        if self.kind == "torch":
            import torch

            return torch.from_numpy(host).to(self.device)
        if self.kind == "cupy":
            return _namespace("cupy").asarray(host)
        return host


def writable_weights(alpha, parts: Parts, m: int) -> bool:
    """Whether ``alpha`` can be decayed in place for ``parts``: a contiguous float64 (m,) array of
    the parts' framework, on their device (numpy: writable)."""
    if framework(alpha) != parts.kind or tuple(getattr(alpha, "shape", ())) != (m,):
        return False
    if parts.kind == "torch":
        import torch

        return alpha.dtype == torch.float64 and alpha.is_contiguous() and alpha.device == parts.device
    if parts.kind == "cupy":
        return alpha.dtype == np.float64 and alpha.flags.c_contiguous
    return isinstance(alpha, np.ndarray) and alpha.dtype == np.float64 and alpha.flags.c_contiguous \
        and alpha.flags.writeable


def _namespace(kind: str):
    if kind == "cupy":
        import cupy

        return cupy
    return np


def _dtype_of(a) -> np.dtype:
    if framework(a) == "torch":
        import torch

        if a.dtype == torch.bfloat16:
            return np.dtype(np.float32)  # numeric; widened exactly
        return torch.empty(0, dtype=a.dtype).numpy().dtype
    return np.dtype(a.dtype)


def _check_shape_dtype(shape, dtype, n: int, name: str, func: str, what: str) -> None:
    if tuple(shape) != (n,):
        raise param_error(func, name, f"a 1-D array of {n} values (one per {what})", f"an array of shape {tuple(shape)}")
    if not (np.issubdtype(dtype, np.number) or dtype == bool) or np.issubdtype(dtype, np.complexfloating):
        raise param_error(func, name, "an array of real numbers", f"dtype {dtype}", TypeError)


# ----------------------------------------------------------------------------- the matrix

def torch_parts(X, func: str) -> Parts:
    """The CSR parts of a torch tensor (sparse CSR or COO, or dense), on its device."""
    import torch

    if X.dim() != 2:
        raise param_error(func, "X", "a 2-D sparse matrix or array", f"a tensor of shape {tuple(X.shape)}")
    if X.is_complex():
        raise param_error(func, "X", "a matrix of real numbers", f"dtype {X.dtype}", TypeError)
    with warnings.catch_warnings():  # torch's note that its CSR support is in beta: not actionable here
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        if X.layout == torch.sparse_coo:
            X = X.coalesce().to_sparse_csr()
        elif X.layout == torch.strided:
            X = (X if X.dtype in (torch.float32, torch.float64) else X.to(torch.float64)).to_sparse_csr()
        elif X.layout != torch.sparse_csr:
            X = X.to_sparse_csr()
    data = X.values()
    if data.dtype not in (torch.float32, torch.float64):
        data = data.to(torch.float64)
    parts = Parts(X.crow_indices().contiguous(), X.col_indices().contiguous(), data.contiguous(), tuple(X.shape),
                  "torch", X.device)
    _check_values(parts, func)
    return parts


def cupy_parts(X, func: str) -> Parts:
    """The CSR parts of a cupy array or cupyx sparse matrix (canonical: sorted, no duplicates)."""
    import cupy
    import cupyx.scipy.sparse as csp

    if not csp.issparse(X):
        if X.ndim != 2:
            raise param_error(func, "X", "a 2-D sparse matrix or array", f"an array of shape {X.shape}")
        if X.dtype.kind == "c":
            raise param_error(func, "X", "a matrix of real numbers", f"dtype {X.dtype}", TypeError)
        X = csp.csr_matrix(X if X.dtype in (cupy.float32, cupy.float64) else X.astype(cupy.float64))
    else:
        X = X.tocsr()
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
    data = X.data if X.data.dtype in (cupy.float32, cupy.float64) else X.data.astype(cupy.float64)
    parts = Parts(X.indptr, X.indices, data, tuple(X.shape), "cupy")
    _check_values(parts, func)
    return parts


def host_parts(indptr, indices, data, shape) -> Parts:
    """The CPU path's canonical CSR (already checked) as parts for the emulated device."""
    return Parts(indptr, indices, data, tuple(shape), "numpy")


def _check_values(parts: Parts, func: str) -> None:
    p = parts.first_bad(parts.data)
    if p is None:
        return
    if parts.kind == "torch":
        import torch

        row = int(torch.searchsorted(parts.indptr, torch.tensor(p, dtype=parts.indptr.dtype, device=parts.device),
                                     right=True)) - 1
    else:
        row = int(_namespace(parts.kind).searchsorted(parts.indptr, p, side="right")) - 1
    raise nonnegative_error(func, parts.data[p], row, int(parts.indices[p]))


# ----------------------------------------------------------------------------- kernels

def _launch(which: str) -> dict:
    """Threads per block and block cap: small for the emulation (its threads are fibers)."""
    return dict(block_threads=64, max_blocks=4) if which == "cuda-emulation" else dict(block_threads=256, max_blocks=0)


def greedy(parts: Parts, k: int, weights, decay: float, pool: np.ndarray, progress, which: str):
    """(indices, gains, alpha, refreshes) of the device greedy, arrays in the parts' framework."""
    n, m = parts.shape
    indices, gains, alpha = parts.empty(k, "int64"), parts.empty(k, "float64"), parts.empty(m, "float64")
    with progress_callback(progress, k, "coverage") as callback:
        refreshes = _backends.cuda_module(which).coverage_greedy(
            parts.indptr, parts.indices, parts.data, m, weights, decay, k, pool, indices, gains, alpha,
            stream=parts.stream, progress=callback, **_launch(which))
    return indices, gains, alpha, int(refreshes)


def gains(parts: Parts, alpha, weights, which: str):
    out = parts.empty(parts.shape[0], "float64")
    _backends.cuda_module(which).coverage_row_gains(parts.indptr, parts.indices, parts.data, parts.shape[1], alpha,
                                                    weights, out, stream=parts.stream, **_launch(which))
    return out


def decay_row(parts: Parts, row: int, alpha, decay: float, which: str) -> int:
    return int(_backends.cuda_module(which).coverage_decay_row(parts.indptr, parts.indices, parts.data,
                                                               parts.shape[1], row, decay, alpha,
                                                               stream=parts.stream, **_launch(which)))
