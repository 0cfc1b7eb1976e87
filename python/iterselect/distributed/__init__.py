"""Exact selection on a Ray cluster: the single-process selectors' results, sharded over actors.

The data is cut into shards held by Ray actors, each running the single-process kernels on its
shard; the driver holds no data, takes the global best each step (ties: the lowest global
index) and broadcasts the pick, so each function returns what its single-process namesake
returns. Ray schedules, moves and restarts; a restarted actor reloads its shard and is
restored from its last checkpoint plus the picks since (see ``_cluster``).

* :func:`kcenter_greedy` -- :func:`iterselect.kcenter_greedy` over row shards.
* :func:`coverage_greedy` -- :func:`iterselect.coverage_greedy` over row shards.
* :func:`tfidf_matrix` -- :func:`iterselect.tfidf_matrix` as a map-reduce over text shards.
* :func:`iterit_select` -- :func:`iterselect.iterit_select`: both of the above, the rows staying
  on the shards that built them.
* :func:`facility_location_graph` -- :func:`iterselect.facility_location_graph` over blocks of
  candidates (columns of the graph).
* :func:`kmeans` -- Lloyd's iterations over row shards, float64 sums reduced on the driver (the
  clustering of kMQ; :func:`iterselect.kmq_sample` then samples from its labels).

Scoring and embedding scale out with Ray Data: :func:`score` (one model replica per actor,
Parquet parts, resumable), :func:`load_scores`, and :class:`RayScorer`, which a method's
``scorer=`` runs its scoring through.

Every function takes ``num_shards`` and ``address`` (None: this process's Ray, else a new local
one; "auto": ``$RAY_ADDRESS`` or the cluster ``ray start`` runs here; or an address). Ray is an
optional extra (``pip install 'iterselect[ray]'``), imported when a function runs, not when
this package is.
"""
from __future__ import annotations

from ._cluster import RunStats, connect, reuse_actors
from .coverage import coverage_greedy, iterit_select, tfidf_matrix
from .facility import facility_location_graph
from .kcenter import DistributedKCenterResult, kcenter_greedy
from .kmeans import kmeans
from .scoring import RayScorer, ScoreRun, load_scores, score

__all__ = ["DistributedKCenterResult", "RayScorer", "RunStats", "ScoreRun", "connect", "coverage_greedy",
           "facility_location_graph", "iterit_select", "kcenter_greedy", "kmeans", "load_scores", "reuse_actors",
           "score", "tfidf_matrix"]
