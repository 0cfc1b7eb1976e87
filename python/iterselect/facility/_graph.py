"""Similarity graphs for facility location: the checked CSR form the kernels read, its column
view, and the kNN graph built from feature vectors (faiss neighbours, iterselect similarities)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import _backends
from .._arrays import Matrix, as_matrix, to_float32
from .._knn import kneighbors
from .._memory import gib, host_available
from .._validation import param_error

_INT32_MAX = np.iinfo(np.int32).max


@dataclass(frozen=True)
class Csr:
    """The arrays of a canonical CSR matrix as the C++ kernels take them."""

    matrix: sp.csr_array  # canonical: sorted indices, no duplicates
    indptr: np.ndarray  # int64
    indices: np.ndarray  # int32 (both dimensions < 2^31) or int64
    data: np.ndarray  # float32 or float64

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def args(self) -> tuple:
        """(indptr, indices, data, n_rows, n_cols) for the bindings."""
        return (self.indptr, self.indices, self.data, *self.matrix.shape)


def _kernel_arrays(M, shape) -> tuple[np.ndarray, np.ndarray]:
    """int64 offsets; int32 indices when both dimensions fit (the transpose stores the rows in the
    same type), else int64. Indices already of a fitting type are not copied."""
    small = max(shape) <= _INT32_MAX
    keep = M.indices.dtype == np.int64 or (M.indices.dtype == np.int32 and small)
    indices = M.indices if keep else M.indices.astype(np.int32 if small else np.int64)
    return np.ascontiguousarray(M.indptr, dtype=np.int64), np.ascontiguousarray(indices)


def _bad_value(M, func: str, name: str) -> None:
    """Raise for the first negative or non-finite stored value of a CSR matrix."""
    bad = np.flatnonzero(~np.isfinite(M.data) | (M.data < 0))
    if bad.size:
        e = int(bad[0])
        row = int(np.searchsorted(M.indptr, e, side="right") - 1)
        raise param_error(func, name, "a matrix of similarities >= 0 (finite)",
                          f"{float(M.data[e])!r} at row {row}, column {int(M.indices[e])}")


def _check_real(dtype, func: str, name: str) -> None:
    if not (np.issubdtype(dtype, np.number) or dtype == bool) or np.issubdtype(dtype, np.complexfloating):
        raise param_error(func, name, "a matrix of real numbers", f"dtype {dtype}", TypeError)


def similarity_csr(graph, func: str, name: str = "graph") -> Csr:
    """``graph`` (any scipy sparse format, or a dense 2-D array) as a checked canonical CSR.

    Values stay float32 or float64 (other real dtypes become float64); duplicate entries are
    summed (scipy's convention); every value must be finite and >= 0.
    """
    if sp.issparse(graph):
        M = sp.csr_array(graph)
        if not M.has_canonical_format:
            M = M.copy()
            M.sum_duplicates()
    else:
        try:
            dense = np.asarray(graph)
        except Exception as exc:
            raise param_error(func, name, "a 2-D sparse matrix or array", type(graph).__name__, TypeError) from exc
        if dense.ndim != 2:
            raise param_error(func, name, "a 2-D sparse matrix or array", f"an array of shape {dense.shape}")
        _check_real(dense.dtype, func, name)
        M = sp.csr_array(dense)
    _check_real(M.dtype, func, name)
    if M.shape[0] < 1 or M.shape[1] < 1:
        raise param_error(func, name, "a matrix with at least one row and one column", f"shape {M.shape}")
    if M.dtype not in (np.float32, np.float64):
        M = M.astype(np.float64)
    _bad_value(M, func, name)
    indptr, indices = _kernel_arrays(M, M.shape)
    return Csr(M, indptr, indices, np.ascontiguousarray(M.data))


def column_view(graph, func: str, name: str = "graph") -> Csr:
    """The transpose of ``graph`` in CSR form (rows: candidates, columns: points), i.e. the
    graph's canonical CSC arrays. A canonical scipy CSC input is used as it is, unchecked here
    (the kernels check what they read)."""
    if sp.issparse(graph) and graph.format == "csc" and graph.has_canonical_format \
            and graph.dtype in (np.float32, np.float64) and min(graph.shape) >= 1:
        C = graph
    else:
        C = sp.csc_array(similarity_csr(graph, func, name).matrix)
    T = sp.csr_array((C.data, C.indices, C.indptr), shape=(C.shape[1], C.shape[0]))
    indptr, indices = _kernel_arrays(T, T.shape)
    return Csr(T, indptr, indices, np.ascontiguousarray(T.data))


METRICS = ("cosine", "euclidean")


def host_matrix(X, func: str) -> Matrix:
    """X checked as an (n, d) float matrix in host memory (faiss searches on the CPU)."""
    m = as_matrix(X, "X", func)
    if m.on_cuda:
        raise param_error(func, "X", "a host array (the kNN graph is built with faiss on the CPU; move X to "
                          "the CPU first)", f"a {m.kind} array on {m.device}")
    return m


def knn_graph(m: Matrix, n_neighbors: int, metric: str, index: str, threads: int, func: str) -> sp.csr_array:
    """Row i: point i itself and its ``n_neighbors`` nearest other points (faiss), columns
    ascending, with the similarities of facility.knn_similarity_graph."""
    n = m.shape[0]
    k = min(n_neighbors, n - 1)
    value_dtype = np.float64 if m.dtype == "float64" else np.float32
    nnz = n * (k + 1)
    need = nnz * (8 + 8 + 8 + 2 * np.dtype(value_dtype).itemsize + 8)  # ids, columns, copies, values, transpose
    have = host_available()
    if need > have:
        raise MemoryError(f"{func}: a kNN graph of {n} points with {k} neighbours each needs about {gib(need)}, more "
                          f"than the {gib(have)} available; use fewer neighbours (n_neighbors={n_neighbors}).")
    if metric == "cosine":
        zero = np.flatnonzero(~np.any(to_float32(m) != 0, axis=1))
        if zero.size:
            raise param_error(func, "X", "rows of non-zero norm for metric='cosine'",
                              f"a zero row at index {int(zero[0])}")
    if k > 0:
        neighbors = kneighbors(to_float32(m), k, metric=metric, index=index, threads=threads or None, func=func)
    else:
        neighbors = np.empty((n, 0), dtype=np.int64)
    columns = np.concatenate([np.arange(n, dtype=np.int64)[:, None], neighbors], axis=1)
    columns.sort(axis=1)  # -1 (a neighbour faiss did not find) sorts first and is dropped
    found = columns >= 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(found.sum(axis=1), out=indptr[1:])
    indices = columns[found]
    del columns, found, neighbors
    values = np.empty(indices.size, dtype=value_dtype)
    _backends.core.affinity_similarity_graph(m.host, m.dtype, "cosine" if metric == "cosine" else "sqeuclidean",
                                             indptr, indices, values, threads)
    if metric == "cosine":  # the kernel gives cos - 1
        np.add(values, 1, out=values)
        np.maximum(values, 0, out=values)
    else:  # the kernel gives -||x - y||^2; apricot's similarity is (largest stored) - ||x - y||^2
        np.add(values, -values.min(), out=values)
    small = n <= _INT32_MAX
    return sp.csr_array((values, indices.astype(np.int32) if small else indices, indptr), shape=(n, n))
