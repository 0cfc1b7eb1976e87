"""The parts of one InsBank round that depend on its scale: dense or sparse affinity propagation,
the history matrix H_t for either, and the normalization of the representation scores."""
from __future__ import annotations

import warnings

import numpy as np

from ..._memory import gib, host_available

MODES = ("auto", "dense", "sparse")
DENSE_SHARE = 0.8  # "auto" runs dense when its arrays fit in this share of the available memory


def dense_bytes(n_cand: int, n_old: int, n_new: int, itemsize: int, history: bool) -> int:
    """Memory of a dense round: S, R and A (and H with its copy) of n_cand^2, plus Sim and the
    weights (n_old x n_new, float64) when the history is built."""
    matrices = 3 + (2 if history else 0)
    return matrices * n_cand * n_cand * itemsize + (2 * n_old * n_new * 8 if history else 0)


def choose_mode(mode: str, n_cand: int, n_old: int, n_new: int, itemsize: int, history: bool,
                n_neighbors: int) -> str:
    """"dense" or "sparse"; "auto" picks dense when it fits and says so when it does not."""
    if mode != "auto":
        return mode
    need = dense_bytes(n_cand, n_old, n_new, itemsize, history)
    have = host_available()
    if need <= DENSE_SHARE * have:
        return "dense"
    from ...exceptions import MemoryModeWarning

    warnings.warn(f"InsBank: a dense round over {n_cand} candidates needs {gib(need)}, more than "
                  f"{int(DENSE_SHARE * 100)}% of the {gib(have)} available; running the sparse mode "
                  f"(affinity propagation on the {n_neighbors}-nearest-neighbour graph). Pass "
                  "mode='dense' or mode='sparse' to choose.", MemoryModeWarning, stacklevel=4)
    return "sparse"


def dense_history(R_old, old, new, keep, convention):
    """H_t over the whole new candidate set (history_matrix with the convention's Sim)."""
    from ...affinity import history_matrix
    from ...affinity._history import unit_rows

    cos = unit_rows(old) @ unit_rows(new).T
    return history_matrix(R_old, cos if convention == "paper" else 1.0 - cos, keep=keep,
                          convention=convention)


def sparse_history(R_old, old, new, keep, convention, neighbors, n_neighbors, knn, threads):
    """H_t at the entries of the sparse round's graph (``neighbors`` over the new candidates)."""
    import scipy.sparse as sp

    from ..._knn import kneighbors
    from ...affinity._history import history_on_graph

    old_neighbors = None
    if not sp.issparse(R_old):
        k = min(n_neighbors, old.shape[0] - 1)
        old_neighbors = kneighbors(np.ascontiguousarray(old, dtype=np.float32), k, index=knn,
                                   threads=threads, func="InsBank.select_round")
    return history_on_graph(R_old, old, new, neighbors, keep=keep, convention=convention,
                            old_neighbors=old_neighbors, threads=threads)


def normalize_representation(raw, n_bank: int, how: str) -> np.ndarray:
    """Eq. 8's min-max over every candidate ("paper"), or the published code's: from the second
    round, the minimum taken over the first ``n_bank`` candidates (the previous bank) and values
    below it clipped to 0."""
    from ._algorithm import minmax

    if how == "paper" or n_bank == 0:
        return minmax(raw)
    v = np.asarray(raw, dtype=np.float64)
    lo, hi = v[:n_bank].min(), v.max()
    if hi == lo:
        return np.ones_like(v)
    return np.maximum((v - lo) / (hi - lo), 0.0)
