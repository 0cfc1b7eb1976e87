"""Choosing the number of clusters by the silhouette."""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import as_matrix, host_vector, results_like, to_host
from .._validation import check_choice, check_int, param_error
from ._kmeans import KMeansResult, kmeans


@dataclass(frozen=True)
class ChooseKResult:
    """Result of :func:`choose_k`.

    Attributes
    ----------
    k : int, the candidate with the highest silhouette (the smallest such k on ties).
    candidates : (m,) int64 array, the candidate values of k, in the order given.
    scores : (m,) float64 array, the silhouette of the clustering for each candidate.
    kmeans : KMeansResult, the clustering for ``k``.
    indices : (s,) int64 array, the rows on which every silhouette was measured.
    """

    k: int
    candidates: np.ndarray
    scores: np.ndarray
    kmeans: KMeansResult
    indices: np.ndarray


def choose_k(X: ArrayLike, candidates: ArrayLike, *, sample_size: int | None = 10000, seed: int = 0,
             metric: str = "euclidean", niter: int = 25, nredo: int = 1, spherical: bool = False,
             max_points_per_centroid: int = 256, gpu: bool | str = "auto",
             progress: bool = True) -> ChooseKResult:
    """Cluster ``X`` with :func:`kmeans` for every candidate k and keep the best silhouette.

    Every clustering is scored by :func:`iterselect.metrics.silhouette` on the same random
    sample of ``sample_size`` rows (drawn once from ``seed``), so the scores are comparable.

    Parameters
    ----------
    X : (N, d) array
        As for :func:`kmeans`.
    candidates : sequence of int
        Values of k to try, each in [2, N - 1], without duplicates.
    sample_size : int or None, default 10000
        Rows on which the silhouette is measured (all rows when None or when N is smaller).
        The exact silhouette costs ``sample_size**2 * d`` operations.
    seed : int in [0, 2**31 - 1], default 0
        Seed of every k-means run and of the sample.
    metric : {"euclidean", "cosine"}, default "euclidean"
        Distance of the silhouette.
    niter, nredo, spherical, max_points_per_centroid, gpu
        Passed to :func:`kmeans`.
    progress : bool, default True
        Show a progress bar over the candidates.

    Returns
    -------
    ChooseKResult
        ``k`` (best, smallest on ties), ``candidates``, ``scores``, the best ``kmeans`` result
        and the ``indices`` of the sample; arrays in the kind of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.cluster import choose_k
    >>> rng = np.random.default_rng(0)
    >>> centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    >>> X = np.concatenate([c + rng.standard_normal((30, 2)) for c in centers])
    >>> res = choose_k(X, [2, 3, 4, 5], progress=False)
    >>> res.k
    3
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    from ..metrics import silhouette  # noqa: PLC0415

    func = "choose_k"
    m = as_matrix(X, "X", func)
    n = m.shape[0]
    if isinstance(candidates, numbers.Integral):
        raise param_error(func, "candidates", "a sequence of ints", candidates, TypeError)
    cand = np.asarray(host_vector(candidates, "candidates", func, kind="ints"))
    if cand.size == 0:
        raise param_error(func, "candidates", "a non-empty sequence of ints", "an empty sequence")
    if not np.issubdtype(cand.dtype, np.integer):
        raise param_error(func, "candidates", "a sequence of ints", f"an array of dtype {cand.dtype}",
                          TypeError)
    if n < 3:
        raise param_error(func, "X", "an array with at least 3 rows (the silhouette needs 2 <= k "
                          "<= N - 1)", f"an array of shape {m.shape}")
    cand = cand.astype(np.int64)
    for c in cand:
        check_int(int(c), "candidates", func, 2, n - 1)
    if np.unique(cand).size != cand.size:
        raise param_error(func, "candidates", "values without duplicates", cand.tolist())
    seed = check_int(seed, "seed", func, 0, 2**31 - 1)
    if sample_size is not None:
        sample_size = check_int(sample_size, "sample_size", func, 3)
        if sample_size >= n:
            sample_size = None
    metric = check_choice(metric, "metric", func, ("euclidean", "cosine"))

    scores = np.empty(cand.size)
    best = None
    indices = None
    for i, c in enumerate(tqdm(cand, desc="choose_k", disable=not progress)):
        km = kmeans(X, int(c), niter=niter, nredo=nredo, seed=seed, spherical=spherical,
                    max_points_per_centroid=max_points_per_centroid, gpu=gpu)
        lab = host_vector(km.labels, "labels", func, kind="ints")
        if np.unique(lab).size < 2:  # k-means left every point in one cluster
            scores[i] = -1.0
            continue
        sil = silhouette(X, lab, sample_size=sample_size, seed=seed, metric=metric, progress=False)
        scores[i] = sil.score
        indices = sil.indices
        if best is None or scores[i] > scores[best[0]]:
            best = (i, km)
    if best is None:
        raise ValueError("choose_k: every candidate k left all points in a single cluster; "
                         "the silhouette is undefined.")
    result = ChooseKResult(k=int(cand[best[0]]), candidates=cand, scores=scores, kmeans=best[1],
                           indices=np.asarray(to_host(indices), dtype=np.int64))
    return results_like(result, X)
