"""iterselect.sklearn: drop-in replacements held to scikit-learn's own outputs.

AffinityPropagation must give scikit-learn's exemplars, labels, iteration count, similarity
matrix, predictions and warnings exactly; TfidfVectorizer scikit-learn's vocabulary, idf and
sparse structure exactly and its values to rounding. Both on scikit-learn's documented
examples and on the bundled Dolly.
"""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from conftest import require_module

require_module("sklearn", "sklearn", module_level=True)

import sklearn.cluster as skc  # noqa: E402
import sklearn.feature_extraction.text as skt  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from iterselect.sklearn import AffinityPropagation, TfidfVectorizer  # noqa: E402

DOC_X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [4, 4], [4, 0]])


def fit_both(make, X, *, seed=None, **fit_kw):
    """Fit ours and scikit-learn's (each from the same global generator state when ``seed``);
    return both estimators and the warnings each raised, as (category, message)."""
    out = []
    for cls in (AffinityPropagation, skc.AffinityPropagation):
        if seed is not None:
            np.random.seed(seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = make(cls).fit(X.copy() if isinstance(X, np.ndarray) else X, **fit_kw)
        out.append((est, [(w.category, str(w.message)) for w in caught]))
    return out


def assert_same_clustering(ours, theirs):
    np.testing.assert_array_equal(ours.cluster_centers_indices_, theirs.cluster_centers_indices_)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_array_equal(ours.affinity_matrix_, theirs.affinity_matrix_)
    if hasattr(theirs, "cluster_centers_"):
        a, b = ours.cluster_centers_, theirs.cluster_centers_
        assert type(a) is type(b)
        np.testing.assert_array_equal(a.toarray() if hasattr(a, "toarray") else a,
                                      b.toarray() if hasattr(b, "toarray") else b)
    assert ours.n_features_in_ == theirs.n_features_in_


# ----------------------------------------------------------------------------- AffinityPropagation

def test_affinity_propagation_documented_example():
    (ours, w1), (theirs, w2) = fit_both(lambda c: c(random_state=5), DOC_X)
    assert_same_clustering(ours, theirs)
    assert ours.labels_.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(ours.predict([[0, 0], [4, 4]]), theirs.predict([[0, 0], [4, 4]]))
    assert ours.cluster_centers_.tolist() == [[1, 2], [4, 2]] and ours.cluster_centers_.dtype == DOC_X.dtype
    assert w1 == w2 == []
    assert repr(ours) == "AffinityPropagation(random_state=5)"
    assert isinstance(ours, skc.AffinityPropagation)


def test_affinity_propagation_function_example_precomputed():
    from sklearn.metrics.pairwise import euclidean_distances

    S = -euclidean_distances(DOC_X, squared=True)
    (ours, _), (theirs, _) = fit_both(lambda c: c(affinity="precomputed", random_state=0), S)
    assert_same_clustering(ours, theirs)
    assert ours.cluster_centers_indices_.tolist() == [0, 3]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [
    {},
    {"damping": 0.9, "preference": -40.0},
    {"convergence_iter": 5, "max_iter": 400},
])
def test_affinity_propagation_on_dolly(dolly_embeddings, dtype, options):
    X = dolly_embeddings[:500].astype(dtype)
    (ours, w1), (theirs, w2) = fit_both(lambda c: c(random_state=0, **options), X)
    assert_same_clustering(ours, theirs)
    assert len(ours.cluster_centers_indices_) > 1
    assert w1 == w2
    other = dolly_embeddings[500:700].astype(dtype)
    np.testing.assert_array_equal(ours.predict(other), theirs.predict(other))
    np.testing.assert_array_equal(ours.fit_predict(X), theirs.labels_)


def test_affinity_propagation_global_generator_and_state_after():
    X = np.random.default_rng(1).normal(size=(60, 4))
    (ours, _), (theirs, _) = fit_both(lambda c: c(), X, seed=11)
    assert_same_clustering(ours, theirs)
    np.random.seed(11)
    AffinityPropagation().fit(X)
    after_ours = np.random.random_sample()
    np.random.seed(11)
    skc.AffinityPropagation().fit(X)
    assert after_ours == np.random.random_sample()  # the global generator is left as scikit-learn leaves it


def test_affinity_propagation_precomputed_copy_false_modifies_as_sklearn():
    rng = np.random.default_rng(2)
    S = -rng.uniform(0, 10, size=(40, 40))
    mine, theirs = S.copy(), S.copy()
    a = AffinityPropagation(affinity="precomputed", copy=False, random_state=3).fit(mine)
    b = skc.AffinityPropagation(affinity="precomputed", copy=False, random_state=3).fit(theirs)
    np.testing.assert_array_equal(mine, theirs)
    assert a.affinity_matrix_ is mine and b.affinity_matrix_ is theirs
    assert_same_clustering(a, b)


def test_affinity_propagation_sparse_input_and_preference_array():
    from scipy import sparse

    rng = np.random.default_rng(4)
    X = sparse.random(50, 20, density=0.3, random_state=4, format="csr")
    pref = rng.uniform(-5, -1, size=50)
    (ours, _), (theirs, _) = fit_both(lambda c: c(random_state=1, preference=pref), X)
    assert_same_clustering(ours, theirs)


def test_affinity_propagation_same_warnings():
    X = np.random.default_rng(5).normal(size=(30, 3))
    (ours, w1), (theirs, w2) = fit_both(lambda c: c(max_iter=2, random_state=0), X)
    assert_same_clustering(ours, theirs)
    assert w1 == w2 and w1 and w1[0][0] is ConvergenceWarning
    (ours, w1), (theirs, w2) = fit_both(lambda c: c(random_state=0), np.zeros((4, 2)))
    assert_same_clustering(ours, theirs)
    assert w1 == w2 and "mutually equal similarities" in w1[0][1]
    (ours, w1), (theirs, w2) = fit_both(lambda c: c(random_state=0, preference=10.0), np.zeros((4, 2)))
    assert_same_clustering(ours, theirs)
    (ours, w1), (theirs, w2) = fit_both(lambda c: c(random_state=0), np.ones((1, 3)))
    assert_same_clustering(ours, theirs)
    assert w1 == w2


def test_affinity_propagation_no_centers():
    X = np.random.default_rng(6).normal(size=(30, 3))
    (ours, w1), (theirs, w2) = fit_both(lambda c: c(max_iter=1, convergence_iter=1, damping=0.5,
                                                    preference=-1e6, random_state=0), X)
    assert list(ours.cluster_centers_indices_) == list(theirs.cluster_centers_indices_)
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    assert w1 == w2
    if len(theirs.cluster_centers_indices_) == 0:
        with warnings.catch_warnings(record=True) as a:
            warnings.simplefilter("always")
            p1 = ours.predict(X[:3])
        with warnings.catch_warnings(record=True) as b:
            warnings.simplefilter("always")
            p2 = theirs.predict(X[:3])
        np.testing.assert_array_equal(p1, p2)
        assert [str(w.message) for w in a] == [str(w.message) for w in b]


def test_affinity_propagation_keeps_no_n_by_n_matrix_until_asked():
    X = np.random.default_rng(7).normal(size=(200, 8))
    ap = AffinityPropagation(random_state=0).fit(X)
    sizes = [v.nbytes for v in vars(ap).values() if isinstance(v, np.ndarray)]
    assert max(sizes) < 200 * 200 * 8 / 4
    S = ap.affinity_matrix_
    assert S.shape == (200, 200)
    np.testing.assert_array_equal(S, skc.AffinityPropagation(random_state=0).fit(X).affinity_matrix_)


def test_affinity_propagation_is_an_estimator():
    ap = AffinityPropagation(damping=0.7, random_state=2)
    assert clone(ap).get_params() == skc.AffinityPropagation(damping=0.7, random_state=2).get_params()
    X = np.random.default_rng(8).normal(size=(40, 3))
    fitted = pickle.loads(pickle.dumps(ap.fit(X)))
    np.testing.assert_array_equal(fitted.labels_, ap.labels_)
    np.testing.assert_array_equal(fitted.affinity_matrix_, ap.affinity_matrix_)
    with pytest.raises(InvalidParameterError):
        AffinityPropagation(damping=0.2).fit(X)
    with pytest.raises(ValueError, match="square array"):
        AffinityPropagation(affinity="precomputed").fit(X)
    S = -np.abs(X @ X.T)
    with pytest.raises(ValueError, match="Predict method is not supported"):
        AffinityPropagation(affinity="precomputed").fit(S).predict(S)


# ----------------------------------------------------------------------------- TfidfVectorizer

DOC_CORPUS = ["This is the first document.", "This document is the second document.",
              "And this is the third one.", "Is this the first document?"]


def assert_same_tfidf(ours_vec, theirs_vec, ours, theirs, rtol=1e-12):
    assert type(ours) is type(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    assert ours_vec.vocabulary_ == theirs_vec.vocabulary_
    if theirs_vec.use_idf:
        assert ours_vec.idf_.dtype == theirs_vec.idf_.dtype
        np.testing.assert_array_equal(ours_vec.idf_, theirs_vec.idf_)
    a, b = ours.tocsr(), theirs.tocsr()
    a.sort_indices()
    b.sort_indices()
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.data, b.data, rtol=rtol, atol=0)
    np.testing.assert_array_equal(ours_vec.get_feature_names_out(), theirs_vec.get_feature_names_out())


def test_tfidf_documented_example():
    ours_vec, theirs_vec = TfidfVectorizer(), skt.TfidfVectorizer()
    assert_same_tfidf(ours_vec, theirs_vec, ours_vec.fit_transform(DOC_CORPUS), theirs_vec.fit_transform(DOC_CORPUS))
    assert ours_vec.get_feature_names_out().tolist() == ["and", "document", "first", "is", "one", "second", "the",
                                                         "third", "this"]
    assert isinstance(ours_vec, skt.TfidfVectorizer)


@pytest.mark.parametrize("options", [
    {},
    {"ngram_range": (1, 3)},
    {"ngram_range": (2, 3), "lowercase": False},
    {"min_df": 3, "max_df": 0.4},
    {"min_df": 0.001, "max_df": 50, "ngram_range": (1, 2)},
    {"norm": "l1"},
    {"use_idf": False},
    {"smooth_idf": False, "binary": True},
    {"dtype": np.float32, "ngram_range": (1, 2)},
])
def test_tfidf_on_dolly(dolly_responses, options):
    train, test = dolly_responses[:3000], dolly_responses[3000:3600]
    rtol = 1e-5 if options.get("dtype") == np.float32 else 1e-12
    ours_vec, theirs_vec = TfidfVectorizer(**options), skt.TfidfVectorizer(**options)
    assert_same_tfidf(ours_vec, theirs_vec, ours_vec.fit_transform(train), theirs_vec.fit_transform(train), rtol)
    assert_same_tfidf(ours_vec, theirs_vec, ours_vec.transform(test), theirs_vec.transform(test), rtol)
    refit = TfidfVectorizer(**options).fit(train)
    assert refit.vocabulary_ == theirs_vec.vocabulary_


def test_tfidf_on_all_of_dolly(dolly_responses):
    ours_vec, theirs_vec = TfidfVectorizer(ngram_range=(1, 2)), skt.TfidfVectorizer(ngram_range=(1, 2))
    assert_same_tfidf(ours_vec, theirs_vec, ours_vec.fit_transform(dolly_responses),
                      theirs_vec.fit_transform(dolly_responses))


def test_tfidf_inputs_as_sklearn_decodes_them(tmp_path):
    data = [d.encode("utf-8") for d in DOC_CORPUS] + ["naïve café déjà".encode("latin-1")]
    for kw in ({"decode_error": "replace"}, {"encoding": "latin-1"}):
        ours_vec, theirs_vec = TfidfVectorizer(**kw), skt.TfidfVectorizer(**kw)
        assert_same_tfidf(ours_vec, theirs_vec, ours_vec.fit_transform(data), theirs_vec.fit_transform(data))
    with pytest.raises(UnicodeDecodeError):
        TfidfVectorizer().fit(data)
    files = []
    for i, d in enumerate(DOC_CORPUS):
        files.append(tmp_path / f"{i}.txt")
        files[-1].write_text(d)
    ours_vec, theirs_vec = TfidfVectorizer(input="filename"), skt.TfidfVectorizer(input="filename")
    assert_same_tfidf(ours_vec, theirs_vec, ours_vec.fit_transform(files), theirs_vec.fit_transform(files))


@pytest.mark.parametrize("option, value", [
    ("stop_words", "english"), ("max_features", 10), ("tokenizer", str.split), ("analyzer", "char"),
    ("strip_accents", "unicode"), ("token_pattern", r"\b\w+\b"), ("sublinear_tf", True), ("norm", None),
    ("vocabulary", ["the", "is"]), ("preprocessor", str.upper), ("ngram_range", (1, 9)),
])
def test_tfidf_unsupported_options_are_named(option, value):
    with pytest.raises(ValueError, match=f"The '{option}' parameter of iterselect.sklearn.TfidfVectorizer must "
                                         "be .*the only value supported here"):
        TfidfVectorizer(**{option: value}).fit(DOC_CORPUS)


def test_tfidf_errors_as_sklearn():
    for docs, match in (("one string", "string object received"), ([""], "empty vocabulary"),
                        (["a b c"], "empty vocabulary"), ([], "empty vocabulary")):
        for cls in (TfidfVectorizer, skt.TfidfVectorizer):
            with pytest.raises(ValueError, match=match):
                cls().fit_transform(docs)
    for cls in (TfidfVectorizer, skt.TfidfVectorizer):
        with pytest.raises(ValueError, match="max_df corresponds to < documents than min_df"):
            cls(min_df=3, max_df=1).fit(DOC_CORPUS)
        with pytest.raises(ValueError, match="no terms remain"):
            cls(min_df=5, max_df=10).fit(DOC_CORPUS)
        with pytest.raises(NotFittedError):
            cls().transform(DOC_CORPUS)
        with pytest.raises(InvalidParameterError):
            cls(norm="l3").fit(DOC_CORPUS)


def test_tfidf_is_an_estimator():
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2)
    assert clone(vec).get_params() == skt.TfidfVectorizer(ngram_range=(1, 2), min_df=2).get_params()
    fitted = pickle.loads(pickle.dumps(vec.fit(DOC_CORPUS)))
    assert fitted.vocabulary_ == vec.vocabulary_
    assert (fitted.transform(DOC_CORPUS) != vec.transform(DOC_CORPUS)).nnz == 0
