"""Iterative kMQ's cluster re-weighting (Eq. 5-6 of "Diversify and Conquer")."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import host_vector, results_like
from .._validation import check_float_vector, check_labels, param_error


@dataclass(frozen=True)
class ClusterWeightsResult:
    """Result of :func:`cluster_weights_update`.

    Attributes
    ----------
    weights : (k,) float64 array, the new weights ``w_j = s_j / sum_c s_c * w_prev_j`` (Eq. 6).
    cluster_scores : (k,) float64 array, ``s_j`` as used in Eq. 6: the mean score of cluster j
        (Eq. 5) after the shift for negative scores, and the mean of the scored clusters for a
        cluster with no scored sample.
    counts : (k,) int64 array, how many scored samples fell in each cluster.
    shift : float, what was added to every cluster mean to make the smallest one zero (0.0 when
        no cluster mean was negative).
    """

    weights: np.ndarray
    cluster_scores: np.ndarray
    counts: np.ndarray
    shift: float


def cluster_weights_update(weights: ArrayLike, labels: ArrayLike, scores: ArrayLike) -> ClusterWeightsResult:
    """New cluster weights from per-sample scores: Eq. 5-6 of "Diversify and Conquer".

    ``s_j`` is the mean score of the scored samples of cluster j (Eq. 5) and the new weight is
    ``w_j = s_j / sum_c s_c * w_prev_j`` (Eq. 6). The paper leaves two cases undefined; here:

    * Negative means (its scores are differences of reward scores, Eq. 4, so they can be
      negative): every ``s_j`` is shifted by ``-min_j s_j`` so the lowest cluster mean becomes
      0. The shift keeps the order and the differences of the cluster scores and makes Eq. 6's
      weights non-negative; the lowest cluster's weight becomes 0 (as a score of 0 does in
      Eq. 6), and :func:`kmq_sample` then draws from it only once every other cluster is
      exhausted. The shift is reported in ``shift``.
    * All ``s_j`` zero (after the shift, e.g. every cluster scored the same): the scores carry
      no information, so every factor is ``1 / k`` (the limit of equal scores) and the weights
      keep their proportions.

    A cluster without any scored sample gets the mean of the scored clusters' ``s_j`` (after
    the shift): it keeps its weight relative to an average cluster.

    Parameters
    ----------
    weights : (k,) float array
        The previous weights ``w_prev``; non-negative, finite, not all zero (start with ones or
        ``1 / k``, Alg. 1).
    labels : (m,) int array
        Cluster id of every scored sample, in ``[0, k - 1]``.
    scores : (m,) float array
        Finite score of every scored sample (higher means the cluster should get more weight).

    Returns
    -------
    ClusterWeightsResult
        ``weights`` (Eq. 6), ``cluster_scores`` (the ``s_j`` used), ``counts`` and ``shift``;
        the arrays in the kind of ``weights`` (numpy, torch or cupy, any float dtype).

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.cluster import cluster_weights_update
    >>> res = cluster_weights_update(np.ones(2), [0, 0, 1], [1.0, 3.0, 6.0])
    >>> res.cluster_scores, res.weights
    (array([2., 6.]), array([0.25, 0.75]))
    >>> cluster_weights_update(np.ones(2), [0, 1], [-1.0, 1.0]).weights
    array([0., 1.])
    """
    func = "cluster_weights_update"
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
    low = float(means[scored].min())
    shift = -low if low < 0 else 0.0
    means[scored] += shift
    means[~scored] = means[scored].mean()
    total = means.sum()
    factor = means / total if total > 0 else np.full(k, 1.0 / k)
    result = ClusterWeightsResult(weights=factor * w, cluster_scores=means, counts=counts.astype(np.int64),
                                  shift=float(shift))
    return results_like(result, weights)


ClusterWeights = ClusterWeightsResult  # the earlier name, still accepted
