"""Exact lazy-greedy weighted coverage (IterIT's diversity) over row shards held by Ray actors,
and the TF-IDF it runs on, counted by the shards and reduced into one vocabulary."""
from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp

from .._validation import check_choice, check_float_dtype, check_int, param_error
from ..coverage import (WEIGHTINGS, CoverageResult, IterITResult, TfidfResult, _as_coverage_csr, _check_greedy_args,
                        _check_ngram_range, _check_texts, _device, _iterit_candidates, coverage_decay, coverage_gains)
from ..coverage._counts import ngram_counts, ngram_idf, tfidf_weigh
from ..coverage._vocabulary import NgramVocabulary
from ._cluster import ShardGroup, connect, default_shards, gather
from ._lazy import LazyWorker, RoundProblem, lazy_rounds, local_features
from ._shards import Shard, resolve, row_ranges


class CoverageWorker(LazyWorker):
    """One shard of rows: the candidates are rows, the features their columns, the state
    ``alpha`` (see ``_lazy``). A shard of texts first counts its n-grams and waits for the
    update ``("vocabulary", per-shard (global column ids, idf))`` to weigh them."""

    def __init__(self, shard, *, decay: float, threads: int, ngram_range=None, lowercase=True, dtype="float64",
                 weighting="sklearn"):
        self.offset, self.rows, self.index = shard.offset, shard.rows, shard.start
        self.decay, self.threads, self.dtype, self.weighting = decay, threads, np.dtype(dtype), weighting
        payload = resolve(shard.ref)[0]
        if shard.kind == "texts":
            texts, self.weights = payload
            self.counts = ngram_counts(texts, ngram_range, lowercase, threads=threads)
        else:
            X, columns, self.weights = payload
            self._ready(X, columns, np.ones(columns.size))

    def vocabulary(self):
        v = self.counts.vocabulary
        return np.asarray(v._utf8), np.asarray(v._offsets), self.counts.df

    def apply(self, update) -> None:
        if update[0] != "vocabulary":
            return super().apply(update)
        columns, idf = update[1][self.index]
        self._ready(tfidf_weigh(self.counts.matrix, idf, self.dtype, self.weighting), columns, np.ones(columns.size))
        self.counts = None

    def first_pick(self, log: list) -> int:
        return 1 if log and log[0][0] == "vocabulary" else 0

    def gains(self, local):
        return coverage_gains(self.X[local], self.state, weights=self.weights[local], threads=self.threads)

    def update_state(self, features, values) -> None:
        row = sp.csr_array((values, features, [0, features.size]), shape=(1, self.state.size))
        coverage_decay(row, 0, self.state, self.decay)

    def extras(self, local):
        return self.weights[local]

    def matrix(self):
        """The shard's rows with global columns: (indptr, indices, data)."""
        return self.X.indptr.astype(np.int64), self.features[self.X.indices], self.X.data


class CoverageRound(RoundProblem):
    def __init__(self, answers, decay: float):
        super().__init__(answers)
        self.decay = decay

    def apply_pick(self, j: int) -> None:
        coverage_decay(self.matrix, j, self.state, self.decay)

    def gains(self, free):
        return coverage_gains(self.matrix[free], self.state, weights=self.extras[free])


def _csr_shards(put, X, weights, parts: int) -> list:
    """Row shards of a CSR matrix, each with its own columns (ascending global ids); ``put``
    stores a payload (``ray.put``)."""
    w = np.ones(X.shape[0]) if weights is None else weights
    shards = []
    for s, (lo, hi) in enumerate(row_ranges(X.shape[0], parts)):
        sub, columns = local_features(X, lo, hi)
        shards.append(Shard(lo, hi - lo, "csr", [put((sub, columns, np.ascontiguousarray(w[lo:hi])))], start=s))
    return shards


def _text_shards(put, texts, weights, parts: int) -> list:
    w = np.ones(len(texts)) if weights is None else weights
    return [Shard(lo, hi - lo, "texts", [put((texts[lo:hi], np.ascontiguousarray(w[lo:hi])))], start=s)
            for s, (lo, hi) in enumerate(row_ranges(len(texts), parts))]


def _reduce_vocabulary(answers, n_texts: int, weighting: str):
    """One vocabulary from the shards' own (sorted) ones: the terms in code-point order, the
    document frequencies added up, the idf (of ``weighting``); and each shard's columns as
    global ids."""
    local_terms = [NgramVocabulary(utf8, offsets).tolist() for utf8, offsets, _ in answers]
    terms = sorted(set().union(*local_terms))
    column = {t: j for j, t in enumerate(terms)}
    df = np.zeros(len(terms), np.int64)
    ids = []
    for (_, _, local_df), local in zip(answers, local_terms):
        g = np.fromiter((column[t] for t in local), np.int64, len(local))
        np.add.at(df, g, local_df)
        ids.append(g)
    idf = ngram_idf(df, n_texts, weighting)
    encoded = [t.encode("utf-8") for t in terms]
    offsets = np.zeros(len(terms) + 1, np.int64)
    np.cumsum([len(b) + 1 for b in encoded], out=offsets[1:])
    utf8 = np.frombuffer(b"".join(b + b"\n" for b in encoded), np.int8).copy()
    return NgramVocabulary(utf8, offsets), df, idf, [(g, idf[g]) for g in ids]


def _greedy(group, offsets, k, pool, decay, m, n_cols, progress, func):
    """The sharded lazy greedy; returns (picks, gains, alpha, refreshes)."""
    alpha = np.ones(n_cols)

    def decayed(cols, vals):
        if cols.size:
            coverage_decay(sp.csr_array((vals, cols, [0, cols.size]), shape=(1, n_cols)), 0, alpha, decay)

    if pool.size:
        pool_rows = gather(group, offsets, pool, "entries")
        for cols, vals in pool_rows:
            decayed(cols, vals)
        group.call_all("start", update=("picks", pool, pool_rows))
    picks, gains, refreshes, _, _ = lazy_rounds(group, offsets, k, m, functools.partial(CoverageRound, decay=decay),
                                                decayed, "coverage (distributed)", progress, func)
    return picks, gains, alpha, refreshes


def _group(ray, shards, params, func, num_cpus, max_restarts, checkpoint_every):
    return ShardGroup(ray, CoverageWorker, shards, params, func=func, num_cpus=num_cpus,
                      max_restarts=max_restarts, checkpoint_every=checkpoint_every)


def coverage_greedy(X, k: int, *, weights=None, decay: float = 0.1, selected=None, num_shards: int | None = None,
                    address: str | None = None, candidates: int = 16, num_cpus: float | None = None,
                    max_restarts: int = 3, checkpoint_every: int = 200, progress: bool = True) -> CoverageResult:
    """:func:`iterselect.coverage_greedy` with the rows sharded over Ray actors: the same picks.

    Each actor keeps its rows, ``alpha`` on their columns and a lazy heap of stale gains (upper
    bounds, as gains only fall). Each round every shard sends its ``candidates`` best rows with
    exact gains and the exact gain of its next one; the driver picks the best, decays the
    candidates' copy of ``alpha`` and recomputes their gains (the same kernel), and picks again
    while the best beats every shard's next gain; then the picks' columns are broadcast and
    every shard decays its ``alpha``. A gain is always summed over the row's own entries in
    column order, so sharding rows leaves every gain's rounding as it was.

    Parameters
    ----------
    X : sparse matrix or 2-D array of shape (n, m)
        Nonnegative and finite, as for :func:`iterselect.coverage_greedy`; cut into row shards.
    k, weights, decay, selected
        As in :func:`iterselect.coverage_greedy`.
    num_shards : int, optional
        Actors (default: one per node).
    address : str, optional
        The Ray cluster (see :func:`iterselect.distributed.kcenter_greedy`).
    candidates : int
        Rows each shard sends per round.
    num_cpus, max_restarts, checkpoint_every, progress
        As in :func:`iterselect.distributed.kcenter_greedy`.

    Returns
    -------
    CoverageResult
        ``indices``, ``gains`` and ``alpha`` equal to the single process's; ``refreshes``
        counts the shards' recomputed gains.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.distributed import coverage_greedy
    >>> X = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.1], [0.0, 0.0, 0.9]])
    >>> r = coverage_greedy(X, 3, decay=0.1, num_shards=2, progress=False)
    >>> r.indices.tolist(), r.gains.round(3).tolist()
    ([1, 0, 2], [2.1, 0.2, 0.09])
    """
    func = "coverage_greedy"
    X, indptr, indices, data = _as_coverage_csr(X, func)
    w, decay, pool, k = _check_greedy_args(_device.host_parts(indptr, indices, data, X.shape), k, weights, decay,
                                           selected, func)
    n, n_cols = X.shape
    candidates = check_int(candidates, "candidates", func, 1)
    ray = connect(address, func)
    parts = default_shards(ray) if num_shards is None else check_int(num_shards, "num_shards", func, 1)
    shards = _csr_shards(ray.put, X, w, parts)
    offsets = np.array([s.offset for s in shards] + [n], np.int64)
    with _group(ray, shards, dict(decay=decay), func, num_cpus, max_restarts, checkpoint_every) as group:
        picks, gains, alpha, refreshes = _greedy(group, offsets, k, pool, decay, candidates, n_cols, progress, func)
    return CoverageResult(indices=picks, gains=gains, alpha=alpha, refreshes=int(refreshes))


def tfidf_matrix(texts, ngram_range=(1, 3), lowercase: bool = True, *, weighting: str = "sklearn", dtype=np.float64,
                 num_shards: int | None = None, address: str | None = None, num_cpus: float | None = None,
                 max_restarts: int = 3) -> TfidfResult:
    """:func:`iterselect.tfidf_matrix` as a map-reduce over text shards: the same matrix.

    Each actor counts its texts' n-grams (the same tokens); the driver merges the shards'
    vocabularies into one (code-point order), adds up the document frequencies and computes
    the idf; each actor weighs and normalizes its rows by it; the rows are gathered. Values are
    the single process's bit for bit (see ``iterselect.coverage._counts``).

    Parameters
    ----------
    texts, ngram_range, lowercase, weighting, dtype
        As in :func:`iterselect.tfidf_matrix`.
    num_shards, address, num_cpus, max_restarts
        As in :func:`iterselect.distributed.kcenter_greedy`.

    Returns
    -------
    TfidfResult

    Examples
    --------
    >>> from iterselect.distributed import tfidf_matrix
    >>> r = tfidf_matrix(["The cat sat.", "The dog sat!", "a"], ngram_range=(1, 2), num_shards=2)
    >>> r.vocabulary.tolist()[:4], r.df.tolist()
    (['cat', 'cat sat', 'dog', 'dog sat'], [1, 1, 1, 1, 2, 2, 1, 1])
    """
    func = "tfidf_matrix"
    texts = _check_texts(texts, "texts", func)
    if not texts:
        raise param_error(func, "texts", "a non-empty sequence of str", "an empty sequence")
    ngram_range = _check_ngram_range(ngram_range, func)
    weighting = check_choice(weighting, "weighting", func, WEIGHTINGS)
    dtype = check_float_dtype(dtype, "dtype", func)
    ray = connect(address, func)
    parts = default_shards(ray) if num_shards is None else check_int(num_shards, "num_shards", func, 1)
    shards = _text_shards(ray.put, texts, None, parts)
    params = dict(decay=0.1, ngram_range=ngram_range, lowercase=bool(lowercase), dtype=dtype.name, weighting=weighting)
    with _group(ray, shards, params, func, num_cpus, max_restarts, 0) as group:
        vocabulary, df, idf, columns = _reduce_vocabulary(group.call_all("vocabulary"), len(texts), weighting)
        parts = group.call_all("matrix", update=("vocabulary", columns))
    matrix = sp.vstack([sp.csr_array((d, c, p), shape=(p.size - 1, len(vocabulary))) for p, c, d in parts],
                       format="csr")
    matrix.indices = matrix.indices.astype(np.int32)
    matrix.indptr = matrix.indptr.astype(np.int64)
    return TfidfResult(matrix=sp.csr_array(matrix), vocabulary=vocabulary, idf=idf, df=df, weighting=weighting)


def iterit_select(texts, k: int, ifd, *, decay: float = 0.1, ngram_range=(1, 3), weighting: str = "paper",
                  allow_fewer: bool = False,
                  num_shards: int | None = None, address: str | None = None, candidates: int = 16,
                  num_cpus: float | None = None, max_restarts: int = 3, checkpoint_every: int = 200,
                  progress: bool = True) -> IterITResult:
    """:func:`iterselect.iterit_select` on text shards: the TF-IDF counted on the shards and
    reduced into one vocabulary (as :func:`tfidf_matrix` here), then the sharded lazy greedy
    (as :func:`coverage_greedy` here) on the rows where they were built. The same picks.

    Parameters
    ----------
    texts, k, ifd, decay, ngram_range, weighting, allow_fewer
        As in :func:`iterselect.iterit_select`.
    num_shards, address, candidates, num_cpus, max_restarts, checkpoint_every, progress
        As in :func:`coverage_greedy`.

    Returns
    -------
    IterITResult

    Examples
    --------
    >>> from iterselect.distributed import iterit_select
    >>> texts = ["Paris is the capital of France.", "The capital of France is Paris.",
    ...          "Water boils at 100 degrees.", "Sorry, I cannot help.", "Yes."]
    >>> r = iterit_select(texts, 2, [0.9, 0.8, 0.7, float("nan"), 1.3], num_shards=2, progress=False)
    >>> r.indices.tolist(), r.n_dropped_nan, r.n_dropped_high_ifd
    ([2, 0], 1, 1)
    """
    func = "iterit_select"
    prepared = _iterit_candidates(texts, k, ifd, decay, ngram_range, weighting, allow_fewer, func)
    if prepared.k == 0:
        return prepared.result(np.empty(0, np.int64), np.empty(0), 0)
    candidates = check_int(candidates, "candidates", func, 1)
    ray = connect(address, func)
    parts = default_shards(ray) if num_shards is None else check_int(num_shards, "num_shards", func, 1)
    chosen_texts = [prepared.texts[i] for i in prepared.candidates]
    weights = prepared.scores[prepared.candidates]
    shards = _text_shards(ray.put, chosen_texts, weights, parts)
    offsets = np.array([s.offset for s in shards] + [len(chosen_texts)], np.int64)
    params = dict(decay=prepared.decay, ngram_range=prepared.ngram_range, lowercase=True, weighting=prepared.weighting)
    with _group(ray, shards, params, func, num_cpus, max_restarts, checkpoint_every) as group:
        vocabulary, _, _, columns = _reduce_vocabulary(group.call_all("vocabulary"), len(chosen_texts),
                                                       prepared.weighting)
        group.call_all("start", update=("vocabulary", columns))
        picks, gains, _, _ = _greedy(group, offsets, prepared.k, np.empty(0, np.int64), prepared.decay,
                                     candidates, len(vocabulary), progress, func)
    return prepared.result(picks, gains, len(vocabulary))
