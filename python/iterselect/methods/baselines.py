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
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import as_matrix, host_rows, host_vector, results_like, to_host
from .._validation import check_float, check_int, param_error


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
    """A record's response: ``output`` (Alpaca/Dolly), ``response``, or its assistant turns."""
    if isinstance(record, str):
        return record
    if isinstance(record, (tuple, list)) and len(record) == 2:
        return str(record[1])
    if isinstance(record, dict):
        for key in ("output", "response"):
            if key in record:
                return str(record[key])
        turns = record.get("conversations") or record.get("messages")
        if turns:
            return "\n".join(str(t.get("value", t.get("content", ""))) for t in turns
                             if t.get("from", t.get("role")) in ("gpt", "assistant"))
    return ""


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
    nn = np.sqrt(np.maximum(nn, 0.0))
    idx = _top(nn, k)
    return results_like(BaselineResult(idx, nn[idx], f"knn1-{metric}"), m.obj)


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
                 allow_fewer: bool = False) -> BaselineResult:
    """DEITA's score-first diversity filter: by decreasing ``quality``, keep a sample when its
    cosine similarity to every kept sample is below ``threshold``, until ``k`` are kept.

    Parameters
    ----------
    X : (N, d) array
        Embeddings (any norm; cosine similarity is used).
    k : int
    quality : (N,) array
        Higher is better (DEITA: complexity x quality scores); ties by lowest index.
    threshold : float in (0, 1], default=0.9
        DEITA's tau for cosine similarity.
    allow_fewer : bool, default=False
        Return fewer than ``k`` when the filter runs out instead of raising.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]])
    >>> deita_select(X, 2, quality=[3.0, 2.0, 1.0]).indices.tolist()
    [0, 2]
    """
    func = "deita_select"
    m = as_matrix(X, "X", func)
    n, d = m.shape
    q = host_vector(quality, "quality", func, kind="floats").astype(np.float64)
    if q.shape != (n,) or not np.all(np.isfinite(q)):
        raise param_error(func, "quality", f"a finite array of shape ({n},)",
                          f"shape {q.shape}" if q.shape != (n,) else "non-finite values")
    k = _check_k(k, n, func)
    threshold = check_float(threshold, "threshold", func, low=0, high=1, low_open=True)
    order = _top(q, n)
    kept = np.empty((k, d))
    picks = []
    for i in order:
        x = _unit_rows(host_rows(m, slice(i, i + 1), np.float64))[0]  # one row, not a copy of X
        if picks and float(np.max(kept[:len(picks)] @ x)) >= threshold:
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

    r = kcenter_greedy(X, k, metric=metric, seed_index=seed_index, progress=progress)
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
