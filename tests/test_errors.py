"""One error voice: the same bad input gives the same message on every path, in scikit-learn's
wording, and every warning and error class lives in iterselect.exceptions."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from iterselect import affinity_propagation, exceptions, kcenter_greedy, vendi_score
from iterselect.methods.baselines import random_select

from conftest import emulation_available, needs_faiss

ZERO_ROW = r"must be rows of non-zero norm \(the cosine of a zero row is undefined\)\. Got a zero row at index 2 instead\."


def with_zero_rows(dtype=np.float32):
    X = np.random.default_rng(0).normal(size=(12, 5)).astype(dtype)
    X[[2, 7]] = 0.0  # the lowest zero row is the one reported
    X[7, 3] = -0.0
    return X


def backends():
    return ["cpu", "cuda-emulation"] if emulation_available() else ["cpu"]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_zero_row_for_cosine_same_message_everywhere(dtype):
    X = with_zero_rows(dtype)
    calls = {f"kcenter_greedy {b}": (lambda b=b: kcenter_greedy(X, 3, metric="cosine", backend=b, progress=False))
             for b in backends()}
    calls.update({f"affinity_propagation {b}": (lambda b=b: affinity_propagation(X, metric="cosine", backend=b,
                                                                                  progress=False))
                  for b in backends()})
    calls["vendi_score"] = lambda: vendi_score(X)
    for where, call in calls.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError, match=ZERO_ROW):
                call()


@needs_faiss
def test_zero_row_for_cosine_sparse_affinity():
    with pytest.raises(ValueError, match="'X_or_S' parameter of affinity_propagation " + ZERO_ROW):
        affinity_propagation(with_zero_rows(), metric="cosine", n_neighbors=4, progress=False)


def test_values_are_shown_unquoted():
    with pytest.raises(ValueError, match=r"The 'metric' parameter of kcenter_greedy must be one of "
                                         r"\{'euclidean', 'cosine'\}\. Got manhattan instead\.$"):
        kcenter_greedy(np.eye(3), 1, metric="manhattan")
    with pytest.raises(ValueError, match=r"Got an array of shape \(3,\) instead\.$"):
        kcenter_greedy(np.ones(3), 1)


def test_every_warning_and_error_class_is_in_exceptions():
    import iterselect
    from iterselect import io, runs
    from iterselect.scoring import formatting

    for name in ("ConvergenceWarning", "DataError", "RecordError", "RunError", "ScoringWarning"):
        cls = getattr(exceptions, name)
        assert getattr(iterselect, name) is cls
        assert issubclass(cls, (ValueError, UserWarning))
    assert io.DataError is exceptions.DataError and runs.RunError is exceptions.RunError
    assert formatting.RecordError is exceptions.RecordError


def test_baselines_take_samples_then_k():
    records = [{"output": str(i)} for i in range(10)]
    assert (random_select(records, 4, seed=3).indices.tolist()
            == random_select(10, 4, seed=3).indices.tolist())
    with pytest.raises(TypeError, match="'X' parameter of random_select"):
        random_select(object(), 2)
