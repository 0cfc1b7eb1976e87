"""kMQ sampling: a budget per cluster, quality-weighted draws without replacement inside each."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import host_vector, results_like
from .._validation import (check_choice, check_float_vector, check_indices, check_int, check_labels,
                           param_error)
from ._allocation import allocate

ALLOCATIONS = ("proportional", "equal", "multinomial")


@dataclass(frozen=True)
class KMQSampleResult:
    """Result of :func:`kmq_sample`.

    Attributes
    ----------
    indices : (budget,) int64 array of sample indices, never in ``selected``, no repeats. The
        clusters are interleaved so that every prefix stays close to the allocation's proportions
        (the picks are ordered by ``(rank_in_cluster + 0.5) / per_cluster[j]``, ties by cluster
        id); inside a cluster the picks keep their draw order.
    per_cluster : (n_clusters,) int64 array, how many samples each cluster contributed; it sums
        to the budget.
    """

    indices: np.ndarray
    per_cluster: np.ndarray


def kmq_sample(labels: ArrayLike, budget: int, *, quality: ArrayLike | None = None,
               cluster_weights: ArrayLike | None = None, selected: ArrayLike | None = None,
               allocation: str = "proportional", within: str = "multinomial",
               replace: bool = False, seed: int = 0) -> KMQSampleResult:
    """Sample ``budget`` points across clusters: kMQ of "Diversify and Conquer" (§2.1, Eq. 3).

    Each cluster j gets a budget, then draws that many of its not-yet-selected points without
    replacement (``replace=True``: with replacement).

    With or without replacement. Eq. 3 reads "``{x_1, ..., x_bj} ~ Multinomial(D_j, p(x|q))``
    ... sampled from cluster D_j with replacement", but the same section defines the selection
    as a subset ``D'`` with ``b = |D'|``, and the published code draws every cluster's points
    without replacement (``np.random.choice(..., replace=False)``). Here the default is without
    replacement (``b`` distinct samples); ``replace=True`` draws Eq. 3 literally: ``b_j``
    independent draws per cluster, so a sample can come back more than once (it is then
    trained on more than once) and ``indices`` may repeat.

    Budgets. ``allocation="proportional"`` (the paper): ``b_j`` is proportional to
    ``|C_j| * w_j``, where ``|C_j|`` is the cluster's full size (``selected`` included) and
    ``w_j = cluster_weights[j]`` (1 when not given; iterative kMQ's Alg. 1 passes the weights of
    :func:`cluster_weights_update`). ``"equal"`` (the published code): ``b_j`` is proportional
    to ``w_j`` alone. The real shares are capped at what each cluster has left and the overflow
    is redistributed to the others in the same proportions (water-filling); then
    largest-remainder rounding (ties to the lowest cluster id) makes them integers that sum to
    ``budget`` exactly, each within 1 of its real share. Clusters of weight zero are used only
    once every other cluster is exhausted. ``"multinomial"`` (the published code's later
    iterations, ``np.random.choice(K, size, p=weights, replace=True)``): the budgets are one
    multinomial draw of ``budget`` cluster ids with probabilities ``w_j / sum w``; a cluster
    drawn more often than it has points left passes the rest on by drawing again among the
    clusters with room (the published code drops it, ending the round short).

    Inside a cluster. ``within="multinomial"`` (the paper's intent, without repeats): successive
    draws without replacement with probability proportional to ``quality``. ``"softmax"`` (the
    published code): the same with probability proportional to ``exp(quality)``, computed in log
    space so it never overflows. ``"uniform"``: equal probabilities. All three are done at once
    for every cluster with exponential races: point i gets the key ``E_i / p_i`` with
    ``E_i ~ Exp(1)``, compared in log space (``log E_i - log quality_i``; ``log E_i -
    quality_i`` for softmax) and each cluster takes its
    ``b_j`` smallest keys. This is exactly successive sampling without replacement with
    probabilities proportional to ``p`` (the first draw is the minimum of independent
    exponentials, which is i with probability ``p_i / sum p``; memorylessness makes the rest
    repeat on what is left), i.e. what ``numpy.random.Generator.choice(..., replace=False,
    p=p)`` draws, the Gumbel-top-k trick. Points of zero quality ("multinomial") are drawn only
    after all positive-quality points of their cluster, uniformly among themselves.

    Parameters
    ----------
    labels : (N,) int array
        Cluster id of every point, ``0 <= labels[i] < n_clusters`` (e.g. ``kmeans(...).labels``).
        ``n_clusters`` is ``len(cluster_weights)`` when given, else ``labels.max() + 1``.
    budget : int in [1, N - len(selected)]
        Number of points to draw.
    quality : (N,) float array, optional
        Quality score of every point. "multinomial" needs finite, non-negative values;
        "softmax" any finite values. None means uniform; with ``within="uniform"`` it must be
        None.
    cluster_weights : (n_clusters,) float array, optional
        Non-negative, finite, not all zero. Default: all ones.
    selected : int array, optional
        Points already chosen (unique indices); they count toward their cluster's size but are
        never drawn again.
    allocation : {"proportional", "equal", "multinomial"}, default "proportional"
    within : {"multinomial", "softmax", "uniform"}, default "multinomial"
    replace : bool, default False
        Draw with replacement inside each cluster (Eq. 3 as written); clusters are then never
        capped by their size.
    seed : int >= 0, default 0
        Seed of a ``numpy.random.Generator``; the same seed gives the same sample.

    Returns
    -------
    KMQSampleResult
        ``indices`` (int64, clusters interleaved so every prefix is close to proportional) and
        ``per_cluster`` (int64 counts, summing to ``budget``), in the kind of ``labels``
        (numpy, torch or cupy; ``quality`` may be any kind and float dtype).

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.cluster import kmq_sample
    >>> labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    >>> quality = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 0.0])
    >>> res = kmq_sample(labels, 4, quality=quality, seed=0)
    >>> res.per_cluster
    array([2, 1, 1])
    >>> bool(0 in res.indices and 6 in res.indices)  # positive quality goes first
    True
    >>> kmq_sample(labels, 3, selected=[0, 1, 2, 3], seed=0).per_cluster
    array([0, 2, 1])
    """
    func = "kmq_sample"
    allocation = check_choice(allocation, "allocation", func, ALLOCATIONS)
    check_choice(replace, "replace", func, (True, False))
    within = check_choice(within, "within", func, ("multinomial", "softmax", "uniform"))
    labels_in = labels
    labels = check_labels(labels, func)
    n = labels.shape[0]
    seed = check_int(seed, "seed", func, 0)

    if cluster_weights is None:
        n_clusters = int(labels.max()) + 1
        weights = np.ones(n_clusters)
    else:
        wv = host_vector(cluster_weights, "cluster_weights", func, kind="floats")
        weights = check_float_vector(wv, "cluster_weights", func, wv.shape[0], nonnegative=True,
                                     what="one weight per cluster")
        n_clusters = weights.shape[0]
        if n_clusters <= labels.max():
            raise param_error(func, "cluster_weights",
                              f"a 1-D array with one weight per cluster (at least "
                              f"{int(labels.max()) + 1}, as labels holds cluster id {int(labels.max())})",
                              f"an array of length {n_clusters}")
        if not np.any(weights > 0):
            raise param_error(func, "cluster_weights", "non-negative with at least one positive weight",
                              "all zeros")

    sel = np.asarray([] if selected is None else host_vector(selected, "selected", func, kind="indices"))
    sel = check_indices(sel, "selected", func, n)
    budget = check_int(budget, "budget", func, 1, n - sel.size)

    if within == "uniform":
        if quality is not None:
            raise param_error(func, "quality", "None when within='uniform' (the quality is "
                              "unused; pass within='multinomial' or 'softmax' to use it)",
                              "an array")
        q = None
    elif quality is not None:
        q = check_float_vector(quality, "quality", func, n, nonnegative=within == "multinomial",
                               what="one score per sample, as labels")
    else:
        q = None

    avail = np.ones(n, dtype=bool)
    avail[sel] = False
    size = np.bincount(labels, minlength=n_clusters)
    cap = np.bincount(labels[avail], minlength=n_clusters)
    rng = np.random.default_rng(seed)
    room = np.where(cap > 0, budget, 0) if replace else cap
    if allocation == "multinomial":
        per_cluster = _multinomial_budgets(budget, weights, room, rng)
    else:
        per_cluster, _ = allocate(budget, size, room, weights, allocation)
    if replace:
        return results_like(_draw_with_replacement(labels, avail, per_cluster, q, within, rng), labels_in)

    # exponential races over every available point at once
    idx = np.flatnonzero(avail)
    lab = labels[idx]
    e = rng.standard_exponential(idx.size)
    tie = np.zeros(idx.size)
    if q is None:
        key = e
    elif within == "multinomial":
        qa = q[idx]
        pos = qa > 0
        key = np.full(idx.size, np.inf)  # E / q in log space: no overflow for tiny q
        with np.errstate(divide="ignore"):
            np.subtract(np.log(e), np.log(qa, where=pos, out=np.ones_like(qa)), out=key, where=pos)
        tie = np.where(pos, 0.0, e)  # zero quality: last, in uniformly random order
    else:  # softmax: E / exp(q) in log space
        with np.errstate(divide="ignore"):
            key = np.log(e) - q[idx]
    order = np.lexsort((tie, key, lab))
    lab_sorted = lab[order]
    starts = np.concatenate(([0], np.cumsum(cap)[:-1]))
    rank = np.arange(idx.size) - starts[lab_sorted]
    take = rank < per_cluster[lab_sorted]
    picks = idx[order[take]]
    pick_lab = lab_sorted[take]
    pick_rank = rank[take]
    return results_like(_interleaved(picks, pick_lab, pick_rank, per_cluster), labels_in)


def _interleaved(picks, pick_lab, pick_rank, per_cluster) -> KMQSampleResult:
    """Order the picks so that the r-th pick of cluster j sits at (r + 0.5) / b_j."""
    pos_key = (pick_rank + 0.5) / per_cluster[pick_lab]
    inter = np.lexsort((pick_lab, pos_key))
    return KMQSampleResult(indices=picks[inter].astype(np.int64, copy=False),
                           per_cluster=per_cluster.astype(np.int64, copy=False))


def _multinomial_budgets(budget, weights, room, rng) -> np.ndarray:
    """Cluster budgets as multinomial draws of cluster ids (p proportional to the weights), an
    overflow drawn again among the clusters that still have room."""
    per = np.zeros(room.shape[0], dtype=np.int64)
    left = budget
    while left > 0:
        open_ = (per < room) & (weights > 0)
        if not open_.any():  # only zero-weight clusters have room: use them uniformly
            open_ = per < room
            p = open_.astype(np.float64)
        else:
            p = np.where(open_, weights, 0.0)
        draw = rng.multinomial(left, p / p.sum())
        per = np.minimum(per + draw, room)
        left = budget - int(per.sum())
    return per


def _draw_with_replacement(labels, avail, per_cluster, q, within, rng) -> KMQSampleResult:
    """Eq. 3 as written: b_j independent draws from cluster j's available points."""
    picks, pick_lab, pick_rank = [], [], []
    for j in np.flatnonzero(per_cluster):
        members = np.flatnonzero(avail & (labels == j))
        if q is None:
            p = None
        elif within == "softmax":
            z = np.exp(q[members] - q[members].max())
            p = z / z.sum()
        else:
            w = q[members]
            p = w / w.sum() if w.sum() > 0 else None
        drawn = rng.choice(members, size=int(per_cluster[j]), replace=True, p=p)
        picks.append(drawn)
        pick_lab.append(np.full(drawn.size, j))
        pick_rank.append(np.arange(drawn.size))
    return _interleaved(np.concatenate(picks), np.concatenate(pick_lab),
                        np.concatenate(pick_rank), per_cluster)


KMQSample = KMQSampleResult  # the earlier name, still accepted
