"""Exact lazy-greedy weighted coverage (IterIT's diversity) over row shards held by Ray actors,
and the TF-IDF it runs on, counted by the shards and reduced into one vocabulary."""
from __future__ import annotations

import heapq
import time

import numpy as np
import scipy.sparse as sp

from .._progress import progress_callback
from .._validation import check_float, check_float_dtype, check_int, check_selection_budget, param_error
from ..coverage import (CoverageResult, IterITResult, TfidfResult, _as_coverage_csr, _check_ngram_range,
                        _check_texts, _check_weights, _iterit_candidates, coverage_decay, coverage_gains)
from ..coverage._counts import ngram_counts, smooth_idf, tfidf_weigh
from ..coverage._vocabulary import NgramVocabulary
from ._candidates import CandidatePool
from ._cluster import ShardGroup, connect, default_shards, run_stats
from ._shards import row_ranges

_REFRESH_BATCH = 64  # stale rows recomputed at a time when the heap's top is stale


class CoverageWorker:
    """One shard's rows, their column weights and their lazy heap of gains.

    The shard holds its rows with *local* columns (its own columns, in global order, so a row's
    entries keep their order and its gain its rounding), the global id of each local column,
    the row weights and ``alpha`` on its columns. Updates: ``("vocabulary", per-shard (global
    ids, idf))`` for a shard of texts (it then weighs its counts), and ``("picks", global rows,
    [(global columns, values) per row])``: mark the rows chosen, decay their columns.
    """

    def __init__(self, shard, *, decay: float, threads: int, ngram_range=None, lowercase=True,
                 dtype="float64"):
        import ray

        self.offset, self.rows, self.index = shard.offset, shard.rows, shard.start
        payload = ray.get(shard.ref[0])
        self.decay, self.threads, self.dtype = decay, threads, np.dtype(dtype)
        self.refreshes = 0
        if shard.kind == "texts":
            texts, self.weights = payload
            counts = ngram_counts(texts, ngram_range, lowercase, threads=threads)
            self.counts, self.local_vocabulary, self.local_df = counts.matrix, counts.vocabulary, counts.df
            self.X = None
        else:
            indptr, indices, data, self.columns, self.weights = payload
            self._ready(sp.csr_array((data, indices, indptr), shape=(self.rows, self.columns.size)))

    def _ready(self, X) -> None:
        self.X = X
        self.alpha = np.ones(X.shape[1])
        self.chosen = np.zeros(self.rows, dtype=bool)
        self.version = 0  # picks applied: a row's gain is current when computed at this version
        self.stamp = np.zeros(self.rows, dtype=np.int64)
        self.heap = None

    # ---- the vocabulary (shards of texts)
    def vocabulary(self):
        v = self.local_vocabulary
        return np.asarray(v._utf8), np.asarray(v._offsets), self.local_df

    def apply(self, update) -> None:
        if update[0] == "vocabulary":
            self.columns, idf = update[1][self.index]
            self._ready(tfidf_weigh(self.counts, idf, self.dtype))
            self.counts = None
            return
        _, ids, entries = update
        self.version += 1
        for g, (cols, vals) in zip(np.asarray(ids).tolist(), entries):
            if self.offset <= g < self.offset + self.rows:
                self.chosen[g - self.offset] = True
            pos = np.searchsorted(self.columns, cols)
            here = (pos < self.columns.size) & (self.columns[np.minimum(pos, self.columns.size - 1)] == cols)
            if here.any():
                row = sp.csr_array((vals[here], pos[here], [0, int(here.sum())]), shape=(1, self.columns.size))
                coverage_decay(row, 0, self.alpha, self.decay)

    def rows_of(self, local):
        """Rows ``local`` as (global columns, values) pairs."""
        out = []
        for i in np.asarray(local, np.int64).tolist():
            lo, hi = self.X.indptr[i], self.X.indptr[i + 1]
            out.append((self.columns[self.X.indices[lo:hi]], np.asarray(self.X.data[lo:hi])))
        return out

    def start(self):
        """Every row's gain; returns the shard's number of columns."""
        return int(self.X.shape[1])

    def _gains(self, rows: np.ndarray) -> np.ndarray:
        self.refreshes += rows.size
        return coverage_gains(self.X[rows], self.alpha, weights=self.weights[rows], threads=self.threads)

    def _build_heap(self) -> None:
        free = np.flatnonzero(~self.chosen)
        gains = coverage_gains(self.X[free], self.alpha, weights=self.weights[free], threads=self.threads)
        self.stamp[free] = self.version
        self.heap = list(zip((-gains).tolist(), free.tolist()))
        heapq.heapify(self.heap)

    def _exact_top(self) -> int:
        heap = self.heap
        while heap:
            i = heap[0][1]
            if self.chosen[i]:
                heapq.heappop(heap)
                continue
            if self.stamp[i] == self.version:
                return i
            batch = []
            while heap and len(batch) < _REFRESH_BATCH and self.stamp[heap[0][1]] != self.version:
                j = heapq.heappop(heap)[1]
                if not self.chosen[j]:
                    batch.append(j)
            batch = np.asarray(batch, np.int64)
            gains = self._gains(batch)
            self.stamp[batch] = self.version
            for g, j in zip((-gains).tolist(), batch.tolist()):
                heapq.heappush(heap, (g, j))
        return -1

    def top(self, m: int):
        """The m best unchosen rows with exact gains, the rest bound, and the rows themselves
        (global columns, values, ``alpha`` at each entry)."""
        if self.heap is None:
            self._build_heap()
        taken = []
        while len(taken) < m:
            i = self._exact_top()
            if i < 0:
                break
            taken.append(heapq.heappop(self.heap))
        rest = self._exact_top()
        rest_gain = -self.heap[0][0] if rest >= 0 else 0.0
        for entry in taken:
            heapq.heappush(self.heap, entry)
        local = np.array([e[1] for e in taken], np.int64)
        gains = np.array([-e[0] for e in taken], np.float64)
        rows = []
        for i in local.tolist():
            lo, hi = self.X.indptr[i], self.X.indptr[i + 1]
            cols = self.X.indices[lo:hi]
            rows.append((self.columns[cols], np.asarray(self.X.data[lo:hi]), self.alpha[cols]))
        return local, gains, rest, rest_gain, rows, self.weights[local]

    def finish(self) -> int:
        return self.refreshes

    def matrix(self):
        """The shard's rows with global columns: (indptr, indices, data)."""
        return self.X.indptr.astype(np.int64), self.columns[self.X.indices], self.X.data

    def snapshot(self):
        return (self.alpha.copy(), self.chosen.copy(), self.version, self.stamp.copy(),
                None if self.heap is None else list(self.heap))

    def restore(self, state, position: int, log: list) -> None:
        if state is None:
            for update in log:
                self.apply(update)
            return
        if log and log[0][0] == "vocabulary":
            self.apply(log[0])
        self.alpha, self.chosen, self.version, self.stamp, heap = (
            state[0].copy(), state[1].copy(), state[2], state[3].copy(), state[4])
        self.heap = None if heap is None else list(heap)
        for update in log[position:]:
            self.apply(update)


def _csr_shards(ray, X, weights, parts: int):
    """Row shards of a CSR matrix, each with its own columns (ascending global ids)."""
    from ._shards import Shard

    shards = []
    w = np.ones(X.shape[0]) if weights is None else weights
    for s, (lo, hi) in enumerate(row_ranges(X.shape[0], parts)):
        sub = X[lo:hi]
        columns = np.unique(sub.indices).astype(np.int64)
        local = np.searchsorted(columns, sub.indices).astype(np.int64)
        payload = (sub.indptr.astype(np.int64), local, sub.data, columns, np.ascontiguousarray(w[lo:hi]))
        shards.append(Shard(lo, hi - lo, "csr", [ray.put(payload)], start=s))
    return shards


def _text_shards(ray, texts, weights, parts: int):
    from ._shards import Shard

    w = np.ones(len(texts)) if weights is None else weights
    return [Shard(lo, hi - lo, "texts", [ray.put((texts[lo:hi], np.ascontiguousarray(w[lo:hi])))], start=s)
            for s, (lo, hi) in enumerate(row_ranges(len(texts), parts))]


def _reduce_vocabulary(answers, n_texts: int):
    """One vocabulary from the shards' own (sorted) ones: the terms in code-point order, the
    document frequencies added up, the idf; and each shard's columns as global ids."""
    local_terms = [NgramVocabulary(utf8, offsets).tolist() for utf8, offsets, _ in answers]
    terms = sorted(set().union(*local_terms))
    column = {t: j for j, t in enumerate(terms)}
    df = np.zeros(len(terms), np.int64)
    ids = []
    for (_, _, local_df), local in zip(answers, local_terms):
        g = np.fromiter((column[t] for t in local), np.int64, len(local))
        np.add.at(df, g, local_df)
        ids.append(g)
    idf = smooth_idf(df, n_texts)
    encoded = [t.encode("utf-8") for t in terms]
    offsets = np.zeros(len(terms) + 1, np.int64)
    np.cumsum([len(b) + 1 for b in encoded], out=offsets[1:])
    utf8 = np.frombuffer(b"".join(b + b"\n" for b in encoded), np.int8).copy()
    vocabulary = NgramVocabulary(utf8, offsets)
    return vocabulary, df, idf, [(g, idf[g]) for g in ids]


def _group(ray, shards, params, func, num_cpus, max_restarts, checkpoint_every):
    return ShardGroup(ray, CoverageWorker, shards, params, func=func, num_cpus=num_cpus,
                      max_restarts=max_restarts, checkpoint_every=checkpoint_every)


def _gather_rows(group, offsets, ids):
    owner = np.searchsorted(offsets, ids, side="right") - 1
    out = [None] * len(ids)
    for s in np.unique(owner):
        at = np.flatnonzero(owner == s)
        for a, row in zip(at.tolist(), group.call_one(int(s), "rows_of", ids[at] - offsets[s])):
            out[a] = row
    return out


def _greedy(group, offsets, k, pool, decay, m, n_cols, progress, func):
    """The rounds of the sharded lazy greedy; returns (picks, gains, alpha, refreshes, rounds, seconds)."""
    alpha = np.ones(n_cols)
    if pool.size:
        pool_rows = _gather_rows(group, offsets, pool)
        for cols, vals in pool_rows:
            _decay(alpha, cols, vals, decay)
        group.call_all("start", update=("picks", pool, pool_rows))
    else:
        group.call_all("start")
    picks, gains = [], []
    update, rounds = None, 0
    start = time.perf_counter()
    with progress_callback(progress, k, "coverage (distributed)") as callback:
        while len(picks) < k:
            answers = group.call_all("top", m, update=update)
            rounds += 1
            cand = CandidatePool(answers, offsets)
            rows = [r for a in answers for r in a[4]]
            weights = np.concatenate([a[5] for a in answers])
            mini, mini_alpha = _mini_problem(rows)
            new = []
            while len(picks) < k:
                j = cand.best()
                if j < 0 or not cand.certified(j):
                    break
                picks.append(int(cand.ids[j]))
                gains.append(float(cand.values[j]))
                new.append(j)
                cand.taken[j] = True
                _decay(alpha, rows[j][0], rows[j][1], decay)
                coverage_decay(mini, j, mini_alpha, decay)
                free = cand.free()
                if free.size:
                    cand.values[free] = coverage_gains(mini[free], mini_alpha, weights=weights[free])
            if not new:
                raise RuntimeError(f"{func}: a round made no pick (a shard's answer was not exact)")
            if callback is not None:
                callback(len(picks), k)
            update = ("picks", cand.ids[np.asarray(new)], [rows[j][:2] for j in new])
    seconds = time.perf_counter() - start
    refreshes = sum(group.call_all("finish", update=update))
    return np.asarray(picks, np.int64), np.asarray(gains), alpha, refreshes, rounds, seconds


def _decay(alpha, cols, vals, decay) -> None:
    """alpha_j *= decay where the row is nonzero, as the single process applies a pick."""
    if cols.size:
        row = sp.csr_array((vals, cols, [0, cols.size]), shape=(1, alpha.size))
        coverage_decay(row, 0, alpha, decay)


def _mini_problem(rows):
    """The round's candidates as one CSR over the union of their columns, with ``alpha`` there."""
    cols = [r[0] for r in rows]
    union, inverse = np.unique(np.concatenate(cols) if cols else np.empty(0, np.int64), return_inverse=True)
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([c.size for c in cols], out=indptr[1:])
    data = np.concatenate([r[1] for r in rows]) if rows else np.empty(0)
    alpha = np.ones(union.size)
    if rows:
        alpha[inverse.reshape(-1)] = np.concatenate([r[2] for r in rows])
    return sp.csr_array((data, inverse.reshape(-1).astype(np.int64), indptr), shape=(len(rows), union.size)), alpha


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
    X, _, _, _ = _as_coverage_csr(X, func)
    n, n_cols = X.shape
    w = _check_weights(weights, n, func)
    decay = check_float(decay, "decay", func, 0.0, 1.0)
    pool, k = check_selection_budget(selected, k, func, n)
    candidates = check_int(candidates, "candidates", func, 1)
    ray = connect(address, func)
    parts = default_shards(ray) if num_shards is None else check_int(num_shards, "num_shards", func, 1)
    shards = _csr_shards(ray, X, w, parts)
    offsets = np.array([s.offset for s in shards] + [n], np.int64)
    with _group(ray, shards, dict(decay=decay), func, num_cpus, max_restarts, checkpoint_every) as group:
        picks, gains, alpha, refreshes, _, _ = _greedy(group, offsets, k, pool, decay, candidates, n_cols,
                                                       progress, func)
    return CoverageResult(indices=picks, gains=gains, alpha=alpha, refreshes=int(refreshes))


def tfidf_matrix(texts, ngram_range=(1, 3), lowercase: bool = True, *, dtype=np.float64,
                 num_shards: int | None = None, address: str | None = None, num_cpus: float | None = None,
                 max_restarts: int = 3) -> TfidfResult:
    """:func:`iterselect.tfidf_matrix` as a map-reduce over text shards: the same matrix.

    Each actor counts its texts' n-grams (the same tokens); the driver merges the shards'
    vocabularies into one (code-point order), adds up the document frequencies and computes
    the idf; each actor weighs and normalizes its rows by it; the rows are gathered. Values are
    the single process's bit for bit (see ``iterselect.coverage._counts``).

    Parameters
    ----------
    texts, ngram_range, lowercase, dtype
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
    dtype = check_float_dtype(dtype, "dtype", func)
    ray = connect(address, func)
    parts = default_shards(ray) if num_shards is None else check_int(num_shards, "num_shards", func, 1)
    shards = _text_shards(ray, texts, None, parts)
    params = dict(decay=0.1, ngram_range=ngram_range, lowercase=bool(lowercase), dtype=dtype.name)
    with _group(ray, shards, params, func, num_cpus, max_restarts, 0) as group:
        vocabulary, df, idf, columns = _reduce_vocabulary(group.call_all("vocabulary"), len(texts))
        parts = group.call_all("matrix", update=("vocabulary", columns))
    matrix = sp.vstack([sp.csr_array((d, c, p), shape=(p.size - 1, len(vocabulary))) for p, c, d in parts],
                       format="csr")
    matrix.indices = matrix.indices.astype(np.int32)
    matrix.indptr = matrix.indptr.astype(np.int64)
    return TfidfResult(matrix=sp.csr_array(matrix), vocabulary=vocabulary, idf=idf, df=df)


def iterit_select(texts, k: int, ifd, *, decay: float = 0.1, ngram_range=(1, 3), allow_fewer: bool = False,
                  num_shards: int | None = None, address: str | None = None, candidates: int = 16,
                  num_cpus: float | None = None, max_restarts: int = 3, checkpoint_every: int = 200,
                  progress: bool = True) -> IterITResult:
    """:func:`iterselect.iterit_select` on text shards: the TF-IDF counted on the shards and
    reduced into one vocabulary (as :func:`tfidf_matrix` here), then the sharded lazy greedy
    (as :func:`coverage_greedy` here) on the rows where they were built. The same picks.

    Parameters
    ----------
    texts, k, ifd, decay, ngram_range, allow_fewer
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
    ([0, 2], 1, 1)
    """
    func = "iterit_select"
    prepared = _iterit_candidates(texts, k, ifd, decay, ngram_range, allow_fewer, func)
    if prepared.k == 0:
        return prepared.result(np.empty(0, np.int64), np.empty(0), 0)
    candidates = check_int(candidates, "candidates", func, 1)
    ray = connect(address, func)
    parts = default_shards(ray) if num_shards is None else check_int(num_shards, "num_shards", func, 1)
    chosen_texts = [prepared.texts[i] for i in prepared.candidates]
    weights = prepared.scores[prepared.candidates]
    shards = _text_shards(ray, chosen_texts, weights, parts)
    offsets = np.array([s.offset for s in shards] + [len(chosen_texts)], np.int64)
    params = dict(decay=prepared.decay, ngram_range=prepared.ngram_range, lowercase=True)
    with _group(ray, shards, params, func, num_cpus, max_restarts, checkpoint_every) as group:
        vocabulary, _, _, columns = _reduce_vocabulary(group.call_all("vocabulary"), len(chosen_texts))
        group.call_all("start", update=("vocabulary", columns))
        picks, gains, _, _, _, _ = _greedy(group, offsets, prepared.k, np.empty(0, np.int64), prepared.decay,
                                           candidates, len(vocabulary), progress, func)
    return prepared.result(picks, gains, len(vocabulary))
