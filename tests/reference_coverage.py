"""Plain numpy/scipy references for the coverage family (tests only).

The naive greedy recomputes every row's gain at every step as ``w * canonical_row_sums(X, alpha)``
in float64, takes the argmax (the lowest index among equal gains) and decays the picked row's
columns: the definition that the C++ lazy greedy and the CUDA kernels must reproduce. It also
records, at every step, the two best gains, so that a differing pick can be shown to be a
near-tie (DESIGN.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class ReferenceRun:
    indices: np.ndarray
    gains: np.ndarray
    alpha: np.ndarray
    runner_up: np.ndarray  # the second best gain at each step (-inf when none)


def canonical_float64(X) -> sp.csr_array:
    """X as a float64 CSR with sorted indices and no duplicates (the greedy's summation order).

    Duplicates are summed in X's own dtype first, as coverage_greedy canonicalizes its input.
    """
    X = sp.csr_array(X, copy=True)
    X.sum_duplicates()
    return X.astype(np.float64)


class CanonicalRowSums:
    """sum_j alpha_j * X[i, j] for every row, in the kernels' canonical float order.

    Entry e of a row (storage order) is added to partial e mod 32 (each partial starts at +0,
    products rounded, then sums rounded, e increasing); the 32 partials then fold as a warp's
    shuffle-down tree: p[l] += p[l + w] for w = 16, 8, 4, 2, 1, and the sum is p[0].

    Each partial is a sequential sum, which is what scipy's CSR product computes for one row: so
    the partials are one product with a matrix P that has a row per (row, partial) holding that
    partial's entries in order.
    """

    def __init__(self, X):
        X = sp.csr_array(X)
        self.n = X.shape[0]
        lengths = np.diff(X.indptr)
        position = np.arange(X.nnz) - np.repeat(X.indptr[:-1], lengths)
        slot = np.repeat(np.arange(self.n), lengths) * 32 + position % 32  # row * 32 + partial
        order = np.argsort(slot, kind="stable")  # by slot; within one, storage order (e increasing)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(slot, minlength=self.n * 32))])
        self.P = sp.csr_array((X.data.astype(np.float64)[order], X.indices[order], indptr),
                              shape=(self.n * 32, X.shape[1]))

    def __call__(self, alpha) -> np.ndarray:
        partials = (self.P @ np.asarray(alpha, dtype=np.float64)).reshape(self.n, 32)
        for w in (16, 8, 4, 2, 1):
            partials[:, :w] += partials[:, w:2 * w]
        return partials[:, 0].copy()


def canonical_row_sums(X, alpha) -> np.ndarray:
    """One call of :class:`CanonicalRowSums`."""
    return CanonicalRowSums(X)(alpha)


def nonzero_columns(X: sp.csr_array, row: int) -> np.ndarray:
    lo, hi = X.indptr[row], X.indptr[row + 1]
    return X.indices[lo:hi][X.data[lo:hi] != 0]


def naive_coverage_greedy(X, k, weights=None, decay=0.1, selected=()) -> ReferenceRun:
    """Recompute every gain, argmax, decay: k times."""
    X = canonical_float64(X)
    n, m = X.shape
    alpha = np.ones(m)
    taken = np.zeros(n, dtype=bool)
    for s in selected:
        alpha[nonzero_columns(X, s)] *= decay
        taken[s] = True
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    row_sums = CanonicalRowSums(X)
    picks, gains, runner_up = [], [], []
    for _ in range(k):
        g = row_sums(alpha)
        if w is not None:
            g = w * g
        g[taken] = -np.inf
        i = int(np.argmax(g))
        picks.append(i)
        gains.append(g[i])
        g[i] = -np.inf
        runner_up.append(g.max() if g.size else -np.inf)
        taken[i] = True
        alpha[nonzero_columns(X, i)] *= decay
    return ReferenceRun(np.array(picks, dtype=np.int64), np.array(gains), alpha, np.array(runner_up))


def assert_same_greedy(indices, gains, ref: ReferenceRun, rel_tie: float = 1e-6) -> int | None:
    """Assert the picks equal the reference's; where they first differ, the step must be a near
    tie (the best two gains within ``rel_tie`` relative) with equal gains up to it.

    Returns the first differing step (None when identical), so tests can report it.
    """
    indices = np.asarray(indices)
    gains = np.asarray(gains)
    assert indices.shape == ref.indices.shape
    diff = np.flatnonzero(indices != ref.indices)
    if diff.size == 0:
        np.testing.assert_array_equal(gains, ref.gains)
        return None
    t = int(diff[0])
    np.testing.assert_array_equal(gains[:t], ref.gains[:t])
    best, second = ref.gains[t], ref.runner_up[t]
    near_tie = best - second <= rel_tie * abs(best)
    assert near_tie, (f"picks differ at step {t}: ours {indices[t]} (gain {gains[t]!r}), reference "
                      f"{ref.indices[t]} (gain {best!r}, runner-up {second!r}): not a near tie")
    np.testing.assert_allclose(gains[t], best, rtol=rel_tie)
    return t


def sklearn_tfidf(texts, ngram_range=(1, 3), lowercase=True, dtype=np.float64):
    """scikit-learn's matrix (indices sorted) and vocabulary, or None for an empty vocabulary."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=ngram_range, lowercase=lowercase, dtype=dtype)
    try:
        Y = vec.fit_transform(texts)
    except ValueError as exc:
        if "empty vocabulary" in str(exc):
            return None
        raise
    Y = sp.csr_array(Y)
    Y.sort_indices()
    return Y, vec.get_feature_names_out().tolist(), vec.idf_


def paper_tfidf(texts, ngram_range=(1, 3), lowercase=True):
    """IterIT's Eq. 5 on scikit-learn's tokens: count / (the text's n-gram total) x ln(n / df),
    unnormalized, no stored zeros; returns (matrix, vocabulary, idf) or None for an empty
    vocabulary."""
    from sklearn.feature_extraction.text import CountVectorizer

    vec = CountVectorizer(ngram_range=ngram_range, lowercase=lowercase)
    try:
        C = sp.csr_array(vec.fit_transform(texts)).astype(np.float64)
    except ValueError as exc:
        if "empty vocabulary" in str(exc):
            return None
        raise
    C.sort_indices()
    n = C.shape[0]
    df = np.bincount(C.indices, minlength=C.shape[1])
    idf = np.log(n / df)
    totals = np.asarray(C.sum(axis=1)).ravel()
    rows = np.repeat(np.arange(n), np.diff(C.indptr))
    X = C.copy()
    X.data = C.data / totals[rows] * idf[C.indices]
    X.eliminate_zeros()
    return X, vec.get_feature_names_out().tolist(), idf
