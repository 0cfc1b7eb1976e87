"""Exact k-center greedy over row shards held by Ray actors."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import _backends
from .._arrays import like_input
from .._progress import progress_callback
from .._validation import check_bool, check_choice, check_int, check_selection_budget
from ..kcenter import KCenterResult
from ._candidates import CandidatePool
from ._cluster import RunStats, ShardGroup, connect, default_shards, gather, run_stats
from ._shards import load_shard, shard_matrix

_FUNC = "kcenter_greedy"


@dataclass(frozen=True)
class DistributedKCenterResult(KCenterResult):
    """:class:`iterselect.KCenterResult` of a distributed run, with its costs in ``stats``
    (:class:`iterselect.distributed.RunStats`). ``distance_evaluations`` and
    ``final_evaluations`` add up the shards'."""

    stats: RunStats | None = None


class KCenterWorker:
    """One shard's lazy k-center state (the C++ ``KCenterShard``) on its actor. An update is a
    batch of centers: ``(global indices, rows)``."""

    def __init__(self, shard, *, metric: str, threads: int):
        self.m = load_shard(shard, _FUNC, cosine=metric == "cosine")
        self.offset, self.rows = shard.offset, shard.rows
        self.state = _backends.core.KCenterShard(self.m.host, self.m.dtype, metric, threads)

    def apply(self, update) -> None:
        ids, rows = update
        local = np.asarray(ids, np.int64) - self.offset
        local[(local < 0) | (local >= self.rows)] = -1
        self.state.add_centers(rows, local)

    def start(self) -> None:
        self.state.refresh_all()

    def top(self, m: int):
        index, value, rest, rest_value = self.state.top(m)
        return index, value, rest, rest_value, np.ascontiguousarray(self.m.host[index])

    def row_block(self, local) -> np.ndarray:
        return np.ascontiguousarray(self.m.host[np.asarray(local, np.int64)])

    def finish(self, with_min_distances: bool = True):
        before = self.state.evaluations
        if not with_min_distances:
            return before, 0, None
        dist = self.state.min_distances()
        return before, self.state.evaluations - before, dist

    def snapshot(self):
        return self.state.save()

    def restore(self, state, position: int, log: list) -> None:
        # Every center is added back (the stamps count centers from the first); only those after
        # the checkpoint cost distances, as the rows meet them lazily.
        if state is not None:
            self.state.load(*state)
        for update in log:
            self.apply(update)
        if state is None and log:
            self.state.refresh_all()


def _reported(sq: float, metric: str) -> float:
    return 0.5 * sq if metric == "cosine" else float(np.sqrt(sq))


def kcenter_greedy(X, k: int, *, selected=None, metric: str = "euclidean", seed_index: int = 0,
                   num_shards: int | None = None, address: str | None = None, candidates: int = 32,
                   column: str | None = None, num_cpus: float | None = None, max_restarts: int = 3,
                   checkpoint_every: int = 200, progress: bool = True,
                   min_distances: bool = True) -> DistributedKCenterResult:
    """Exact k-center greedy with the rows sharded over Ray actors: the single-process picks.

    Each actor holds a shard of rows and the single-process lazy state for them (every row's
    min-distance as an upper bound in a max-heap); the driver holds no data. Each round every
    shard sends its ``candidates`` farthest rows (exact values and the rows) and the exact
    value of its next one; the driver picks the farthest candidate, brings the others up to date
    with the pick (the same canonical distances), and picks again while its best beats every
    shard's next value, so several exact picks cost one round trip; then it broadcasts the
    picks. Ties go to the lowest global index. Indices, radii and min-distances equal
    :func:`iterselect.kcenter_greedy`'s (same warm start, metric and dtype) bit for bit.

    Parameters
    ----------
    X : array, path, list of paths or Ray Dataset
        An (n, d) numpy array or CPU torch tensor (float16, bfloat16, float32, float64), cut
        into row ranges put into the object store; a ``.npy`` path, memory-mapped by every actor
        (each reads its row range: no copy); a list of ``.npy`` paths (one shard per file, or
        consecutive files per shard; row order is the list's); or a ``ray.data.Dataset`` whose
        ``column`` holds the vectors (materialized in order).
    k : int
        Points to pick, in ``[1, n - len(selected)]``.
    selected : sequence of int, optional
        The warm start's pool (global indices).
    metric : {"euclidean", "cosine"}
    seed_index : int
        First pick when ``selected`` is empty.
    num_shards : int, optional
        Actors (default: one per node of the cluster; for a list of files, one per file).
    address : str, optional
        The Ray cluster: None (this process's, else a new local one), "auto" (``$RAY_ADDRESS``,
        else the one ``ray start`` runs here, else a new local one) or an address.
    candidates : int
        Rows each shard sends per round (more: fewer round trips, more bytes a round).
    column : str, optional
        The Ray Dataset's embedding column (default: its only column).
    num_cpus : float, optional
        CPUs per actor (default: the cluster's CPUs shared equally, at most one node's); the
        C++ kernels use that many threads.
    max_restarts : int
        Restarts Ray allows each actor; a restarted actor is restored (checkpoint and replay).
    checkpoint_every : int
        Rounds between checkpoints of the shards' state (0: never; a restore then replays every
        center on the shard's rows).
    progress : bool
        Show a progress bar.
    min_distances : bool
        Return every point's distance to its nearest center (a final pass on every shard, as
        in :func:`iterselect.kcenter_greedy`); ``False`` skips it and ``min_distances`` is None.

    Returns
    -------
    DistributedKCenterResult
        ``indices``, ``radii``, ``min_distances`` (numpy; a torch input gets torch), and
        ``stats``.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.distributed import kcenter_greedy
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.1, 0.0]])
    >>> r = kcenter_greedy(X, 2, num_shards=2, progress=False)
    >>> r.indices.tolist(), r.radii.round(3).tolist()
    ([0, 2], [3.0, 1.0])
    """
    check_choice(metric, "metric", _FUNC, ("euclidean", "cosine"))
    min_distances = check_bool(min_distances, "min_distances", _FUNC)
    candidates = check_int(candidates, "candidates", _FUNC, 1)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", _FUNC, 0)
    max_restarts = check_int(max_restarts, "max_restarts", _FUNC, 0)
    if num_shards is not None:
        num_shards = check_int(num_shards, "num_shards", _FUNC, 1)
    ray = connect(address, _FUNC)
    data = shard_matrix(ray, X, num_shards, _FUNC, column=column, default_shards=default_shards(ray))
    n = data.n
    pool, k = check_selection_budget(selected, k, _FUNC, n, "point")
    seed_index = check_int(seed_index, "seed_index", _FUNC, 0, n - 1)
    with ShardGroup(ray, KCenterWorker, data.shards, dict(metric=metric), func=_FUNC, num_cpus=num_cpus,
                    max_restarts=max_restarts, checkpoint_every=checkpoint_every) as group:
        picks, radii, finished, rounds, seconds = _run(group, data.offsets, k, pool, seed_index, candidates, metric,
                                                       data.dtype, progress, min_distances)
        stats = run_stats(group, rounds, k, seconds)
    out_dtype = np.float64 if data.dtype == "float64" else np.float32
    back = (lambda a: a) if data.matrix is None else (lambda a: like_input(a, data.matrix))
    return DistributedKCenterResult(
        indices=back(np.asarray(picks, np.int64)), radii=back(np.asarray(radii, np.float64).astype(out_dtype)),
        min_distances=back(np.concatenate([f[2] for f in finished]).astype(out_dtype)) if min_distances else None,
        distance_evaluations=int(sum(f[0] for f in finished)), backend="cpu",
        final_evaluations=int(sum(f[1] for f in finished)), stats=stats)


def _run(group, offsets, k, pool, seed_index, m, metric, dtype, progress, with_min_distances=True):
    """The whole run on a group of shards: (picks, radii, the shards' final answers, rounds,
    seconds of the picking loop)."""
    first = pool if pool.size else np.array([seed_index], np.int64)
    picks = [] if pool.size else [int(seed_index)]
    group.call_all("start", update=(first, np.stack(gather(group, offsets, first, "row_block"))))
    start = time.perf_counter()
    radii, rounds, last = _pick(group, offsets, k, picks, m, metric, dtype, progress)
    seconds = time.perf_counter() - start
    return picks, radii, group.call_all("finish", with_min_distances, update=last), rounds, seconds


def _pick(group, offsets, k, picks: list, m: int, metric: str, dtype: str, progress: bool):
    """The rounds: picks until ``k`` (appended to ``picks``); returns (radii, rounds, the update
    of the last round's picks, which the shards have not seen yet)."""
    radii: list[float] = []
    update = None
    rounds = 0
    with progress_callback(progress, k, "k-center (distributed)") as callback:
        while True:
            answers = group.call_all("top", m, update=update)
            rounds += 1
            cand = CandidatePool(answers, offsets)
            rows = np.concatenate([a[4] for a in answers])
            new = []
            while True:
                j = cand.best()
                if j < 0:
                    if not cand.exhausted:
                        break
                    if picks:  # no unchosen point is left anywhere: the radius is 0
                        radii.append(0.0)
                    if len(picks) == k:
                        return radii, rounds, _update(cand, rows, new)
                    raise RuntimeError("kcenter_greedy: the shards ran out of points before k picks")
                if not cand.certified(j):
                    break
                # the farthest unchosen point; its value is the radius after the last pick
                if picks:
                    radii.append(_reported(cand.values[j], metric))
                if len(picks) == k:
                    return radii, rounds, _update(cand, rows, new)
                picks.append(int(cand.ids[j]))
                new.append(j)
                cand.taken[j] = True
                free = cand.free()
                if free.size:
                    d = _backends.core.kcenter_pair_sq(rows[free], rows[j:j + 1], dtype, metric, 1)[:, 0]
                    cand.values[free] = np.minimum(cand.values[free], d)
            if not new:
                raise RuntimeError("kcenter_greedy: a round made no pick (a shard's answer was not exact)")
            if callback is not None:
                callback(len(picks), k)
            update = _update(cand, rows, new)


def _update(cand: CandidatePool, rows: np.ndarray, new: list):
    """The broadcast of a round's picks: their global indices and rows (None: no pick)."""
    if not new:
        return None
    new = np.asarray(new, np.int64)
    return cand.ids[new], np.ascontiguousarray(rows[new])
