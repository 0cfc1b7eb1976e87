"""``KCenterSelector``: the earlier name of :class:`iterselect.estimators.KCenterGreedy`, kept as
a deprecated alias with its earlier constructor (``k``, ``threads``, ``progress``) and
``fit(X, selected=...)``. Needs scikit-learn, as every estimator does.
"""
from __future__ import annotations

import warnings

from .estimators import KCenterGreedy


class KCenterSelector(KCenterGreedy):
    """Deprecated: use :class:`iterselect.estimators.KCenterGreedy`
    (``KCenterGreedy(n_samples=k, initial_subset=selected, n_jobs=threads, verbose=progress)``).

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from iterselect.selectors import KCenterSelector
    >>> X = np.array([[0.0], [1.0], [5.0], [9.0]])
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     sel = KCenterSelector(k=2, progress=False).fit(X)
    >>> sel.ranking_.tolist(), sel.transform(X).ravel().tolist()
    ([0, 3], [0.0, 9.0])
    """

    def __init__(self, k, *, metric="euclidean", seed_index=0, threads=None, progress=True, backend="auto"):
        warnings.warn("KCenterSelector is deprecated; use iterselect.estimators.KCenterGreedy(n_samples=k, "
                      "n_jobs=threads, verbose=progress) and its initial_subset= for fit's selected=.",
                      DeprecationWarning, stacklevel=2)
        self.k = k
        self.metric = metric
        self.seed_index = seed_index
        self.threads = threads
        self.progress = progress
        self.backend = backend

    # KCenterGreedy's parameters under their earlier names
    n_samples = property(lambda self: self.k)
    n_jobs = property(lambda self: self.threads)
    verbose = property(lambda self: self.progress)
    initial_subset = property(lambda self: getattr(self, "_selected", None))

    def fit(self, X, y=None, sample_weight=None, *, selected=None):
        """``KCenterGreedy.fit`` with ``selected`` (the earlier ``initial_subset``)."""
        self._selected = selected
        return super().fit(X, y, sample_weight)
