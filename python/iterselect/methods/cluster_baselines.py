"""The baselines of "Diversify and Conquer" (Yu et al., 2024, §3.3 and Table 2): selections on
fixed embeddings, with and without k-means, with and without quality.

=============  ==================================================================================
baseline       what it picks (the paper, §3.3)
=============  ==================================================================================
kM-Closest     k-means, each cluster's budget as kMQ's (proportional to its size), the samples
               closest to the cluster's centroid: :func:`kmeans_closest_select`
kM-Random      the same budgets, uniformly at random inside each cluster:
               :func:`kmeans_random_select`
kMQ            the same budgets, drawn inside each cluster with probability proportional to the
               quality score (Eq. 3): :func:`kmq_select`
k-Center       k-center greedy with as many centers as the budget:
               :func:`~iterselect.methods.kcenter_select`
Deita          by decreasing quality, skipping a sample too similar to one kept:
               :func:`~iterselect.methods.deita_select`
QDIT           greedy facility location on cosine similarities plus quality:
               :func:`qdit_select`
=============  ==================================================================================

| | paper | published code (for-ai/iterative-data-selection) | here |
|---|---|---|---|
| kM-Closest | per-cluster budgets as kMQ, closest to the centroid | ``KMeansCentroids``: k-means with k = the budget (MiniBatchKMeans), the one point closest to each centroid (a point can be picked twice) | the paper; the published variant is ``n_clusters=k`` |
| kM-Random | budgets as kMQ, random inside a cluster | ``KMeansRandom``: ``int(b / K)`` per cluster (equal budgets), faiss k-means niter 300, nredo 5 | the paper; ``allocation="equal"`` for the published budgets |
| k-means seed | 42 (Appendix A, Table 4) | 42 | 42 |
| QDIT | facility location + quality, greedy (Bukharin & Zhao, 2023) | ``qdit_selection``: ``(1 - alpha) * sum_v max_{a in S + i} cos(v, a) + alpha * q_i``, dense, O(N^2) per pick | the facility-location kernel (exact lazy greedy on a faiss kNN graph), ``quality_weight`` = alpha |
"""
from __future__ import annotations

import numpy as np

from .._arrays import as_matrix, host_vector, to_float64
from .._validation import check_choice, check_float_vector, check_int, param_error
from .baselines import BaselineResult

KMEANS_SEED = 42  # Appendix A, Table 4: "K-means Random Seed 42"


def auto_cluster_candidates(n: int) -> list:
    """The k tried by ``n_clusters="auto"``: powers of two from 2 to ``min(8192, n // 4)``
    (8,192 is the largest k of the paper's Table 5); at least [2].

    Examples
    --------
    >>> auto_cluster_candidates(300)
    [2, 4, 8, 16, 32, 64]
    """
    top = max(2, min(8192, n // 4))
    out, k = [], 2
    while k <= top:
        out.append(k)
        k *= 2
    return out


def cluster_embeddings(X, n_clusters, *, seed=KMEANS_SEED, candidates=None, progress=False,
                       func="cluster_embeddings"):
    """k-means of ``X`` with ``n_clusters`` clusters, or the k of the best silhouette when
    ``n_clusters="auto"`` (§4.3: "the Silhouette score is an efficient and effective proxy to
    estimate the number of clusters"; :func:`~iterselect.cluster.choose_k`).

    Returns ``(KMeansResult, silhouette scores by k or None)``.
    """
    from ..cluster import choose_k, kmeans

    n = as_matrix(X, "X", func).shape[0]
    if isinstance(n_clusters, str):
        check_choice(n_clusters, "n_clusters", func, ("auto",))
        cand = candidates or auto_cluster_candidates(n)
        cand = [c for c in cand if 2 <= c <= n - 1]
        if not cand:
            raise param_error(func, "X", "at least 3 rows to choose k by the silhouette",
                              f"{n} rows")
        res = choose_k(X, cand, seed=seed, progress=progress)
        return res.kmeans, dict(zip(res.candidates.tolist(), res.scores.tolist()))
    n_clusters = check_int(n_clusters, "n_clusters", func, 1, n)
    return kmeans(X, n_clusters, seed=seed), None


def _k_and_quality(X, k, quality, func):
    """``k`` checked against the rows of X, and ``quality`` as one finite float per row."""
    n = as_matrix(X, "X", func).shape[0]
    k = check_int(k, "k", func, 1, n)
    q = check_float_vector(host_vector(quality, "quality", func, kind="floats"), "quality", func,
                           n, nonnegative=False, what="one quality score per row of X")
    return k, q


def _labels_and_budgets(X, k, n_clusters, seed, allocation, func):
    from ..cluster import allocate

    km, _ = cluster_embeddings(X, n_clusters, seed=seed, func=func)
    labels = host_vector(km.labels, "labels", func, kind="ints").astype(np.int64)
    size = np.bincount(labels, minlength=int(km.centroids.shape[0]))
    per_cluster, _ = allocate(k, size, size, np.ones(size.shape[0]), allocation)
    return km, labels, per_cluster


def kmeans_closest_select(X, k, *, n_clusters="auto", seed=KMEANS_SEED,
                          allocation="proportional") -> BaselineResult:
    """kM-Closest: k-means, kMQ's per-cluster budgets, the samples closest to each centroid.

    Each cluster j gets ``b_j`` (proportional to its size, largest remainder, as
    :func:`~iterselect.cluster.kmq_sample`) and contributes its ``b_j`` points of smallest
    Euclidean distance to its centroid (ties: lowest index). The picks are interleaved across
    clusters as kMQ's are.

    Parameters
    ----------
    X : (N, d) array
    k : int in [1, N]
    n_clusters : int or "auto", default="auto"
        "auto": the k of the best silhouette (:func:`cluster_embeddings`).
    seed : int, default=42
        The k-means seed (Appendix A).
    allocation : {"proportional", "equal"}, default="proportional"

    Returns
    -------
    BaselineResult
        ``scores``: each pick's distance to its centroid.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [0.5], [10.0], [10.1], [10.4]])
    >>> sorted(kmeans_closest_select(X, 2, n_clusters=2).indices.tolist())  # the centroids' nearest
    [1, 4]
    """
    from ..cluster._kmq import _interleaved

    func = "kmeans_closest_select"
    m = as_matrix(X, "X", func)
    k = check_int(k, "k", func, 1, m.shape[0])
    check_choice(allocation, "allocation", func, ("proportional", "equal"))
    km, labels, per_cluster = _labels_and_budgets(X, k, n_clusters, seed, allocation, func)
    x = to_float64(m)
    centroids = to_float64(as_matrix(km.centroids, "centroids", func))
    dist = np.linalg.norm(x - centroids[labels], axis=1)
    order = np.lexsort((np.arange(labels.size), dist, labels))
    lab_sorted = labels[order]
    starts = np.concatenate(([0], np.cumsum(np.bincount(labels, minlength=per_cluster.size))[:-1]))
    rank = np.arange(labels.size) - starts[lab_sorted]
    take = rank < per_cluster[lab_sorted]
    res = _interleaved(order[take], lab_sorted[take], rank[take], per_cluster)
    return BaselineResult(res.indices, dist[res.indices], "kM-Closest")


def kmeans_random_select(X, k, *, n_clusters="auto", seed=KMEANS_SEED,
                         allocation="proportional") -> BaselineResult:
    """kM-Random: k-means, kMQ's per-cluster budgets, uniform draws inside each cluster (the
    paper's kMQ without quality). ``seed`` seeds k-means and the draws; ``scores`` are the draw
    order.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.zeros((5, 2)), np.ones((5, 2))] + np.arange(10)[:, None] * 1e-3
    >>> r = kmeans_random_select(X, 4, n_clusters=2)
    >>> sorted((r.indices >= 5).tolist())
    [False, False, True, True]
    """
    from ..cluster import kmq_sample

    func = "kmeans_random_select"
    m = as_matrix(X, "X", func)
    k = check_int(k, "k", func, 1, m.shape[0])
    check_choice(allocation, "allocation", func, ("proportional", "equal"))
    _, labels, _ = _labels_and_budgets(X, k, n_clusters, seed, allocation, func)
    res = kmq_sample(labels, k, within="uniform", allocation=allocation, seed=seed)
    return BaselineResult(res.indices, np.arange(k, dtype=np.float64), "kM-Random")


def kmq_select(X, k, *, quality, n_clusters="auto", seed=KMEANS_SEED, allocation="proportional",
               within="multinomial", replace=False) -> BaselineResult:
    """kMQ (§2.1, Eq. 3): k-means, per-cluster budgets proportional to size, draws inside each
    cluster with probability proportional to ``quality``.

    Parameters
    ----------
    X : (N, d) array
    k : int
    quality : (N,) array
        Non-negative for ``within="multinomial"``; any finite values for ``"softmax"`` (the
        published code's ``exp(score)`` draws).
    n_clusters : int or "auto", default="auto"
    seed : int, default=42
    allocation, within, replace
        As for :func:`~iterselect.cluster.kmq_sample` (``replace=True`` is Eq. 3 literally).

    Returns
    -------
    BaselineResult
        ``scores``: each pick's quality.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.zeros((4, 2)), np.ones((4, 2))] + np.arange(8)[:, None] * 1e-3
    >>> q = np.array([0, 0, 0, 1.0, 0, 0, 2.0, 0])
    >>> sorted(kmq_select(X, 2, quality=q, n_clusters=2).indices.tolist())
    [3, 6]
    """
    from ..cluster import kmq_sample

    func = "kmq_select"
    k, q = _k_and_quality(X, k, quality, func)
    _, labels, _ = _labels_and_budgets(X, k, n_clusters, seed, "proportional", func)
    res = kmq_sample(labels, k, quality=q, allocation=allocation, within=within, replace=replace,
                     seed=seed)
    return BaselineResult(res.indices, q[res.indices], "kMQ")


def qdit_select(X, k, *, quality, quality_weight=0.5, n_neighbors=100, metric="cosine",
                selected=None, selector=None, progress=False) -> BaselineResult:
    """QDIT (Bukharin & Zhao, 2023; the kMQ paper's baseline): greedy maximization of
    ``F(S) = (1 - alpha) * sum_i max_{j in S} s_ij + alpha * sum_{j in S} q_j``, facility
    location on the similarities of the embeddings plus quality.

    Each step adds the sample of largest marginal gain of F, which is the published code's
    ``argmax_i (1 - alpha) * d(S + i) + alpha * q_i`` (the same argmax, as ``d(S)`` is common to
    every candidate). The greedy runs on :func:`iterselect.facility.facility_location` (a faiss
    kNN similarity graph of ``n_neighbors`` per point, never N x N; ``n_neighbors >= N - 1``
    is the dense function).

    Parameters
    ----------
    X : (N, d) array
        Embeddings.
    k : int
    quality : (N,) array
        Finite quality scores ``q_j``.
    quality_weight : float in [0, 1], default=0.5
        ``alpha``. The kMQ paper does not give the value it ran; 0.5 is the published code's
        example.
    n_neighbors : int, default=100
    metric : {"cosine", "euclidean"}, default="cosine"
        Similarity ``max(cos, 0)`` (QDIT's cosine) or apricot's euclidean transform.
    selected : int array, optional
        Already chosen samples (warm start).
    selector : callable, optional
        ``selector(X, k, n_neighbors=, metric=, quality=, quality_weight=, selected=,
        progress=)`` returning an object with ``indices`` and ``gains``; default
        :func:`iterselect.facility.facility_location`.
    progress : bool, default=False

    Returns
    -------
    BaselineResult
        ``scores``: each pick's marginal gain of F.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.7, 0.7]])
    >>> qdit_select(X, 2, quality=[0, 0, 3, 0, 0], n_neighbors=4).indices.tolist()
    [2, 1]
    """
    func = "qdit_select"
    k, q = _k_and_quality(X, k, quality, func)
    if selector is None:
        from ..facility import facility_location as selector
    res = selector(X, k, n_neighbors=n_neighbors, metric=metric, quality=q,
                   quality_weight=quality_weight, selected=selected, progress=progress)
    return BaselineResult(np.asarray(res.indices, dtype=np.int64),
                          np.asarray(res.gains, dtype=np.float64), "QDIT")


__all__ = ["auto_cluster_candidates", "cluster_embeddings", "kmeans_closest_select",
           "kmeans_random_select", "kmq_select", "qdit_select", "KMEANS_SEED"]
