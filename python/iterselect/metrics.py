"""Quality measures of a clustering and diversity measures of a pool.

* :func:`silhouette`: the exact silhouette (scikit-learn's ``silhouette_score``), computed a
  block of rows at a time so no N x N matrix is ever held; with ``metric="cosine"`` it needs no
  pairwise matrix at all (the distance is linear in each point, so per-cluster sums of unit
  vectors give every cluster's total distance).
* :func:`vendi_score`: the Vendi score (Friedman & Dieng, 2023) of the cosine kernel, used by
  DiverseEvol to measure a pool's diversity; exact through the d x d Gram matrix, so a million
  rows cost one pass over the data.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._arrays import Matrix, as_matrix, host_values, host_vector, results_like, to_float64, zero_row_error
from ._validation import check_choice, check_int, param_error

__all__ = ["SilhouetteResult", "VendiResult", "silhouette", "vendi_score"]

_BLOCK_BYTES = 64 * 2**20  # working memory of one block of full rows of distances (fallback)
_TILE = 2048  # side of a square tile of distances (32 MiB of float64)
_SUMS_BYTES = 2**30  # the (s, k) accumulator of the symmetric pass may take up to 1 GiB
_COSINE_ROWS = 8192  # rows per block of the cosine pass
_GRAM_ROWS = 16384  # rows per block of the Gram matrix pass (16384 x d float64)


@dataclass(frozen=True)
class SilhouetteResult:
    """Result of :func:`silhouette`; ``float(result)`` is the score.

    Attributes
    ----------
    score : float, the mean silhouette over the evaluated rows (``silhouette_score``).
    values : (s,) float64 array, the silhouette of every evaluated row (``silhouette_samples``
        of the evaluated subset), aligned with ``indices``.
    indices : (s,) int64 array, the evaluated rows, ascending (all rows without sampling).
    """

    score: float
    values: np.ndarray
    indices: np.ndarray

    def __float__(self) -> float:
        return float(self.score)


@dataclass(frozen=True)
class VendiResult:
    """Result of :func:`vendi_score`; ``float(result)`` is the score.

    Attributes
    ----------
    score : float, the Vendi score: ``exp`` of the order-q Renyi entropy of the eigenvalues of
        ``K / N``; between 1 (all rows alike) and ``min(N, d)`` for the cosine kernel.
    q : float, the order used.
    eigenvalues : (d,) float64 array, the eigenvalues of ``K / N`` that can be non-zero
        (those of ``X_n^T X_n / N``, descending; the other ``N - d`` are zero). They sum to 1.
    """

    score: float
    q: float
    eigenvalues: np.ndarray

    def __float__(self) -> float:
        return float(self.score)


# --------------------------------------------------------------------------------------------
# silhouette
# --------------------------------------------------------------------------------------------
def _labels_any(labels, n: int, func: str) -> np.ndarray:
    arr = host_vector(labels, "labels", func, kind="cluster labels")
    if arr.shape[0] != n:
        raise param_error(func, "labels", f"a 1-D array of length {n} (one label per row of X)",
                          f"an array of length {arr.shape[0]}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise param_error(func, "labels", "finite labels", f"{arr[bad]} at position {bad}")
    return arr


def _rows_float64(m: Matrix, rows: np.ndarray | None) -> np.ndarray:
    """float64 host copy of the given rows (all rows when None); CUDA inputs gather on device."""
    if m.on_cuda:
        obj = m.obj
        if rows is not None:
            if m.kind == "torch":
                import torch  # noqa: PLC0415

                obj = obj[torch.as_tensor(rows, device=obj.device)]
            else:
                import cupy  # noqa: PLC0415

                obj = obj[cupy.asarray(rows)]
        if m.kind == "torch":
            return obj.detach().double().cpu().numpy()
        return obj.astype("float64").get()
    if rows is None:
        return to_float64(m)
    return host_values(m, rows).astype(np.float64)


def silhouette(X: ArrayLike, labels: ArrayLike, *, metric: str = "euclidean", sample_size: int | None = None,
               seed: int = 0, block_size: int | None = None, progress: bool = True) -> SilhouetteResult:
    """Exact mean silhouette coefficient, without an N x N matrix in memory.

    For row i of cluster A, ``a(i)`` is its mean distance to the other rows of A and ``b(i)``
    the smallest mean distance to the rows of another cluster; ``s(i) = (b - a) / max(a, b)``,
    0 for a row alone in its cluster. Equal to scikit-learn's ``silhouette_score`` (and
    ``silhouette_samples``) in float64.

    "euclidean" (scikit-learn's float64 formula): rows are sorted by cluster and the distance
    matrix is computed in square tiles on and above the diagonal only (it is symmetric: half the
    ``N**2 * d`` work), each tile's row and column sums added per cluster into an (N, k)
    accumulator. Memory: two (N, d + 2) float64 factors of the distance matrix, the
    ``N * k * 8``-byte accumulator and one tile. When the accumulator would pass 1 GiB, blocks
    of full rows are reduced at once instead (all ``N**2`` distances; ``block_size * N * 8``
    bytes a block). "cosine" (``1 - cos``, as scikit-learn's): the distance is linear
    in each unit vector, so the total distance from row i to cluster C is
    ``|C| - x_i . sum_{j in C} x_j``; one pass builds the k cluster sums and another takes
    every row's k dot products: ``N * k * d`` work, no pairwise matrix.

    Parameters
    ----------
    X : (N, d) array
        numpy, torch or cupy; float16, bfloat16, float32 or float64 (computed in float64). CUDA
        inputs copy the evaluated rows to the host.
    labels : (N,) array
        Cluster label of every row (any values ``numpy.unique`` can sort). The evaluated rows
        must hold between 2 and ``s - 1`` distinct labels.
    metric : {"euclidean", "cosine"}, default "euclidean"
    sample_size : int or None, default None
        Evaluate a random subset of this many rows (as scikit-learn's ``sample_size``: the
        silhouette of the subset on its own). None: every row.
    seed : int >= 0, default 0
        Seed of the ``numpy.random.Generator`` that draws the subset.
    block_size : int or None
        "euclidean": side of a tile (default 2048, 32 MiB), or rows per block when the
        accumulator is too large (default: as many as fit in 64 MiB); "cosine": rows per block
        of dot products (default 8192).
    progress : bool, default True
        Show a progress bar over the blocks when there are several.

    Returns
    -------
    SilhouetteResult
        ``score``, per-row ``values`` and the evaluated ``indices`` (arrays in the kind of X).

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.metrics import silhouette
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [4.0, 0.0], [4.0, 1.0]])
    >>> res = silhouette(X, [0, 0, 1, 1])
    >>> round(res.score, 6)
    0.753789
    >>> res.values.round(4)
    array([0.7538, 0.7538, 0.7538, 0.7538])
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    func = "silhouette"
    m = as_matrix(X, "X", func)
    n, d = m.shape
    lab_all = _labels_any(labels, n, func)
    metric = check_choice(metric, "metric", func, ("euclidean", "cosine"))
    seed = check_int(seed, "seed", func, 0)
    if sample_size is not None:
        if n < 3:
            raise param_error(func, "X", "an array with at least 3 rows when sample_size is given",
                              f"an array of shape {m.shape}")
        sample_size = check_int(sample_size, "sample_size", func, 3, n)
        rows = np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False))
    else:
        rows = None
    idx = np.arange(n, dtype=np.int64) if rows is None else rows.astype(np.int64)
    lab = lab_all if rows is None else lab_all[rows]
    s = idx.shape[0]
    codes, inv = np.unique(lab, return_inverse=True)
    k = codes.shape[0]
    if not 2 <= k <= s - 1:
        raise param_error(func, "labels", f"between 2 and {s - 1} distinct labels on the "
                          f"{s} evaluated rows (n_samples - 1)", f"{k} distinct label(s)")
    freq = np.bincount(inv, minlength=k)
    if block_size is not None:
        block_size = check_int(block_size, "block_size", func, 1)

    x = _rows_float64(m, rows)  # (s, d) float64
    if metric == "cosine":
        intra, b = _cosine_ab(x, inv, freq, block_size or _COSINE_ROWS)
    else:
        order = np.argsort(inv, kind="stable")
        left, right = _distance_factors(x[order])
        del x
        own = inv[order]
        if s * k * 8 <= _SUMS_BYTES:
            tile = block_size or _TILE
            sums = _euclidean_sums_symmetric(left, right, own, k, tile, progress)
            intra_o, b_o = _ab_from_sums(sums, own, freq)
        else:
            rows_per = block_size or max(1, min(s, _BLOCK_BYTES // (8 * s)))
            intra_o, b_o = _euclidean_ab_rowblocks(left, right, own, freq, rows_per, progress)
        intra = np.empty(s)
        b = np.empty(s)
        intra[order] = intra_o
        b[order] = b_o
    values = _silhouette_values(intra, b, inv, freq)
    return results_like(SilhouetteResult(score=float(values.mean()), values=values, indices=idx), X)


def _distance_factors(x: np.ndarray):
    """Factors whose product is the squared distance matrix, scikit-learn's float64 formula
    ``|a|^2 + |b|^2 - 2 a.b`` in one GEMM: ``[-2a, |a|^2, 1] @ [b, 1, |b|^2]^T`` (the scaling
    by 2 is exact; the two extra columns save two passes over every tile)."""
    s, d = x.shape
    sq = np.einsum("ij,ij->i", x, x)
    left = np.empty((s, d + 2))
    right = np.empty((s, d + 2))
    np.multiply(x, -2.0, out=left[:, :d])
    left[:, d] = sq
    left[:, d + 1] = 1.0
    right[:, :d] = x
    right[:, d] = 1.0
    right[:, d + 1] = sq
    return left, right


def _euclidean_tile(left, right):
    """Euclidean distances between two row blocks from their factors (negatives clipped)."""
    dist = left @ right.T
    np.maximum(dist, 0.0, out=dist)
    np.sqrt(dist, out=dist)
    return dist


def _segments(own_part: np.ndarray):
    """Starts and cluster ids of the runs of equal ids in a sorted slice of cluster ids."""
    starts = np.flatnonzero(np.r_[True, own_part[1:] != own_part[:-1]])
    return starts, own_part[starts]


def _euclidean_sums_symmetric(left, right, own, k, tile, progress):
    """(s, k) sums of the distances from every row to every cluster, rows sorted by cluster.

    The distance matrix is symmetric, so only the tiles on and above the diagonal are computed
    (half the GEMM work); an off-diagonal tile adds its row sums to the rows of its columns'
    clusters and its column sums to the columns of its rows' clusters. Memory: the (s, k)
    accumulator and one tile x tile block.
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    s = left.shape[0]
    sums = np.zeros((s, k))
    edges = list(range(0, s, tile))
    n_tiles = len(edges) * (len(edges) + 1) // 2
    bar = tqdm(total=n_tiles, desc="silhouette", disable=not progress or n_tiles < 2)
    for ii, i0 in enumerate(edges):
        i1 = min(s, i0 + tile)
        row_starts, row_ids = _segments(own[i0:i1])
        row_ends = np.r_[row_starts[1:], i1 - i0]
        for j0 in edges[ii:]:
            j1 = min(s, j0 + tile)
            dist = _euclidean_tile(left[i0:i1], right[j0:j1])
            col_starts, col_ids = _segments(own[j0:j1])
            if j0 == i0:
                dist[np.arange(i1 - i0), np.arange(i1 - i0)] = 0.0  # a row's distance to itself
            # every label occurs and rows are sorted, so a tile's clusters are consecutive ids
            sums[i0:i1, col_ids[0]:col_ids[-1] + 1] += np.add.reduceat(dist, col_starts, axis=1)
            if j0 != i0:
                # column sums per row segment; a loop of contiguous row reductions is ~30x
                # faster than np.add.reduceat along axis 0
                part = np.empty((row_starts.size, j1 - j0))
                for r, (a, b) in enumerate(zip(row_starts, row_ends)):
                    np.add.reduce(dist[a:b], axis=0, out=part[r])
                sums[j0:j1, row_ids[0]:row_ids[-1] + 1] += part.T
            bar.update()
    bar.close()
    return sums


def _euclidean_ab_rowblocks(left, right, own, freq, rows_per, progress):
    """Intra-cluster sums and b for rows sorted by cluster, one block of full rows at a time
    (the full symmetric matrix is computed, but memory is only rows_per x s)."""
    from tqdm.auto import tqdm  # noqa: PLC0415

    s = left.shape[0]
    starts = np.concatenate(([0], np.cumsum(freq)[:-1]))
    intra = np.empty(s)
    b = np.empty(s)
    blocks = range(0, s, rows_per)
    for b0 in tqdm(blocks, desc="silhouette", disable=not progress or len(blocks) < 2):
        b1 = min(s, b0 + rows_per)
        dist = _euclidean_tile(left[b0:b1], right)
        dist[np.arange(b1 - b0), np.arange(b0, b1)] = 0.0  # a row's distance to itself
        intra[b0:b1], b[b0:b1] = _ab_from_sums(np.add.reduceat(dist, starts, axis=1), own[b0:b1], freq)
    return intra, b


def _cosine_ab(x: np.ndarray, inv: np.ndarray, freq: np.ndarray, rows_per: int):
    """Intra-cluster sums and b for the cosine distance, from the k cluster sums of unit rows.

    Distance sum from row i to cluster C: |C| - x_i . sum_{j in C} x_j (x unit-normalized).
    scikit-learn clips each pairwise distance to [0, 2] and sets d(i, i) = 0; the latter is
    removed exactly here (d(i, i) = 1 - |x_i|^2: 0 for a unit row, 1 for a zero row).
    """
    s = x.shape[0]
    k = freq.shape[0]
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    xn = np.divide(x, norms[:, None], out=np.zeros_like(x), where=norms[:, None] > 0)
    csum = np.zeros((k, x.shape[1]))
    order = np.argsort(inv, kind="stable")
    starts, ids = _segments(inv[order])
    csum[ids] = np.add.reduceat(xn[order], starts, axis=0)
    freq_f = freq.astype(np.float64)
    self_d = 1.0 - np.einsum("ij,ij->i", xn, xn)
    intra = np.empty(s)
    b = np.empty(s)
    for b0 in range(0, s, rows_per):
        b1 = min(s, b0 + rows_per)
        sums = freq_f[None, :] - xn[b0:b1] @ csum.T
        np.maximum(sums, 0.0, out=sums)
        own = inv[b0:b1]
        intra_b, b[b0:b1] = _ab_from_sums(sums, own, freq)
        intra[b0:b1] = np.maximum(intra_b - self_d[b0:b1], 0.0)
    return intra, b


def _ab_from_sums(sums: np.ndarray, own: np.ndarray, freq: np.ndarray):
    """Distance sum to the own cluster, and the smallest mean distance to another cluster."""
    r = np.arange(sums.shape[0])
    intra = sums[r, own].copy()
    mean = sums / freq[None, :]
    mean[r, own] = np.inf
    return intra, mean.min(axis=1)


def _silhouette_values(intra: np.ndarray, b: np.ndarray, inv: np.ndarray,
                       freq: np.ndarray) -> np.ndarray:
    """scikit-learn's reduction: a = intra / (n_own - 1), s = (b - a) / max(a, b), 0 where
    undefined (a row alone in its cluster, a = b = 0)."""
    denom = (freq - 1)[inv].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = intra / denom
        vals = (b - a) / np.maximum(a, b)
    return np.nan_to_num(vals)


# --------------------------------------------------------------------------------------------
# Vendi score
# --------------------------------------------------------------------------------------------
def _check_q(q, func: str) -> float:
    if isinstance(q, str) and q == "inf":
        return float("inf")
    if isinstance(q, (bool, np.bool_)) or not isinstance(q, numbers.Real) or np.isnan(q) or q < 0:
        raise param_error(func, "q", "a float in the range [0, inf] (or 'inf')", q,
                          TypeError if not isinstance(q, numbers.Real) or isinstance(q, (bool, np.bool_))
                          else ValueError)
    return float(q)


def renyi_entropy(p: np.ndarray, q: float) -> float:
    """Order-q Renyi entropy of a probability vector (zero entries ignored), as vendi-score's."""
    p = p[p > 0]
    if q == 1.0:
        return float(-(p * np.log(p)).sum())
    if q == float("inf"):
        return float(-np.log(p.max()))
    return float(np.log((p ** q).sum()) / (1.0 - q))


def _gram_host(m: Matrix, n: int, d: int, func: str, dtype: str) -> np.ndarray:
    """sum over rows of x_n x_n^T in float64, x_n the unit-normalized rows, a block at a time.

    Each block is scaled into ``dtype`` in one pass (the row norms in float64) and multiplied
    by itself; the blocks are summed in float64. (BLAS ``syrk`` would do half the flops but ran
    no faster than GEMM in OpenBLAS here.)
    """
    g = np.zeros((d, d))
    buf = np.empty((min(n, _GRAM_ROWS), d), dtype=dtype)  # reused: no page faults per block
    for b0 in range(0, n, _GRAM_ROWS):
        blk = host_values(m, slice(b0, b0 + _GRAM_ROWS))
        sq = np.einsum("ij,ij->i", blk, blk, dtype=np.float64)
        _check_nonzero_rows(sq, b0, func)
        scaled = buf[:blk.shape[0]]
        np.multiply(blk, (1.0 / np.sqrt(sq))[:, None], out=scaled, casting="same_kind")
        g += scaled.T @ scaled
    return g


def _gram_framework(obj, kind: str, n: int, d: int, func: str, dtype: str = "float64") -> np.ndarray:
    """The same Gram matrix through torch or cupy (on the input's device), copied back d x d."""
    if kind == "torch":
        import torch  # noqa: PLC0415

        g = torch.zeros((d, d), dtype=torch.float64, device=obj.device)
        for b0 in range(0, n, _GRAM_ROWS):
            blk = obj[b0:b0 + _GRAM_ROWS].to(torch.float64)
            norms = blk.norm(dim=1)
            _check_nonzero_rows(norms.cpu().numpy(), b0, func)
            blk = (blk / norms[:, None]).to(getattr(torch, dtype))
            g += (blk.T @ blk).to(torch.float64)
        return g.cpu().numpy()
    import cupy  # noqa: PLC0415

    g = cupy.zeros((d, d), dtype=cupy.float64)
    for b0 in range(0, n, _GRAM_ROWS):
        blk = obj[b0:b0 + _GRAM_ROWS].astype(cupy.float64)
        norms = cupy.sqrt((blk * blk).sum(axis=1))
        _check_nonzero_rows(cupy.asnumpy(norms), b0, func)
        blk = (blk / norms[:, None]).astype(dtype)
        g += (blk.T @ blk).astype(cupy.float64)
    return cupy.asnumpy(g)


def _check_nonzero_rows(norms: np.ndarray, offset: int, func: str) -> None:
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise zero_row_error(func, "X", offset + int(zero[0]))


def vendi_score(X: ArrayLike, *, q: float = 1.0, kernel: str = "cosine", dtype: str = "float64") -> VendiResult:
    """The Vendi score of the rows of ``X`` under the cosine kernel, exactly, in O(N d^2).

    The Vendi score is ``exp(H_q(lambda))``, ``lambda`` the eigenvalues of ``K / N`` and
    ``H_q`` the order-q Renyi entropy (Shannon for q = 1). For the cosine kernel
    ``K = X_n X_n^T`` (``X_n``: the rows scaled to unit length) and the non-zero eigenvalues of
    ``X_n X_n^T / N`` (N x N) are those of ``X_n^T X_n / N`` (d x d). The d x d matrix is
    accumulated in float64 over blocks of rows, so memory is O(d^2 + block) and N = 1,000,000
    is one pass over the data. Equal to the vendi-score package's N x N computation
    (``vendi.score_K(X_n @ X_n.T, q=q)``; its ``score_X`` ignores ``q``).

    Eigenvalues below ``d * eps * max`` (rounding noise of a rank-deficient matrix) count as
    zero, so ``q = 0`` gives the numerical rank (vendi-score counts every positive eigenvalue,
    noise included; the two agree for q > 0).

    Parameters
    ----------
    X : (N, d) array
        numpy, torch or cupy; float16, bfloat16, float32 or float64. No zero rows. torch and
        cupy inputs are reduced on their own device with their own matmul.
    q : float in [0, inf] or "inf", default 1.0
        Order of the entropy: 1 is the Vendi score of the paper; larger q weighs the dominant
        directions more.
    kernel : {"cosine"}, default "cosine"
        The similarity. Other kernels have no d x d form; use vendi-score's N x N ``score_K``.
    dtype : {"float64", "float32"}, default "float64"
        Precision of each block's Gram product (blocks are always summed in float64).
        "float32" is about twice as fast; its score differs by ~1e-6 relative.

    Returns
    -------
    VendiResult
        ``score`` (a float in [1, min(N, d)]), ``q`` and the ``eigenvalues`` (in the kind of X).

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.metrics import vendi_score
    >>> round(vendi_score(np.eye(3)).score, 6)  # three orthogonal rows: three "species"
    3.0
    >>> round(vendi_score(np.ones((5, 4))).score, 6)  # five identical rows: one
    1.0
    """
    func = "vendi_score"
    m = as_matrix(X, "X", func)
    q = _check_q(q, func)
    check_choice(kernel, "kernel", func, ("cosine",))
    dtype = check_choice(dtype, "dtype", func, ("float64", "float32"))
    n, d = m.shape
    if m.on_cuda:
        g = _gram_framework(m.obj, m.kind, n, d, func, dtype)
    else:
        g = _gram_host(m, n, d, func, dtype)
    g /= n
    ev = np.linalg.eigvalsh(g)[::-1]
    tol = ev[0] * d * np.finfo(dtype).eps
    ev = np.where(ev > tol, ev, 0.0)
    score = float(np.exp(renyi_entropy(ev, q)))
    return results_like(VendiResult(score=score, q=q, eigenvalues=ev), X)
