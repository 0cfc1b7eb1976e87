"""Iterative kMQ's cluster re-weighting (Eq. 5-6 of "Diversify and Conquer")."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import host_vector, results_like
from .._validation import check_choice, check_float_vector, check_labels, param_error


WEIGHT_RULES = ("exp", "published", "shift", "ratio")


@dataclass(frozen=True)
class ClusterWeightsResult:
    """Result of :func:`cluster_weights_update`.

    Attributes
    ----------
    weights : (k,) float64 array, the new weights, non-negative, finite, summing to 1.
    cluster_scores : (k,) float64 array, ``s_j`` of Eq. 5: the mean score of cluster j's scored
        samples (for a cluster without any, the mean of the scored clusters' ``s_j``).
    factors : (k,) float64 array, what multiplied ``w_prev`` (Eq. 6's ``s_j / sum_c s_c``
        under the rule; for ``"published"`` the new weights themselves).
    counts : (k,) int64 array, how many scored samples fell in each cluster.
    rule : str, the rule used.
    shift : float, what the ``"shift"`` rule added to every ``s_j`` (0.0 otherwise).
    """

    weights: np.ndarray
    cluster_scores: np.ndarray
    factors: np.ndarray
    counts: np.ndarray
    rule: str
    shift: float = 0.0


def cluster_weights_update(weights: ArrayLike, labels: ArrayLike, scores: ArrayLike, *,
                           rule: str = "exp") -> ClusterWeightsResult:
    """New cluster weights from per-sample scores: Eq. 5-6 of "Diversify and Conquer".

    Eq. 5: ``s_j = (1 / |D_j|) sum_i S(x_i, y_gen, y_gold)``, the mean score of cluster j's
    scored samples. Eq. 6: ``w_j = s_j / (sum_c s_c) * w_prev_j``. The scores are differences
    (Eq. 4, ``score(x + y_gold) - score(x + y_gen)``; Eq. 7, ``-log(PPL(x + y_gen) / PPL(x +
    y_gold))``), so ``s_j`` is often negative and Eq. 6 as written gives negative weights or
    divides by zero. The published code (for-ai/iterative-data-selection, ``select_new_iter``)
    settles this: it exponentiates the cluster means and normalises them, ``exp(s_j) / sum_c
    exp(s_c)``. The rules:

    ========================  ============================================================
    ``rule``                  new weight, up to normalisation
    ========================  ============================================================
    ``"exp"`` (default)       ``exp(s_j) / sum_c exp(s_c) * w_prev_j``: Eq. 6 on the
                              published code's positive transform of ``s_j``
    ``"published"``           ``exp(s_j) / sum_c exp(s_c)``: the published code exactly,
                              which replaces the weights each iteration (no ``w_prev``)
    ``"shift"``               Eq. 6 on ``s_j - min_c s_c`` (the lowest cluster gets weight 0)
    ``"ratio"``               Eq. 6 as written; every ``s_j`` must be non-negative
    ========================  ============================================================

    The weights are returned divided by their sum: kMQ's allocation uses only their
    proportions, and over many iterations the products of Eq. 6 factors would underflow. They
    are never negative or NaN. When every factor is equal (e.g. all ``s_j`` zero under
    ``"shift"`` or ``"ratio"``) the weights keep their proportions. A cluster without any
    scored sample gets the mean of the scored clusters' ``s_j``: it keeps its weight relative
    to an average cluster (the published code would misalign its cluster ids there).

    Parameters
    ----------
    weights : (k,) float array
        The previous weights ``w_prev``; non-negative, finite, not all zero (Alg. 1 starts at
        ``1 / k``).
    labels : (m,) int array
        Cluster id of every scored sample, in ``[0, k - 1]``.
    scores : (m,) float array
        Finite score of every scored sample (higher: the cluster should get more weight).
    rule : {"exp", "published", "shift", "ratio"}, default="exp"

    Returns
    -------
    ClusterWeightsResult
        ``weights``, ``cluster_scores`` (``s_j``), ``factors``, ``counts``, ``rule``, ``shift``;
        the arrays in the kind of ``weights`` (numpy, torch or cupy, any float dtype).

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.cluster import cluster_weights_update
    >>> cluster_weights_update(np.ones(2), [0, 0, 1], [1.0, 3.0, 6.0], rule="ratio").weights
    array([0.25, 0.75])
    >>> res = cluster_weights_update(np.ones(2), [0, 1], [-1.0, 1.0])  # negative: exp rule
    >>> res.weights.round(4), bool(np.allclose(res.weights, np.exp([-1, 1]) / np.exp([-1, 1]).sum()))
    (array([0.1192, 0.8808]), True)
    >>> cluster_weights_update(np.ones(2), [0, 1], [-1.0, 1.0], rule="shift").weights
    array([0., 1.])
    """
    func = "cluster_weights_update"
    rule = check_choice(rule, "rule", func, WEIGHT_RULES)
    wv = host_vector(weights, "weights", func, kind="floats")
    w = check_float_vector(wv, "weights", func, wv.shape[0], nonnegative=True,
                           what="one weight per cluster")
    k = w.shape[0]
    if k == 0:
        raise param_error(func, "weights", "a non-empty 1-D array of cluster weights", "an empty array")
    if not np.any(w > 0):
        raise param_error(func, "weights", "non-negative with at least one positive weight", "all zeros")
    sv = host_vector(scores, "scores", func, kind="floats")
    s = check_float_vector(sv, "scores", func, sv.shape[0], nonnegative=False,
                           what="one score per scored sample")
    if s.shape[0] == 0:
        raise param_error(func, "scores", "a non-empty 1-D array of scores", "an empty array")
    lab = check_labels(labels, func, n=s.shape[0], what="the cluster id of every score")
    if lab.max() >= k:
        bad = int(np.flatnonzero(lab >= k)[0])
        raise param_error(func, "labels", f"cluster ids in the range [0, {k - 1}] (one weight per "
                          "cluster)", f"{int(lab[bad])} at position {bad}")
    counts = np.bincount(lab, minlength=k)
    sums = np.bincount(lab, weights=s, minlength=k)
    scored = counts > 0
    means = np.zeros(k)
    means[scored] = sums[scored] / counts[scored]
    means[~scored] = means[scored].mean()
    shift = 0.0
    if rule in ("exp", "published"):
        log_factor = means - means.max()  # softmax in log space: never overflows
        factors = np.exp(log_factor)
        factors /= factors.sum()
        if rule == "published":
            return results_like(ClusterWeightsResult(weights=factors, cluster_scores=means, factors=factors,
                                                     counts=counts.astype(np.int64), rule=rule), weights)
        with np.errstate(divide="ignore"):
            log_w = log_factor + np.log(w)
        new = np.exp(log_w - log_w.max())
    else:
        if rule == "ratio" and means.min() < 0:
            raise param_error(func, "scores", "scores whose cluster means are non-negative under "
                              "rule='ratio' (Eq. 6 as written); rule='exp' handles negative means",
                              f"a cluster mean of {means.min():.6g}")
        if rule == "shift" and means.min() < 0:
            shift = -float(means.min())
        shifted = means + shift
        total = shifted.sum()
        factors = shifted / total if total > 0 else np.full(k, 1.0 / k)
        new = factors * w
    result = ClusterWeightsResult(weights=new / new.sum(), cluster_scores=means, factors=factors,
                                  counts=counts.astype(np.int64), rule=rule, shift=shift)
    return results_like(result, weights)


ClusterWeights = ClusterWeightsResult  # the earlier name, still accepted
