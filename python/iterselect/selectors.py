"""Thin scikit-learn-style wrappers of the selector functions, for other libraries.

``fit(X)`` runs the selection and stores ``ranking_`` (indices in selection order) and the
objective after each step under its own name (k-center: ``radii_``, the covering radius, smaller
is better); ``transform(X)`` returns the selected rows.
"""
from __future__ import annotations

from .kcenter import kcenter_greedy


class KCenterSelector:
    """k-center greedy as an estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.selectors import KCenterSelector
    >>> X = np.array([[0.0], [1.0], [5.0], [9.0]])
    >>> sel = KCenterSelector(k=2, progress=False).fit(X)
    >>> sel.ranking_.tolist(), sel.transform(X).ravel().tolist()
    ([0, 3], [0.0, 9.0])
    """

    def __init__(self, k, *, metric="euclidean", seed_index=0, threads=None, progress=True, backend="auto"):
        self.k = k
        self.metric = metric
        self.seed_index = seed_index
        self.threads = threads
        self.progress = progress
        self.backend = backend

    def fit(self, X, y=None, *, selected=None):
        result = kcenter_greedy(X, self.k, selected=selected, metric=self.metric, seed_index=self.seed_index,
                                threads=self.threads, progress=self.progress, backend=self.backend)
        self.result_ = result
        self.ranking_ = result.indices
        self.radii_ = result.radii
        return self

    def transform(self, X):
        if not hasattr(self, "ranking_"):
            raise RuntimeError("This KCenterSelector is not fitted yet; call fit(X) first.")
        return X[self.ranking_]

    def fit_transform(self, X, y=None, **kwargs):
        return self.fit(X, **kwargs).transform(X)
