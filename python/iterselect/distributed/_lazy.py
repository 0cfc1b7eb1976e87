"""The sharded lazy greedy of the selectors whose gains only fall (coverage, facility location).

A candidate is a sparse vector over *features* (n-grams for coverage, points for facility
location); a state vector over the features (the column weights ``alpha``, the points'
``current``) changes only at the picked candidate's features, and gains only fall as it does.
Each shard holds its candidates with *local* feature ids (its own features, in global order, so
every candidate's entries keep their order and its gain its rounding), the state on those
features, and a lazy max-heap of possibly stale gains (upper bounds). The driver's rounds are
those of ``_candidates``: the shards send their best candidates (exact gains), the candidates'
entries and the state there; the driver makes the picks it can certify, recomputing the
candidates' gains with the family's kernel on that small problem; then it broadcasts the picks'
entries and every shard updates its state.
"""
from __future__ import annotations

import heapq
import time

import numpy as np
import scipy.sparse as sp

from .._progress import progress_callback
from ._candidates import CandidatePool

REFRESH_BATCH = 64  # stale candidates recomputed at a time when the heap's top is stale


class LazyWorker:
    """One shard of candidates, its features' state and its lazy heap (see the module docstring).

    A subclass sets ``self.X`` (candidates as rows of a CSR over local features), ``features``
    (their global ids, ascending), ``state`` (per local feature) and defines :meth:`gains`
    (exact gains of some candidates) and :meth:`update_state` (a pick's entries, local ids).
    Updates: ``("picks", global candidate ids, [(global feature ids, values) per pick])``.
    """

    def _ready(self, X, features: np.ndarray, state: np.ndarray) -> None:
        self.X, self.features, self.state = sp.csr_array(X), features, state
        self.chosen = np.zeros(self.rows, dtype=bool)
        self.version = 0  # picks applied: a gain is current when computed at this version
        self.stamp = np.zeros(self.rows, dtype=np.int64)
        self.heap = None
        self.evaluations = 0

    def gains(self, local: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update_state(self, features: np.ndarray, values: np.ndarray) -> None:
        raise NotImplementedError

    def apply(self, update) -> None:
        _, ids, entries = update
        self.version += 1
        for g, (features, values) in zip(np.asarray(ids).tolist(), entries):
            if self.offset <= g < self.offset + self.rows:
                self.chosen[g - self.offset] = True
            pos = np.searchsorted(self.features, features)
            here = pos < self.features.size
            here[here] = self.features[pos[here]] == features[here]
            if here.any():
                self.update_state(pos[here], np.asarray(values)[here])

    def entries(self, local) -> list:
        """Candidates ``local`` as (global feature ids, values) pairs."""
        out = []
        for i in np.asarray(local, np.int64).tolist():
            lo, hi = self.X.indptr[i], self.X.indptr[i + 1]
            out.append((self.features[self.X.indices[lo:hi]], np.asarray(self.X.data[lo:hi])))
        return out

    def start(self) -> None:
        """Nothing to do: the heap is built at the first :meth:`top`."""

    def _evaluate(self, local: np.ndarray) -> np.ndarray:
        if local.size == 0:
            return np.empty(0)
        self.evaluations += local.size
        self.stamp[local] = self.version
        return self.gains(local)

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
            while heap and len(batch) < REFRESH_BATCH and self.stamp[heap[0][1]] != self.version:
                j = heapq.heappop(heap)[1]
                if not self.chosen[j]:
                    batch.append(j)
            batch = np.asarray(batch, np.int64)
            for g, j in zip((-self._evaluate(batch)).tolist(), batch.tolist()):
                heapq.heappush(heap, (g, j))
        return -1

    def top(self, m: int):
        """The m best unchosen candidates with exact gains, the rest bound, their entries with
        the state at each entry, and what the family needs besides (:meth:`extras`)."""
        if self.heap is None:
            free = np.flatnonzero(~self.chosen)
            self.heap = list(zip((-self._evaluate(free)).tolist(), free.tolist()))
            heapq.heapify(self.heap)
        taken = []
        while len(taken) < m and self._exact_top() >= 0:
            taken.append(heapq.heappop(self.heap))
        rest = self._exact_top()
        rest_gain = -self.heap[0][0] if rest >= 0 else 0.0
        for entry in taken:
            heapq.heappush(self.heap, entry)
        local = np.array([e[1] for e in taken], np.int64)
        rows = [(f, v, self.state[np.searchsorted(self.features, f)]) for f, v in self.entries(local)]
        return local, np.array([-e[0] for e in taken], np.float64), rest, rest_gain, rows, self.extras(local)

    def extras(self, local: np.ndarray):
        return None

    def finish(self) -> int:
        return self.evaluations

    def snapshot(self):
        return self.state.copy(), self.chosen.copy(), self.version, self.stamp.copy(), \
            None if self.heap is None else list(self.heap)

    def restore(self, state, position: int, log: list) -> None:
        if state is None:
            for update in log:
                self.apply(update)
            return
        for update in log[:self.first_pick(log)]:
            self.apply(update)
        self.state, self.chosen, self.version, self.stamp = state[0].copy(), state[1].copy(), state[2], state[3].copy()
        self.heap = None if state[4] is None else list(state[4])
        for update in log[position:]:
            self.apply(update)

    def first_pick(self, log: list) -> int:
        """Log entries before the first pick (they build the shard; a checkpoint comes after)."""
        return 0


class RoundProblem:
    """The candidates of one round as the family's small problem: a CSR over the union of their
    features and the state there. A subclass defines :meth:`apply_pick` and :meth:`gains`."""

    def __init__(self, answers):
        rows = [r for a in answers for r in a[4]]
        self.rows = rows
        feats = [r[0] for r in rows]
        union, inverse = np.unique(np.concatenate(feats) if feats else np.empty(0, np.int64), return_inverse=True)
        inverse = inverse.reshape(-1).astype(np.int64)
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum([f.size for f in feats], out=indptr[1:])
        data = np.concatenate([r[1] for r in rows]) if rows else np.empty(0)
        self.matrix = sp.csr_array((data, inverse, indptr), shape=(len(rows), union.size))
        self.state = np.zeros(union.size)
        if rows:
            self.state[inverse] = np.concatenate([r[2] for r in rows])
        extras = [a[5] for a in answers if a[5] is not None]
        self.extras = np.concatenate(extras) if extras else None

    def apply_pick(self, j: int) -> None:
        raise NotImplementedError

    def gains(self, free: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def lazy_rounds(group, offsets, k: int, m: int, problem_cls, on_pick, desc: str, progress: bool, func: str):
    """Picks ``k`` candidates by rounds; ``on_pick(features, values)`` sees every pick's
    entries. Returns (picks, gains, evaluations, rounds, seconds)."""
    picks, gains = [], []
    update, rounds = None, 0
    start = time.perf_counter()
    with progress_callback(progress, k, desc) as callback:
        while len(picks) < k:
            answers = group.call_all("top", m, update=update)
            rounds += 1
            cand = CandidatePool(answers, offsets)
            problem = problem_cls(answers)
            new = []
            while len(picks) < k:
                j = cand.best()
                if j < 0 or not cand.certified(j):
                    break
                picks.append(int(cand.ids[j]))
                gains.append(float(cand.values[j]))
                new.append(j)
                cand.taken[j] = True
                on_pick(*problem.rows[j][:2])
                problem.apply_pick(j)
                free = cand.free()
                if free.size:
                    cand.values[free] = problem.gains(free)
            if not new:
                raise RuntimeError(f"{func}: a round made no pick (a shard's answer was not exact)")
            if callback is not None:
                callback(len(picks), k)
            update = ("picks", cand.ids[np.asarray(new)], [problem.rows[j][:2] for j in new])
    seconds = time.perf_counter() - start
    evaluations = sum(group.call_all("finish", update=update))
    return np.asarray(picks, np.int64), np.asarray(gains), int(evaluations), rounds, seconds


def local_features(X, lo: int, hi: int):
    """Rows lo..hi of a CSR matrix with their own features: (CSR over local ids, global ids)."""
    sub = X[lo:hi]
    features = np.unique(sub.indices).astype(np.int64)
    local = np.searchsorted(features, sub.indices).astype(np.int64)
    return sp.csr_array((sub.data, local, sub.indptr.astype(np.int64)), shape=(hi - lo, features.size)), features
