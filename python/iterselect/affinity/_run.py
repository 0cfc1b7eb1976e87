"""The drivers behind :func:`iterselect.affinity_propagation`: dense on the CPU, dense on a CUDA
device (or its CPU emulation), sparse on a kNN graph. Each builds S, places the preference and
the optional noise exactly as scikit-learn does, runs the compiled message passing, and assigns
labels; nothing here touches an n x n matrix element by element in Python.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _backends
from .._arrays import (Matrix, check_nonzero_rows, copy_host, device_arrays,
                       host_values)
from .._knn import kneighbors
from .._memory import gib, host_available
from .._progress import progress_callback
from .._validation import param_error

_NOISE_BLOCK = 1 << 22  # normal draws per block of noise (32 MiB of float64)


@dataclass(frozen=True)
class Options:
    metric: str
    preference: object  # None, float or float64 array (n,)
    damping: float
    max_iter: int
    convergence_iter: int
    random_state: object  # None or numpy.random.RandomState
    dtype: np.dtype
    history_weight: float
    history_decay: float
    return_messages: bool
    progress: bool
    threads: int


@dataclass(frozen=True)
class Raw:
    exemplars: np.ndarray
    labels: np.ndarray
    n_iter: int
    converged: bool
    preference: object
    R: object
    A: object
    mode: str
    equal: bool = False


# ------------------------------------------------------------------ shared steps

def _refuse(func: str, what: str, need: int, have: int, where: str, n: int, dtype: np.dtype) -> None:
    if need <= have:
        return
    hint = " or dtype=np.float32 (half of float64)" if dtype == np.float64 else ""
    raise MemoryError(
        f"{func}: the dense mode needs {what} for n={n}: {gib(need)}, more than the {gib(have)} of {where} "
        f"available. Use the sparse mode (n_neighbors=32: messages on a kNN graph, for millions of points){hint}, "
        "or fewer points.")


def _preference_array(opts: Options, median) -> tuple[np.ndarray, object]:
    """(array for the kernels, value reported) from the option or the median."""
    if opts.preference is None:
        value = float(median())
        return np.array([value]), value
    if isinstance(opts.preference, float):
        return np.array([opts.preference]), opts.preference
    return opts.preference, opts.preference.copy()


def _equal_case(n, pref: np.ndarray, offdiag_range) -> tuple[np.ndarray, np.ndarray] | None:
    """scikit-learn's shortcut when every similarity and every preference is equal."""
    lo, hi = offdiag_range()
    if lo != hi or not np.all(pref == pref[0]):
        return None
    if pref[0] > lo:
        return np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    return np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)


def _noise(opts: Options, count: int, add) -> None:
    """scikit-learn's draws, in order, in blocks: add(start, z) for consecutive entries."""
    if opts.random_state is None:
        return
    for start in range(0, count, _NOISE_BLOCK):
        z = opts.random_state.standard_normal(size=min(_NOISE_BLOCK, count - start))
        add(start, z)


def _noise_rows(opts: Options, n: int, add_rows) -> None:
    """The same draws as one standard_normal((n, n)) call, a block of whole rows at a time."""
    if opts.random_state is None:
        return
    rows = max(1, _NOISE_BLOCK // n)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        add_rows(r0, r1, opts.random_state.standard_normal(size=(r1 - r0) * n))


# ------------------------------------------------------------------ dense, CPU

def run_dense_cpu(m: Matrix, opts: Options, H: Matrix | None, func: str) -> Raw:
    core = _backends.core
    n = m.shape[0]
    T = opts.dtype
    need = 3 * n * n * T.itemsize
    if H is not None and H.on_cuda:
        raise param_error(func, "history", "on the host, like X_or_S", "an array on a CUDA device")
    h_copy = H is not None and H.dtype != T.name
    if h_copy:
        need += n * n * T.itemsize
    _refuse(func, f"3 n^2 {T.name} values (S, R and A{', and a copy of history' if h_copy else ''})", need,
            host_available(), "memory", n, T)
    if opts.metric == "cosine":
        check_nonzero_rows(m, "X_or_S", func)
    S = np.empty((n, n), dtype=T)
    if opts.metric == "precomputed":
        copy_host(m, S)
    else:
        core.affinity_similarity_matrix(m.host, m.dtype, opts.metric, S, opts.threads, None)
    pref, reported = _preference_array(opts, lambda: core.affinity_median(S, opts.threads))
    R = A = None
    shortcut = _equal_case(n, pref, lambda: core.affinity_offdiag_range(S, n))
    if shortcut is not None:
        if opts.return_messages:
            R, A = np.zeros((n, n), T), np.zeros((n, n), T)
        return Raw(shortcut[0], shortcut[1], 0, True, reported, R, A, "dense", equal=True)
    core.affinity_place_preference(S, n, pref)
    _noise_rows(opts, n, lambda r0, r1, z: core.affinity_add_noise(S[r0:r1], z))
    Hh = None
    if H is not None:
        Hh = H.host if not h_copy else np.empty((n, n), dtype=T)
        if h_copy:
            copy_host(H, Hh)
    R, A = np.empty((n, n), T), np.empty((n, n), T)
    with progress_callback(opts.progress, opts.max_iter, "affinity propagation") as callback:
        n_iter, converged, mask = core.affinity_dense_run(
            S, R, A, Hh, n, opts.damping, opts.max_iter, opts.convergence_iter, opts.history_weight,
            opts.history_decay, opts.threads, callback)
    exemplars, labels = core.affinity_dense_assign(S, n, mask, opts.threads)
    if not opts.return_messages:
        R = A = None
    return Raw(np.asarray(exemplars), labels, int(n_iter), bool(converged), reported, R, A, "dense")


# ------------------------------------------------------------------ dense, CUDA device or emulation

def launch_shape(which: str, block_threads=None, max_blocks=None) -> tuple[int, int]:
    """(threads per block, block cap): small for the emulation (its threads are OS threads)."""
    if which == "cuda-emulation":
        return block_threads or 32, 4 if max_blocks is None else max_blocks
    return block_threads or 256, 0 if max_blocks is None else max_blocks


def run_dense_device(m: Matrix, opts: Options, H: Matrix | None, which: str, func: str, block_threads=None,
                     max_blocks=None) -> Raw:
    mod = _backends.cuda_module(which)
    xp = device_arrays(m, which)
    bt, mb = launch_shape(which, block_threads, max_blocks)
    n = m.shape[0]
    T = opts.dtype
    dt = T.name
    if H is not None and H.on_cuda != (which == "cuda"):
        raise param_error(func, "history", "on the same device as X_or_S", H.device)
    h_copy = H is not None and (H.dtype != dt or which == "cuda-emulation" and H.kind != "numpy")
    need = (3 + h_copy) * n * n * T.itemsize
    _refuse(func, f"3 n^2 {dt} values (S, R and A{', and a copy of history' if h_copy else ''})", need,
            xp.available(), "device memory" if which == "cuda" else "memory", n, T)
    if opts.metric == "cosine":
        check_nonzero_rows(m, "X_or_S", func)
    launch = dict(stream=xp.stream, block_threads=bt, max_blocks=mb)
    if opts.metric == "precomputed":
        S = xp.copy_matrix(m, T)
    else:
        S = xp.empty((n, n), T)
        mod.affinity_similarity_matrix(xp.x(func), opts.metric, S, **launch)
    pref, reported = _preference_array(opts, lambda: mod.affinity_median(S, **launch))
    shortcut = _equal_case(n, pref, lambda: mod.affinity_offdiag_range(S, **launch))
    if shortcut is not None:
        R = A = None
        if opts.return_messages:
            R, A = xp.zeros((n, n), T), xp.zeros((n, n), T)
        return Raw(shortcut[0], shortcut[1], 0, True, reported, R, A, "dense", equal=True)
    mod.affinity_place_preference(S, pref, **launch)
    _noise_rows(opts, n, lambda r0, r1, z: mod.affinity_add_noise(S[r0:r1], z, **launch))
    Hd = None
    if H is not None:
        Hd = xp.copy_matrix(H, T) if h_copy else (H.obj if which == "cuda" else H.host)
    R, A = xp.empty((n, n), T), xp.empty((n, n), T)
    with progress_callback(opts.progress, opts.max_iter, "affinity propagation") as callback:
        n_iter, converged, mask = mod.affinity_dense_run(
            S, R, A, Hd, opts.damping, opts.max_iter, opts.convergence_iter, opts.history_weight,
            opts.history_decay, progress=callback, **launch)
    exemplars, labels = mod.affinity_dense_assign(S, mask, **launch)
    if not opts.return_messages:
        R = A = None
    return Raw(np.asarray(exemplars), labels, int(n_iter), bool(converged), reported, R, A, "dense")


def device_scores(r: Matrix, a: Matrix, block_threads=None, max_blocks=None):
    """representation_scores for CUDA arrays: the device kernel, output on the device."""
    xp = device_arrays(r, "cuda")
    n = r.shape[0]
    if r.dtype != a.dtype or r.dtype not in ("float32", "float64"):
        raise param_error("representation_scores", "A", "of R's dtype (float32 or float64) on a CUDA device",
                          f"{r.dtype} and {a.dtype}")
    bt, mb = launch_shape("cuda", block_threads, max_blocks)
    out = xp.empty(n, np.float64)
    _backends.cuda_module("cuda").affinity_representation_scores(r.obj, a.obj, out, stream=xp.stream,
                                                                 block_threads=bt, max_blocks=mb)
    return out


# ------------------------------------------------------------------ sparse, CPU

def run_sparse(m: Matrix, opts: Options, k: int, neighbors, index: str | None, H, func: str) -> Raw:
    import scipy.sparse as sp

    core = _backends.core
    n = m.shape[0]
    T = opts.dtype
    if opts.metric == "cosine":
        check_nonzero_rows(m, "X_or_S", func)
    if neighbors is None:
        neighbors = kneighbors(m, k, metric=opts.metric, index=index, threads=opts.threads or None,
                               func=func)
    indptr, indices, transpose, diagonal = core.affinity_knn_graph(neighbors, opts.threads)
    nnz = int(indptr[-1])
    need = nnz * (3 * T.itemsize + (T.itemsize if H is not None else 0))
    if need > host_available():
        raise MemoryError(f"{func}: the sparse mode needs {gib(need)} for its {nnz} graph entries, more than the "
                          f"{gib(host_available())} available; use fewer neighbours (n_neighbors={k}).")
    S = np.empty(nnz, dtype=T)
    core.affinity_similarity_graph(m.host, m.dtype, opts.metric, indptr, indices, S, opts.threads)
    pref, reported = _preference_array(opts, lambda: core.affinity_median(S, opts.threads))
    graph = (indptr, indices, transpose, diagonal)
    shortcut = _equal_case(n, pref, lambda: core.affinity_sparse_offdiag_range(*graph, S))
    if shortcut is not None:
        R = A = None
        if opts.return_messages:
            R = sp.csr_matrix((np.zeros(nnz, T), indices, indptr), shape=(n, n))
            A = sp.csr_matrix((np.zeros(nnz, T), indices, indptr), shape=(n, n))
        return Raw(shortcut[0], shortcut[1], 0, True, reported, R, A, "sparse", equal=True)
    S[diagonal] = pref if pref.size == n else pref[0]
    _noise(opts, nnz, lambda e0, z: core.affinity_add_noise(S[e0:e0 + z.size], z))
    Hv = None if H is None else _history_values(H, indptr, indices, T)
    R, A = np.empty(nnz, T), np.empty(nnz, T)
    with progress_callback(opts.progress, opts.max_iter, "affinity propagation (sparse)") as callback:
        n_iter, converged, mask = core.affinity_sparse_run(
            *graph, S, R, A, Hv, opts.damping, opts.max_iter, opts.convergence_iter, opts.history_weight,
            opts.history_decay, opts.threads, callback)
    exemplars, labels = core.affinity_sparse_assign(*graph, S, m.host, m.dtype, opts.metric, mask, opts.threads)
    if opts.return_messages:
        R = sp.csr_matrix((R, indices, indptr), shape=(n, n))
        A = sp.csr_matrix((A, indices, indptr), shape=(n, n))
    else:
        R = A = None
    return Raw(np.asarray(exemplars), labels, int(n_iter), bool(converged), reported, R, A, "sparse")


def _history_values(H, indptr, indices, T) -> np.ndarray:
    """H at every stored entry of the graph (row blocks; scipy.sparse H: 0 outside its pattern)."""
    import scipy.sparse as sp

    n = indptr.size - 1
    out = np.empty(int(indptr[-1]), dtype=T)
    Hc = sp.csr_matrix(H) if sp.issparse(H) else None
    rows_per = max(1, (1 << 22) // max(1, int(indptr[-1]) // n + 1))
    for r0 in range(0, n, rows_per):
        r1 = min(n, r0 + rows_per)
        e0, e1 = int(indptr[r0]), int(indptr[r1])
        rows = np.repeat(np.arange(r0, r1), np.diff(indptr[r0:r1 + 1]))
        cols = indices[e0:e1]
        if Hc is not None:
            out[e0:e1] = np.asarray(Hc[rows, cols]).ravel()
        else:
            out[e0:e1] = host_values(H, slice(r0, r1))[rows - r0, cols]
    return out
