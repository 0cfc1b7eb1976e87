"""TF-IDF in two steps, for a vocabulary spread over shards: raw n-gram counts, then weights.

:func:`iterselect.coverage.tfidf_matrix` counts, weighs and normalizes in one C++ pass over all
texts. When the texts are sharded, each shard counts its own (:func:`ngram_counts`), the
document frequencies are added up into one vocabulary, and each shard weighs its rows by the
global idf (:func:`tfidf_weigh`), under either weighting. Both steps do the one-pass arithmetic operation for
operation (the build has no fused multiply-add; numpy's float64 operations round as C++'s do),
so the rows are the one-pass rows bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import _backends
from .._progress import progress_callback
from ._vocabulary import NgramVocabulary
from ._wordchars import word_ranges


@dataclass(frozen=True)
class NgramCounts:
    """The result of :func:`ngram_counts`.

    Attributes
    ----------
    matrix : scipy.sparse.csr_array of shape (n_texts, n_ngrams)
        How often each n-gram occurs in each text (float64), columns ascending within a row.
    vocabulary : NgramVocabulary
        The n-gram of each column, in :func:`tfidf_matrix`'s order (by code point).
    df : int64 array (n_ngrams,)
        Number of texts containing each n-gram.
    """

    matrix: object
    vocabulary: NgramVocabulary
    df: np.ndarray


def ngram_counts(texts: list, ngram_range: tuple[int, int], lowercase: bool, *, threads: int = 0,
                 progress: bool = False) -> NgramCounts:
    """Raw n-gram counts with :func:`tfidf_matrix`'s tokens, vocabulary and layout (arguments
    already checked as :func:`tfidf_matrix` checks them).

    Examples
    --------
    >>> from iterselect.coverage._counts import ngram_counts
    >>> c = ngram_counts(["the cat, the cat", "a dog"], (1, 1), True)
    >>> c.vocabulary.tolist(), c.matrix.toarray().tolist(), c.df.tolist()
    (['cat', 'dog', 'the'], [[2.0, 0.0, 2.0], [0.0, 1.0, 0.0]], [1, 1, 1])
    """
    if lowercase:
        texts = [t.lower() for t in texts]
    with progress_callback(progress, 3 * len(texts), "n-gram counts") as callback:
        n_cols, indptr, indices, data, df, _, utf8, offsets = _backends.core.coverage_ngram_counts(
            texts, word_ranges(), ngram_range[0], ngram_range[1], threads, callback)
    matrix = sp.csr_array((data, indices, indptr), shape=(len(texts), n_cols))
    return NgramCounts(matrix=matrix, vocabulary=NgramVocabulary(utf8, offsets), df=df)


def ngram_idf(df: np.ndarray, n_texts: int, weighting: str = "sklearn") -> np.ndarray:
    """Per column, ln((1 + n) / (1 + df)) + 1 ("sklearn") or ln(n / df) ("paper"), with the C
    library's log as the one-pass TF-IDF takes it (numpy's vectorized log may differ from it in
    the last bit)."""
    df = np.asarray(df, np.int64)
    values, inverse = np.unique(df, return_inverse=True)
    if weighting == "paper":
        logs = [math.log(float(n_texts) / float(v)) for v in values.tolist()]
    else:
        logs = [math.log(float(n_texts + 1) / float(v + 1)) + 1.0 for v in values.tolist()]
    return np.array(logs)[inverse.reshape(-1)] if values.size else np.empty(0)


def tfidf_weigh(counts, idf: np.ndarray, dtype=np.float64, weighting: str = "sklearn"):
    """TF-IDF rows from raw counts, as :func:`tfidf_matrix` computes them: under "sklearn"
    ``count * idf``, each row divided by its l2 norm summed in column order (a row without
    entries stays empty); under "paper" ``(count / total) * idf`` with the row's total count,
    not normalized, the entries of idf 0 dropped.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from iterselect.coverage._counts import tfidf_weigh
    >>> tfidf_weigh(sp.csr_array(np.array([[3.0, 0.0, 4.0]])), np.ones(3)).toarray().tolist()
    [[0.6, 0.0, 0.8]]
    >>> tfidf_weigh(sp.csr_array(np.array([[3.0, 0.0, 1.0]])), np.array([2.0, 1.0, 0.0]),
    ...             weighting="paper").toarray().tolist()
    [[1.5, 0.0, 0.0]]
    """
    counts = sp.csr_array(counts)
    indptr = counts.indptr.astype(np.int64)
    lengths = np.diff(indptr)
    if weighting == "paper":
        total = np.add.reduceat(counts.data, indptr[:-1][lengths > 0]) if counts.data.size else np.empty(0)
        totals = np.repeat(total, lengths[lengths > 0])  # integer counts: the sum is exact in any order
        data = counts.data.astype(np.float64) / totals * idf[counts.indices]
        matrix = sp.csr_array((data.astype(dtype, copy=False), counts.indices, indptr), shape=counts.shape)
        matrix.eliminate_zeros()
        return matrix
    values = counts.data.astype(np.float64) * idf[counts.indices]
    order = np.argsort(-lengths, kind="stable")  # longest rows first: the active rows are a prefix
    sumsq = np.zeros(counts.shape[0])
    starts = indptr[order]
    active = order.size
    for p in range(int(lengths.max(initial=0))):
        while active and lengths[order[active - 1]] <= p:
            active -= 1
        v = values[starts[:active] + p]
        sumsq[order[:active]] = sumsq[order[:active]] + v * v  # one row's sum is sequential
    norm = np.where(sumsq != 0.0, np.sqrt(sumsq), 1.0)
    data = values / np.repeat(norm, lengths)
    return sp.csr_array((data.astype(dtype, copy=False), counts.indices, indptr), shape=counts.shape)
