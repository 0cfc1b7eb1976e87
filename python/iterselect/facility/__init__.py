"""Facility location on a sparse similarity graph, exact greedy: QDIT's diversity.

The facility-location function of a selection S is D(S) = sum_i max_{j in S} s_ij: every point
i is represented by its most similar selected candidate. QDIT (Bukharin et al., "Data Diversity
Matters for Robust Instruction Tuning", 2023, section 3) maximizes
F(S) = (1 - alpha) * D(S) + alpha * sum_{j in S} q_j greedily, with q a per-sample quality score.

:func:`facility_location` builds a k-nearest-neighbour similarity graph of feature vectors with
faiss (never an N x N matrix) and runs the greedy on it; :func:`facility_location_graph` runs it
on a graph you give; :func:`facility_gains`, :func:`facility_update` and
:func:`facility_objective` are the kernels the greedy is made of.

Paper | published code | here (QDIT; no published code of it was found among the sources
available here):

- diversity: the paper's facility location runs over the cosine similarities of sentence
  embeddings, every pair; here the same function runs on a kNN graph (each point and its
  ``n_neighbors`` nearest points), which with ``n_neighbors >= N - 1`` stores every pair.
- similarity: the paper's cosine; here ``metric="cosine"`` is max(cos, 0) (facility location
  needs similarities >= 0) and ``metric="euclidean"`` apricot's transform.
- objective: (1 - alpha) D(S) + alpha * (sum of the quality of S) in both; ``quality_weight`` is
  alpha.
- optimizer: the paper's greedy; here the exact lazy greedy (the plain greedy's picks, ties to
  the lowest index).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import _backends
from .._arrays import device_arrays, results_like
from .._progress import progress_callback
from .._validation import check_choice, check_float, check_indices, check_int, check_selection_budget, param_error
from .._knn import INDEXES
from ._graph import METRICS, Csr, column_view, host_matrix, knn_graph, similarity_csr

__all__ = ["FacilityLocationResult", "facility_gains", "facility_location", "facility_location_graph",
           "facility_objective", "facility_update", "knn_similarity_graph"]


@dataclass(frozen=True)
class FacilityLocationResult:
    """The result of :func:`facility_location` and :func:`facility_location_graph`.

    Attributes
    ----------
    indices : int64 array (k,)
        Picked candidates in pick order; every prefix is the greedy selection of that size.
    gains : float64 array (k,)
        Each pick's marginal gain of F at the time it was picked (non-increasing).
    objective : float
        F of the whole selection (``selected`` and the picks).
    current : float64 array (n_points,)
        Each point's largest similarity to the selection (0 if none of its stored candidates
        was picked): its representation.
    evaluations : int or None
        Marginal gains the CPU path computed (the plain greedy computes k per candidate);
        None on the CUDA backends.
    backend : str
        "cpu", "cuda" or "cuda-emulation".
    graph : scipy.sparse.csr_array or None
        The similarity graph :func:`facility_location` built (None from
        :func:`facility_location_graph`); pass it to :func:`facility_location_graph` to pick
        again without rebuilding it.
    """

    indices: np.ndarray
    gains: np.ndarray
    objective: float
    current: np.ndarray
    evaluations: int | None
    backend: str
    graph: object = None


def _check_threads(threads, func: str) -> int:
    return 0 if threads is None else check_int(threads, "threads", func, 1)


def _check_quality(quality, quality_weight, n: int, func: str):
    """(quality as float64 or None, alpha)."""
    alpha = check_float(quality_weight, "quality_weight", func, 0.0, 1.0)
    if quality is None:
        return None, alpha
    q = np.asarray(quality)
    if q.ndim != 1 or q.shape[0] != n:
        raise param_error(func, "quality", f"a 1-D array of {n} scores (one per candidate)",
                          f"an array of shape {q.shape}")
    if not (np.issubdtype(q.dtype, np.number) or q.dtype == bool) or np.issubdtype(q.dtype, np.complexfloating):
        raise param_error(func, "quality", "an array of real numbers", f"dtype {q.dtype}", TypeError)
    q = np.ascontiguousarray(q, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(q))
    if bad.size:
        raise param_error(func, "quality", "finite", f"{float(q[bad[0]])!r} at position {int(bad[0])}")
    return q, alpha


def _objective(current: np.ndarray, quality, alpha: float, chosen: np.ndarray) -> float:
    diversity = float(np.sum(current))
    if quality is None:
        return diversity
    return (1.0 - alpha) * diversity + alpha * float(np.sum(quality[chosen]))


def _resolve_backend(backend, func: str) -> str:
    """The graph lives in host memory: "auto" runs on the CPU; "cuda" copies it to the GPU."""
    check_choice(backend, "backend", func, _backends.BACKENDS)
    if backend == "auto":
        return "cpu"
    which = _backends.resolve(backend, backend == "cuda", func)
    if which == "cuda" and not _backends.has_cuda():
        raise RuntimeError(f"{func}: backend='cuda' is unavailable: {_backends.cuda_unavailable_reason()}.")
    return which


def _run(csr: Csr, k, quality, quality_weight, selected, threads, progress, backend, func: str, graph=None):
    n_points, n_cand = csr.shape
    q, alpha = _check_quality(quality, quality_weight, n_cand, func)
    pool, k = check_selection_budget(selected, k, func, n_cand, "candidate")
    which = _resolve_backend(backend, func)
    with progress_callback(progress, k, "facility location") as callback:
        if which == "cpu":
            picks, gains, current, evaluations = _backends.core.facility_greedy(
                *csr.args(), q, alpha, k, pool, threads, callback)
            evaluations = int(evaluations)
        else:
            picks, gains, current = _run_device(csr, q, alpha, k, pool, callback, which, func)
            evaluations = None
    chosen = np.concatenate([pool, picks])
    return FacilityLocationResult(indices=picks, gains=gains, objective=_objective(current, q, alpha, chosen),
                                  current=current, evaluations=evaluations, backend=which, graph=graph)


def _run_device(csr: Csr, q, alpha, k, pool, callback, which: str, func: str):
    """The CUDA kernels: the graph and its column view copied to the device once (read where they
    are on the emulated grid), the picks made there, and the picks, their gains and each point's
    representation (O(k + n) values) copied back."""
    cols = column_view(sp.csc_array(csr.matrix), func)  # canonical: used as it is
    xp = device_arrays(None, which)
    arrays = [xp.from_host(a) for a in (csr.indptr, csr.indices, csr.data, cols.indptr,
                                        cols.indices.astype(csr.indices.dtype, copy=False), cols.data)]
    quality = None if q is None else xp.from_host(q)
    indices, gains, current = xp.empty(k, "int64"), xp.empty(k, "float64"), xp.empty(csr.shape[0], "float64")
    emulated = which == "cuda-emulation"  # emulated threads are fibers: small blocks
    _backends.cuda_module(which).facility_greedy(
        *arrays, quality, alpha, k, pool, indices, gains, current, stream=xp.stream,
        block_threads=32 if emulated else 256, max_blocks=4 if emulated else 0, progress=callback)
    return xp.to_host(indices), xp.to_host(gains), xp.to_host(current)


def knn_similarity_graph(X, n_neighbors=100, *, metric="cosine", index="auto", threads=None):
    """The sparse similarity graph facility location runs on: each point and its nearest points.

    Row i stores point i itself and its ``n_neighbors`` nearest other points (faiss: exact up
    to 50,000 points with ``index="auto"``, IVF beyond), columns ascending, with similarities
    that are never negative:

    - ``"cosine"``: ``max(cos(x_i, x_j), 0)`` (1 on the diagonal); neighbours by cosine.
    - ``"euclidean"``: ``M - ||x_i - x_j||^2`` with M the largest squared distance stored in the
      graph (M on the diagonal, 0 for the farthest stored pair); neighbours by L2. This is
      apricot's ``metric="euclidean"`` (largest squared distance minus each one), which with
      ``n_neighbors >= n - 1`` (every pair stored) is apricot's dense matrix.

    Distances are iterselect's canonical ones (float32 accumulation; float64 for float64 X),
    computed from X for every stored pair, not taken from faiss. An entry not stored is 0.

    Parameters
    ----------
    X : array of shape (n, d)
        Feature vectors in host memory (numpy or a CPU torch tensor); float16, bfloat16, float32
        or float64.
    n_neighbors : int
        Neighbours per point besides itself, at least 1; more than ``n - 1`` means all.
    metric : {"cosine", "euclidean"}
    index : {"auto", "exact", "ivf", "hnsw"}
        The faiss index for the neighbour search.
    threads : int, optional
        CPU threads (default: all).

    Returns
    -------
    scipy.sparse.csr_array of shape (n, n)
        float32 (float64 for float64 X).

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.facility import knn_similarity_graph
    >>> X = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    >>> G = knn_similarity_graph(X, 1)
    >>> G.toarray().round(2).tolist()
    [[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.6, 1.0]]
    """
    func = "knn_similarity_graph"
    n_neighbors = check_int(n_neighbors, "n_neighbors", func, 1)
    check_choice(metric, "metric", func, METRICS)
    check_choice(index, "index", func, INDEXES)
    return knn_graph(host_matrix(X, func), n_neighbors, metric, index, _check_threads(threads, func), func)


def facility_location(X, k, *, n_neighbors=100, metric="cosine", quality=None, quality_weight=0.5, selected=None,
                      index="auto", threads=None, progress=True, backend="auto") -> FacilityLocationResult:
    """Pick ``k`` samples by exact greedy facility location on a kNN graph (QDIT's selection).

    Builds :func:`knn_similarity_graph` of X (each point, its ``n_neighbors`` nearest points
    and their similarities) and runs :func:`facility_location_graph` on it: each step picks the
    sample with the largest marginal gain of F(S) = (1 - alpha) * sum_i max_{j in S} s_ij +
    alpha * sum_{j in S} q_j (without ``quality``: the first sum alone), ties to the lowest index.

    Parameters
    ----------
    X : array of shape (n, d)
        Embeddings in host memory (numpy or a CPU torch tensor); float16, bfloat16, float32 or
        float64.
    k : int
        Samples to pick, in ``[1, n - len(selected)]``.
    n_neighbors : int
        Neighbours per point in the graph; ``n - 1`` or more stores every pair (N x N memory).
    metric : {"cosine", "euclidean"}
        The similarity (see :func:`knn_similarity_graph`).
    quality : array of shape (n,), optional
        QDIT's per-sample quality scores (any finite values, e.g. reward scores).
    quality_weight : float
        QDIT's alpha in [0, 1], used only with ``quality``. The default 0.5 is ours (QDIT studies
        a range of alpha); tune it to the scale of the quality scores.
    selected : sequence of int, optional
        Samples already chosen: they represent their neighbours from the start and are never
        picked.
    index : {"auto", "exact", "ivf", "hnsw"}
        The faiss index for the neighbour search.
    threads : int, optional
        CPU threads (default: all).
    progress : bool
        Show a progress bar; Ctrl-C stops promptly either way.
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}
        Where the greedy runs ("auto": the CPU). "cuda" copies the graph to the GPU once and
        picks there; "cuda-emulation" runs the CUDA kernels on the CPU emulation (for tests).
        Every backend returns the same picks.

    Returns
    -------
    FacilityLocationResult
        ``indices``, ``gains``, ``objective``, ``current``, ... and the ``graph`` it built; the
        arrays in X's kind (numpy, or a CPU torch tensor).

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect import facility_location
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.7, 0.7]])
    >>> r = facility_location(X, 2, n_neighbors=4, progress=False)
    >>> r.indices.tolist(), round(r.objective, 3)
    ([4, 0], 4.482)
    >>> facility_location(X, 1, n_neighbors=4, quality=[0, 0, 3, 0, 0], quality_weight=0.5,
    ...                   progress=False).indices.tolist()
    [2]
    """
    func = "facility_location"
    n_neighbors = check_int(n_neighbors, "n_neighbors", func, 1)
    check_choice(metric, "metric", func, METRICS)
    check_choice(index, "index", func, INDEXES)
    threads = _check_threads(threads, func)
    m = host_matrix(X, func)
    _check_quality(quality, quality_weight, m.shape[0], func)  # before the graph is built
    check_selection_budget(selected, k, func, m.shape[0], "candidate")
    graph = knn_graph(m, n_neighbors, metric, index, threads, func)
    return results_like(_run(similarity_csr(graph, func), k, quality, quality_weight, selected, threads, progress,
                             backend, func, graph=graph), m.obj)


def facility_location_graph(graph, k, *, quality=None, quality_weight=0.5, selected=None, threads=None,
                            progress=True, backend="auto") -> FacilityLocationResult:
    """Pick ``k`` candidates by exact greedy facility location on a similarity graph you give.

    ``graph[i, j] = s_ij >= 0`` is how well candidate j represents point i (rows: the points to
    represent, columns: the candidates; usually the same samples, so square). An entry not
    stored is 0. With ``current_i`` point i's largest similarity to the selection so far (0 at
    first), each step picks the candidate with the largest marginal gain

        gain_j = sum_i max(0, s_ij - current_i)                      (without quality)
        gain_j = (1 - alpha) * sum_i max(0, s_ij - current_i) + alpha * q_j

    (ties: the lowest column) and raises ``current`` along its column: the greedy of F(S) =
    (1 - alpha) * sum_i current_i + alpha * sum_{j in S} q_j. Gains only fall, so the lazy
    greedy (stale gains as upper bounds in a max-heap) is exact: the same picks, bit for bit, as
    the plain greedy that recomputes every gain at every step, each gain summed in float64 over
    the column's points in ascending order.

    Conventions against apricot's ``FacilityLocationSelection``: apricot's gain of j reads row j
    of its (symmetric) similarity matrix, this one column j; for a symmetric matrix they agree.

    Parameters
    ----------
    graph : scipy sparse matrix or 2-D array of shape (n_points, n_candidates)
        Finite similarities >= 0 (e.g. :func:`knn_similarity_graph`). Any scipy format;
        float32 and float64 are used as they are, other dtypes become float64; duplicate
        entries are summed (scipy's convention).
    k : int
        Candidates to pick, in ``[1, n_candidates - len(selected)]``.
    quality : array of shape (n_candidates,), optional
        Per-candidate quality (any finite values).
    quality_weight : float
        alpha in [0, 1], used only with ``quality``.
    selected : sequence of int, optional
        Candidates already chosen: applied first, never picked.
    threads : int, optional
        CPU threads for the transpose and the first gains (default: all).
    progress : bool
        Show a progress bar; Ctrl-C stops promptly either way.
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}
        "auto" and "cpu" run the lazy greedy in C++; "cuda" copies the graph to the GPU once
        and picks there; "cuda-emulation" runs those CUDA kernels on the CPU emulation.

    Returns
    -------
    FacilityLocationResult

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.facility import facility_location_graph
    >>> S = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.5], [0.0, 0.5, 1.0]])
    >>> r = facility_location_graph(S, 2, progress=False)
    >>> r.indices.tolist(), r.gains.tolist(), r.current.tolist()
    ([1, 2], [2.3, 0.5], [0.8, 1.0, 1.0])
    >>> facility_location_graph(S, 1, selected=[1], progress=False).indices.tolist()
    [2]
    """
    func = "facility_location_graph"
    return _run(similarity_csr(graph, func), k, quality, quality_weight, selected, _check_threads(threads, func),
                progress, backend, func)


def facility_gains(graph, current=None, *, quality=None, quality_weight=0.5, threads=None) -> np.ndarray:
    """Every candidate's marginal gain given each point's current representation (the kernel).

    ``gains[j] = sum_i max(0, graph[i, j] - current[i])``, or with quality
    ``(1 - alpha) * that + alpha * quality[j]``: summed in float64 over column j's points in
    ascending order, exactly as the greedy does.

    Parameters
    ----------
    graph : scipy sparse matrix or 2-D array of shape (n_points, n_candidates)
        As in :func:`facility_location_graph`. A canonical ``scipy.sparse.csc_array`` is read
        as it is; any other form is converted first (O(entries)).
    current : float64 array of shape (n_points,), optional
        Each point's largest similarity to the selection (default: all 0, nothing selected).
    quality : array of shape (n_candidates,), optional
    quality_weight : float
        alpha in [0, 1], used only with ``quality``.
    threads : int, optional
        CPU threads (default: all).

    Returns
    -------
    float64 array (n_candidates,)

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.facility import facility_gains
    >>> S = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.5], [0.0, 0.5, 1.0]])
    >>> facility_gains(S).tolist(), facility_gains(S, [1.0, 1.0, 0.5]).tolist()
    ([1.8, 2.3, 1.5], [0.0, 0.0, 0.5])
    """
    func = "facility_gains"
    cols = column_view(graph, func)
    n_cand, n_points = cols.shape
    cur = _check_current(current, n_points, func)
    q, alpha = _check_quality(quality, quality_weight, n_cand, func)
    return _backends.core.facility_gains(*cols.args(), cur, q, alpha, _check_threads(threads, func))


def facility_update(graph, index, current) -> int:
    """One greedy update step, in place: ``current[i] = max(current[i], graph[i, index])``.

    Parameters
    ----------
    graph : scipy sparse matrix or 2-D array of shape (n_points, n_candidates)
        A canonical ``scipy.sparse.csc_array`` makes a call cost O(entries of the column);
        any other form is converted first (O(entries)).
    index : int
        The picked candidate.
    current : float64 array of shape (n_points,)
        Updated in place (a writable contiguous float64 array).

    Returns
    -------
    int
        How many points changed.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.facility import facility_update
    >>> S = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.5], [0.0, 0.5, 1.0]])
    >>> current = np.zeros(3)
    >>> facility_update(S, 1, current), current.tolist()
    (3, [0.8, 1.0, 0.5])
    """
    func = "facility_update"
    cols = column_view(graph, func)
    n_cand, n_points = cols.shape
    index = check_int(index, "index", func, 0, n_cand - 1)
    if not (isinstance(current, np.ndarray) and current.dtype == np.float64 and current.shape == (n_points,)
            and current.flags.c_contiguous and current.flags.writeable):
        got = (f"{type(current).__name__} of shape {getattr(current, 'shape', None)} and dtype "
               f"{getattr(current, 'dtype', None)}")
        raise param_error(func, "current", f"a writable contiguous float64 array of shape ({n_points},)", got,
                          TypeError)
    return int(_backends.core.facility_update(*cols.args(), index, current))


def facility_objective(graph, indices, *, quality=None, quality_weight=0.5) -> float:
    """F of a selection: ``sum_i max_{j in indices} graph[i, j]`` (0 for a point with no stored
    similarity to the selection), or with quality ``(1 - alpha) * that + alpha * sum quality[indices]``.

    Parameters
    ----------
    graph : scipy sparse matrix or 2-D array of shape (n_points, n_candidates)
    indices : sequence of int
        The selection (distinct candidates; may be empty).
    quality : array of shape (n_candidates,), optional
    quality_weight : float
        alpha in [0, 1], used only with ``quality``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.facility import facility_objective
    >>> S = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.5], [0.0, 0.5, 1.0]])
    >>> facility_objective(S, [1, 0]), facility_objective(S, [])
    (2.5, 0.0)
    """
    func = "facility_objective"
    cols = column_view(graph, func)
    n_cand, n_points = cols.shape
    chosen = check_indices(indices, "indices", func, n_cand)
    q, alpha = _check_quality(quality, quality_weight, n_cand, func)
    current = np.zeros(n_points)
    for j in chosen.tolist():
        _backends.core.facility_update(*cols.args(), j, current)
    return _objective(current, q, alpha, chosen)


def _check_current(current, n: int, func: str) -> np.ndarray:
    if current is None:
        return np.zeros(n)
    c = np.asarray(current)
    if c.shape != (n,) or not (np.issubdtype(c.dtype, np.number) or c.dtype == bool) \
            or np.issubdtype(c.dtype, np.complexfloating):
        raise param_error(func, "current", f"a 1-D array of {n} numbers (one per point)",
                          f"an array of shape {c.shape} and dtype {c.dtype}")
    c = np.ascontiguousarray(c, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(c) | (c < 0))
    if bad.size:
        raise param_error(func, "current", "finite and >= 0", f"{float(c[bad[0]])!r} at position {int(bad[0])}")
    return c
