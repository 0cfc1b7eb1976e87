"""k-means, kMQ sampling and the cluster re-weighting of iterative kMQ.

"Diversify and Conquer" (Yu et al., 2024) clusters embeddings with k-means, gives each cluster a
budget proportional to its size and samples inside a cluster with probability weighted by a
quality score (kMQ). Its iterative variant re-weights the clusters every round from a scorer
(Eq. 5-6, :func:`cluster_weights_update`) and picks k by the silhouette (:func:`choose_k`).

* :func:`kmeans` runs faiss (an optional extra: ``pip install iterselect[faiss]``).
* :func:`kmq_sample` allocates the budget across clusters (largest-remainder rounding, caps,
  overflow redistributed) and draws inside each cluster without replacement, vectorized over all
  clusters at once (exponential races, see :func:`kmq_sample`).
* :func:`cluster_weights_update` is Eq. 5-6, with negative and all-zero scores defined.
* :func:`choose_k` runs :func:`kmeans` for each candidate k and scores it with
  :func:`iterselect.metrics.silhouette` on one shared sample.
"""
from __future__ import annotations

from ._allocation import allocate
from ._choose_k import ChooseKResult, choose_k
from ._kmeans import KMeansResult, kmeans
from ._kmq import KMQSample, KMQSampleResult, kmq_sample
from ._weights import ClusterWeights, ClusterWeightsResult, cluster_weights_update

__all__ = [
    "KMeansResult",
    "KMQSampleResult",
    "ClusterWeightsResult",
    "ChooseKResult",
    "kmeans",
    "kmq_sample",
    "cluster_weights_update",
    "choose_k",
    "allocate",
]
