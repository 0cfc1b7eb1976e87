"""Affinity propagation at scale (InsBank/PIBE's selector): dense and sparse, CPU and CUDA.

:func:`affinity_propagation` elects exemplars by Frey & Dueck's message passing with
scikit-learn's update order, damping and convergence rule; :func:`representation_scores` is
InsBank's score made from the messages (Eq. 7); :func:`history_matrix` builds InsBank's history
responsibilities for a grown candidate set (Eq. 4-5), which ``history=`` mixes into the updates.
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .. import _backends
from ._history import history_matrix
from ._run import Options, run_dense_cpu, run_dense_device, run_sparse
from .._arrays import as_matrix, device_arrays, host_values, like_input
from .._knn import INDEXES
from .._validation import check_choice, check_float, check_float_dtype, check_int, param_error

__all__ = ["AffinityPropagationResult", "affinity_propagation", "history_matrix", "representation_scores"]

_FUNC = "affinity_propagation"
METRICS = ("euclidean", "sqeuclidean", "cosine", "precomputed")


@dataclass(frozen=True)
class AffinityPropagationResult:
    """The result of :func:`affinity_propagation`.

    Attributes
    ----------
    exemplars : int64 array (K,)
        The exemplars (cluster centers), sorted by index. Empty when no exemplar emerged.
    labels : int64 array (n,)
        Each point's cluster: ``exemplars[labels[i]]`` is its exemplar (-1 everywhere when K = 0).
    n_iter : int
        Iterations run (0 when every similarity and preference is equal, as scikit-learn).
    converged : bool
        Whether the convergence rule was met before ``max_iter`` (a warning says so when not).
    preference : float or array
        The preference placed on the diagonal (the median of S when none was given).
    responsibility, availability : array, scipy.sparse.csr_matrix or None
        The final messages R and A when ``return_messages=True``: (n, n) arrays of ``dtype`` in
        the input's kind and device (dense), or CSR matrices on the kNN graph (sparse).
    backend : str
        "cpu", "cuda" or "cuda-emulation".
    mode : str
        "dense" or "sparse".
    """

    exemplars: object
    labels: object
    n_iter: int
    converged: bool
    preference: object
    responsibility: object
    availability: object
    backend: str
    mode: str

    @property
    def indices(self):
        """The exemplars, under the name every selection result gives its picks."""
        return self.exemplars


def affinity_propagation(X_or_S: ArrayLike, *, metric: str = "euclidean",
                         preference: float | ArrayLike | None = None, damping: float = 0.5,
                         max_iter: int = 200, convergence_iter: int = 15, random_state=None,
                         dtype=np.float32, history: ArrayLike | None = None, history_weight: float = 0.5,
                         history_decay: float = 0.99, return_messages: bool = False, progress: bool = True,
                         backend: str = "auto", n_neighbors: int | None = None, knn="auto",
                         threads: int | None = None) -> AffinityPropagationResult:
    """Elect exemplars by affinity propagation (Frey & Dueck 2007), as scikit-learn, at scale.

    Messages follow scikit-learn's update order, damping and convergence rule, with every float
    operation numpy performs there in the same order: in float64, with the same similarities and
    ``random_state``, the exemplars, labels, iteration count and messages equal
    ``sklearn.cluster.affinity_propagation``'s. The CPU kernel is row-blocked and multithreaded
    (S, R and A: 3 n^2 elements of ``dtype``, plus O(n)); the CUDA kernel returns the CPU path's
    bits. ``n_neighbors`` switches to the sparse mode: the same messages on a symmetrized kNN
    graph (faiss), for millions of points.

    Parameters
    ----------
    X_or_S : array of shape (n, d), or (n, n) when ``metric="precomputed"``
        Feature vectors (numpy, torch or cupy; float16, bfloat16, float32 or float64), or a
        similarity matrix (larger is more similar). n >= 2.
    metric : {"euclidean", "sqeuclidean", "cosine", "precomputed"}
        S_ij = -||x_i - x_j|| ("euclidean", InsBank's), -||x_i - x_j||^2 ("sqeuclidean",
        scikit-learn's), cos(x_i, x_j) - 1 ("cosine"), or X_or_S itself. Distances use the
        library's canonical float order, accumulated in float32 (float64 for float64 input).
    preference : float or array of shape (n,), optional
        The diagonal of S (larger: more exemplars). None: the median of S, diagonal included
        (as scikit-learn); in the sparse mode, the median of the stored entries.
    damping : float in [0.5, 1.0)
        Each update keeps ``damping`` of the old message.
    max_iter, convergence_iter : int
        At most ``max_iter`` iterations; stop once the exemplar set has been unchanged for
        ``convergence_iter`` iterations (and is not empty).
    random_state : int or numpy.random.RandomState, optional
        None (default): no noise. Given: scikit-learn's tie-breaking noise
        ``S += (eps*S + 100*tiny) * standard_normal`` from a legacy RandomState, drawn in the same
        order (in the sparse mode, one draw per stored entry in row-major order). On a CUDA
        device the n^2 draws are made on the host and copied over in blocks (slow for large n).
    dtype : numpy.float32 or numpy.float64
        Precision of S, R and A. float32 halves memory and time; float64 reproduces scikit-learn.
    history : array of shape (n, n), optional
        History responsibilities H (InsBank §3.2, see :func:`history_matrix`): at iteration t,
        R <- alpha_t H + (1 - alpha_t) (damped update), alpha_t = history_weight * history_decay^t.
        In the sparse mode, H is read at the graph's entries (a scipy.sparse H counts missing
        entries as 0).
    history_weight, history_decay : float in [0, 1]
        alpha_0 and lambda of the history mix.
    return_messages : bool
        Return the final R and A (needed by :func:`representation_scores`).
    progress : bool
        Show a progress bar; Ctrl-C stops the run between iterations either way.
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}
        "auto": CUDA inputs run the CUDA kernels, host inputs the C++ ones. The sparse mode runs
        on the CPU.
    n_neighbors : int, optional
        Sparse mode: messages only on the symmetrized graph of each point's ``n_neighbors``
        nearest points (plus the diagonal); pairs off the graph count as similarity -inf. Each
        point then joins the most similar exemplar among its graph neighbours (among all
        exemplars, by the metric on X, when it has none), and the refinement uses the metric on X
        for member pairs off the graph. With n_neighbors = n - 1 the result is the dense one.
    knn : {"auto", "exact", "ivf", "hnsw"} or int array of shape (n, k)
        How the sparse mode finds neighbours (faiss; "auto": exact up to 50,000 points, IVF
        beyond), or precomputed neighbour ids (-1 for none; the point itself is ignored).
    threads : int, optional
        CPU threads (default: all).

    Returns
    -------
    AffinityPropagationResult

    Notes
    -----
    Before allocating, the dense mode refuses an n for which 3 n^2 elements do not fit in the
    available memory (naming the sparse mode). A run that reaches ``max_iter`` returns
    ``converged=False`` and warns (:class:`iterselect.exceptions.ConvergenceWarning`); its
    exemplars are those of the last iteration, as scikit-learn's.

    Differences from ``sklearn.cluster.affinity_propagation``: no noise unless
    ``random_state`` is given (scikit-learn draws it from the global generator when it is None);
    a ``converged`` flag; ``metric="euclidean"`` is InsBank's -||x - y|| (scikit-learn's
    ``affinity="euclidean"`` is ``metric="sqeuclidean"`` here); when every similarity and every
    preference is equal, the same shortcut (and warning), reported as ``n_iter=0,
    converged=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.affinity import affinity_propagation
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [4, 4], [4, 0]], dtype=float)
    >>> r = affinity_propagation(X, metric="sqeuclidean", random_state=0, dtype=np.float64,
    ...                          progress=False)
    >>> r.exemplars.tolist(), r.labels.tolist(), r.converged
    ([0, 3], [0, 0, 0, 1, 1, 1], True)
    """
    check_choice(metric, "metric", _FUNC, METRICS)
    precomputed = metric == "precomputed"
    m = as_matrix(X_or_S, "X_or_S", _FUNC, min_rows=2)
    n = m.shape[0]
    if precomputed and m.shape[1] != n:
        raise param_error(_FUNC, "X_or_S", "a square (n_samples, n_samples) similarity matrix for "
                          "metric='precomputed'", f"an array of shape {m.shape}")
    opts = Options(
        metric=metric,
        preference=_check_preference(preference, n),
        damping=check_float(damping, "damping", _FUNC, 0.5, 1.0, high_open=True),
        max_iter=check_int(max_iter, "max_iter", _FUNC, 1),
        convergence_iter=check_int(convergence_iter, "convergence_iter", _FUNC, 1),
        random_state=_check_random_state(random_state),
        dtype=check_float_dtype(dtype, "dtype", _FUNC),
        history_weight=check_float(history_weight, "history_weight", _FUNC, 0.0, 1.0),
        history_decay=check_float(history_decay, "history_decay", _FUNC, 0.0, 1.0),
        return_messages=bool(return_messages),
        progress=bool(progress),
        threads=0 if threads is None else check_int(threads, "threads", _FUNC, 1),
    )
    which = _backends.resolve(backend, m.on_cuda, _FUNC)
    if n_neighbors is not None or not isinstance(knn, str) or knn != "auto":
        if precomputed:
            raise param_error(_FUNC, "n_neighbors", "None when metric='precomputed' (the sparse mode builds its "
                              "graph from feature vectors)", n_neighbors)
        if which != "cpu":
            raise param_error(_FUNC, "backend", "'cpu' (or 'auto' with host input) in the sparse mode", backend)
        neighbors, k = _check_knn(knn, n_neighbors, n)
        res = run_sparse(m, opts, k, neighbors, knn if isinstance(knn, str) else None,
                         _check_history(history, n, sparse_ok=True), _FUNC)
    else:
        H = _check_history(history, n, sparse_ok=False)
        if which == "cpu":
            res = run_dense_cpu(m, opts, H, _FUNC)
        else:
            res = run_dense_device(m, opts, H, which, _FUNC)
    _warn(res, opts)
    R, A = res.R, res.A
    if isinstance(R, np.ndarray):  # dense host messages come back as the input's kind (zero copy)
        R, A = like_input(R, m), like_input(A, m)
    return AffinityPropagationResult(
        exemplars=like_input(res.exemplars, m), labels=like_input(res.labels, m), n_iter=res.n_iter,
        converged=res.converged, preference=res.preference, responsibility=R, availability=A,
        backend=which, mode=res.mode)


def _warn(res, opts) -> None:
    if res.equal:
        warnings.warn("All samples have mutually equal similarities. Returning arbitrary cluster center(s).",
                      UserWarning, stacklevel=3)
        return
    from ..exceptions import ConvergenceWarning

    if not res.converged:
        if len(res.exemplars):
            warnings.warn(f"Affinity propagation did not converge within max_iter={opts.max_iter} iterations; the "
                          "exemplars and labels are those of the last iteration and may be degenerate "
                          "(raise max_iter or damping).", ConvergenceWarning, stacklevel=3)
        else:
            warnings.warn(f"Affinity propagation did not converge within max_iter={opts.max_iter} iterations and "
                          "found no exemplar; every label is -1.", ConvergenceWarning, stacklevel=3)


def _check_preference(preference, n):
    if preference is None:
        return None
    expected = f"None, a finite float or an array of {n} finite floats"
    if isinstance(preference, (bool, np.bool_)):
        raise param_error(_FUNC, "preference", expected, preference, TypeError)
    if isinstance(preference, numbers.Real):
        value = float(preference)
        if not np.isfinite(value):
            raise param_error(_FUNC, "preference", expected, value)
        return value
    try:
        arr = np.asarray(preference, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise param_error(_FUNC, "preference", expected, type(preference).__name__, TypeError) from exc
    if arr.ndim == 0:
        return _check_preference(float(arr), n)
    if arr.shape != (n,):
        raise param_error(_FUNC, "preference", expected, f"an array of shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise param_error(_FUNC, "preference", expected, f"{arr[bad[0]]} at position {int(bad[0])}")
    return np.ascontiguousarray(arr)


def _check_random_state(random_state):
    if random_state is None or isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, (bool, np.bool_)):
        if not 0 <= int(random_state) < 2**32:
            raise param_error(_FUNC, "random_state", "None, an int in the range [0, 2**32 - 1] or a "
                              "numpy.random.RandomState", int(random_state))
        return np.random.RandomState(int(random_state))
    raise param_error(_FUNC, "random_state", "None, an int or a numpy.random.RandomState (scikit-learn's "
                      "legacy generator, so the noise matches)", random_state, TypeError)


def _check_history(history, n, sparse_ok):
    if history is None:
        return None
    if sparse_ok:
        try:
            import scipy.sparse as sp

            if sp.issparse(history):
                if history.shape != (n, n):
                    raise param_error(_FUNC, "history", f"a ({n}, {n}) matrix", f"a matrix of shape {history.shape}")
                if not np.all(np.isfinite(history.data)):
                    raise param_error(_FUNC, "history", "finite (no NaN or inf)", "a non-finite stored value")
                return history
        except ImportError:  # pragma: no cover - scipy is a dependency
            pass
    h = as_matrix(history, "history", _FUNC)
    if h.shape != (n, n):
        raise param_error(_FUNC, "history", f"a ({n}, {n}) matrix (the responsibilities' shape)",
                          f"an array of shape {h.shape}")
    return h


def _check_knn(knn, n_neighbors, n):
    if isinstance(knn, str):
        check_choice(knn, "knn", _FUNC, INDEXES)
        if n_neighbors is None:
            raise param_error(_FUNC, "n_neighbors", "an int when knn is an index name", None)
        return None, check_int(n_neighbors, "n_neighbors", _FUNC, 1, n - 1)
    arr = np.asarray(knn)
    if arr.ndim != 2 or arr.shape[0] != n or not np.issubdtype(arr.dtype, np.integer):
        raise param_error(_FUNC, "knn", f"an index name or an ({n}, k) integer array of neighbour ids",
                          f"an array of shape {arr.shape} and dtype {arr.dtype}")
    bad = np.flatnonzero((arr < -1) | (arr >= n))
    if bad.size:
        raise param_error(_FUNC, "knn", f"neighbour ids in the range [-1, {n - 1}]",
                          f"{int(arr.flat[bad[0]])} at flat position {int(bad[0])}")
    if n_neighbors is not None and check_int(n_neighbors, "n_neighbors", _FUNC, 1, n - 1) != arr.shape[1]:
        raise param_error(_FUNC, "n_neighbors", f"None or the width of knn ({arr.shape[1]})", n_neighbors)
    return np.ascontiguousarray(arr, dtype=np.int64), arr.shape[1]


def representation_scores(R: ArrayLike, A: ArrayLike, *, threads: int | None = None):
    """InsBank's representation score (Eq. 7): colsum(A+R) - rowsum(A+R) + diag(A+R).

    Column k's sum gathers the evidence every point sends for k as its exemplar; row i's sum is
    what i itself sends out. Summed in float64 (rows in order for the column sums). The published
    InsBank code then divides by n and min-max scales; that is left to the caller.

    Parameters
    ----------
    R, A : arrays of shape (n, n), or scipy.sparse matrices with the same pattern
        The responsibilities and availabilities of :func:`affinity_propagation` (with
        ``return_messages=True``): numpy, torch or cupy; float16, bfloat16, float32 or float64
        (half precision is summed in float64 like the rest). Sparse messages count entries
        outside the graph as 0.
    threads : int, optional
        CPU threads (default: all).

    Returns
    -------
    float64 array of shape (n,), in the kind and device of R.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.affinity import representation_scores
    >>> R = np.array([[1.0, 2.0], [3.0, 4.0]]); A = np.zeros((2, 2))
    >>> representation_scores(R, A).tolist()  # [4 - 3 + 1, 6 - 7 + 4]
    [2.0, 3.0]
    """
    func = "representation_scores"
    threads = 0 if threads is None else check_int(threads, "threads", func, 1)
    import scipy.sparse as sp

    if sp.issparse(R) or sp.issparse(A):
        if not (sp.issparse(R) and sp.issparse(A)) or R.shape != A.shape or R.shape[0] != R.shape[1]:
            raise param_error(func, "A", "a sparse matrix of R's square shape (both sparse, or both dense)",
                              f"{type(A).__name__} of shape {A.shape}")
        Rc, Ac = sp.csr_matrix(R), sp.csr_matrix(A)
        M = Rc.astype(np.float64) + Ac.astype(np.float64)
        return (np.asarray(M.sum(axis=0)).ravel() - np.asarray(M.sum(axis=1)).ravel()) + M.diagonal()
    r = as_matrix(R, "R", func)
    a = as_matrix(A, "A", func)
    n = r.shape[0]
    if r.shape != (n, n):
        raise param_error(func, "R", "a square (n, n) matrix", f"an array of shape {r.shape}")
    if a.shape != r.shape:
        raise param_error(func, "A", f"an array of R's shape {r.shape}", f"an array of shape {a.shape}")
    if r.on_cuda != a.on_cuda:
        raise param_error(func, "A", "on the same device as R", a.device)
    if r.on_cuda:
        from ._run import device_scores

        if r.dtype != a.dtype or r.dtype not in ("float32", "float64"):  # widened on the device
            xp = device_arrays(r, "cuda")
            r, a = (as_matrix(xp.copy_matrix(x, np.float64), name, func) for x, name in ((r, "R"), (a, "A")))
        return device_scores(r, a)
    if r.dtype != a.dtype or r.dtype not in ("float32", "float64"):
        rh = host_values(r).astype(np.float64)
        ah = host_values(a).astype(np.float64)
    else:
        rh, ah = r.host, a.host
    out = _backends.core.affinity_representation_scores(rh, ah, n, threads)
    return like_input(out, r)
