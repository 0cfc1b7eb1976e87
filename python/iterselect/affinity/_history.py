"""InsBank's history responsibilities for a grown candidate set (PIBE, §3.2, Eq. 4-5).

When InsBank evolves, the new candidate set is the kept pool P (indices into the previous
candidates) followed by the new samples. The previous round's responsibilities R_old are
carried over as a history matrix H over the new set, which affinity_propagation(history=H)
mixes into its updates with a decaying weight.

Eq. 4-5 as computed here (they agree with the authors' published code, CadenShi/InsBank
pibe/affinity_propagation.py, ``AffinityPropagation.incremental_fit``, up to the differences
listed below), with P = |keep|, N_new new samples, and s(j, n) the similarity of old candidate j
and new sample n:

  weights   w(n, j) = s(j, n) / sum_j' s(j', n)          (a weighted average over the old set;
                                                          s <= 0 gives w >= 0, sum_j w = 1)
  Eq. 4     H[p, q]         = R_old[keep[p], keep[q]]                       (pool to pool)
            H[P + n, q]     = sum_j w(n, j) R_old[j, keep[q]]                (new to pool)
            H[p, P + n]     = sum_j R_old[keep[p], j] w(n, j)                (pool to new)
  Eq. 5     H[P + n, P + m] = median of every entry of the three blocks above
            (the "median correction": new pairs have no history, so they get the typical one)

Where the published code differs (the default here is the computation above):
  - its weights come from cosine distances 1 - cos(x_new, x_old) whatever the AP metric; here
    they come from the similarities the caller passes. Passing S_old_new = cos - 1 (this
    library's "cosine" similarity) reproduces the published weights exactly, since the
    normalisation cancels the sign: (cos - 1) / sum(cos - 1) = (1 - cos) / sum(1 - cos);
  - its median is torch.median, the lower of the two middle values; here numpy's median (their
    mean) for an even count;
  - it runs in float16 on the GPU beyond 39,000 candidates; here in R_old's precision.
The mixing itself (R <- alpha_t H + (1 - alpha_t) R after the damped update, alpha multiplied by
lambda after every iteration) is the published code's, bit for bit in float64.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._arrays import as_matrix, host_array, like_input
from .._validation import check_indices, param_error

_FUNC = "history_matrix"


def history_matrix(R_old: ArrayLike, S_old_new: ArrayLike, *, keep: ArrayLike | None = None) -> np.ndarray:
    """History responsibilities for a grown candidate set, InsBank's Eq. 4-5.

    The new candidate set is ``keep`` (indices into the previous candidates, in that order)
    followed by the new samples; see the module notes for the exact formulas and where the
    published code differs.

    Parameters
    ----------
    R_old : array of shape (n_old, n_old)
        The previous round's responsibilities (``affinity_propagation(...,
        return_messages=True).responsibility``): numpy, torch or cupy; float16, bfloat16,
        float32 or float64. The computation runs on the host: CUDA inputs are copied there
        once (O(n_old^2), against O(n_old^2 n_new) arithmetic) and the result is copied back.
    S_old_new : array of shape (n_old, n_new)
        Similarities of every previous candidate to every new sample, in the convention of the
        run (e.g. -||x_old - x_new|| for metric="euclidean"). Each column's sum must be non-zero.
    keep : sequence of int, optional
        The previous candidates kept in the pool, in the order they take in the new set
        (default: all of them).

    Returns
    -------
    array of shape (len(keep) + n_new, len(keep) + n_new)
        R_old's dtype when float32 or float64 (float64 otherwise), in R_old's kind and device.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.affinity import history_matrix
    >>> R_old = np.array([[0.0, -1.0], [-2.0, 0.5]])
    >>> S = np.array([[-1.0], [-3.0]])          # new sample: weights 0.25 and 0.75
    >>> history_matrix(R_old, S, keep=[1]).tolist()
    [[0.5, -0.125], [0.125, 0.125]]
    """
    r = as_matrix(R_old, "R_old", _FUNC)
    s = as_matrix(S_old_new, "S_old_new", _FUNC)
    n_old = r.shape[0]
    if r.shape != (n_old, n_old):
        raise param_error(_FUNC, "R_old", "a square (n_old, n_old) matrix", f"an array of shape {r.shape}")
    if s.shape[0] != n_old:
        raise param_error(_FUNC, "S_old_new", f"an array of shape ({n_old}, n_new) (one row per previous "
                          "candidate)", f"an array of shape {s.shape}")
    dtype = np.dtype(r.dtype) if r.dtype in ("float32", "float64") else np.dtype(np.float64)
    R = host_array(r, dtype)
    S = host_array(s, np.float64)
    kept = np.arange(n_old) if keep is None else check_indices(keep, "keep", _FUNC, n_old, allow_none=False)
    totals = S.sum(axis=0, dtype=np.float64)
    zero = np.flatnonzero(totals == 0)
    if zero.size:
        raise param_error(_FUNC, "S_old_new", "columns with a non-zero sum (the weights normalise by it)",
                          f"a zero sum in column {int(zero[0])}")
    W = (S / totals).T.astype(dtype)  # (n_new, n_old), rows sum to 1
    P, n_new = kept.size, S.shape[1]
    H = np.empty((P + n_new, P + n_new), dtype=dtype)
    H[:P, :P] = R[np.ix_(kept, kept)]
    H[P:, :P] = W @ R[:, kept]
    H[:P, P:] = R[kept, :] @ W.T
    known = np.concatenate([H[:P, :P].ravel(), H[P:, :P].ravel(), H[:P, P:].ravel()])
    H[P:, P:] = np.median(known) if known.size else 0
    return like_input(H, r)
