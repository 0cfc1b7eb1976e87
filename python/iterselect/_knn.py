"""k-nearest-neighbour lists for sparse affinity propagation (faiss, CPU)."""
from __future__ import annotations

import numpy as np

from ._arrays import Matrix, as_matrix, host_rows
from ._faiss import import_faiss
from ._validation import param_error

INDEXES = ("auto", "exact", "ivf", "hnsw")
EXACT_UP_TO = 50_000  # "auto": exact search up to this many points, IVF beyond


def _faiss(func: str):
    try:
        return import_faiss(func)
    except ImportError as exc:
        raise ImportError(f"{exc} The sparse mode (n_neighbors=...) builds its kNN graph with it; or pass "
                          "precomputed neighbour lists as knn=<(n, k) int array>.") from exc


def resolve_index(index: str, n: int) -> str:
    return ("exact" if n <= EXACT_UP_TO else "ivf") if index == "auto" else index


def kneighbors(X, n_neighbors: int, *, metric: str = "euclidean", index: str = "auto",
               threads: int | None = None, seed: int = 0, func: str = "kneighbors") -> np.ndarray:
    """The ``n_neighbors`` nearest other points of every row of ``X`` (a validated host
    :class:`~iterselect._arrays.Matrix`, or a 2-D numpy array).

    Returns an (n, n_neighbors) int64 array of row ids, the point itself left out; -1 where the
    index found fewer. ``index``: "exact" (flat, brute force), "ivf" (IVF-Flat, 4 sqrt(n) lists
    trained by 10 rounds of k-means on 32 points a list, 16 probed), "hnsw" (HNSW-Flat, M = 32)
    or "auto" (exact up to 50,000 points, else ivf). Deterministic for a seed.
    Neighbours by cosine use inner products of unit rows; the other metrics, L2.

    Rows go into the index and are searched a block at a time, converted to float32 block by
    block: besides the index itself (n x d float32, which faiss keeps), nothing of size n x d is
    made, so a memory-mapped ``X`` stays on disk.
    """
    faiss = _faiss(func)
    if index not in INDEXES:
        raise param_error(func, "knn", f"one of {INDEXES} or an (n, k) array of neighbour ids", index)
    m = X if isinstance(X, Matrix) else as_matrix(X, "X", func, check_finite=False)
    n, d = m.shape
    if threads is not None:
        faiss.omp_set_num_threads(int(threads))
    inner = metric == "cosine"

    def rows(sel) -> np.ndarray:
        block = host_rows(m, sel, np.float32)
        if inner:
            block = block / np.linalg.norm(block, axis=1, keepdims=True)
        return np.ascontiguousarray(block, dtype=np.float32)

    block = max(1, (1 << 24) // max(d, 1))  # 64 MiB of float32 rows

    def add_all(idx) -> None:
        for start in range(0, n, block):
            idx.add(rows(slice(start, start + block)))

    kind = resolve_index(index, n)
    want = min(n, n_neighbors + 1)  # the point itself usually comes back first
    if kind == "exact":
        idx = faiss.IndexFlatIP(d) if inner else faiss.IndexFlatL2(d)
        add_all(idx)
    elif kind == "ivf":
        nlist = int(max(1, min(4 * np.sqrt(n), n // 39)))
        quantizer = faiss.IndexFlatIP(d) if inner else faiss.IndexFlatL2(d)
        idx = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2)
        rng = np.random.default_rng(seed)
        sample = rows(np.sort(rng.choice(n, size=min(n, 32 * nlist), replace=False)))
        idx.cp.niter = 10  # k-means of the coarse quantizer: 10 rounds on 32 points a list
        idx.cp.min_points_per_centroid = 32
        idx.train(sample)
        add_all(idx)
        idx.nprobe = min(nlist, 16)
    else:
        idx = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2)
        idx.hnsw.efConstruction = 80
        add_all(idx)
        idx.hnsw.efSearch = max(64, 2 * want)
    out = np.full((n, n_neighbors), -1, dtype=np.int64)
    block = max(1, min(block, (1 << 24) // max(want, 1)))
    for start in range(0, n, block):
        stop = min(n, start + block)
        _, ids = idx.search(rows(slice(start, stop)), want)
        rows_ids = np.arange(start, stop)[:, None]
        not_self = ids != rows_ids
        # drop the point itself (or, if it was not returned, the farthest hit)
        keep = np.where(not_self.all(axis=1)[:, None], np.arange(want)[None, :] < want - 1, not_self)
        kept = ids[keep].reshape(stop - start, want - 1) if want > 1 else ids[:, :0]
        out[start:stop, :kept.shape[1]] = kept[:, :n_neighbors]
    return out
