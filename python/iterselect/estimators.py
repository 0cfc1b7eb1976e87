"""Selectors as scikit-learn estimators, with apricot's interface: for other selection libraries.

Every class wraps one selection function. ``fit(X, y=None, sample_weight=None)`` runs it and
stores ``ranking_`` (the picks, int64, in selection order: every prefix is a smaller
selection), the objective of each pick under its own name (``gains_``, larger is better;
k-center: ``radii_``, the covering radius, smaller is better) and ``n_features_in_``;
``transform(X)`` returns the selected rows of X in that order; ``fit_transform`` does both.

apricot (``apricot-select``) users swap one import: the constructors take apricot's names
(``n_samples`` the budget, ``initial_subset``, ``n_neighbors``, ``random_state``,
``n_jobs``, ``verbose``), ``transform(X, y=None, sample_weight=None)`` returns ``X[ranking]``
(and ``y``, ``sample_weight`` taken the same way when given, as apricot does), and the
attributes are also readable under apricot's names ``ranking`` and ``gains``. Differences:

* the selectors are exact greedy algorithms (same picks as the naive greedy, ties to the
  lowest index); apricot's ``optimizer`` choices (stochastic, approximate, streaming) and its
  ``partial_fit`` and ``sample_cost`` do not exist here;
* ``initial_subset`` holds indices (or a boolean mask) into X, not rows of other examples;
* ``sample_weight`` is not ignored: it is the per-sample weight or quality each method
  defines (IterIT's IFD weights, QDIT's or InsBank's quality, kMQ's quality), and k-center,
  which has none, refuses it;
* ``transform`` checks that X is the data the selector was fitted on (same rows and features,
  as scikit-learn checks features); to take the same rows of another array, index it with
  ``ranking_``;
* ``n_jobs=None`` (the default) uses every core, as the kernels do.

Parameters are checked in ``fit`` (scikit-learn's convention) and errors name the class:
``The 'n_samples' parameter of KCenterGreedy must be an int in the range [1, 9]. Got 20
instead.`` X may be numpy (lists, pandas and, where the method takes them, scipy sparse
matrices are converted as scikit-learn does), torch or cupy, in float16, bfloat16, float32 or
float64; ``transform`` returns rows of X in X's kind. The fitted attributes are numpy arrays.

scikit-learn is an optional dependency of this module only: ``pip install 'iterselect[sklearn]'``.
"""
from __future__ import annotations

import numbers

import numpy as np

try:
    from sklearn.base import BaseEstimator
    from sklearn.utils import TransformerTags, check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised without scikit-learn only
    raise ImportError("iterselect.estimators needs scikit-learn: pip install 'iterselect[sklearn]' "
                      f"(or scikit-learn >= 1.6 itself); {exc}") from exc

from ._arrays import array_kind, as_matrix, to_host
from ._backends import BACKENDS
from ._validation import (check_choice, check_float, check_float_dtype, check_float_vector, check_int,
                          check_selection_budget, param_error)

__all__ = ["AffinityPropagationSelection", "CoverageSelection", "FacilityLocationSelection", "KCenterGreedy",
           "KMQSampler"]

_NUMPY_DTYPES = ("float64", "float32", "float16")  # kept as they are; other dtypes become float64


def _take(values, rows: np.ndarray):
    """``values[rows]`` for any array kind, or a list of the items of a sequence."""
    kind = array_kind(values)
    if kind == "torch":
        import torch

        return values[torch.as_tensor(rows, device=values.device)]
    if kind == "cupy":
        import cupy

        return values[cupy.asarray(rows)]
    if isinstance(values, np.ndarray) or hasattr(values, "tocsr"):
        return values[rows]
    if hasattr(values, "__array__"):  # pandas and other array-likes
        return np.asarray(values)[rows]
    return [values[int(i)] for i in rows]


class _Selector(BaseEstimator):
    """What every selector shares: input checks, the budget, ``transform`` and apricot's names."""

    _accept_sparse = False
    _positive_only = False

    # ------------------------------------------------------------------ subclasses
    def _select(self, X, k: int, pool: np.ndarray, sample_weight) -> None:
        """Run the selection on checked input and set the fitted attributes."""
        raise NotImplementedError

    # ------------------------------------------------------------------ checks
    @property
    def _name(self) -> str:
        return type(self).__name__

    def _check_X(self, X, *, reset: bool):
        """X as the selection functions take it; sets or checks ``n_features_in_``."""
        name = self._name
        if array_kind(X) == "numpy" and not (isinstance(X, np.ndarray) and X.dtype.name == "bfloat16"):
            return validate_data(self, X, reset=reset, dtype=_NUMPY_DTYPES,
                                 accept_sparse=("csr", "csc", "coo") if self._accept_sparse else False)
        m = as_matrix(X, "X", f"{name}.fit" if reset else f"{name}.transform")
        if reset:
            self.n_features_in_ = m.shape[1]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif m.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {m.shape[1]} features, but {name} is expecting {self.n_features_in_} "
                             "features as input.")
        return m.obj

    def _budget(self, n: int) -> tuple[np.ndarray, int]:
        """(initial_subset as indices, n_samples) checked against the n rows of X."""
        subset = self.initial_subset
        if subset is not None:
            arr = to_host(subset)
            if arr.dtype == bool:
                if arr.shape != (n,):
                    raise param_error(self._name, "initial_subset", f"indices into X or a boolean mask of "
                                      f"length {n}", f"a boolean array of shape {arr.shape}")
                arr = np.flatnonzero(arr)
            elif arr.ndim == 2:
                raise param_error(self._name, "initial_subset", "indices into X or a boolean mask (apricot's "
                                  "rows of other examples are not supported)", f"a 2-D array of shape "
                                  f"{arr.shape}", TypeError)
            subset = arr
        return check_selection_budget(subset, self.n_samples, self._name, n, "sample",
                                      names=("initial_subset", "n_samples"))

    def _threads(self) -> int | None:
        if self.n_jobs is None or (isinstance(self.n_jobs, numbers.Integral) and self.n_jobs == -1):
            return None
        return check_int(self.n_jobs, "n_jobs", self._name, 1)

    def _progress(self) -> bool:
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)):
            raise param_error(self._name, "verbose", "a bool", self.verbose, TypeError)
        return bool(self.verbose)

    def _weights(self, sample_weight, n: int, what: str, *, nonnegative: bool = False):
        if sample_weight is None:
            return None
        return check_float_vector(sample_weight, "sample_weight", f"{self._name}.fit", n, nonnegative=nonnegative,
                                  what=what)

    # ------------------------------------------------------------------ the estimator API
    def fit(self, X, y=None, sample_weight=None):
        """Select ``n_samples`` rows of X.

        Parameters
        ----------
        X : array of shape (n, d)
            The data (numpy, torch or cupy; see the class).
        y : ignored
            Accepted for pipelines.
        sample_weight : array of shape (n,), optional
            The per-sample weight the method defines (see the class).

        Returns
        -------
        self
        """
        X = self._check_X(X, reset=True)
        n = X.shape[0]
        pool, k = self._budget(n)
        self._select(X, k, pool, sample_weight)
        self._n_fit_rows = n
        return self

    def transform(self, X, y=None, sample_weight=None):
        """The selected rows of X, in selection order (and of ``y``, ``sample_weight`` when given).

        Parameters
        ----------
        X : array of shape (n, d)
            The data the selector was fitted on.
        y, sample_weight : arrays of shape (n,), optional
            Taken at the same rows, as apricot does.

        Returns
        -------
        X_subset, or (X_subset, y_subset) with ``y``, or (X_subset, y_subset or None,
        sample_weight_subset) with ``sample_weight``.
        """
        check_is_fitted(self, "ranking_")
        X = self._check_X(X, reset=False)
        if X.shape[0] != self._n_fit_rows:
            raise ValueError(f"X has {X.shape[0]} rows, but {self._name} was fitted on {self._n_fit_rows}: "
                             "transform takes the rows it selected from the same data (index another "
                             "array with ranking_ to take the same rows of it).")
        subset = _take(X, self.ranking_)
        if sample_weight is not None:
            return subset, None if y is None else _take(y, self.ranking_), _take(sample_weight, self.ranking_)
        return subset if y is None else (subset, _take(y, self.ranking_))

    def fit_transform(self, X, y=None, sample_weight=None):
        """``fit(X, y, sample_weight)`` then ``transform(X, y, sample_weight)``."""
        return self.fit(X, y, sample_weight).transform(X, y, sample_weight)

    @property
    def ranking(self) -> np.ndarray:
        """apricot's name for ``ranking_``."""
        return self.ranking_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64", "float32"])
        tags.input_tags.sparse = self._accept_sparse
        tags.input_tags.positive_only = self._positive_only
        tags.target_tags.required = False
        return tags


class _GainSelector(_Selector):
    @property
    def gains(self) -> np.ndarray:
        """apricot's name for ``gains_``."""
        return self.gains_


# ------------------------------------------------------------------------------- k-center

class KCenterGreedy(_Selector):
    """Exact k-center greedy (farthest-first traversal; DiverseEvol's selector) as an estimator.

    Wraps :func:`iterselect.kcenter.kcenter_greedy`: each pick is the row farthest from every
    row picked so far (and from ``initial_subset``).

    Parameters
    ----------
    n_samples : int
        Rows to pick (besides ``initial_subset``).
    metric : {"euclidean", "cosine"}, default="euclidean"
    initial_subset : sequence of int or boolean mask, optional
        Rows already chosen (DiverseEvol's pool); the first pick is the row farthest from them.
    seed_index : int, default=0
        The first pick when there is no ``initial_subset``.
    n_jobs : int, optional
        CPU threads (None or -1: all).
    verbose : bool, default=False
        Show a progress bar.
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}, default="auto"
        As in :func:`iterselect.kcenter.kcenter_greedy` (CUDA inputs run the CUDA kernels).

    Attributes
    ----------
    ranking_ : int64 array (n_samples,)
        The picks in selection order.
    radii_ : array (n_samples,)
        The covering radius after each pick (non-increasing; smaller is better). k-center
        has no gains: its objective is a radius, and it is reported under that name only.
    min_distances_ : array (n,)
        Each row's distance to its nearest pick (or ``initial_subset`` row) at the end.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.estimators import KCenterGreedy
    >>> X = np.array([[0.0], [1.0], [5.0], [9.0]])
    >>> sel = KCenterGreedy(2).fit(X)
    >>> sel.ranking_.tolist(), sel.radii_.tolist(), sel.transform(X).ravel().tolist()
    ([0, 3], [9.0, 4.0], [0.0, 9.0])
    """

    def __init__(self, n_samples, *, metric="euclidean", initial_subset=None, seed_index=0, n_jobs=None,
                 verbose=False, backend="auto"):
        self.n_samples = n_samples
        self.metric = metric
        self.initial_subset = initial_subset
        self.seed_index = seed_index
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend

    def _select(self, X, k, pool, sample_weight):
        from .kcenter import kcenter_greedy

        name = self._name
        if sample_weight is not None:
            raise param_error(f"{name}.fit", "sample_weight", "None (k-center greedy has no per-sample weight)",
                              "an array")
        check_choice(self.metric, "metric", name, ("euclidean", "cosine"))
        check_int(self.seed_index, "seed_index", name, 0, X.shape[0] - 1)
        check_choice(self.backend, "backend", name, BACKENDS)
        r = kcenter_greedy(X, k, selected=pool, metric=self.metric, seed_index=self.seed_index,
                           threads=self._threads(), progress=self._progress(), backend=self.backend)
        self.ranking_ = to_host(r.indices).astype(np.int64)
        self.radii_ = to_host(r.radii)
        self.min_distances_ = to_host(r.min_distances)


# ------------------------------------------------------------------------------- coverage

class CoverageSelection(_GainSelector):
    """Exact greedy weighted coverage (IterIT's diversity) as an estimator.

    Wraps :func:`iterselect.coverage.coverage_greedy` on a nonnegative matrix X (IterIT: the
    TF-IDF of the responses, e.g. from :class:`iterselect.sklearn.TfidfVectorizer`): each
    pick is the row with the largest ``sample_weight_i * sum_j alpha_j * X[i, j]``, then the
    weight ``alpha_j`` of every column the pick covers is multiplied by ``decay``.

    Parameters
    ----------
    n_samples : int
        Rows to pick (besides ``initial_subset``).
    decay : float in [0, 1], default=0.1
        IterIT's ``b``.
    initial_subset : sequence of int or boolean mask, optional
        Rows already chosen: their columns are decayed first and they are never picked.
    n_jobs : int, optional
        CPU threads (None or -1: all).
    verbose : bool, default=False
        Show a progress bar.

    Attributes
    ----------
    ranking_ : int64 array (n_samples,)
    gains_ : float64 array (n_samples,)
        Each pick's gain at the time it was picked (non-increasing).
    alpha_ : float64 array (n_features,)
        The column weights after the last pick.
    n_features_in_ : int

    Notes
    -----
    ``fit(X, sample_weight=ifd)`` passes IterIT's IFD scores as the row weights (default: 1).
    X may be a scipy sparse matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.estimators import CoverageSelection
    >>> X = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.1], [0.0, 0.0, 0.9]])
    >>> sel = CoverageSelection(2).fit(X)
    >>> sel.ranking_.tolist(), sel.gains_.round(3).tolist()
    ([1, 0], [2.1, 0.2])
    """

    _accept_sparse = True
    _positive_only = True

    def __init__(self, n_samples, *, decay=0.1, initial_subset=None, n_jobs=None, verbose=False):
        self.n_samples = n_samples
        self.decay = decay
        self.initial_subset = initial_subset
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _select(self, X, k, pool, sample_weight):
        from .coverage import coverage_greedy

        name = self._name
        decay = check_float(self.decay, "decay", name, 0.0, 1.0)
        w = self._weights(sample_weight, X.shape[0], "one weight per row of X, e.g. its IFD", nonnegative=True)
        r = coverage_greedy(X, k, weights=w, decay=decay, selected=pool, threads=self._threads(),
                            progress=self._progress())
        self.ranking_ = to_host(r.indices).astype(np.int64)
        self.gains_ = to_host(r.gains)
        self.alpha_ = to_host(r.alpha)


# ------------------------------------------------------------------------------- facility location

class FacilityLocationSelection(_GainSelector):
    """Exact greedy facility location (QDIT's diversity; apricot's flagship) as an estimator.

    Wraps :func:`iterselect.facility.facility_location`: each pick maximizes the gain of
    F(S) = sum_i max_{j in S} s_ij (with ``sample_weight`` as QDIT's quality q:
    (1 - quality_weight) * that + quality_weight * sum_{j in S} q_j), on a kNN similarity
    graph (faiss).

    Parameters
    ----------
    n_samples : int
        Rows to pick (besides ``initial_subset``).
    metric : {"euclidean", "cosine"}, default="euclidean"
        "euclidean" is apricot's similarity (the largest squared distance minus each one);
        "cosine" is max(cos, 0) (apricot squares the cosine instead).
    n_neighbors : int, optional
        Neighbours per row in the graph. None (apricot's default): every pair, an N x N graph,
        as apricot's dense mode; give e.g. 100 for large N.
    quality_weight : float in [0, 1], default=0.5
        QDIT's alpha, used only with ``sample_weight``.
    initial_subset : sequence of int or boolean mask, optional
        Rows already chosen: they represent their neighbours from the start.
    n_jobs : int, optional
        CPU threads (None or -1: all).
    verbose : bool, default=False
        Show a progress bar.
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}, default="auto"
        Where the greedy runs (the graph is built on the host).

    Attributes
    ----------
    ranking_ : int64 array (n_samples,)
    gains_ : float64 array (n_samples,)
        Each pick's marginal gain (non-increasing).
    objective_ : float
        F of the whole selection.
    n_features_in_ : int

    Notes
    -----
    Against apricot's ``FacilityLocationSelection(n_samples, metric="euclidean")``: the same
    greedy on the same dense similarities (apricot's ``optimizer="lazy"`` and ``"naive"``
    are exact too); ties go to the lowest index here.
    """

    def __init__(self, n_samples, *, metric="euclidean", n_neighbors=None, quality_weight=0.5,
                 initial_subset=None, n_jobs=None, verbose=False, backend="auto"):
        self.n_samples = n_samples
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.quality_weight = quality_weight
        self.initial_subset = initial_subset
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend

    def _select(self, X, k, pool, sample_weight):
        from .facility import facility_location

        name = self._name
        n = X.shape[0]
        check_choice(self.metric, "metric", name, ("euclidean", "cosine"))
        neighbors = n - 1 if self.n_neighbors is None else check_int(self.n_neighbors, "n_neighbors", name, 1)
        alpha = check_float(self.quality_weight, "quality_weight", name, 0.0, 1.0)
        check_choice(self.backend, "backend", name, BACKENDS)
        q = self._weights(sample_weight, n, "QDIT's quality of every row")
        r = facility_location(X, k, n_neighbors=max(1, neighbors), metric=self.metric, quality=q,
                              quality_weight=alpha, selected=pool, threads=self._threads(),
                              progress=self._progress(), backend=self.backend)
        self.ranking_ = to_host(r.indices).astype(np.int64)
        self.gains_ = to_host(r.gains)
        self.objective_ = float(r.objective)


# ------------------------------------------------------------------------------- affinity propagation

class AffinityPropagationSelection(_GainSelector):
    """InsBank's representation ranking (PIBE's selection of one arrival) as an estimator.

    Runs :func:`iterselect.affinity.affinity_propagation` on X (InsBank's similarity
    ``-||x - y||`` by default), scores every row by
    :func:`iterselect.affinity.representation_scores` of the final messages (InsBank's Eq. 7,
    ``colsum(A+R) - rowsum(A+R) + diag(A+R)``) and keeps the ``n_samples`` best. With
    ``sample_weight`` (InsBank's quality), both terms are min-max normalized and combined as
    InsBank does: ``(1 + rep) * (1 + q) ** gamma`` (``combine="multiply"``) or
    ``rep + gamma * q`` (``"add"``); the ranking then equals the first round of
    :class:`iterselect.methods.InsBank` with the same settings.

    Parameters
    ----------
    n_samples : int
        Rows to keep (besides ``initial_subset``).
    metric : {"euclidean", "sqeuclidean", "cosine"}, default="euclidean"
    preference : float, optional
        The diagonal of S (None: the median of S, scikit-learn's default; InsBank's paper default
        is 0.0, and ``InsBank(preference="median")`` matches None here).
    damping : float in [0.5, 1), default=0.5
    max_iter : int, default=200
    convergence_iter : int, default=15
    combine : {"multiply", "add"}, default="multiply"
    gamma : float >= 0, default=1.0
        Weight of the quality (InsBank's).
    random_state : int, RandomState or None, default=None
        None: no noise (deterministic); otherwise scikit-learn's tie-breaking noise.
    dtype : numpy.float32 or numpy.float64, default=numpy.float64
        Precision of the messages (InsBank's default is float64).
    n_neighbors : int, optional
        Sparse mode on a kNN graph, for large N (see ``affinity_propagation``).
    initial_subset : sequence of int or boolean mask, optional
        Rows already kept: they take part in the messages but are never ranked.
    n_jobs : int, optional
        CPU threads (None or -1: all).
    verbose : bool, default=False
        Show a progress bar.
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}, default="auto"

    Attributes
    ----------
    ranking_ : int64 array (n_samples,)
        The kept rows, best first (ties: lowest index).
    gains_ : float64 array (n_samples,)
        The score that ranked them (non-increasing): the raw representation score without
        ``sample_weight``, the combined score with it.
    scores_ : float64 array (n,)
        Every row's score.
    representation_ : float64 array (n,)
        Every row's raw representation score.
    exemplars_, labels_ : int64 arrays
        The affinity propagation's exemplars and each row's cluster.
    n_iter_ : int
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.estimators import AffinityPropagationSelection
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1]])
    >>> AffinityPropagationSelection(2).fit(X).ranking_.tolist()
    [1, 3]
    """

    def __init__(self, n_samples, *, metric="euclidean", preference=None, damping=0.5, max_iter=200,
                 convergence_iter=15, combine="multiply", gamma=1.0, random_state=None, dtype=np.float64,
                 n_neighbors=None, initial_subset=None, n_jobs=None, verbose=False, backend="auto"):
        self.n_samples = n_samples
        self.metric = metric
        self.preference = preference
        self.damping = damping
        self.max_iter = max_iter
        self.convergence_iter = convergence_iter
        self.combine = combine
        self.gamma = gamma
        self.random_state = random_state
        self.dtype = dtype
        self.n_neighbors = n_neighbors
        self.initial_subset = initial_subset
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend = backend

    def _select(self, X, k, pool, sample_weight):
        from .affinity import affinity_propagation, representation_scores
        from .methods.insbank._algorithm import minmax

        name = self._name
        n = X.shape[0]
        if n < 2:
            raise param_error(f"{name}.fit", "X", "an array of at least 2 rows (affinity propagation passes "
                              "messages between pairs)", f"{n} sample")
        check_choice(self.metric, "metric", name, ("euclidean", "sqeuclidean", "cosine"))
        if self.preference is not None:
            check_float(self.preference, "preference", name)
        check_float(self.damping, "damping", name, 0.5, 1.0, high_open=True)
        check_int(self.max_iter, "max_iter", name, 1)
        check_int(self.convergence_iter, "convergence_iter", name, 1)
        combine = check_choice(self.combine, "combine", name, ("multiply", "add"))
        gamma = check_float(self.gamma, "gamma", name, 0.0)
        dtype = check_float_dtype(self.dtype, "dtype", name)
        if self.n_neighbors is not None:
            check_int(self.n_neighbors, "n_neighbors", name, 1, n - 1)
        check_choice(self.backend, "backend", name, BACKENDS)
        quality = self._weights(sample_weight, n, "InsBank's quality of every row")
        ap = affinity_propagation(X, metric=self.metric, preference=self.preference, damping=self.damping,
                                  max_iter=self.max_iter, convergence_iter=self.convergence_iter,
                                  random_state=self.random_state, dtype=dtype, return_messages=True,
                                  progress=self._progress(), backend=self.backend, n_neighbors=self.n_neighbors,
                                  threads=self._threads())
        raw = to_host(representation_scores(ap.responsibility, ap.availability)).astype(np.float64)
        if quality is None:
            scores = raw
        elif combine == "add":
            scores = minmax(raw) + gamma * minmax(quality)
        else:
            scores = (1.0 + minmax(raw)) * np.power(1.0 + minmax(quality), gamma)
        ranked = np.where(np.isin(np.arange(n), pool), -np.inf, scores)
        order = np.lexsort((np.arange(n), -ranked))[:k].astype(np.int64)
        self.ranking_ = order
        self.gains_ = scores[order]
        self.scores_ = scores
        self.representation_ = raw
        self.exemplars_ = to_host(ap.exemplars).astype(np.int64)
        self.labels_ = to_host(ap.labels).astype(np.int64)
        self.n_iter_ = int(ap.n_iter)


# ------------------------------------------------------------------------------- kMQ

class KMQSampler(_Selector):
    """kMQ ("Diversify and Conquer"): k-means, a budget per cluster, quality-weighted draws.

    Clusters X with :func:`iterselect.cluster.kmeans` (faiss) and draws ``n_samples`` rows
    with :func:`iterselect.cluster.kmq_sample`: cluster budgets proportional to the cluster
    sizes, draws without replacement inside each cluster with probability proportional to
    ``sample_weight`` (the quality; uniform without it).

    Parameters
    ----------
    n_samples : int
        Rows to draw (besides ``initial_subset``).
    n_clusters : int, default=8
        k of the k-means (scikit-learn's ``KMeans`` default).
    allocation : {"proportional", "equal"}, default="proportional"
    within : {"multinomial", "softmax", "uniform"}, default="multinomial"
        How the quality weighs the draws (see ``kmq_sample``); "uniform" draws uniformly and
        refuses a ``sample_weight``.
    niter : int, default=25
        Lloyd iterations of the k-means.
    spherical : bool, default=False
        Unit-length centroids (for cosine geometry).
    random_state : int, RandomState or None, default=None
        Seeds the k-means and the draws: an int is used as the seed of both (so
        ``KMQSampler(..., random_state=s)`` equals ``kmq_sample(kmeans(X, k, seed=s).labels,
        ..., seed=s)``); None or a RandomState draws that seed from numpy's generator.
    initial_subset : sequence of int or boolean mask, optional
        Rows already chosen: they count toward their cluster's size but are never drawn.

    Attributes
    ----------
    ranking_ : int64 array (n_samples,)
        The draws, clusters interleaved so that every prefix is close to proportional.
    labels_ : int64 array (n,)
        Each row's cluster.
    cluster_centers_ : float32 array (n_clusters, d)
    per_cluster_ : int64 array (n_clusters,)
        Draws per cluster.
    n_features_in_ : int

    A random draw has no objective, so there is no ``gains_``.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.estimators import KMQSampler
    >>> X = np.array([[0.0, 0.0], [0.0, 0.1], [0.1, 0.0], [5.0, 5.0], [5.0, 5.1], [5.1, 5.0]])
    >>> sel = KMQSampler(2, n_clusters=2, random_state=0).fit(X)
    >>> sorted(sel.per_cluster_.tolist()), len(set(sel.labels_[sel.ranking_].tolist()))
    ([1, 1], 2)
    """

    def __init__(self, n_samples, *, n_clusters=8, allocation="proportional", within="multinomial", niter=25,
                 spherical=False, random_state=None, initial_subset=None):
        self.n_samples = n_samples
        self.n_clusters = n_clusters
        self.allocation = allocation
        self.within = within
        self.niter = niter
        self.spherical = spherical
        self.random_state = random_state
        self.initial_subset = initial_subset

    def _select(self, X, k, pool, sample_weight):
        from .cluster import kmeans, kmq_sample

        name = self._name
        n = X.shape[0]
        n_clusters = check_int(self.n_clusters, "n_clusters", name, 1, n)
        allocation = check_choice(self.allocation, "allocation", name, ("proportional", "equal"))
        within = check_choice(self.within, "within", name, ("multinomial", "softmax", "uniform"))
        niter = check_int(self.niter, "niter", name, 1)
        if not isinstance(self.spherical, (bool, np.bool_)):
            raise param_error(name, "spherical", "a bool", self.spherical, TypeError)
        seed = self._seed()
        quality = self._weights(sample_weight, n, "the quality of every row")
        if within == "uniform" and quality is not None:
            raise param_error(f"{name}.fit", "sample_weight", "None when within='uniform'", "an array")
        km = kmeans(X, n_clusters, niter=niter, seed=seed, spherical=bool(self.spherical))
        labels = to_host(km.labels).astype(np.int64)
        r = kmq_sample(labels, k, quality=quality, cluster_weights=np.ones(n_clusters), selected=pool,
                       allocation=allocation, within=within, seed=seed)
        self.ranking_ = to_host(r.indices).astype(np.int64)
        self.per_cluster_ = to_host(r.per_cluster).astype(np.int64)
        self.labels_ = labels
        self.cluster_centers_ = to_host(km.centroids)

    def _seed(self) -> int:
        rs = self.random_state
        if isinstance(rs, numbers.Integral) and not isinstance(rs, (bool, np.bool_)):
            return check_int(rs, "random_state", self._name, 0, 2**31 - 1)
        if rs is not None and not isinstance(rs, np.random.RandomState):
            raise param_error(self._name, "random_state", "None, an int in the range [0, 2147483647] or a "
                              "numpy.random.RandomState", rs, TypeError)
        return int(check_random_state(rs).randint(0, 2**31 - 1))
