"""InsBank's history responsibilities for a grown candidate set (PIBE, §3.2, Eq. 4-5, Figure 3).

Round t's candidates X'_t = X_t ∪ B_{t-1} ended with the responsibilities R_t (|X'_t| x |X'_t|).
Round t + 1's candidates are the kept bank B_t (``keep``, rows of X'_t, P of them) followed by the
new data X_{t+1}. The momentum responsibility matrix H_t over them is built from R_t and the
similarities ``Sim`` (|X'_t| x |X_{t+1}|) of the old candidates to the new data, and
affinity_propagation(history=H) mixes it into the messages (Eq. 6).

The paper (``convention="paper"``): Sim is the cosine similarity, and

    w_jk = Sim[j,k] * Sim[j,k] / sum_l Sim[l,k]                                      (Eq. 4)
    top-left      H[p, q]     = R_t[keep[p], keep[q]]          (bank to bank, "taken from R_t")
    top-right     H[p, P + k] = sum_j w_jk R_t[keep[p], j]     (new k as exemplar of bank p, Eq. 4)
    bottom-left   H[P + i, q] = sum_j w_ji R_t[j, keep[q]]     (bank q as exemplar of new i, Eq. 5)
    bottom-right  H[P + i, P + k] = 0
    then the correction min(median(R_t), 0) is added to the whole right half H[:, P:] (the new
    samples' columns): "we add a correction value to the right half of H_t which is the smaller
    of the median value of R_t and 0".

The published code (CadenShi/InsBank, ``AffinityPropagation.incremental_fit``;
``convention="published"``): the weights are linear and normalized, w_jk = Sim[j,k] /
sum_l Sim[l,k] (each column sums to 1), with Sim the cosine distance 1 - cos, so that farther
old candidates weigh more; the bottom-right block is filled with the median of the three other
blocks; no correction. Its median is torch's (the lower middle value), here numpy's.
"""
from __future__ import annotations

import contextlib

import numpy as np
from numpy.typing import ArrayLike

from .. import _backends
from .._arrays import as_matrix, host_array, like
from .._validation import check_choice, check_indices, param_error

CONVENTIONS = ("paper", "published")
_FUNC = "history_matrix"
_BLOCK = 4096  # new samples per block of weights when H is computed on a graph


def history_matrix(R_old: ArrayLike, sim_old_new: ArrayLike, *, keep: ArrayLike | None = None,
                   convention: str = "paper") -> np.ndarray:
    """History responsibilities for a grown candidate set: InsBank's H_t (§3.2, Eq. 4-5).

    The new candidate set is ``keep`` (rows of the previous candidates, in that order) followed
    by the new samples.

    ==========  ==========================================  ========================================
    block       paper (``convention="paper"``, default)     published code (``"published"``)
    ==========  ==========================================  ========================================
    weights     Eq. 4: ``w_jk = Sim[j,k]^2 / sum_l          ``w_jk = Sim[j,k] / sum_l Sim[l,k]``,
                Sim[l,k]`` with Sim the cosine similarity   Sim the cosine distance ``1 - cos``
    top-left    ``R_t[keep, keep]``                         the same
    top-right   Eq. 4: ``sum_j w_jk R_t[keep[p], j]``       the same, with its weights
    bottom-left Eq. 5: ``sum_j w_ji R_t[j, keep[q]]``       the same, with its weights
    bottom-     0                                           the median of the other three blocks
    right
    correction  ``min(median(R_t), 0)`` added to every      none
                column of the new samples
    ==========  ==========================================  ========================================

    Parameters
    ----------
    R_old : array of shape (n_old, n_old), or a scipy.sparse matrix
        The previous round's responsibilities R_t (``affinity_propagation(...,
        return_messages=True).responsibility``): numpy, torch or cupy; float16, bfloat16,
        float32 or float64. A sparse R_t (the sparse mode's) counts the entries it does not store
        as 0, and its median is that of its stored entries. The computation runs on the host:
        CUDA inputs are copied there once (O(n_old^2), against O(n_old^2 n_new) arithmetic) and
        the result is copied back.
    sim_old_new : array of shape (n_old, n_new)
        ``Sim``: every previous candidate against every new sample. The paper's is the cosine
        similarity (whatever metric the affinity propagation uses); the published code's the
        cosine distance. Each column's sum must be non-zero.
    keep : sequence of int, optional
        The previous candidates kept (the bank), in the order they take in the new set (default:
        all of them).
    convention : {"paper", "published"}, default="paper"

    Returns
    -------
    array of shape (len(keep) + n_new, len(keep) + n_new)
        R_old's dtype when float32 or float64 (float64 otherwise), in R_old's kind and device
        (numpy for a scipy.sparse R_old).

    Examples
    --------
    Three old candidates, two kept, one new sample; ``median(R_t) = -1``, so the correction is -1:

    >>> import numpy as np
    >>> from iterselect.affinity import history_matrix
    >>> R_t = np.array([[-1.0, -2.0, 0.0], [-3.0, 1.0, -4.0], [2.0, -1.0, -2.0]])
    >>> cos = np.array([[0.5], [1.0], [0.5]])        # w = cos^2 / 2 = [0.125, 0.5, 0.125]
    >>> history_matrix(R_t, cos, keep=[0, 2]).tolist()
    [[-1.0, 0.0, -2.125], [2.0, -2.0, -1.5], [-1.375, -2.25, -1.0]]
    """
    check_choice(convention, "convention", _FUNC, CONVENTIONS)
    R, n_old, dtype = _check_r(R_old)
    s = as_matrix(sim_old_new, "sim_old_new", _FUNC)
    if s.shape[0] != n_old:
        raise param_error(_FUNC, "sim_old_new", f"an array of shape ({n_old}, n_new) (one row per previous "
                          "candidate)", f"an array of shape {s.shape}")
    S = host_array(s, np.float64)
    kept = np.arange(n_old) if keep is None else check_indices(keep, "keep", _FUNC, n_old, allow_none=False)
    totals = S.sum(axis=0, dtype=np.float64)
    zero = np.flatnonzero(totals == 0)
    if zero.size:
        raise param_error(_FUNC, "sim_old_new", "columns with a non-zero sum (the weights normalise by it)",
                          f"a zero sum in column {int(zero[0])}")
    S = S.astype(np.float64, copy=False)
    W = (S * S if convention == "paper" else S) / totals  # (n_old, n_new): w_jk
    P, n_new = kept.size, S.shape[1]
    H = np.empty((P + n_new, P + n_new), dtype=dtype)
    H[:P, :P] = _rows_cols(R, kept, kept)
    H[:P, P:] = _rows(R, kept) @ W
    H[P:, :P] = (_cols(R, kept).T @ W).T
    if convention == "paper":
        H[P:, P:] = 0
        H[:, P:] += min(_median(R), 0.0)
    else:
        known = np.concatenate([H[:P, :P].ravel(), H[P:, :P].ravel(), H[:P, P:].ravel()])
        H[P:, P:] = np.median(known) if known.size else 0
    return like(H, R_old)


def history_on_graph(R_old, X_old, X_new, neighbors, *, keep, convention="paper", old_neighbors=None,
                     threads=None):
    """H_t of :func:`history_matrix`, computed only at the entries of the sparse mode's graph.

    The graph is the one ``affinity_propagation(X, knn=neighbors)`` runs on (the symmetrized kNN
    graph plus the diagonal) over the new candidate set ``X_old[keep]`` followed by ``X_new``.
    ``Sim`` is computed from the embeddings (cosine similarity, or cosine distance under
    "published") for the pairs a sum needs, never as a whole matrix. R_t is read at its stored
    entries: a sparse R_t (the previous sparse round's) as it is; a dense one at each old
    candidate's ``old_neighbors`` (an (n_old, k) id array) and itself. So the sums of Eq. 4-5 run
    over the old candidates near the bank member, where R_t is stored, and the medians are those
    of the stored entries (the published bottom-right: of the graph's entries in the other
    blocks). Returns a CSR matrix with the graph's pattern (float64).
    """
    import scipy.sparse as sp

    check_choice(convention, "convention", "history_on_graph", CONVENTIONS)
    n_old = X_old.shape[0]
    if sp.issparse(R_old):
        R = sp.csr_matrix(R_old, dtype=np.float64)
    else:
        R = _dense_on_neighbors(np.asarray(R_old), old_neighbors)
    kept = np.asarray(keep, dtype=np.int64)
    P, n_new = kept.size, X_new.shape[0]
    n = P + n_new
    core = _backends.core
    indptr, indices, transpose, _ = core.affinity_knn_graph(np.ascontiguousarray(neighbors, dtype=np.int64),
                                                           0 if threads is None else int(threads))
    values = np.zeros(int(indptr[-1]), dtype=np.float64)
    U, V = unit_rows(X_old), unit_rows(X_new)
    usum = U.sum(axis=0)
    colsum = V @ usum if convention == "paper" else n_old - V @ usum  # sum_l Sim[l, k] per new k
    Rt = sp.csr_matrix(R.T)  # row q of Rt: column q of R_t
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    bank_bank = (rows < P) & (indices < P)
    if bank_bank.any():
        values[bank_bank] = np.asarray(R[kept[rows[bank_bank]], kept[indices[bank_bank]]]).ravel()
    with _single_blas_thread():
        _fill_bank_rows(values, R, Rt, kept, U, V, colsum, indptr, indices, transpose, convention)
    right = indices >= P
    if convention == "paper":
        values[right] += min(_median_stored(R), 0.0)
    else:
        known = ~((rows >= P) & right)
        values[~known] = np.median(values[known]) if known.any() else 0.0
    return sp.csr_matrix((values, indices, indptr), shape=(n, n))


def _fill_bank_rows(values, R, Rt, kept, U, V, colsum, indptr, indices, transpose, convention):
    """The top-right (Eq. 4) and bottom-left (Eq. 5) entries of the graph, bank member by member."""
    P = kept.size
    for p in range(P):
        e0, e1 = int(indptr[p]), int(indptr[p + 1])
        new = np.flatnonzero(indices[e0:e1] >= P) + e0
        if new.size == 0:
            continue
        k = indices[new] - P
        row, col = _stored(R, kept[p]), _stored(Rt, kept[p])  # R_t[keep[p], :] and R_t[:, keep[p]]
        for block in range(0, k.size, _BLOCK):
            ks, es = k[block:block + _BLOCK], new[block:block + _BLOCK]
            top_right, bottom_left = _weighted(row, col, U, V, ks, colsum, convention)
            values[es] = top_right                # Eq. 4
            values[transpose[es]] = bottom_left   # Eq. 5


def _single_blas_thread():
    """The products here are small (about 100 x 100): BLAS threads cost more than they save,
    many times over on a busy machine, so they run on one (when threadpoolctl is there)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _stored(M, i):
    """(column ids, values) stored in row ``i`` of the CSR matrix ``M``."""
    lo, hi = M.indptr[i], M.indptr[i + 1]
    return M.indices[lo:hi], M.data[lo:hi]


def _weighted(row, col, U, V, ks, colsum, convention):
    """``sum_j w_jk r_j`` for every new k in ks, for the stored row and column of R_t (a sum
    over the entries each stores). The weights are computed once when both store the same j
    (a symmetric pattern, as the sparse mode's graph)."""
    out = []
    sim = None
    for js, r in (row, col):
        if js.size == 0:
            out.append(np.zeros(ks.size))
            continue
        if sim is None or not np.array_equal(js, row[0]):
            cos = U[js] @ V[ks].T  # (|js|, |ks|)
            sim = cos * cos if convention == "paper" else 1.0 - cos
        out.append((r @ sim) / colsum[ks])
    return out


def _dense_on_neighbors(R, neighbors):
    """A dense R_t as CSR, kept at each row's neighbour ids and the diagonal."""
    import scipy.sparse as sp

    n = R.shape[0]
    nb = np.asarray(neighbors, dtype=np.int64)
    cols = np.concatenate([np.arange(n)[:, None], nb], axis=1)
    rows = np.repeat(np.arange(n), cols.shape[1])
    cols = cols.ravel()
    ok = cols >= 0
    M = sp.csr_matrix((R[rows[ok], cols[ok]].astype(np.float64), (rows[ok], cols[ok])), shape=(n, n))
    M.sum_duplicates()
    return M


def unit_rows(X) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), float64."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms == 0, 1.0, norms)


def _check_r(R_old):
    import scipy.sparse as sp

    if sp.issparse(R_old):
        if R_old.ndim != 2 or R_old.shape[0] != R_old.shape[1]:
            raise param_error(_FUNC, "R_old", "a square (n_old, n_old) matrix", f"a matrix of shape {R_old.shape}")
        dtype = np.dtype(R_old.dtype) if R_old.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        return sp.csr_matrix(R_old), R_old.shape[0], dtype
    r = as_matrix(R_old, "R_old", _FUNC)
    n_old = r.shape[0]
    if r.shape != (n_old, n_old):
        raise param_error(_FUNC, "R_old", "a square (n_old, n_old) matrix", f"an array of shape {r.shape}")
    dtype = np.dtype(r.dtype) if r.dtype in ("float32", "float64") else np.dtype(np.float64)
    return host_array(r, dtype), n_old, dtype


def _rows_cols(R, rows, cols):
    import scipy.sparse as sp

    if sp.issparse(R):
        return R[rows][:, cols].toarray()
    return R[np.ix_(rows, cols)]


def _rows(R, rows):
    return R[rows]


def _cols(R, cols):
    return R[:, cols]


def _median(R) -> float:
    """numpy.median of every entry of a dense R_t (without a copy), or of a sparse one's stored entries."""
    import scipy.sparse as sp

    if sp.issparse(R):
        return _median_stored(R)
    return float(_backends.core.affinity_median(np.ascontiguousarray(R), 0))


def _median_stored(R) -> float:
    return float(np.median(R.data)) if R.nnz else 0.0
