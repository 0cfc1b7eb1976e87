"""Static baselines the four methods are compared with.

Every function takes the samples first (embeddings ``X``, records, or one score per sample) and
the budget ``k`` second, its options by keyword, and returns a :class:`BaselineResult` whose
``indices`` are in selection order (so a prefix is the same baseline at a smaller budget) and
whose ``scores`` are what ranked them, as the input's kind (numpy, torch or cupy; embeddings
in float16, bfloat16, float32 or float64; a CUDA input is copied to the host, where they run).
Ties go to the lowest index. Randomised baselines take ``seed``.

* :func:`random_select` -- uniform without replacement.
* :func:`longest_response` -- longest responses first (characters), "Long Is More for
  Alignment" (Zhao et al., 2024).
* :func:`knn_distance` -- the points farthest from their nearest neighbour (kNN-1 distance)
  first: the most isolated samples.
* :func:`deita_select` -- DEITA's score-first, diversity-aware filter (Liu et al., 2024): walk the
  samples by decreasing quality; keep one when its cosine similarity to every kept sample is
  below ``threshold``.
* :func:`kcenter_select` -- static k-center greedy on fixed embeddings (no model in the loop).
* :func:`ifd_topk` -- the highest IFD first (Cherry LLM, Li et al., 2024), IFD >= 1 and NaN
  dropped and counted.

* :func:`knn_quality_select`, :func:`kcenter_quality_select` -- InsBank's baselines (§4.1): the
  kNN-1 distance or the k-center distance, min-max normalized and combined with the normalized
  quality as ``(1 + d')(1 + q')^gamma``.
* :func:`graphfilter_select` -- GraphFilter as IterIT's §3.3 describes it: IFD x TF-IDF of the
  instructions, greedy, covered n-grams removed.

The baselines of the kMQ paper (kM-Closest, kM-Random, kMQ, QDIT) are in
:mod:`iterselect.methods.cluster_baselines`; DiverseEvol's Least-Confidence and Margin-Sampling
in :mod:`iterselect.methods.uncertainty`.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import as_matrix, host_array, host_rows, results_like, to_host
from .._validation import check_choice, check_float, check_int, param_error


@dataclass(frozen=True)
class BaselineResult:
    """The result of a baseline selector.

    Attributes
    ----------
    indices : int64 array (k,)
        Picks in selection order.
    scores : float64 array (k,)
        The score that ranked each pick (random: its draw order; k-center: the covering radius).
    method : str
    n_dropped : int
        Samples left out of the ranking (IFD NaN or >= 1); 0 for the others.
    """

    indices: np.ndarray
    scores: np.ndarray
    method: str
    n_dropped: int = 0


def _length(X, func: str) -> int:
    try:
        return len(X)
    except TypeError:
        raise param_error(func, "X", "an int or a sequence of samples (records or rows)",
                          type(X).__name__, TypeError) from None


def _check_k(k, n: int, func: str) -> int:
    return check_int(k, "k", func, low=1, high=n)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, descending, ties by lowest index."""
    order = np.lexsort((np.arange(scores.size), -scores))
    return order[:k].astype(np.int64)


def _check_quality(quality, n: int, func: str) -> np.ndarray:
    q = to_host(quality).astype(np.float64)
    if q.shape != (n,) or not np.all(np.isfinite(q)):
        raise param_error(func, "quality", f"a finite array of shape ({n},)",
                          f"shape {q.shape}" if q.shape != (n,) else "non-finite values")
    return q


def random_select(X: int | Sequence, k: int, *, seed: int = 0) -> BaselineResult:
    """``k`` of the ``len(X)`` rows (or of ``range(X)`` when ``X`` is an int) uniformly at
    random, without replacement.

    Examples
    --------
    >>> random_select(10, 3, seed=0).indices.tolist() == random_select(10, 3, seed=0).indices.tolist()
    True
    """
    func = "random_select"
    n = check_int(X if isinstance(X, numbers.Integral) else _length(X, func), "X", func, low=1)
    k = _check_k(k, n, func)
    seed = check_int(seed, "seed", func, low=0)
    idx = np.random.default_rng(seed).permutation(n)[:k].astype(np.int64)
    return BaselineResult(idx, np.arange(k, dtype=np.float64), "random")


def response_text(record) -> str:
    """A record's response text (Alpaca output, every assistant turn of a conversation, a
    pair's response): :func:`iterselect.scoring.record_text` with ``use="response"``."""
    from ..scoring.formatting import record_text

    return record_text(record, "response")


def instruction_text(record) -> str:
    """A record's instruction, with its input when there is one (no response); for a
    conversation, its user (and system) turns; for a (prompt, response) pair, the prompt:
    :func:`iterselect.scoring.record_text` with ``use="prompt"``, cut to the first 2,000
    characters (as :func:`iterselect.datasets.embedding_text`). A str is returned as it is (cut).

    Examples
    --------
    >>> instruction_text({"instruction": "Add.", "input": "2+2", "output": "4"})
    'Add.\\n2+2'
    """
    from ..datasets import EMBEDDING_TEXT_CHARS
    from ..scoring.formatting import record_text

    return record_text(record, "prompt")[:EMBEDDING_TEXT_CHARS]


def longest_response(records: Sequence, k: int) -> BaselineResult:
    """The ``k`` records with the longest responses (in characters), longest first.

    Parameters
    ----------
    records : list of records, (prompt, response) pairs or response strings

    Examples
    --------
    >>> longest_response([{"output": "ab"}, {"output": "abcd"}, {"output": "abc"}], 2).indices.tolist()
    [1, 2]
    """
    func = "longest_response"
    if isinstance(records, str) or not hasattr(records, "__len__") or len(records) == 0:
        raise param_error(func, "records", "a non-empty list of records", type(records).__name__,
                          TypeError)
    k = _check_k(k, len(records), func)
    lengths = np.array([len(response_text(r)) for r in records], dtype=np.float64)
    idx = _top(lengths, k)
    return BaselineResult(idx, lengths[idx], "longest")


def _unit_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms == 0, 1.0, norms)


def knn_distance(X: ArrayLike, k: int, *, metric: str = "euclidean",
                 block_size: int | None = None) -> BaselineResult:
    """The ``k`` points farthest from their nearest other point (kNN-1), most isolated first.

    Exact, in blocks of rows against blocks of columns, each converted to float64 when it is
    used: memory ``block_size x block_size`` distances plus two blocks of rows, never a copy of
    ``X`` (a memory-mapped ``X`` stays on disk). ``block_size`` (default: 2,048, smaller when
    the memory available is short) changes the memory only, never the result.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [5.0], [0.2]])
    >>> knn_distance(X, 1).indices.tolist()
    [2]
    """
    func = "knn_distance"
    m = as_matrix(X, "X", func, min_rows=2)
    n, d = m.shape
    k = _check_k(k, n, func)
    if metric not in ("euclidean", "cosine"):
        raise param_error(func, "metric", "one of {'euclidean', 'cosine'}", metric)
    block_size = knn_block_size(n, d) if block_size is None else check_int(block_size, "block_size", func, low=1)
    nn = _nearest_distances(m, metric, block_size)
    idx = _top(nn, k)
    return results_like(BaselineResult(idx, nn[idx], f"knn1-{metric}"), m.obj)


def _nearest_distances(m, metric: str, block_size: int) -> np.ndarray:
    """Every row's distance to its nearest other row (float64), in blocks of rows against
    blocks of columns read from the matrix ``m`` (never a copy of it); cosine: on unit rows."""
    n = m.shape[0]

    def rows(s, e):
        x = host_rows(m, slice(s, e), np.float64)
        return _unit_rows(x) if metric == "cosine" else x

    sq = np.empty(n)
    for s in range(0, n, block_size):
        x = rows(s, s + block_size)
        sq[s:s + x.shape[0]] = np.einsum("ij,ij->i", x, x)
    nn = np.full(n, np.inf)
    for s in range(0, n, block_size):
        e = min(n, s + block_size)
        xs = rows(s, e)
        for c in range(0, n, block_size):
            f = min(n, c + block_size)
            dist = sq[s:e, None] + sq[None, c:f] - 2.0 * (xs @ rows(c, f).T)
            if c == s:
                np.fill_diagonal(dist, np.inf)
            np.minimum(nn[s:e], dist.min(axis=1), out=nn[s:e])
    return np.sqrt(np.maximum(nn, 0.0))


def knn_block_size(n: int, d: int, memory: int | None = None) -> int:
    """:func:`knn_distance`'s default block: 2,048 rows, fewer when its working memory (a
    block x block distance matrix with two temporaries, and two float64 blocks of rows) would
    pass a quarter of ``memory`` (default: what is available now)."""
    from .._memory import host_available

    budget = (host_available() if memory is None else memory) // 4
    b = 2048
    while b > 16 and knn_memory(b, n, d) > budget:
        b //= 2
    return max(1, min(b, n))


def knn_memory(block_size: int, n: int, d: int) -> int:
    """Bytes :func:`knn_distance` works in, besides its n-long vectors."""
    b = min(block_size, n)
    return 8 * (3 * b * b + 2 * b * d) + 24 * n


def deita_select(X: ArrayLike, k: int, *, quality: ArrayLike, threshold: float = 0.9,
                 metric: str = "cosine", allow_fewer: bool = False) -> BaselineResult:
    """DEITA's score-first diversity filter: by decreasing ``quality``, keep a sample when it is
    not too close to any kept sample, until ``k`` are kept.

    | | DEITA (Liu et al., 2024) | kMQ's published code (``KCenterGreedyDeita``) | here |
    |---|---|---|---|
    | closeness | cosine similarity to the nearest kept sample, kept when below tau = 0.9 | faiss ``IndexFlatL2``: squared L2 distance to the nearest kept sample, kept when at least 0.9 | ``metric="cosine"`` (default); ``"sqeuclidean"`` is the published code |

    Parameters
    ----------
    X : (N, d) array
        Embeddings (any norm under ``"cosine"``; used as they are under ``"sqeuclidean"``).
    k : int
    quality : (N,) array
        Higher is better (DEITA: complexity x quality scores); ties by lowest index.
    threshold : float, default=0.9
        ``"cosine"``: a sample is skipped when its cosine similarity to a kept one is at least
        this (in (0, 1]). ``"sqeuclidean"``: skipped when its squared distance to a kept one is
        below this (> 0).
    metric : {"cosine", "sqeuclidean"}, default="cosine"
    allow_fewer : bool, default=False
        Return fewer than ``k`` when the filter runs out instead of raising.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]])
    >>> deita_select(X, 2, quality=[3.0, 2.0, 1.0]).indices.tolist()
    [0, 2]
    >>> deita_select(X, 2, quality=[3.0, 2.0, 1.0], metric="sqeuclidean").indices.tolist()
    [0, 2]
    """
    func = "deita_select"
    m = as_matrix(X, "X", func)
    metric = check_choice(metric, "metric", func, ("cosine", "sqeuclidean"))
    n, d = m.shape
    q = _check_quality(quality, n, func)
    k = _check_k(k, n, func)
    if metric == "cosine":
        threshold = check_float(threshold, "threshold", func, low=0, high=1, low_open=True)
    else:
        threshold = check_float(threshold, "threshold", func, low=0, low_open=True)
    order = _top(q, n)
    kept = np.empty((k, d))
    picks = []
    for i in order:
        x = host_rows(m, slice(i, i + 1), np.float64)  # one row, not a copy of X
        x = (_unit_rows(x) if metric == "cosine" else x)[0]
        if picks:
            if metric == "cosine":
                too_close = float(np.max(kept[:len(picks)] @ x)) >= threshold
            else:
                diff = kept[:len(picks)] - x
                too_close = float(np.min(np.einsum("ij,ij->i", diff, diff))) < threshold
            if too_close:
                continue
        kept[len(picks)] = x
        picks.append(int(i))
        if len(picks) == k:
            break
    if len(picks) < k and not allow_fewer:
        raise ValueError(f"deita_select: only {len(picks)} samples pass the similarity threshold "
                         f"({threshold}) but k is {k}; raise 'threshold' or pass allow_fewer=True")
    idx = np.asarray(picks, dtype=np.int64)
    return results_like(BaselineResult(idx, q[idx], "deita", n_dropped=0), m.obj)


def kcenter_select(X: ArrayLike, k: int, *, metric: str = "euclidean", seed_index: int = 0,
                   progress: bool = False) -> BaselineResult:
    """Static k-center greedy on fixed embeddings; ``scores`` are the covering radii.

    Examples
    --------
    >>> import numpy as np
    >>> kcenter_select(np.array([[0.0], [1.0], [9.0]]), 2).indices.tolist()
    [0, 2]
    """
    from ..kcenter import kcenter_greedy

    r = kcenter_greedy(X, k, metric=metric, seed_index=seed_index, progress=progress, min_distances=False)
    result = BaselineResult(to_host(r.indices).astype(np.int64), to_host(r.radii).astype(np.float64),
                            f"kcenter-{metric}")
    return results_like(result, X)


def ifd_topk(ifd: ArrayLike, k: int, *, drop_above_one: bool = True, allow_fewer: bool = False) -> BaselineResult:
    """The ``k`` highest IFD scores first (Cherry LLM). NaN, and IFD >= 1 when
    ``drop_above_one`` (the response is not helped by its instruction), are dropped and counted.

    Examples
    --------
    >>> r = ifd_topk([0.5, float("nan"), 0.9, 1.2, 0.7], 2)
    >>> r.indices.tolist(), r.n_dropped
    ([2, 4], 2)
    """
    func = "ifd_topk"
    s = to_host(ifd).astype(np.float64)
    if s.ndim != 1 or s.size == 0:
        raise param_error(func, "ifd", "a non-empty 1-D array", f"shape {s.shape}")
    k = _check_k(k, s.size, func)
    keep = ~np.isnan(s)
    if drop_above_one:
        keep &= s < 1
    n_keep = int(keep.sum())
    if n_keep < k and not allow_fewer:
        raise ValueError(f"ifd_topk: only {n_keep} of {s.size} samples have a usable IFD "
                         f"({s.size - n_keep} dropped) but k is {k}; pass allow_fewer=True")
    ranked = np.where(keep, s, -np.inf)
    idx = _top(ranked, min(k, n_keep))
    return results_like(BaselineResult(idx, s[idx], "ifd", n_dropped=s.size - n_keep), ifd)


# --------------------------------------------------------------------- InsBank's baselines (§4.1)

def knn_quality_select(X: ArrayLike, k: int, *, quality: ArrayLike, gamma: float = 1.0,
                       block_size: int | None = None) -> BaselineResult:
    """InsBank's kNN-1 baseline (§4.1): the euclidean distance to the nearest neighbour (Eq. 2),
    min-max normalized, combined with the min-max normalized quality as
    ``s = (1 + kNN_1')(1 + q')^gamma``; the ``k`` best, best first (ties by lowest index).

    Parameters
    ----------
    X : (N, d) array
        Embeddings.
    k : int
    quality : (N,) array
        Higher is better (InsBank: DEITA's quality scores).
    gamma : float >= 0, default=1.0
        InsBank's γ (§4.1 states the multiplication with γ; 1 unless said otherwise).
    block_size : int, optional
        Rows per block of the exact distance computation (as :func:`knn_distance`).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [0.1], [5.0], [0.3]])
    >>> knn_quality_select(X, 2, quality=[0.0, 0.0, 0.0, 1.0]).indices.tolist()
    [3, 2]

    Point 2 is the most isolated (d' = 1, s = 2 x 1); point 3's quality lifts it above
    (d' = 0.02, s = 1.02 x 2).
    """
    from .insbank import minmax

    func = "knn_quality_select"
    m = as_matrix(X, "X", func, min_rows=2)
    n, d = m.shape
    k = _check_k(k, n, func)
    q = _check_quality(quality, n, func)
    gamma = check_float(gamma, "gamma", func, low=0)
    block_size = knn_block_size(n, d) if block_size is None else check_int(block_size, "block_size", func, low=1)
    nearest = _nearest_distances(m, "euclidean", block_size)
    score = (1.0 + minmax(nearest)) * np.power(1.0 + minmax(q), gamma)
    idx = _top(score, k)
    return results_like(BaselineResult(idx, score[idx], "knn1-quality"), m.obj)


def kcenter_quality_select(X: ArrayLike, k: int, *, quality: ArrayLike, gamma: float = 1.0,
                           seed_index: int = 0) -> BaselineResult:
    """InsBank's k-center greedy baseline (§4.1, Appendix B's Alg. 1 with quality): start from
    ``seed_index`` (``S_m = x_0``); at each step every point's diversity is its euclidean
    distance to the selected set, ``min_{x_j in S} d(x_i, x_j)``, min-max normalized over all
    points, and the unselected point with the largest ``(1 + d')(1 + q')^gamma`` is added
    (ties by lowest index). ``scores`` holds that value at each pick (NaN for the seed).

    Parameters
    ----------
    X : (N, d) array
    k : int
    quality : (N,) array
        Higher is better; min-max normalized once over all points.
    gamma : float >= 0, default=1.0
    seed_index : int, default=0

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0], [9.0], [8.0]])
    >>> kcenter_quality_select(X, 3, quality=[0.0, 0.0, 0.0, 1.0]).indices.tolist()
    [0, 3, 1]
    """
    from .insbank import minmax

    func = "kcenter_quality_select"
    m = as_matrix(X, "X", func)
    X = host_array(m, np.float64)
    n = X.shape[0]
    k = _check_k(k, n, func)
    qf = np.power(1.0 + minmax(_check_quality(quality, n, func)), check_float(gamma, "gamma", func, low=0))
    seed_index = check_int(seed_index, "seed_index", func, low=0, high=n - 1)
    sq = np.einsum("ij,ij->i", X, X)

    def distances(c):
        return np.sqrt(np.maximum(sq + sq[c] - 2.0 * (X @ X[c]), 0.0))

    taken = np.zeros(n, dtype=bool)
    picks, scores = [seed_index], [np.nan]
    taken[seed_index] = True
    d = distances(seed_index)
    for _ in range(k - 1):
        score = (1.0 + minmax(d)) * qf
        score[taken] = -np.inf
        i = int(np.argmax(score))
        picks.append(i)
        scores.append(float(score[i]))
        taken[i] = True
        d = np.minimum(d, distances(i))
    return results_like(BaselineResult(np.asarray(picks, dtype=np.int64), np.asarray(scores), "kcenter-quality"),
                        m.obj)


# --------------------------------------------------------------------- IterIT's GraphFilter (§3.3)

def graphfilter_select(records: Sequence, k: int, *, ifd: ArrayLike,
                       ngram_range: tuple[int, int] = (1, 3), weighting: str = "sklearn",
                       allow_fewer: bool = False, threads: int | None = None,
                       progress: bool = False) -> BaselineResult:
    """GraphFilter as IterIT's baselines describe it (Jia et al., §3.3, citing Wu et al., 2024a):
    "the IFD score for complexity and TF-IDF scores based on instructions for diversity. The
    data are selected greedily by the priority score defined as the multiplication of both
    metrics."

    Each record's instruction (with its input; :func:`instruction_text`) is featurized with
    :func:`iterselect.coverage.tfidf_matrix`; the greedy picks the record with the largest
    ``IFD x sum of the TF-IDF of its n-grams not yet covered``, then removes its n-grams (GraphFilter
    removes the covered n-grams from its sentence/n-gram bipartite graph: the coverage greedy
    with decay 0), and repeats (:func:`iterselect.coverage.coverage_greedy`; ties by lowest index).
    Records with a NaN IFD are dropped and counted. IterIT's description does not give the
    n-gram range or the TF-IDF weighting: 1-3-grams and scikit-learn's weighting are assumed here.

    Parameters
    ----------
    records : list of records or instruction strings
    k : int
    ifd : (N,) array
        IFD of each record (NaN allowed, dropped), otherwise >= 0.
    ngram_range : tuple, default=(1, 3)
    weighting : {"sklearn", "paper"}, default="sklearn"
        :func:`~iterselect.coverage.tfidf_matrix`'s weighting.
    allow_fewer : bool, default=False
        Return fewer than ``k`` when fewer records have an IFD, instead of raising.
    threads : int, optional
    progress : bool, default=False

    Examples
    --------
    >>> recs = [{"instruction": "Name the capital of France.", "output": "Paris"},
    ...         {"instruction": "Name the capital of Spain.", "output": "Madrid"},
    ...         {"instruction": "Sort these numbers.", "output": "1 2 3"}]
    >>> graphfilter_select(recs, 2, ifd=[0.9, 0.95, 0.5]).indices.tolist()
    [1, 2]
    """
    from ..coverage import coverage_greedy, tfidf_matrix

    func = "graphfilter_select"
    if isinstance(records, (str, bytes)) or not hasattr(records, "__len__") or len(records) == 0:
        raise param_error(func, "records", "a non-empty list of records", type(records).__name__,
                          TypeError)
    n = len(records)
    s = to_host(ifd).astype(np.float64)
    if s.shape != (n,):
        raise param_error(func, "ifd", f"a 1-D array of {n} scores (one per record)", f"shape {s.shape}")
    bad = np.flatnonzero(~np.isnan(s) & ((s < 0) | np.isinf(s)))
    if bad.size:
        raise param_error(func, "ifd", "finite and nonnegative, or NaN",
                          f"{float(s[bad[0]])!r} at position {int(bad[0])}")
    k = _check_k(k, n, func)
    keep = np.flatnonzero(~np.isnan(s)).astype(np.int64)
    if keep.size < k and not allow_fewer:
        raise ValueError(f"graphfilter_select: only {keep.size} of {n} records have an IFD "
                         f"({n - keep.size} NaN) but k is {k}; pass allow_fewer=True")
    k = min(k, int(keep.size))
    if k == 0:
        return results_like(BaselineResult(np.empty(0, np.int64), np.empty(0), "graphfilter", n_dropped=n), ifd)
    texts = [instruction_text(records[i]) for i in keep]
    X = tfidf_matrix(texts, ngram_range, weighting=weighting, threads=threads, progress=progress).matrix
    r = coverage_greedy(X, k, weights=s[keep], decay=0.0, threads=threads, progress=progress)
    return results_like(BaselineResult(keep[r.indices], r.gains, "graphfilter", n_dropped=n - int(keep.size)), ifd)
