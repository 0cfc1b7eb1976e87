"""The scikit-learn / apricot-style estimators (iterselect.estimators).

Each estimator must pick what its function picks, return the selected rows in X's kind, clone,
pickle and pass scikit-learn's estimator checks, except the checks listed in ``NOT_APPLICABLE``
(each with the reason it does not apply to a selector; they run as expected failures).
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from conftest import needs_faiss, require_module

require_module("sklearn", "sklearn", module_level=True)

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import iterselect  # noqa: E402
from iterselect.estimators import (AffinityPropagationSelection, CoverageSelection,  # noqa: E402
                                   FacilityLocationSelection, KCenterGreedy, KMQSampler)


# ----------------------------------------------------------------------------- scikit-learn's checks

_ROWS = "a selector's transform returns the n_samples selected rows, not one row per input row"
_FITTED_DATA = ("transform takes the rows selected at fit from the data it was fitted on, so it is not a "
                "function of each input row and refuses other data")
_QUALITY = ("sample_weight is the method's own weight or quality score, for which all zeros is valid input "
            "(it ranks nothing higher)")
_POSITIONS = ("a selection is of positions: a weight of 2 is not a repeated row, and the check transforms "
              "other data than it fitted")
NOT_APPLICABLE = {
    "check_transformer_general": _ROWS,
    "check_transformer_data_not_an_array": _ROWS,
    "check_methods_sample_order_invariance": _FITTED_DATA,
    "check_methods_subset_invariance": _FITTED_DATA,
    "check_fit_idempotent": _FITTED_DATA,
    "check_pipeline_consistency": ("fit_transform(X, y) returns (X[ranking_], y[ranking_]), as apricot's "
                                   "selectors do; the check compares single arrays"),
    "check_sample_weight_equivalence_on_dense_data": _POSITIONS,
    "check_sample_weight_equivalence_on_sparse_data": _POSITIONS,
    "check_all_zero_sample_weights_error": _QUALITY,
}
_NO_WEIGHT = "k-center greedy has no per-sample weight, so fit refuses a sample_weight"
KCENTER_NOT_APPLICABLE = {
    "check_sample_weights_pandas_series": _NO_WEIGHT,
    "check_sample_weights_not_an_array": _NO_WEIGHT,
    "check_sample_weights_list": _NO_WEIGHT,
    "check_sample_weights_shape": _NO_WEIGHT,
    "check_sample_weights_not_overwritten": _NO_WEIGHT,
    "check_all_zero_sample_weights_error": _NO_WEIGHT,
}
COVERAGE_NOT_APPLICABLE = {
    "check_positive_only_tag_during_fit": ("the error for a negative value speaks the package's voice (\"The "
                                           "'X' parameter of coverage_greedy must be a nonnegative matrix ...\"), "
                                           "not scikit-learn's \"Negative values in data\""),
}


def not_applicable(estimator) -> dict:
    extra = {KCenterGreedy: KCENTER_NOT_APPLICABLE, CoverageSelection: COVERAGE_NOT_APPLICABLE}
    return {**NOT_APPLICABLE, **extra.get(type(estimator), {})}


ESTIMATORS = [KCenterGreedy(1), CoverageSelection(1), AffinityPropagationSelection(1)]
try:
    import faiss  # noqa: F401

    ESTIMATORS += [KMQSampler(1, n_clusters=1), FacilityLocationSelection(1, n_neighbors=3)]
except ImportError:
    pass


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=not_applicable, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_every_estimator_is_checked():
    """The list above skips none silently: KMQSampler and FacilityLocationSelection need faiss."""
    require_module("faiss", "faiss")
    assert len(ESTIMATORS) == 5


# ----------------------------------------------------------------------------- same picks as the functions

rng = np.random.default_rng(3)
X = rng.normal(size=(80, 6))


def test_kcenter_greedy_is_kcenter_greedy():
    sel = KCenterGreedy(7, initial_subset=[1, 2], metric="cosine").fit(X)
    r = iterselect.kcenter_greedy(X, 7, selected=[1, 2], metric="cosine", progress=False)
    np.testing.assert_array_equal(sel.ranking_, r.indices)
    np.testing.assert_array_equal(sel.radii_, r.radii)
    np.testing.assert_array_equal(sel.min_distances_, r.min_distances)
    np.testing.assert_array_equal(sel.transform(X), X[r.indices])
    assert not hasattr(sel, "gains_") and not hasattr(sel, "gains")


def test_coverage_selection_is_coverage_greedy():
    C = np.abs(X)
    w = rng.uniform(0.1, 1.0, size=80)
    sel = CoverageSelection(9, decay=0.3, initial_subset=[5]).fit(C, sample_weight=w)
    r = iterselect.coverage_greedy(C, 9, weights=w, decay=0.3, selected=[5], progress=False)
    np.testing.assert_array_equal(sel.ranking_, r.indices)
    np.testing.assert_array_equal(sel.gains_, r.gains)
    np.testing.assert_array_equal(sel.alpha_, r.alpha)


def test_coverage_selection_takes_tfidf_from_the_drop_in(dolly_responses):
    from scipy import sparse

    from iterselect.sklearn import TfidfVectorizer

    texts = dolly_responses[:300]
    T = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(texts)
    ifd = np.random.default_rng(0).uniform(0.2, 0.9, size=len(texts))
    sel = CoverageSelection(20).fit(T, sample_weight=ifd)
    r = iterselect.coverage_greedy(iterselect.tfidf_matrix(texts, (1, 2), progress=False).matrix, 20,
                                   weights=ifd, progress=False)
    np.testing.assert_array_equal(sel.ranking_, r.indices)
    assert sparse.issparse(sel.transform(T)) and sel.transform(T).shape == (20, T.shape[1])


def test_affinity_propagation_selection_is_insbank_first_round():
    from iterselect.methods import InsBank

    Xs = X[:40]
    q = rng.uniform(0.0, 1.0, size=40)
    for combine, preference in (("multiply", 0.0), ("add", 0.0), ("multiply", None)):
        sel = AffinityPropagationSelection(10, combine=combine, gamma=2.0, preference=preference)
        sel.fit(Xs, sample_weight=q)
        bank = InsBank(10, combine=combine, gamma=2.0, progress=False,
                       preference="median" if preference is None else preference).select_round(Xs, q)
        np.testing.assert_array_equal(sel.ranking_, bank.indices)
        np.testing.assert_allclose(sel.gains_, bank.scores, rtol=1e-12)


def test_affinity_propagation_selection_ranks_by_representation():
    Xs = X[:40]
    sel = AffinityPropagationSelection(10, initial_subset=[0, 1]).fit(Xs)
    ap = iterselect.affinity_propagation(Xs, dtype=np.float64, return_messages=True, progress=False)
    rep = iterselect.representation_scores(ap.responsibility, ap.availability)
    np.testing.assert_array_equal(sel.representation_, rep)
    expected = [int(i) for i in np.lexsort((np.arange(40), -rep)) if i not in (0, 1)][:10]
    assert sel.ranking_.tolist() == expected
    np.testing.assert_array_equal(sel.gains_, rep[expected])
    np.testing.assert_array_equal(sel.exemplars_, ap.exemplars)


@needs_faiss
def test_kmq_sampler_is_kmeans_then_kmq_sample():
    q = rng.uniform(0.0, 1.0, size=80)
    sel = KMQSampler(12, n_clusters=4, random_state=5, within="softmax").fit(X, sample_weight=q)
    km = iterselect.kmeans(X, 4, seed=5)
    r = iterselect.kmq_sample(km.labels, 12, quality=q, within="softmax", seed=5)
    np.testing.assert_array_equal(sel.labels_, km.labels)
    np.testing.assert_array_equal(sel.ranking_, r.indices)
    np.testing.assert_array_equal(sel.per_cluster_, r.per_cluster)
    assert not hasattr(sel, "gains_")


def test_facility_location_selection_is_facility_location():
    require_module("faiss", "faiss")
    from iterselect.facility import facility_location

    q = rng.uniform(0.0, 1.0, size=80)
    sel = FacilityLocationSelection(8, n_neighbors=10, metric="cosine", quality_weight=0.3,
                                    initial_subset=[4]).fit(X, sample_weight=q)
    r = facility_location(X, 8, n_neighbors=10, metric="cosine", quality=q, quality_weight=0.3, selected=[4],
                          progress=False)
    np.testing.assert_array_equal(sel.ranking_, r.indices)
    np.testing.assert_array_equal(sel.gains_, r.gains)


def test_facility_location_selection_swaps_for_apricot():
    """An apricot user swaps one import: the same picks and gains as apricot's exact greedy on
    its dense euclidean similarities."""
    require_module("faiss", "faiss")
    apricot = require_module("apricot", "test")
    Xs = rng.normal(size=(60, 5))
    ours = FacilityLocationSelection(10, metric="euclidean").fit(Xs)
    theirs = apricot.FacilityLocationSelection(10, metric="euclidean", optimizer="naive").fit(Xs)
    assert ours.ranking.tolist() == theirs.ranking.tolist()
    np.testing.assert_allclose(ours.gains, theirs.gains, rtol=1e-9)
    np.testing.assert_array_equal(ours.transform(Xs), theirs.transform(Xs))


# ----------------------------------------------------------------------------- kinds, apricot's transform

@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_transform_returns_rows_in_the_input_kind(dtype):
    torch = require_module("torch", "torch")
    Xi = np.round(X * 4) / 4
    Xt = torch.as_tensor(Xi, dtype=getattr(torch, dtype))
    sel = KCenterGreedy(5).fit(Xt)
    expected = iterselect.kcenter_greedy(Xt, 5, progress=False).indices.numpy()
    np.testing.assert_array_equal(sel.ranking_, expected)
    out = sel.transform(Xt)
    assert isinstance(out, torch.Tensor) and out.dtype == Xt.dtype
    assert torch.equal(out, Xt[torch.as_tensor(expected)])
    assert sel.n_features_in_ == 6


def test_numpy_inputs_as_scikit_learn_takes_them():
    ml_dtypes = require_module("ml_dtypes", "test")
    Xi = np.round(X * 4) / 4
    for data in (Xi.astype(np.float16), Xi.astype(ml_dtypes.bfloat16), Xi.tolist(), (Xi * 4).astype(np.int64)):
        sel = KCenterGreedy(5).fit(data)
        np.testing.assert_array_equal(sel.ranking_, KCenterGreedy(5).fit(Xi).ranking_)
    assert KCenterGreedy(3).fit_transform(Xi.astype(np.float16)).dtype == np.float16


def test_transform_takes_y_and_sample_weight_as_apricot_does():
    y = np.arange(80) * 10
    w = np.linspace(0, 1, 80)
    sel = KCenterGreedy(4).fit(X)
    r = sel.ranking_
    Xs, ys = sel.transform(X, y)
    np.testing.assert_array_equal(ys, y[r])
    Xs, none, ws = sel.transform(X, sample_weight=w)
    assert none is None
    np.testing.assert_array_equal(ws, w[r])
    Xs2, ys2, ws2 = sel.transform(X, list(y), w)
    assert ys2 == [int(v) for v in y[r]]
    np.testing.assert_array_equal(Xs2, X[r])


def test_transform_refuses_other_data():
    sel = KCenterGreedy(4).fit(X)
    with pytest.raises(ValueError, match="X has 5 features, but KCenterGreedy is expecting 6"):
        sel.transform(X[:, :5])
    with pytest.raises(ValueError, match="X has 79 rows, but KCenterGreedy was fitted on 80"):
        sel.transform(X[:79])
    with pytest.raises(NotFittedError):
        KCenterGreedy(4).transform(X)


# ----------------------------------------------------------------------------- clone, params, pickle

@pytest.mark.parametrize("estimator", [
    KCenterGreedy(5, metric="cosine", initial_subset=[3]),
    CoverageSelection(5, decay=0.5),
    AffinityPropagationSelection(5, damping=0.7, combine="add"),
])
def test_clone_params_pickle(estimator):
    data = np.abs(X)
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and copy is not estimator
    fitted = estimator.fit(data)
    back = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(back.ranking_, fitted.ranking_)
    np.testing.assert_array_equal(back.transform(data), fitted.transform(data))
    other = clone(fitted).set_params(n_samples=3).fit(data)
    assert other.ranking_.size == 3 and not hasattr(clone(fitted), "ranking_")


# ----------------------------------------------------------------------------- errors in the package's voice

@pytest.mark.parametrize("estimator, message", [
    (KCenterGreedy(81), r"The 'n_samples' parameter of KCenterGreedy must be an int in the range \[1, 80\]. "
                        r"Got 81 instead."),
    (KCenterGreedy(5, initial_subset=[1, 1]), "The 'initial_subset' parameter of KCenterGreedy must be indices "
                                              "without duplicates. Got 1 more than once instead."),
    (KCenterGreedy(5, metric="manhattan"), "The 'metric' parameter of KCenterGreedy must be one of"),
    (KCenterGreedy(5, n_jobs=0), r"The 'n_jobs' parameter of KCenterGreedy must be an int in the range \[1, inf\]"),
    (CoverageSelection(5, decay=2.0), r"The 'decay' parameter of CoverageSelection must be a float in the "
                                      r"range \[0.0, 1.0\]. Got 2.0 instead."),
    (AffinityPropagationSelection(5, damping=0.2), "The 'damping' parameter of AffinityPropagationSelection"),
    (AffinityPropagationSelection(5, combine="max"), "The 'combine' parameter of AffinityPropagationSelection"),
])
def test_parameters_are_checked_in_fit(estimator, message):
    with pytest.raises((ValueError, TypeError), match=message):
        estimator.fit(np.abs(X))


def test_sample_weight_errors():
    with pytest.raises(ValueError, match="The 'sample_weight' parameter of KCenterGreedy.fit must be None"):
        KCenterGreedy(3).fit(X, sample_weight=np.ones(80))
    with pytest.raises(ValueError, match=r"The 'sample_weight' parameter of CoverageSelection.fit must be "
                                         r"non-negative"):
        CoverageSelection(3).fit(np.abs(X), sample_weight=-np.ones(80))
    with pytest.raises(ValueError, match="sample_weight' parameter of AffinityPropagationSelection.fit must be a "
                                         "1-D array of length 80"):
        AffinityPropagationSelection(3).fit(X, sample_weight=np.ones(79))


# ----------------------------------------------------------------------------- the deprecated name

def test_kcenter_selector_is_a_deprecated_kcenter_greedy():
    with pytest.deprecated_call():
        sel = iterselect.KCenterSelector(k=7, progress=False)
    sel.fit(X, selected=[1, 2])
    expected = iterselect.kcenter_greedy(X, 7, selected=[1, 2], progress=False)
    np.testing.assert_array_equal(sel.ranking_, expected.indices)
    np.testing.assert_array_equal(sel.radii_, expected.radii)
    np.testing.assert_array_equal(sel.transform(X), X[expected.indices])
    assert isinstance(sel, KCenterGreedy)
    with pytest.deprecated_call():
        copy = clone(sel)
    assert copy.get_params() == {"k": 7, "metric": "euclidean", "seed_index": 0, "threads": None,
                                 "progress": False, "backend": "auto"}
