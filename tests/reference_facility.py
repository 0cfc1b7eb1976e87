"""Plain numpy/scipy references for the facility-location family (tests only).

The naive greedy recomputes every candidate's gain at every step, in float64, from the column
view (the graph's canonical CSC arrays: each column's points in ascending order), takes the
argmax (the lowest index among equal gains) and raises ``current`` along the picked column: the
definition that the C++ lazy greedy and the CUDA kernels must reproduce. Each gain is summed
sequentially in storage order (scipy's CSR mat-vec does exactly that), as the kernels do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class ReferenceRun:
    indices: np.ndarray
    gains: np.ndarray
    current: np.ndarray
    runner_up: np.ndarray  # the second best gain at each step (-inf when none)


def canonical_float64(graph) -> sp.csr_array:
    """The graph as float64 CSR, duplicates summed in its own dtype first (as the package does)."""
    G = sp.csr_array(graph, copy=True)
    G.sum_duplicates()
    if G.dtype not in (np.float32, np.float64):
        G = G.astype(np.float64)
    return G.astype(np.float64)


class Columns:
    """Column j of the graph: its points (ascending) and their similarities."""

    def __init__(self, graph):
        C = sp.csc_array(canonical_float64(graph))
        C.sort_indices()
        self.n_points, self.n_cand = C.shape
        self.indptr, self.rows, self.vals = C.indptr, C.indices, C.data

    def gains(self, current, quality=None, alpha=0.5) -> np.ndarray:
        c = current[self.rows]
        terms = np.where(self.vals > c, self.vals - c, 0.0)
        per_column = sp.csr_array((terms, np.zeros_like(self.rows), self.indptr), shape=(self.n_cand, 1))
        diversity = per_column @ np.ones(1)  # one sequential float64 sum per column
        if quality is None:
            return diversity
        return (1.0 - alpha) * diversity + alpha * np.asarray(quality, dtype=np.float64)

    def raise_current(self, j, current) -> None:
        lo, hi = self.indptr[j], self.indptr[j + 1]
        rows = self.rows[lo:hi]
        current[rows] = np.maximum(current[rows], self.vals[lo:hi])


def naive_facility_greedy(graph, k, quality=None, quality_weight=0.5, selected=()) -> ReferenceRun:
    """Recompute every gain, argmax, raise current: k times."""
    cols = Columns(graph)
    current = np.zeros(cols.n_points)
    taken = np.zeros(cols.n_cand, dtype=bool)
    for s in selected:
        cols.raise_current(s, current)
        taken[s] = True
    picks, gains, runner_up = [], [], []
    for _ in range(k):
        g = cols.gains(current, quality, quality_weight)
        g[taken] = -np.inf
        j = int(np.argmax(g))  # the first maximum: the lowest index among ties
        picks.append(j)
        gains.append(g[j])
        g[j] = -np.inf
        runner_up.append(g.max())
        taken[j] = True
        cols.raise_current(j, current)
    return ReferenceRun(np.array(picks, dtype=np.int64), np.array(gains), current, np.array(runner_up))


def dense_objective(S: np.ndarray, indices, block: int = 4096) -> float:
    """sum_i max_{j in indices} S[i, j] of a dense similarity matrix, in row blocks."""
    idx = np.asarray(indices)
    total = 0.0
    for start in range(0, S.shape[0], block):
        total += float(S[start:start + block][:, idx].max(axis=1).clip(min=0).sum())
    return total
