"""Lloyd's k-means over row shards held by Ray actors (the clustering step of kMQ)."""
from __future__ import annotations

import numpy as np

from .._arrays import host_rows, row_blocks
from .._faiss import import_faiss
from .._validation import check_int, param_error
from ..cluster import KMeansResult
from ._cluster import ShardGroup, connect, default_shards, gather
from ._shards import load_shard, shard_matrix

_FUNC = "kmeans"
_REFINE_ROWS = 2048  # rows whose candidate distances are recomputed in float64 at a time


class KMeansWorker:
    """One shard's rows; assigns them to centroids (faiss proposes, float64 decides) and sums
    them per cluster. Stateless between calls: the centroids come with every call."""

    def __init__(self, shard, *, refine: int, threads: int):
        self.m = load_shard(shard, _FUNC)
        self.refine = refine
        self.faiss = import_faiss(_FUNC)
        self.faiss.omp_set_num_threads(threads)

    def row_block(self, local) -> np.ndarray:
        return host_rows(self.m, np.asarray(local, np.int64), np.float64)

    def _assign(self, centroids: np.ndarray):
        """Yield (start, rows as float64, labels, squared distances) a block at a time."""
        k, d = centroids.shape
        index = self.faiss.IndexFlatL2(d)
        index.add(np.ascontiguousarray(centroids, dtype=np.float32))
        r = min(self.refine, k)
        for start, block in row_blocks(self.m, np.float32):
            _, cand = index.search(block, r)
            for s in range(0, block.shape[0], _REFINE_ROWS):
                x = block[s:s + _REFINE_ROWS].astype(np.float64)
                c = np.sort(cand[s:s + _REFINE_ROWS], axis=1)  # ascending: ties go to the lowest cluster
                dist = ((x[:, None, :] - centroids[c]) ** 2).sum(axis=-1)
                best = np.argmin(dist, axis=1)
                rows = np.arange(x.shape[0])
                yield start + s, x, c[rows, best], dist[rows, best]

    def step(self, centroids: np.ndarray):
        """Per-cluster sums (float64, in row order) and counts, and the summed squared distances."""
        k, d = centroids.shape
        sums, counts, inertia = np.zeros((k, d)), np.zeros(k, np.int64), 0.0
        for _, x, labels, dist in self._assign(centroids):
            np.add.at(sums, labels, x)
            counts += np.bincount(labels, minlength=k)
            inertia += float(dist.sum())
        return sums, counts, inertia

    def labels(self, centroids: np.ndarray):
        out, dists = np.empty(self.m.shape[0], np.int64), np.empty(self.m.shape[0])
        for start, _, labels, dist in self._assign(centroids):
            out[start:start + labels.size], dists[start:start + labels.size] = labels, dist
        return out, dists

    def snapshot(self):
        return None

    def restore(self, state, position: int, log: list) -> None:
        """Nothing to restore: every call brings its centroids."""


def kmeans(X, k: int, *, init=None, niter: int = 25, seed: int = 0, refine: int = 4, num_shards: int | None = None,
           address: str | None = None, column: str | None = None, num_cpus: float | None = None,
           max_restarts: int = 3) -> KMeansResult:
    """Lloyd's k-means with the rows sharded over Ray actors; sums and centroids in float64.

    Each iteration the driver broadcasts the centroids; every shard assigns its rows (faiss
    proposes each row's ``refine`` nearest centroids in float32, the nearest of them in float64
    decides, ties to the lowest cluster) and returns its per-cluster sums (float64) and counts;
    the driver adds them up and divides (an empty cluster keeps its centroid). It stops after
    ``niter`` iterations or when the centroids stop changing; then every shard labels its rows
    with the final centroids. From the same initial centroids the result is the single-process
    float64 Lloyd's: the same labels every iteration, centroids equal up to the order the
    shards' sums are added in (a few ulps). :func:`iterselect.kmq_sample` then samples from
    ``labels`` as usual.

    Parameters
    ----------
    X : array, path, list of paths or Ray Dataset
        As in :func:`iterselect.distributed.kcenter_greedy`.
    k : int
        Clusters, in ``[1, n]``.
    init : array of shape (k, d), optional
        Initial centroids. Default: ``k`` distinct rows drawn with ``numpy.random.default_rng(seed)``.
    niter : int
        Most Lloyd iterations.
    seed : int
        Seed of the default initialisation.
    refine : int
        Centroids faiss proposes per row for the float64 decision.
    num_shards, address, column, num_cpus, max_restarts
        As in :func:`iterselect.distributed.kcenter_greedy`.

    Returns
    -------
    KMeansResult
        ``centroids`` (float64), ``labels``, ``inertia`` (float64 squared distances to the final
        centroids), ``objective`` (the inertia of each iteration's assignment), ``gpu`` False.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.distributed import kmeans
    >>> X = np.array([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0]])
    >>> r = kmeans(X, 2, init=X[[0, 2]], num_shards=2)
    >>> r.labels.tolist(), r.centroids.round(2).tolist()
    ([0, 0, 1, 1], [[0.0, 0.05], [5.05, 5.0]])
    """
    niter = check_int(niter, "niter", _FUNC, 1)
    refine = check_int(refine, "refine", _FUNC, 1)
    seed = check_int(seed, "seed", _FUNC, 0, 2**32 - 1)
    if num_shards is not None:
        num_shards = check_int(num_shards, "num_shards", _FUNC, 1)
    ray = connect(address, _FUNC)
    import_faiss(_FUNC)
    data = shard_matrix(ray, X, num_shards, _FUNC, column=column, default_shards=default_shards(ray))
    k = check_int(k, "k", _FUNC, 1, data.n)
    if init is not None:
        centroids = np.array(init, dtype=np.float64)
        if centroids.shape != (k, data.d) or not np.isfinite(centroids).all():
            raise param_error(_FUNC, "init", f"a finite array of shape ({k}, {data.d})",
                              f"an array of shape {centroids.shape}")
    offsets = data.offsets
    with ShardGroup(ray, KMeansWorker, data.shards, dict(refine=refine), func=_FUNC, num_cpus=num_cpus,
                    max_restarts=max_restarts) as group:
        if init is None:
            rows = np.random.default_rng(seed).choice(data.n, size=k, replace=False).astype(np.int64)
            centroids = np.stack(gather(group, offsets, rows, "row_block"))
        objective = []
        for _ in range(niter):
            parts = group.call_all("step", centroids)
            sums = sum(p[0] for p in parts)
            counts = sum(p[1] for p in parts)
            objective.append(sum(p[2] for p in parts))
            new = centroids.copy()
            nonempty = counts > 0
            new[nonempty] = sums[nonempty] / counts[nonempty, None]
            if np.array_equal(new, centroids):
                break
            centroids = new
        labelled = group.call_all("labels", centroids)
    labels = np.concatenate([lab for lab, _ in labelled])
    inertia = float(sum(d.sum() for _, d in labelled))
    return KMeansResult(centroids=centroids, labels=labels, inertia=inertia, objective=np.asarray(objective),
                        gpu=False)
