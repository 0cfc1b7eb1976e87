"""Exact k-center greedy (Gonzalez's farthest-first traversal): DiverseEvol's selector."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from .. import _backends
from .._arrays import Matrix, as_matrix, check_magnitude, check_nonzero_rows, device_arrays, like_input
from .._progress import progress_callback
from .._validation import check_bool, check_choice, check_int, check_selection_budget

_FUNC = "kcenter_greedy"


@dataclass(frozen=True)
class KCenterResult:
    """The result of :func:`kcenter_greedy`.

    Attributes
    ----------
    indices : int64 array (k,)
        Picks in selection order; every prefix is the greedy selection of that size.
    radii : array (k,)
        Covering radius after each pick: the largest distance of any point to its nearest
        center (pool included). Non-increasing.
    min_distances : array (n,) or None
        Each point's distance to its nearest center at the end (0 for centers and pool); None
        when not asked for (``min_distances=False``).
    distance_evaluations : int or None
        Row-to-center distances the CPU path computed while picking (None on the CUDA
        backends); the lazy loop's saving shows here.
    final_evaluations : int or None
        Distances computed after the last pick to make ``min_distances`` exact (0 when they
        were not asked for).
    filtered_evaluations : int or None
        Of the evaluations above, those a bf16 dot-product filter proved unable to lower a
        point's bound, so never computed exactly (AVX-512-BF16 CPUs; 0 with the filter off).
        The filter never changes a pick, radius or distance; see
        ``iterselect._backends.core.set_kcenter_filter``.
    backend : str
        The backend that ran: "cpu", "cuda" or "cuda-emulation".
    """

    indices: object
    radii: object
    min_distances: object
    distance_evaluations: int | None
    backend: str
    final_evaluations: int | None = None
    filtered_evaluations: int | None = None


def kcenter_greedy(X: ArrayLike, k: int, *, selected: ArrayLike | None = None, metric: str = "euclidean",
                   seed_index: int = 0, threads: int | None = None, progress: bool = True,
                   backend: str = "auto", lazy: bool = True, min_distances: bool = True) -> KCenterResult:
    """Pick ``k`` points by exact farthest-first traversal (Gonzalez's k-center greedy).

    Each pick is the point farthest from every center chosen so far (and from the ``selected``
    pool). Ties go to the lowest index. The result is the same on every backend.

    Parameters
    ----------
    X : array of shape (n, d)
        numpy, torch or cupy; float16, bfloat16, float32 or float64. Half precision stays half
        in memory and accumulates in float32 (float64 input accumulates in float64). Values so
        large that squared distances could overflow that type are refused (the answer would be
        arbitrary): scale them, or pass float64.
    k : int
        Number of new points to pick, in ``[1, n - len(selected)]``.
    selected : sequence of int, optional
        An existing pool (DiverseEvol's warm start). The first pick is then the point farthest
        from the pool; without a pool it is ``seed_index``.
    metric : {"euclidean", "cosine"}
        "cosine" is 1 - cos(x, y), computed as 0.5 * ||x/|x| - y/|y|||^2 (exactly 0 for
        duplicates). Rows of zero norm are rejected for "cosine", on every backend with the
        same message, naming the lowest such row.
    seed_index : int
        The first pick when ``selected`` is empty.
    threads : int, optional
        CPU threads (default: all).
    progress : bool
        Show a progress bar; Ctrl-C stops the selection promptly either way.
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}
        "auto": CUDA inputs run the CUDA kernels, host inputs the C++ ones. "cuda-emulation"
        runs the CUDA kernels on the CPU emulation of the grid (for tests).
    lazy : bool
        CPU only: keep each point's min-distance as an upper bound in a max-heap and refresh
        only points that reach the top (same picks, far fewer distance evaluations). ``False``
        runs the plain loop (one full pass per pick).
    min_distances : bool
        Return every point's distance to its nearest center. The lazy loop never computes the
        distances that cannot change a pick, so making them all exact is a pass of its own, as
        much work again as the picking at large k (``final_evaluations`` counts it); ``False``
        skips it (the picks and radii are the same) and ``min_distances`` is None. DiverseEvol,
        the k-center baseline and ``iterselect select kcenter`` skip it.

    Returns
    -------
    KCenterResult
        ``indices``, ``radii``, ``min_distances`` as the input's kind and device.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect import kcenter_greedy
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.1, 0.0]])
    >>> r = kcenter_greedy(X, 2, progress=False)
    >>> r.indices.tolist(), r.radii.round(3).tolist()
    ([0, 2], [3.0, 1.0])
    >>> kcenter_greedy(X, 1, selected=[0, 2], progress=False).indices.tolist()
    [1]
    >>> r.min_distances.round(3).tolist()
    [0.0, 1.0, 0.0, 0.1]
    >>> kcenter_greedy(X, 2, min_distances=False, progress=False).min_distances is None
    True
    """
    m = as_matrix(X, "X", _FUNC)
    n = m.shape[0]
    check_choice(metric, "metric", _FUNC, ("euclidean", "cosine"))
    check_magnitude(m, "X", _FUNC, terms=4 * m.shape[1], what="squared distances")
    pool, k = check_selection_budget(selected, k, _FUNC, n, "point")
    seed_index = check_int(seed_index, "seed_index", _FUNC, 0, n - 1)
    threads = 0 if threads is None else check_int(threads, "threads", _FUNC, 1)
    which = _backends.resolve(backend, m.on_cuda, _FUNC)
    if metric == "cosine":
        check_nonzero_rows(m, "X", _FUNC)
    min_distances = check_bool(min_distances, "min_distances", _FUNC)
    if which == "cpu":
        return _run_cpu(m, k, pool, metric, seed_index, threads, progress, lazy, min_distances)
    r = _run_cuda(m, k, pool, metric, seed_index, progress, which)
    # the CUDA loop is the plain one: its min-distances cost nothing extra, but the answer has
    # the same shape on every backend
    return r if min_distances else replace(r, min_distances=None)


def _run_cpu(m: Matrix, k, pool, metric, seed_index, threads, progress, lazy, with_min_distances) -> KCenterResult:
    with progress_callback(progress, k, "k-center") as callback:
        indices, radii, min_d, evals, final_evals, filtered = _backends.core.kcenter_greedy(
            m.host, m.dtype, k, pool, metric, seed_index, threads, bool(lazy), with_min_distances, callback)
    out_dtype = np.float64 if m.dtype == "float64" else np.float32
    return KCenterResult(
        indices=like_input(indices, m),
        radii=like_input(radii.astype(out_dtype), m),
        min_distances=None if min_d is None else like_input(min_d.astype(out_dtype), m),
        distance_evaluations=int(evals),
        backend="cpu",
        final_evaluations=int(final_evals),
        filtered_evaluations=int(filtered),
    )


def _reported(sq, metric):
    """Squared (scaled) distances as reported: sqrt for euclidean, 1 - cos for cosine."""
    return sq * 0.5 if metric == "cosine" else sq ** 0.5


def _run_cuda(m: Matrix, k, pool, metric, seed_index, progress, which, block_threads=None,
              max_blocks=0) -> KCenterResult:
    module = _backends.cuda_module(which)
    n = m.shape[0]
    acc = "float64" if m.dtype == "float64" else "float32"
    xp = device_arrays(m, which)
    indices, values, min_sq = xp.empty(k, "int64"), xp.empty(k, acc), xp.empty(n, acc)
    # emulated threads are fibers: keep the emulation's blocks small
    threads_per_block = block_threads or (256 if which == "cuda" else 64)
    with progress_callback(progress, k, "k-center") as callback:
        module.kcenter_greedy(xp.x(_FUNC), k, pool, metric, seed_index, indices, values, min_sq, stream=xp.stream,
                              block_threads=threads_per_block, max_blocks=max_blocks, progress=callback)
    if which == "cuda":
        return KCenterResult(indices=indices, radii=_reported(values, metric),
                             min_distances=_reported(min_sq, metric), distance_evaluations=None, backend=which)
    return KCenterResult(indices=like_input(indices, m), radii=like_input(_reported(values, metric), m),
                         min_distances=like_input(_reported(min_sq, metric), m), distance_evaluations=None,
                         backend=which)
