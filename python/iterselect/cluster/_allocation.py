"""kMQ's budget allocation across clusters: water-filling under caps, largest-remainder rounding."""
from __future__ import annotations

import numpy as np


def _water_fill(budget: int, v: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Real shares ``x_j = min(cap_j, lam * v_j)`` with ``sum x = budget`` (all v > 0).

    Requires ``budget <= cap.sum()``. Clusters are capped in order of ``cap_j / v_j``: with them
    sorted, the first m are capped for the smallest m whose level ``lam_m = (budget - sum of the
    m caps) / (sum of the other v)`` does not exceed the next cluster's ``cap / v``.
    """
    if budget >= cap.sum():
        return cap.astype(np.float64)
    t = cap / v
    order = np.argsort(t, kind="stable")
    cap_cum = np.concatenate(([0.0], np.cumsum(cap[order], dtype=np.float64)[:-1]))
    v_suffix = np.cumsum(v[order][::-1])[::-1]
    lam = (budget - cap_cum) / v_suffix
    m = int(np.argmax(lam <= t[order]))  # exists because budget < cap.sum()
    x = np.empty_like(v, dtype=np.float64)
    x[order[:m]] = cap[order[:m]]
    rest = order[m:]
    x[rest] = np.minimum(lam[m] * v[rest], cap[rest])
    return x


def _round_shares(budget: int, x: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Largest-remainder rounding of real shares ``x`` (sum = budget) within the caps.

    Every cluster gets ``floor(x_j)``; the units left go one each to the clusters of largest
    fractional part that are below their cap (ties to the lowest cluster id).
    """
    base = np.minimum(np.floor(x + 1e-9 * (x > 0)), cap).astype(np.int64)
    # x within 1e-9 below an integer counts as that integer (rounding noise of the water level)
    left = int(budget - base.sum())
    if left > 0:
        frac = x - base
        cand = np.flatnonzero(base < cap)
        order = cand[np.lexsort((cand, -frac[cand]))]
        base[order[:left]] += 1
    return base


def allocate(budget: int, size: np.ndarray, cap: np.ndarray, weights: np.ndarray,
             allocation: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer per-cluster budgets and the ideal real shares they round.

    ``size`` is each cluster's full size, ``cap`` what it has left (not yet selected), and the
    share of cluster j is proportional to ``size_j * w_j`` ("proportional") or ``w_j``
    ("equal"), capped at ``cap_j`` with the overflow redistributed (water-filling). Clusters of
    zero weight are used only when all the others are exhausted, then in proportion to their
    size ("proportional") or equally ("equal").
    """
    v = size * weights if allocation == "proportional" else weights.astype(np.float64)
    x = np.zeros(cap.shape[0], dtype=np.float64)
    pos = np.flatnonzero((v > 0) & (cap > 0))
    take = min(budget, int(cap[pos].sum()))
    if take > 0:
        x[pos] = _water_fill(take, v[pos], cap[pos].astype(np.float64))
    rest = budget - take
    if rest > 0:  # every positive-weight cluster is exhausted: fall back to zero-weight ones
        zero = np.flatnonzero((v <= 0) & (cap > 0))
        vz = size[zero].astype(np.float64) if allocation == "proportional" else np.ones(zero.size)
        x[zero] = _water_fill(rest, vz, cap[zero].astype(np.float64))
    return _round_shares(budget, x, cap), x
