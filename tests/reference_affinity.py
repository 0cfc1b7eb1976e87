"""Plain numpy reference of affinity propagation: scikit-learn's loop (update order, damping,
convergence rule, final assignment), returning the final messages too, plus InsBank's history
mix (R <- alpha H + (1 - alpha) R after the damped update, alpha *= decay after each iteration,
as the published code). Whole-matrix numpy operations in float64, as sklearn performs them.
"""
from __future__ import annotations

import numpy as np


def affinity_reference(S, *, preference=None, damping=0.5, max_iter=200, convergence_iter=15, random_state=None,
                       history=None, history_weight=0.5, history_decay=0.99):
    """Returns (exemplars, labels, n_iter, converged, R, A, equal_shortcut)."""
    S = np.array(S, dtype=np.float64, copy=True)
    n = S.shape[0]
    pref = np.asarray(np.median(S) if preference is None else preference, dtype=np.float64)
    off = ~np.eye(n, dtype=bool)
    if np.all(pref == pref.flat[0]) and np.all(S[off] == S[off].flat[0]):
        if pref.flat[0] > S.flat[n - 1]:
            return np.arange(n), np.arange(n), 0, True, np.zeros((n, n)), np.zeros((n, n)), True
        return np.array([0]), np.zeros(n, dtype=np.int64), 0, True, np.zeros((n, n)), np.zeros((n, n)), True
    S.flat[:: n + 1] = pref
    if random_state is not None:
        rs = np.random.RandomState(random_state) if isinstance(random_state, int) else random_state
        S += (np.finfo(S.dtype).eps * S + np.finfo(S.dtype).tiny * 100) * rs.standard_normal(size=(n, n))
    A = np.zeros((n, n))
    R = np.zeros((n, n))
    tmp = np.zeros((n, n))
    e = np.zeros((n, convergence_iter))
    ind = np.arange(n)
    alpha = history_weight
    converged = False
    for it in range(max_iter):
        np.add(A, S, tmp)
        I = np.argmax(tmp, axis=1)
        Y = tmp[ind, I]
        tmp[ind, I] = -np.inf
        Y2 = np.max(tmp, axis=1)
        np.subtract(S, Y[:, None], tmp)
        tmp[ind, I] = S[ind, I] - Y2
        tmp *= 1 - damping
        R *= damping
        R += tmp
        if history is not None:
            R = R * (1 - alpha) + history * alpha
            alpha = alpha * history_decay
        np.maximum(R, 0, out=tmp)
        tmp.flat[:: n + 1] = R.flat[:: n + 1]
        tmp -= np.sum(tmp, axis=0)
        dA = np.diag(tmp).copy()
        tmp.clip(0, np.inf, tmp)
        tmp.flat[:: n + 1] = dA
        tmp *= 1 - damping
        A *= damping
        A -= tmp
        E = (np.diag(A) + np.diag(R)) > 0
        e[:, it % convergence_iter] = E
        K = np.sum(E, axis=0)
        if it >= convergence_iter:
            se = np.sum(e, axis=1)
            unconverged = np.sum((se == convergence_iter) + (se == 0)) != n
            if not unconverged and K > 0:
                converged = True
                break
    I = np.flatnonzero(E)
    K = I.size
    if K == 0:
        return np.array([], dtype=np.int64), np.full(n, -1), it + 1, converged, R, A, False
    c = np.argmax(S[:, I], axis=1)
    c[I] = np.arange(K)
    for k in range(K):
        ii = np.flatnonzero(c == k)
        j = np.argmax(np.sum(S[ii[:, np.newaxis], ii], axis=0))
        I[k] = ii[j]
    c = np.argmax(S[:, I], axis=1)
    c[I] = np.arange(K)
    labels = I[c]
    centers = np.unique(labels)
    return centers, np.searchsorted(centers, labels), it + 1, converged, R, A, False


def representation_reference(R, A):
    """InsBank Eq. 7 by the formula."""
    M = np.asarray(A, dtype=np.float64) + np.asarray(R, dtype=np.float64)
    return M.sum(axis=0) - M.sum(axis=1) + np.diag(M)
