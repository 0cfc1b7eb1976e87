"""Drop-in replacements of scikit-learn classes, equal to them and faster.

* :class:`AffinityPropagation` is ``sklearn.cluster.AffinityPropagation`` (a subclass: the
  same constructor, parameter checks, attributes, ``predict``, ``fit_predict`` and warnings)
  whose message passing and final refinement run in iterselect's C++ kernel. The
  similarities, the preference and the tie-breaking noise are scikit-learn's own computations,
  and the kernel does scikit-learn's float operations in the same order, so the exemplars,
  labels and iteration count are scikit-learn's, not close to them. ``affinity_matrix_`` (n x n) is
  computed when it is read, with the same noise, rather than kept: fitting keeps only X.
* :class:`TfidfVectorizer` is ``sklearn.feature_extraction.text.TfidfVectorizer`` (a
  subclass) whose tokenizing, counting and weighting run in C++ (parallel over the documents)
  for the options it supports: the same vocabulary, column order, ``idf_`` (bit for bit) and
  sparse structure; values equal to rounding (computed in float64). Any other option raises a
  ``ValueError`` that names it.

Both need scikit-learn (``pip install 'iterselect[sklearn]'``).
"""
from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
import scipy.sparse as sp

try:
    from sklearn.cluster import AffinityPropagation as _SkAffinityPropagation
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer as _SkTfidfVectorizer
    from sklearn.metrics import euclidean_distances
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised without scikit-learn only
    raise ImportError("iterselect.sklearn needs scikit-learn: pip install 'iterselect[sklearn]' "
                      f"(or scikit-learn >= 1.6 itself); {exc}") from exc

from .exceptions import ConvergenceWarning as _OurConvergenceWarning
from .exceptions import param_error

__all__ = ["AffinityPropagation", "TfidfVectorizer"]

_NOISE_ROWS_BYTES = 1 << 25  # the tie-breaking noise is drawn a block of rows (32 MiB) at a time


def _add_noise(S: np.ndarray, rs: np.random.RandomState) -> None:
    """scikit-learn's tie-breaking noise, added to S in place from the legacy generator ``rs``:
    ``S += (eps * S + 100 * tiny) * standard_normal((n, n))``, the same draws in the same order
    (the legacy generator's stream does not depend on how the draws are split), a block of rows
    at a time, so that no second n x n float64 array is made."""
    n = S.shape[0]
    finfo = np.finfo(S.dtype)
    rows = max(1, _NOISE_ROWS_BYTES // (8 * n))
    for r0 in range(0, n, rows):
        block = S[r0:r0 + rows]
        block += (finfo.eps * block + finfo.tiny * 100) * rs.standard_normal(size=block.shape)


def _equal_similarities_and_preferences(S: np.ndarray, preference: np.ndarray) -> bool:
    if not np.all(preference == preference.flat[0]):
        return False
    off = ~np.eye(S.shape[0], dtype=bool)
    return bool(np.all(S[off] == S[off][0]))


class AffinityPropagation(_SkAffinityPropagation):
    """``sklearn.cluster.AffinityPropagation`` with its message passing in iterselect's C++.

    Same parameters, attributes, methods and warnings as scikit-learn's (see its
    documentation); the results are scikit-learn's exactly (same ``random_state``, or the same
    state of numpy's global generator when it is None). What differs: the iterations run
    multithreaded in C++ (fused passes over S, R and A, three n x n float64 arrays, besides the
    similarity matrix built as scikit-learn builds it), and ``affinity_matrix_`` is not kept
    but recomputed when read (the same values; for ``affinity="precomputed"`` it is the matrix
    given, or its copy, as in scikit-learn). ``benchmarks/sklearn_dropins.py`` measures the
    time and the peak memory against scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from iterselect.sklearn import AffinityPropagation
    >>> X = np.array([[1, 2], [1, 4], [1, 0],
    ...               [4, 2], [4, 4], [4, 0]])
    >>> clustering = AffinityPropagation(random_state=5).fit(X)
    >>> clustering
    AffinityPropagation(random_state=5)
    >>> clustering.labels_
    array([0, 0, 0, 1, 1, 1])
    >>> clustering.predict([[0, 0], [4, 4]])
    array([0, 1])
    >>> clustering.cluster_centers_
    array([[1, 2],
           [4, 2]])
    """

    def fit(self, X, y=None):
        """Fit the clustering from features, or affinity matrix (as scikit-learn's ``fit``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features), or array-like of
            shape (n_samples, n_samples)
            Training instances, or similarities when ``affinity='precomputed'``.
        y : ignored

        Returns
        -------
        self
        """
        from .affinity import affinity_propagation

        self._validate_params()
        self.__dict__.pop("_affinity_matrix", None)
        if self.affinity == "precomputed":
            X = validate_data(self, X, copy=self.copy, force_writeable=True)
            S = X
        else:
            X = validate_data(self, X, accept_sparse="csr")
            S = -euclidean_distances(X, squared=True)
        if S.shape[0] != S.shape[1]:
            raise ValueError("The matrix of similarities must be a square array. "
                             f"Got {S.shape} instead.")
        preference = np.asarray(np.median(S) if self.preference is None else self.preference)
        random_state = check_random_state(self.random_state)
        n = S.shape[0]
        self._fit_X = None if self.affinity == "precomputed" else X.copy()
        self._preference = preference
        self._noise_state = None
        if self.affinity == "precomputed":
            self._affinity_matrix = S
        if n == 1 or _equal_similarities_and_preferences(S, preference):
            warnings.warn("All samples have mutually equal similarities. Returning arbitrary cluster center(s).")
            if preference.flat[0] > S.flat[n - 1]:
                self.cluster_centers_indices_, self.labels_ = np.arange(n), np.arange(n)
            else:
                self.cluster_centers_indices_, self.labels_ = np.array([0]), np.array([0] * n)
            self.n_iter_ = 0
        else:
            S.flat[:: n + 1] = preference
            self._noise_state = random_state.get_state()
            _add_noise(S, random_state)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", _OurConvergenceWarning)
                res = affinity_propagation(S, metric="precomputed", preference=S.diagonal().astype(np.float64),
                                           damping=self.damping, max_iter=self.max_iter,
                                           convergence_iter=self.convergence_iter, dtype=np.float64,
                                           progress=False)
            if self.verbose:
                print("Converged after %d iterations." % (res.n_iter - 1) if res.converged else "Did not converge")
            self.n_iter_, converged = res.n_iter, res.converged
            # the C++ final step is scikit-learn's (the same sums in the same order, ties alike)
            if res.exemplars.size:
                if not converged:
                    warnings.warn("Affinity propagation did not converge, this model may return degenerate "
                                  "cluster centers and labels.", ConvergenceWarning)
                self.cluster_centers_indices_, self.labels_ = res.exemplars, res.labels
            else:
                warnings.warn("Affinity propagation did not converge and this model will not have any "
                              "cluster centers.", ConvergenceWarning)
                self.cluster_centers_indices_, self.labels_ = [], np.array([-1] * n)
        if self.affinity != "precomputed":
            self.cluster_centers_ = X[self.cluster_centers_indices_].copy()
        return self

    @property
    def affinity_matrix_(self) -> np.ndarray:
        """The similarities ``fit`` used (preference and noise included, as scikit-learn's),
        computed on first access from the stored X."""
        check_is_fitted(self, "labels_")
        S = self.__dict__.get("_affinity_matrix")
        if S is None:
            S = -euclidean_distances(self._fit_X, squared=True)
            if self._noise_state is not None:
                S.flat[:: S.shape[0] + 1] = self._preference
                rs = np.random.RandomState()
                rs.set_state(self._noise_state)
                _add_noise(S, rs)
            self._affinity_matrix = S
        return S



try:  # scikit-learn >= 1.9 returns its configured sparse interface; before, a csr_matrix
    from sklearn.utils._sparse import _align_api_if_sparse
except ImportError:  # pragma: no cover - older scikit-learn
    def _align_api_if_sparse(X):
        return sp.csr_matrix(X)

_NAME = "iterselect.sklearn.TfidfVectorizer"
_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
# options only their default is supported for: name -> default
_FIXED = {"strip_accents": None, "preprocessor": None, "tokenizer": None, "analyzer": "word", "stop_words": None,
          "token_pattern": _TOKEN_PATTERN, "max_features": None, "vocabulary": None, "sublinear_tf": False}


def _unsupported(name: str, expected: str, got) -> ValueError:
    return param_error(_NAME, name, f"{expected} (the only value supported here; "
                       "sklearn.feature_extraction.text.TfidfVectorizer takes the others)", repr(got))


class TfidfVectorizer(_SkTfidfVectorizer):
    """``sklearn.feature_extraction.text.TfidfVectorizer`` with tokenizing, counting and
    weighting in C++, parallel over the documents.

    Same constructor (default ``ngram_range=(1, 1)``, as scikit-learn), attributes
    (``vocabulary_``, ``idf_``, ``fixed_vocabulary_``) and methods (``fit``, ``transform``,
    ``fit_transform``, ``get_feature_names_out``, ...). Supported: every value of ``input``,
    ``encoding``, ``decode_error``, ``lowercase``, ``ngram_range`` (up to 8-grams), ``max_df``,
    ``min_df``, ``binary``, ``norm`` ("l1" or "l2"), ``use_idf``, ``smooth_idf`` and ``dtype``
    (float32 or float64). The other options (``strip_accents``, ``preprocessor``,
    ``tokenizer``, ``analyzer``, ``stop_words``, ``token_pattern``, ``max_features``,
    ``vocabulary``, ``sublinear_tf``, ``norm=None``) are supported at their defaults only;
    another value raises a ``ValueError`` naming it when fitting.

    The vocabulary, its column order, ``idf_`` and the matrix's stored entries equal
    scikit-learn's; the values agree to rounding (the C++ path weighs in float64, then rounds
    to ``dtype``), and each row's columns are sorted (scikit-learn leaves them in the order the
    terms were first seen). ``transform`` builds the new documents' own n-grams first and maps
    them to the vocabulary, so its memory grows with their vocabulary too.

    Examples
    --------
    >>> from iterselect.sklearn import TfidfVectorizer
    >>> corpus = ['This is the first document.',
    ...           'This document is the second document.',
    ...           'And this is the third one.',
    ...           'Is this the first document?']
    >>> vectorizer = TfidfVectorizer()
    >>> X = vectorizer.fit_transform(corpus)
    >>> vectorizer.get_feature_names_out()
    array(['and', 'document', 'first', 'is', 'one', 'second', 'the', 'third',
           'this'], dtype=object)
    >>> print(X.shape)
    (4, 9)
    """

    def _check_supported(self) -> None:
        for name, default in _FIXED.items():
            value = getattr(self, name)
            if not (value is default or (isinstance(value, str) and value == default)):
                raise _unsupported(name, repr(default), value)
        if self.norm is None:
            raise _unsupported("norm", "'l1' or 'l2'", None)
        if np.dtype(self.dtype) not in (np.float32, np.float64):
            raise _unsupported("dtype", "numpy.float32 or numpy.float64", self.dtype)
        from .coverage import MAX_NGRAM

        if self.ngram_range[1] > MAX_NGRAM:
            raise _unsupported("ngram_range", f"a range of n-grams of at most {MAX_NGRAM} words", self.ngram_range)

    def _documents(self, raw_documents) -> list:
        if isinstance(raw_documents, str):
            raise ValueError("Iterable over raw text documents expected, string object received.")
        return [self.decode(doc) for doc in raw_documents]

    def _tfidf_of(self, docs: list):
        from .coverage import tfidf_matrix

        return tfidf_matrix(docs, tuple(self.ngram_range), bool(self.lowercase), progress=False)

    def _weigh(self, r, columns: np.ndarray, n_columns: int):
        """The documents' TF-IDF rows on the fitted vocabulary: ``r`` is :func:`tfidf_matrix` of
        them, ``columns`` maps its columns to the fitted ones (-1: not in the vocabulary)."""
        M = r.matrix
        dtype = np.dtype(self.dtype)
        default = self.use_idf and self.smooth_idf and self.norm == "l2" and not self.binary
        if default and np.array_equal(columns, np.arange(n_columns)):
            X = sp.csr_matrix((M.data, M.indices, M.indptr), shape=(M.shape[0], n_columns))
            return _align_api_if_sparse(X.astype(dtype, copy=False))
        # each row is count * idf / norm: dividing by the idf leaves the counts up to the row's
        # scale, which the normalization below removes
        data = np.ones(M.nnz) if self.binary else M.data / r.idf[M.indices]
        cols = columns[M.indices]
        kept = cols >= 0
        rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))[kept]
        data, cols = data[kept], cols[kept]
        if self.use_idf:
            data = data * self.idf_.astype(np.float64)[cols]
        indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=M.shape[0]))))
        X = sp.csr_matrix((data, cols, indptr), shape=(M.shape[0], n_columns))
        from sklearn.preprocessing import normalize

        return _align_api_if_sparse(normalize(X, norm=self.norm, copy=False).astype(dtype, copy=False))

    def fit(self, raw_documents, y=None):
        """Learn the vocabulary and idf (:meth:`fit_transform`, returning ``self``)."""
        self.fit_transform(raw_documents)
        return self

    def fit_transform(self, raw_documents, y=None):
        """Learn the vocabulary and idf, return the document-term matrix.

        Parameters
        ----------
        raw_documents : iterable of str (or bytes, files, file names, per ``input``)
        y : ignored

        Returns
        -------
        sparse matrix of shape (n_samples, n_features)
        """
        self._validate_params()
        self._check_supported()
        docs = self._documents(raw_documents)
        self._validate_ngram_range()
        self._validate_vocabulary()
        self._check_params()
        if not docs:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        r = self._tfidf_of(docs)
        if r.matrix.shape[1] == 0:
            raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        n = len(docs)
        max_doc = self.max_df if isinstance(self.max_df, Integral) else self.max_df * n
        min_doc = self.min_df if isinstance(self.min_df, Integral) else self.min_df * n
        if max_doc < min_doc:
            raise ValueError("max_df corresponds to < documents than min_df")
        keep = (r.df <= max_doc) & (r.df >= min_doc)
        if not keep.any():
            raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
        terms = r.vocabulary.tolist()
        columns = np.cumsum(keep) - 1
        columns[~keep] = -1
        if not keep.all():
            terms = [t for t, k in zip(terms, keep) if k]
        self.vocabulary_ = dict(zip(terms, range(len(terms))))
        self._tfidf = TfidfTransformer(norm=self.norm, use_idf=self.use_idf, smooth_idf=self.smooth_idf,
                                       sublinear_tf=self.sublinear_tf)
        self._tfidf.n_features_in_ = len(terms)
        if self.use_idf:  # scikit-learn's float operations, in the matrix's dtype
            dtype = np.dtype(self.dtype)
            df = r.df[keep].astype(dtype)
            df += float(self.smooth_idf)
            idf = np.full_like(df, fill_value=n + int(self.smooth_idf), dtype=dtype)
            idf /= df
            np.log(idf, out=idf)
            idf += 1.0
            self._tfidf.idf_ = idf
        return self._weigh(r, columns, len(terms))

    def transform(self, raw_documents):
        """The documents' TF-IDF on the fitted vocabulary and idf (as scikit-learn's).

        Parameters
        ----------
        raw_documents : iterable of str (or bytes, files, file names, per ``input``)

        Returns
        -------
        sparse matrix of shape (n_samples, n_features)
        """
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        self._check_vocabulary()
        docs = self._documents(raw_documents)
        n_columns = len(self.vocabulary_)
        if not docs:
            return _align_api_if_sparse(sp.csr_matrix((0, n_columns), dtype=self.dtype))
        r = self._tfidf_of(docs)
        vocabulary = self.vocabulary_
        columns = np.fromiter((vocabulary.get(t, -1) for t in r.vocabulary.tolist()), dtype=np.int64,
                              count=len(r.vocabulary))
        return self._weigh(r, columns, n_columns)
