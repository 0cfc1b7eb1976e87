"""Exact lazy-greedy facility location over blocks of candidates held by Ray actors.

A candidate's gain reads its own column of the similarity graph and ``current`` on that
column's points, summed over the points in ascending order. So the shards are blocks of
*candidates* (columns), each holding its columns and ``current`` on the points they list; a
pick's column, broadcast as (point, similarity) pairs, is all a shard needs to update. Cutting
the graph by points instead would split each gain's sum across shards and change its rounding.
"""
from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from .._validation import check_int, check_selection_budget
from ..facility import FacilityLocationResult, _check_quality, _objective, facility_gains, facility_update
from ..facility._graph import similarity_csr
from ._cluster import ShardGroup, connect, default_shards, gather
from ._lazy import LazyWorker, RoundProblem, lazy_rounds, local_features
from ._shards import Shard, resolve, row_ranges


def _column_graph(rows_csr, n_points: int) -> sp.csc_array:
    """Candidates given as rows over points, as the (points x candidates) graph the kernels
    read: the same arrays, taken as CSC. At least one point: a block whose candidates all have
    empty columns still has a graph (the extra point is in no column, so it changes no gain)."""
    return sp.csc_array((rows_csr.data, rows_csr.indices, rows_csr.indptr),
                        shape=(max(1, n_points), rows_csr.shape[0]))


def _gains(rows_csr, current: np.ndarray, quality, alpha: float, threads=None) -> np.ndarray:
    """The kernel's gains of candidates given as rows over points with ``current`` there."""
    if current.size == 0:
        current = np.zeros(1)
    return facility_gains(_column_graph(rows_csr, current.size), current, quality=quality, quality_weight=alpha,
                          threads=threads)


class FacilityWorker(LazyWorker):
    """One block of candidates: the candidates are the graph's columns, the features their
    points, the state ``current`` (see ``_lazy``)."""

    def __init__(self, shard, *, quality_weight: float, threads: int):
        self.offset, self.rows = shard.offset, shard.rows
        self.alpha, self.threads = quality_weight, threads
        columns, points, self.quality = resolve(shard.ref)[0]
        self._ready(columns, points, np.zeros(points.size))

    def gains(self, local):
        q = None if self.quality is None else self.quality[local]
        return _gains(self.X[local], self.state, q, self.alpha, self.threads)

    def update_state(self, features, values) -> None:
        column = sp.csc_array((values, features, [0, features.size]), shape=(self.state.size, 1))
        facility_update(column, 0, self.state)

    def extras(self, local):
        return None if self.quality is None else self.quality[local]


class FacilityRound(RoundProblem):
    def __init__(self, answers, alpha: float):
        super().__init__(answers)
        self.alpha = alpha
        self.graph = _column_graph(self.matrix, self.state.size)

    def apply_pick(self, j: int) -> None:
        if self.state.size:
            facility_update(self.graph, j, self.state)

    def gains(self, free):
        q = None if self.extras is None else self.extras[free]
        return _gains(self.matrix[free], self.state, q, self.alpha)


def _candidate_shards(put, graph, quality, parts: int) -> list:
    """Blocks of candidates (columns of the graph), each with its own points (ascending global
    ids); ``put`` stores a payload (``ray.put``)."""
    by_candidate = sp.csr_array(graph.T)  # rows: candidates, columns: points
    by_candidate.sort_indices()
    shards = []
    for lo, hi in row_ranges(graph.shape[1], parts):
        block, points = local_features(by_candidate, lo, hi)
        payload = (block, points, None if quality is None else quality[lo:hi])
        shards.append(Shard(lo, hi - lo, "columns", [put(payload)]))
    return shards


def facility_location_graph(graph, k: int, *, quality=None, quality_weight: float = 0.5, selected=None,
                            num_shards: int | None = None, address: str | None = None, candidates: int = 16,
                            num_cpus: float | None = None, max_restarts: int = 3, checkpoint_every: int = 200,
                            progress: bool = True) -> FacilityLocationResult:
    """:func:`iterselect.facility_location_graph` with the candidates sharded over Ray actors:
    the same picks, gains and ``current``.

    Each actor holds a block of candidates (columns of the graph), ``current`` on the points
    they list and a lazy heap of stale gains. Each round every shard sends its ``candidates``
    best with exact gains, their columns and ``current`` there, and the exact gain of its next
    one; the driver picks the best, raises its copy of ``current`` and recomputes the others'
    gains with the same kernel, and picks again while the best beats every shard's next gain;
    then the picks' columns are broadcast and every shard raises its ``current``.

    Parameters
    ----------
    graph, k, quality, quality_weight, selected
        As in :func:`iterselect.facility_location_graph`.
    num_shards : int, optional
        Actors (default: one per node).
    address : str, optional
        The Ray cluster (see :func:`iterselect.distributed.kcenter_greedy`).
    candidates : int
        Candidates each shard sends per round.
    num_cpus, max_restarts, checkpoint_every, progress
        As in :func:`iterselect.distributed.kcenter_greedy`.

    Returns
    -------
    FacilityLocationResult
        ``evaluations`` counts the shards' gain computations; ``backend`` is "cpu".

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.distributed import facility_location_graph
    >>> S = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.5], [0.0, 0.5, 1.0]])
    >>> r = facility_location_graph(S, 2, num_shards=2, progress=False)
    >>> r.indices.tolist(), r.gains.tolist(), r.current.tolist()
    ([1, 2], [2.3, 0.5], [0.8, 1.0, 1.0])
    """
    func = "facility_location_graph"
    csr = similarity_csr(graph, func)
    n_points, n_cand = csr.shape
    q, alpha = _check_quality(quality, quality_weight, n_cand, func)
    pool, k = check_selection_budget(selected, k, func, n_cand, "candidate")
    candidates = check_int(candidates, "candidates", func, 1)
    ray = connect(address, func)
    parts = default_shards(ray) if num_shards is None else check_int(num_shards, "num_shards", func, 1)
    shards = _candidate_shards(ray.put, csr.matrix, q, parts)
    offsets = np.array([s.offset for s in shards] + [n_cand], np.int64)
    with ShardGroup(ray, FacilityWorker, shards, dict(quality_weight=alpha), func=func, num_cpus=num_cpus,
                    max_restarts=max_restarts, checkpoint_every=checkpoint_every) as group:
        picks, gains, evaluations, current = _run(group, offsets, k, pool, candidates, alpha, n_points, progress)
    chosen = np.concatenate([pool, picks])
    return FacilityLocationResult(indices=picks, gains=gains, objective=_objective(current, q, alpha, chosen),
                                  current=current, evaluations=evaluations, backend="cpu")


def _run(group, offsets, k, pool, m, alpha, n_points, progress):
    """The run on a group of candidate blocks: (picks, gains, evaluations, current)."""
    current = np.zeros(n_points)

    def raised(points, values):
        facility_update(sp.csc_array((values, points, [0, points.size]), shape=(n_points, 1)), 0, current)

    if pool.size:
        pool_columns = gather(group, offsets, pool, "entries")
        for points, values in pool_columns:
            raised(points, values)
        group.call_all("start", update=("picks", pool, pool_columns))
    picks, gains, evaluations, _, _ = lazy_rounds(group, offsets, k, m, functools.partial(FacilityRound, alpha=alpha),
                                                  raised, "facility location (distributed)", progress,
                                                  "facility_location_graph")
    return picks, gains, evaluations, current
