"""TF-IDF of response n-grams and exact lazy-greedy weighted coverage: IterIT's diversity score.

IterIT (Jia et al., §2.2-2.3) scores each candidate by ``S_COM x S_DIV`` (Eq. 8): its IFD times
the alpha-weighted TF-IDF of the n-grams of its response (Eq. 5-6), picks the best, multiplies by
``b`` the weight of every n-gram the pick contains (Eq. 7), and repeats. :func:`tfidf_matrix`
builds the TF-IDF matrix in C++ under IterIT's Eq. 5 or scikit-learn's ``TfidfVectorizer``
weighting; :func:`coverage_greedy` runs the greedy on any nonnegative sparse matrix, lazily and
exactly; :func:`iterit_select` is IterIT's selection step end to end.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
import scipy.sparse as sp

from .. import _backends
from . import _device
from .._arrays import host_vector, like, results_like, to_host
from .._progress import progress_callback
from .._validation import (check_bool, check_choice, check_float, check_float_dtype, check_int,
                           check_selection_budget, param_error)
from ._vocabulary import NgramVocabulary
from ._wordchars import word_ranges

MAX_NGRAM = 8  # the C++ keys hold at most this many tokens
WEIGHTINGS = ("sklearn", "paper")


# ----------------------------------------------------------------------------- TF-IDF

@dataclass(frozen=True)
class TfidfResult:
    """The result of :func:`tfidf_matrix`.

    Attributes
    ----------
    matrix : scipy.sparse.csr_array of shape (n_texts, n_ngrams)
        TF-IDF values (float64, or float32 if asked), columns ascending within each row. Under
        ``weighting="sklearn"`` the rows are l2-normalized; under ``"paper"`` they are not, and an
        n-gram found in every text (idf 0) has no stored entry.
    vocabulary : NgramVocabulary
        The n-gram of each column ("tok1 tok2 ..."), sorted by code point as scikit-learn's
        ``get_feature_names_out()``; a read-only sequence of str (``tolist()`` for a list).
    idf : float64 array (n_ngrams,)
        ln((1 + n_texts) / (1 + df)) + 1, as scikit-learn's ``idf_`` ("sklearn"), or
        ln(n_texts / df) ("paper").
    df : int64 array (n_ngrams,)
        Number of texts containing each n-gram.
    weighting : str
        "sklearn" or "paper".
    """

    matrix: object
    vocabulary: NgramVocabulary
    idf: np.ndarray
    df: np.ndarray
    weighting: str = "sklearn"


def _check_texts(texts, name: str, func: str) -> list:
    if isinstance(texts, (str, bytes)):
        raise param_error(func, name, "a sequence of str", f"a single {type(texts).__name__}", TypeError)
    try:
        texts = list(texts)
    except TypeError:
        raise param_error(func, name, "a sequence of str", type(texts).__name__, TypeError) from None
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise param_error(func, name, "a sequence of str",
                          f"{type(texts[bad]).__name__} at position {bad}", TypeError)
    return texts


def _check_ngram_range(ngram_range, func: str) -> tuple[int, int]:
    expected = f"a tuple (min_n, max_n) of ints with 1 <= min_n <= max_n <= {MAX_NGRAM}"
    try:
        lo, hi = ngram_range
    except (TypeError, ValueError):
        raise param_error(func, "ngram_range", expected, ngram_range) from None
    ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (lo, hi))
    if not ok or not 1 <= lo <= hi <= MAX_NGRAM:
        raise param_error(func, "ngram_range", expected, ngram_range)
    return int(lo), int(hi)


def _check_threads(threads, func: str) -> int:
    return 0 if threads is None else check_int(threads, "threads", func, 1)


def tfidf_matrix(texts: Sequence[str], ngram_range: tuple[int, int] = (1, 3), lowercase: bool = True, *,
                 weighting: str = "sklearn", dtype=np.float64, threads: int | None = None,
                 progress: bool = True) -> TfidfResult:
    """TF-IDF of word n-grams, scikit-learn's ``TfidfVectorizer`` or IterIT's Eq. 5, in C++.

    Tokens are scikit-learn's under either weighting: the maximal runs of two or more word
    characters (``(?u)\\b\\w\\w+\\b``, word characters as Python's ``re`` defines them), and
    n-grams join tokens with one space. The vocabulary and its column order are scikit-learn's.
    Tokenizing, counting and idf run in C++, in parallel over the texts; n-grams are compared as
    whole token tuples (a hash never decides identity); values are computed in float64.

    - ``weighting="sklearn"`` (default, the drop-in): equal to
      ``TfidfVectorizer(ngram_range=ngram_range, lowercase=lowercase)`` with every other setting
      at its default: raw counts times the smooth idf ln((1 + n) / (1 + df)) + 1, every row divided
      by its l2 norm (summed in column order). Values agree with scikit-learn's to rounding.
    - ``weighting="paper"``: IterIT's Eq. 5 (Jia et al., §2.2), "TF-IDF(g, Y_i) = f_g /
      sum_{k in Y_i} f_k x log(N' / N_g)": the n-gram's count over the text's total count of
      n-gram occurrences (every length in ``ngram_range`` together), times ln(n / df), computed as
      ``(count / total) * idf``; no normalization, so a text's TF-IDF sum does not grow with its
      length. An n-gram in every text has idf 0 and no stored entry (it still counts in ``total``).

    Differences from scikit-learn: texts must be str (no bytes decoding), and texts without any
    token give an all-zero row and, when every text is so, a matrix with no columns (where
    scikit-learn raises "empty vocabulary").

    Parameters
    ----------
    texts : sequence of str
        The documents (IterIT: the responses), at least one.
    ngram_range : tuple (min_n, max_n)
        n-gram lengths, ``1 <= min_n <= max_n <= 8``.
    lowercase : bool
        Lowercase with Python's ``str.lower()`` (full Unicode case mapping) before tokenizing.
    weighting : {"sklearn", "paper"}, default="sklearn"
        scikit-learn's smooth, l2-normalized TF-IDF, or IterIT's Eq. 5 (see above).
    dtype : {numpy.float64, numpy.float32}
        dtype of the values (computed in float64 either way).
    threads : int, optional
        CPU threads (default: all).
    progress : bool
        Show a progress bar; Ctrl-C stops promptly either way.

    Returns
    -------
    TfidfResult
        ``matrix`` (CSR), ``vocabulary``, ``idf``, ``df``.

    Examples
    --------
    >>> from iterselect.coverage import tfidf_matrix
    >>> r = tfidf_matrix(["The cat sat.", "The dog sat!", "a"], ngram_range=(1, 2), progress=False)
    >>> r.vocabulary.tolist()
    ['cat', 'cat sat', 'dog', 'dog sat', 'sat', 'the', 'the cat', 'the dog']
    >>> r.matrix.shape, r.df.tolist()
    ((3, 8), [1, 1, 1, 1, 2, 2, 1, 1])
    >>> r.matrix[[0]].toarray().round(3).tolist()
    [[0.49, 0.49, 0.0, 0.0, 0.373, 0.373, 0.49, 0.0]]

    IterIT's Eq. 5: "cat" is 1 of the 5 n-grams of text 0 and in 1 of the 3 texts:

    >>> p = tfidf_matrix(["The cat sat.", "The dog sat!", "a"], ngram_range=(1, 2), weighting="paper",
    ...                  progress=False)
    >>> bool(p.matrix[0, 0] == 1 / 5 * np.log(3 / 1)), p.idf.round(3).tolist()[:5]
    (True, [1.099, 1.099, 1.099, 1.099, 0.405])
    """
    func = "tfidf_matrix"
    texts = _check_texts(texts, "texts", func)
    if not texts:
        raise param_error(func, "texts", "a non-empty sequence of str", "an empty sequence")
    min_n, max_n = _check_ngram_range(ngram_range, func)
    lowercase = check_bool(lowercase, "lowercase", func)
    weighting = check_choice(weighting, "weighting", func, WEIGHTINGS)
    dtype = check_float_dtype(dtype, "dtype", func)
    threads = _check_threads(threads, func)
    if lowercase:
        texts = [t.lower() for t in texts]
    n = len(texts)
    with progress_callback(progress, 3 * n, "tf-idf") as callback:
        n_cols, indptr, indices, data, df, idf, utf8, offsets = _backends.core.coverage_tfidf(
            texts, word_ranges(), min_n, max_n, dtype == np.float32, weighting == "paper", threads, callback)
    matrix = sp.csr_array((data, indices, indptr), shape=(n, n_cols))
    if weighting == "paper":
        matrix.eliminate_zeros()
    return TfidfResult(matrix=matrix, vocabulary=NgramVocabulary(utf8, offsets), idf=idf, df=df,
                       weighting=weighting)


# ----------------------------------------------------------------------------- coverage greedy

@dataclass(frozen=True)
class CoverageResult:
    """The result of :func:`coverage_greedy`.

    Attributes
    ----------
    indices : int64 array (k,)
        Picked rows in pick order; every prefix is the greedy selection of that size.
    gains : float64 array (k,)
        Each pick's gain ``w_i * sum_j alpha_j * X[i, j]`` at the time it was picked.
    alpha : float64 array (n_columns,)
        Column weights after the last pick (``decay ** times_covered``), for a warm restart.
    refreshes : int
        Stale gains the lazy greedy recomputed (a naive loop recomputes n per pick); each backend
        counts its own lazy scheme's work.

    The arrays are numpy for numpy/scipy input, torch tensors for torch input, cupy arrays for
    cupy input, on the input's device.
    """

    indices: np.ndarray
    gains: np.ndarray
    alpha: np.ndarray
    refreshes: int


def _as_coverage_csr(X, func: str):
    """X as a canonical CSR (sorted, summed duplicates) of float32/float64, nonnegative, finite."""
    if _device.framework(X) == "torch":  # a CPU tensor, dense or sparse: scipy views of its CSR parts
        parts = _device.torch_parts(X, func)
        X = sp.csr_array((parts.data.numpy(), parts.indices.numpy(), parts.indptr.numpy()), shape=parts.shape)
    if sp.issparse(X):
        X = sp.csr_array(X)
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
    else:
        try:
            dense = to_host(X)
        except Exception as exc:
            raise param_error(func, "X", "a 2-D sparse matrix or array", type(X).__name__, TypeError) from exc
        if dense.ndim != 2:
            raise param_error(func, "X", "a 2-D sparse matrix or array", f"an array of shape {dense.shape}")
        if not (np.issubdtype(dense.dtype, np.number) or dense.dtype == bool):
            raise param_error(func, "X", "a numeric matrix", f"dtype {dense.dtype}", TypeError)
        if dense.dtype == np.float16:  # scipy.sparse has no float16
            dense = dense.astype(np.float64)
        X = sp.csr_array(dense)
    if X.shape[0] < 1:
        raise param_error(func, "X", "a matrix with at least one row", f"shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool) or np.issubdtype(X.dtype, np.complexfloating):
            raise param_error(func, "X", "a matrix of real numbers", f"dtype {X.dtype}", TypeError)
        X = X.astype(np.float64)
    data = X.data
    bad = np.flatnonzero(~np.isfinite(data) | (data < 0))
    if bad.size:
        p = int(bad[0])
        raise _device.nonnegative_error(func, data[p], int(np.searchsorted(X.indptr, p, side="right") - 1),
                                        int(X.indices[p]))
    indptr, indices = X.indptr, X.indices
    if indptr.dtype != indices.dtype or indptr.dtype not in (np.int32, np.int64):
        indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
    return X, np.ascontiguousarray(indptr), np.ascontiguousarray(indices), np.ascontiguousarray(data)


def _matrix(X, func: str, which: str) -> _device.Parts:
    """X's CSR parts for the backend: the CPU path's canonical CSR (numpy) for "cpu", and for the
    emulation of numpy/scipy input; the tensor's own parts for torch and cupy on the device paths."""
    kind = _device.framework(X)
    if which == "cuda" or (which == "cuda-emulation" and kind == "torch"):
        return _device.torch_parts(X, func) if kind == "torch" else _device.cupy_parts(X, func)
    X, indptr, indices, data = _as_coverage_csr(X, func)
    return _device.host_parts(indptr, indices, data, X.shape)


def _check_gain_range(x: _device.Parts, w, func: str) -> None:
    """Gains are a row's values times their column weights (at most 1) times the row's weight,
    summed in float64; refuse inputs whose largest gain would overflow (the picks would be
    arbitrary)."""
    with np.errstate(over="ignore"):
        rows = _device.largest_row_sum(x)
        top = rows * (1.0 if w is None else _device.largest(w))
    if np.isfinite(top) and top <= np.finfo(np.float64).max / 4:
        return
    name = "X" if w is None or not np.isfinite(rows) else "weights"
    msg = param_error(func, name, "small enough that row sums times weights fit in float64",
                      f"a largest gain of {top:.3g}").args[0]
    raise ValueError(f"{msg} Scale X or the weights down (the picks do not change).")


def _check_greedy_args(x: _device.Parts, k, weights, decay, selected, func: str):
    """The checked arguments of a coverage greedy on X's parts: (weights, decay, pool, k)."""
    n = x.shape[0]
    w = None if weights is None else x.vector(weights, n, "weights", func, "row of X")
    _check_gain_range(x, w, func)
    decay = check_float(decay, "decay", func, 0.0, 1.0)
    pool, k = check_selection_budget(selected, k, func, n)
    return w, decay, pool, k


def coverage_greedy(X, k: int, *, weights: ArrayLike | None = None, decay: float = 0.1,
                    selected: ArrayLike | None = None, threads: int | None = None,
                    progress: bool = True, backend: str = "auto") -> CoverageResult:
    """Pick ``k`` rows by exact greedy weighted coverage (IterIT's diversity selection).

    Every column j has a weight ``alpha_j`` (1 at the start). Each step picks the unpicked row
    with the largest gain ``w_i * sum_j alpha_j * X[i, j]`` (ties: the lowest row), then
    multiplies by ``decay`` the weight of every column where that row is nonzero. A row is
    never picked twice (IterIT's published loop can re-pick rows once every gain is 0).

    Lazy greedy: gains only fall, so each row's last computed gain is an upper bound in a
    max-heap, and only rows reaching the top are recomputed. A gain is always recomputed from
    scratch, in float64, in one canonical order on every backend (entry e of a row into partial
    sum e mod 32, the 32 partials folded as a GPU warp folds them), so the picks are those of the
    naive loop that recomputes every row at every step, bit for bit, on the CPU, on a GPU and on
    its emulation; running sums updated at each decay would drift from that by rounding. (A gain
    differs from scipy's ``X @ alpha`` by rounding only.)

    Parameters
    ----------
    X : sparse matrix or 2-D array of shape (n, m)
        Nonnegative and finite (a TF-IDF matrix from :func:`tfidf_matrix`). Any scipy sparse
        format, numpy, torch (dense, sparse CSR or COO) or cupy (dense or cupyx sparse); float32
        and float64 are used as they are, other dtypes (float16, bfloat16, ints) become float64. scipy and cupy matrices are
        summed into canonical form (sorted, no duplicates) first; a torch CSR tensor is used as
        stored (make it from a canonical matrix for the CPU path's exact picks).
    k : int
        Rows to pick, in ``[1, n - len(selected)]``.
    weights : array of shape (n,), optional
        Nonnegative row weights (IterIT: the IFD scores). Default: all 1.
    decay : float
        The factor ``b`` in ``[0, 1]`` applied to a column's weight each time a pick covers it.
    selected : sequence of int, optional
        Rows already chosen: their columns are decayed first and they are never picked.
    threads : int, optional
        CPU threads for the initial gains (default: all).
    progress : bool
        Show a progress bar; Ctrl-C stops promptly either way.
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}
        "auto": CUDA inputs (torch CUDA tensors, cupy) run the CUDA kernels, host inputs the C++
        ones. "cuda-emulation" runs the CUDA kernels on the CPU emulation of the grid (for tests).
        The picks, gains and ``alpha`` are the same on every backend; ``refreshes`` counts each
        backend's own lazy work.

    Returns
    -------
    CoverageResult
        ``indices``, ``gains``, ``alpha`` (as the input's kind, on its device), ``refreshes``.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.coverage import coverage_greedy
    >>> X = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.1], [0.0, 0.0, 0.9]])
    >>> r = coverage_greedy(X, 3, decay=0.1, progress=False)
    >>> r.indices.tolist(), r.gains.round(3).tolist()
    ([1, 0, 2], [2.1, 0.2, 0.09])
    >>> coverage_greedy(X, 1, selected=[1], progress=False).indices.tolist()
    [0]
    """
    func = "coverage_greedy"
    which = _backends.resolve(backend, _device.on_cuda(X), func)
    x = _matrix(X, func, which)
    n, m = x.shape
    w, decay, pool, k = _check_greedy_args(x, k, weights, decay, selected, func)
    threads = _check_threads(threads, func)
    if which != "cpu":
        picks, gains, alpha, refreshes = _device.greedy(x, k, w, decay, pool, progress, which)
        return CoverageResult(indices=picks, gains=gains, alpha=alpha, refreshes=refreshes)
    with progress_callback(progress, k, "coverage") as callback:
        picks, gains, alpha, refreshes = _backends.core.coverage_greedy(
            x.indptr, x.indices, x.data, n, m, w, decay, k, pool, threads, callback)
    return results_like(CoverageResult(indices=picks, gains=gains, alpha=alpha, refreshes=int(refreshes)), X)


def coverage_gains(X, alpha: ArrayLike | None = None, *, weights: ArrayLike | None = None,
                   threads: int | None = None, backend: str = "auto"):
    """Every row's gain ``w_i * sum_j alpha_j * X[i, j]`` (the greedy's marginal gain kernel).

    Summed in float64 in the greedy's canonical order (see :func:`coverage_greedy`), the same
    bits on every backend.

    Parameters
    ----------
    X : sparse matrix or 2-D array of shape (n, m)
        Nonnegative and finite.
    alpha : array of shape (m,), optional
        Column weights (default: all 1).
    weights : array of shape (n,), optional
        Row weights (default: all 1).
    threads : int, optional
        CPU threads (default: all).
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}
        As for :func:`coverage_greedy`. On the device, ``alpha`` and ``weights`` may be device
        arrays of X's framework or host arrays (copied to the device, O(n + m)).

    Returns
    -------
    float64 array (n,)
        As the input's kind, on its device.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.coverage import coverage_gains
    >>> X = np.array([[1.0, 2.0], [0.0, 3.0]])
    >>> coverage_gains(X, np.array([0.5, 1.0]), weights=[2.0, 1.0]).tolist()
    [5.0, 3.0]
    """
    func = "coverage_gains"
    which = _backends.resolve(backend, _device.on_cuda(X), func)
    x = _matrix(X, func, which)
    n, m = x.shape
    a = x.vector(np.ones(m) if alpha is None else alpha, m, "alpha", func, "column of X")
    w = None if weights is None else x.vector(weights, n, "weights", func, "row of X")
    threads = _check_threads(threads, func)
    if which != "cpu":
        return _device.gains(x, a, w, which)
    return like(_backends.core.coverage_row_gains(x.indptr, x.indices, x.data, n, m, a, w, threads), X)


def coverage_decay(X, row: int, alpha, decay: float = 0.1, *, backend: str = "auto") -> int:
    """One greedy update step, in place: ``alpha[j] *= decay`` where ``X[row, j] != 0``.

    Parameters
    ----------
    X : sparse matrix or 2-D array of shape (n, m)
        Nonnegative and finite.
    row : int
        The picked row.
    alpha : float64 array of shape (m,)
        Column weights, updated in place (must be a writable contiguous float64 array of X's
        kind: numpy for host input, a tensor or cupy array on X's device otherwise).
    decay : float
        In ``[0, 1]``.
    backend : {"auto", "cpu", "cuda", "cuda-emulation"}
        As for :func:`coverage_greedy`.

    Returns
    -------
    int
        How many weights changed.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.coverage import coverage_decay
    >>> alpha = np.ones(3)
    >>> coverage_decay(np.array([[1.0, 0.0, 2.0]]), 0, alpha, 0.5), alpha.tolist()
    (2, [0.5, 1.0, 0.5])
    """
    func = "coverage_decay"
    which = _backends.resolve(backend, _device.on_cuda(X), func)
    x = _matrix(X, func, which)
    n, m = x.shape
    row = check_int(row, "row", func, 0, n - 1)
    decay = check_float(decay, "decay", func, 0.0, 1.0)
    if not _device.writable_weights(alpha, x, m):
        got = f"{type(alpha).__name__} of shape {getattr(alpha, 'shape', None)} and dtype {getattr(alpha, 'dtype', None)}"
        where = "" if x.kind == "numpy" else f" ({x.kind}, on X's device)"
        raise param_error(func, "alpha", f"a writable contiguous float64 array of shape ({m},){where}", got, TypeError)
    if which != "cpu":
        return _device.decay_row(x, row, alpha, decay, which)
    return int(_backends.core.coverage_decay_row(x.indptr, x.indices, x.data, n, m, row, decay, alpha))


# ----------------------------------------------------------------------------- IterIT

@dataclass(frozen=True)
class IterITResult:
    """The result of :func:`iterit_select`.

    Attributes
    ----------
    indices : int64 array (k,)
        Picks as indices into the original ``texts``, in pick order.
    gains : float64 array (k,)
        Each pick's score IFD × diversity at pick time.
    candidates : int64 array
        The texts that took part (IFD < 1 and not NaN), ascending.
    n_dropped_nan : int
        Texts dropped because their IFD is NaN.
    n_dropped_high_ifd : int
        Texts dropped because their IFD is >= 1 (the instruction does not help the response).
    n_ngrams : int
        Columns of the candidates' TF-IDF matrix.
    """

    indices: np.ndarray
    gains: np.ndarray
    candidates: np.ndarray
    n_dropped_nan: int
    n_dropped_high_ifd: int
    n_ngrams: int

    @property
    def n_dropped(self) -> int:
        """All dropped texts (NaN IFD plus IFD >= 1)."""
        return self.n_dropped_nan + self.n_dropped_high_ifd


def iterit_select(texts: Sequence[str], k: int, ifd: ArrayLike, *, decay: float = 0.1,
                  ngram_range: tuple[int, int] = (1, 3), weighting: str = "paper",
                  allow_fewer: bool = False, threads: int | None = None,
                  progress: bool = True) -> IterITResult:
    """IterIT's selection step (Jia et al., Alg. 1 lines 8-15): greedy IFD × TF-IDF diversity.

    Line 8, "D' = {(X_i, Y_i) in D, S_COM < 1}": texts whose IFD is at least 1 are dropped, and
    so are NaN ones (both counted). Lines 10-15: the responses of D' are featurized with
    :func:`tfidf_matrix` (Eq. 5, with N' = |D'|: the idf is the candidates'), and
    :func:`coverage_greedy` picks ``k`` of them by the comprehensive score
    ``S = S_COM x S_DIV`` (Eq. 8), ``S_DIV = sum_g alpha_g TF-IDF(g, Y_i)`` (Eq. 6), with
    ``alpha_g <- b alpha_g`` for the n-grams of each pick (Eq. 7, ``b = decay``).

    Where the paper and the published code (JiaQiSJTU/IterIT) differ:

    ========  ====================================  ====================================  ======================
    step      paper                                 published code                        here
    ========  ====================================  ====================================  ======================
    TF-IDF    Eq. 5: f_g / sum_k f_k x ln(N'/N_g),  scikit-learn's TfidfVectorizer        ``weighting="paper"``
              no normalization                      (smooth idf, l2-normalized rows) of   (default);
                                                    the response followed by the EOS      ``"sklearn"``: the
                                                    token's text                          published weighting
                                                                                          (of the text given)
    re-picks  each sample at most once              once every gain is 0 the argmax can   each at most once
                                                    return a picked row
    ========  ====================================  ====================================  ======================

    Under scikit-learn's weighting a row's TF-IDF sum grows with the square root of the
    response's length, so the selection leans toward long responses; under Eq. 5 it does not.

    Parameters
    ----------
    texts : sequence of str
        The responses (IterIT featurizes the response only).
    k : int
        Texts to pick.
    ifd : array of shape (len(texts),)
        Instruction-following difficulty per text (numpy, torch or cupy; any float dtype); NaN
        allowed (dropped), otherwise >= 0. The result's arrays come back in its kind.
    decay : float
        In ``[0, 1]``: the factor applied to an n-gram's weight each time a pick contains it.
    ngram_range : tuple (min_n, max_n)
        n-gram lengths (IterIT: (1, 3)).
    weighting : {"paper", "sklearn"}, default="paper"
        Eq. 5, or the published code's ``TfidfVectorizer(ngram_range=(1, 3))``.
    allow_fewer : bool
        When fewer than ``k`` candidates remain, pick them all instead of raising.
    threads : int, optional
        CPU threads (default: all).
    progress : bool
        Show progress bars; Ctrl-C stops promptly either way.

    Returns
    -------
    IterITResult
        ``indices`` into ``texts``, ``gains``, ``candidates``, the drop counts.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.coverage import iterit_select
    >>> texts = ["Paris is the capital of France.", "The capital of France is Paris.",
    ...          "Water boils at 100 degrees.", "Sorry, I cannot help.", "Yes."]
    >>> r = iterit_select(texts, 2, [0.9, 0.8, 0.7, float("nan"), 1.3], progress=False)
    >>> r.indices.tolist(), r.n_dropped_nan, r.n_dropped_high_ifd
    ([2, 0], 1, 1)

    Text 2 shares no n-gram with the other candidates, so its diversity is the largest Eq. 5
    allows, ln(N') = ln 3, and 0.7 ln 3 beats text 0's 0.9 x 0.59; the paraphrase (text 1)
    shares most of its n-grams with text 0 and comes after it.
    """
    func = "iterit_select"
    _check_threads(threads, func)
    c = _iterit_candidates(texts, k, ifd, decay, ngram_range, weighting, allow_fewer, func)
    if c.k == 0:
        return results_like(c.result(np.empty(0, np.int64), np.empty(0), 0), ifd)
    tfidf = tfidf_matrix([c.texts[i] for i in c.candidates], c.ngram_range, weighting=c.weighting, threads=threads,
                         progress=progress)
    picked = coverage_greedy(tfidf.matrix, c.k, weights=c.scores[c.candidates], decay=c.decay, threads=threads,
                             progress=progress)
    return results_like(c.result(picked.indices, picked.gains, int(tfidf.matrix.shape[1])), ifd)


@dataclass(frozen=True)
class _IterITCandidates:
    """IterIT's inputs checked and filtered (IFD < 1, not NaN), shared by the single-process and
    the distributed (:mod:`iterselect.distributed`) selection."""

    texts: list
    scores: np.ndarray
    candidates: np.ndarray
    n_nan: int
    n_high: int
    k: int
    decay: float
    ngram_range: tuple
    weighting: str

    def result(self, picks: np.ndarray, gains: np.ndarray, n_ngrams: int) -> IterITResult:
        """The result for picks among the candidates (indices into the candidates)."""
        return IterITResult(indices=self.candidates[picks], gains=gains, candidates=self.candidates,
                            n_dropped_nan=self.n_nan, n_dropped_high_ifd=self.n_high, n_ngrams=n_ngrams)


def _iterit_candidates(texts, k, ifd, decay, ngram_range, weighting, allow_fewer, func: str) -> _IterITCandidates:
    texts = _check_texts(texts, "texts", func)
    n = len(texts)
    if n == 0:
        raise param_error(func, "texts", "a non-empty sequence of str", "an empty sequence")
    scores = host_vector(ifd, "ifd", func, kind=f"{n} scores (one per text)")
    if scores.shape[0] != n:
        raise param_error(func, "ifd", f"a 1-D array of {n} scores (one per text)", f"an array of shape {scores.shape}")
    if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(scores.dtype, np.complexfloating):
        raise param_error(func, "ifd", "an array of real numbers", f"dtype {scores.dtype}", TypeError)
    scores = scores.astype(np.float64)
    nan = np.isnan(scores)
    negative = np.flatnonzero(~nan & (scores < 0))
    if negative.size:
        raise param_error(func, "ifd", "nonnegative or NaN", f"{float(scores[negative[0]])!r} at position {int(negative[0])}")
    keep = ~nan & (scores < 1.0)
    candidates = np.flatnonzero(keep).astype(np.int64)
    n_nan = int(nan.sum())
    n_high = int(n - n_nan - candidates.size)
    decay = check_float(decay, "decay", func, 0.0, 1.0)
    ngram_range = _check_ngram_range(ngram_range, func)
    weighting = check_choice(weighting, "weighting", func, WEIGHTINGS)
    k = check_int(k, "k", func, 1)
    if k > candidates.size and not allow_fewer:
        raise param_error(
            func, "k",
            f"at most the number of candidates ({candidates.size} of {n} texts: {n_nan} have a NaN IFD and "
            f"{n_high} an IFD >= 1); pass allow_fewer=True to pick them all", k)
    return _IterITCandidates(texts=texts, scores=scores, candidates=candidates, n_nan=n_nan, n_high=n_high,
                             k=min(k, int(candidates.size)), decay=decay, ngram_range=ngram_range,
                             weighting=weighting)
