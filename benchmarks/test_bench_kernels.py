"""pytest-benchmark suites of the kernels at fixed sizes, to compare a change with main.

    git checkout main && pytest benchmarks --benchmark-autosave      # saves .benchmarks/...
    git checkout my-branch && pytest benchmarks --benchmark-compare --benchmark-compare-fail=mean:10%

Data: the synthetic set of ``iterselect.bench`` (bundled Dolly, deterministic), so no file
outside the package is needed. `pytest tests` does not collect this folder (testpaths); the
million-row comparison against the references is ``iterselect bench``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

from iterselect import (affinity_propagation, coverage_greedy, facility_location, kcenter_greedy,  # noqa: E402
                        kmeans, tfidf_matrix, vendi_score)
from iterselect.bench.data import response_texts, synth_embeddings, synth_records  # noqa: E402

ROUNDS = dict(rounds=3, iterations=1, warmup_rounds=1)


@pytest.fixture(scope="module")
def X20k():
    return synth_embeddings(20_000)


@pytest.fixture(scope="module")
def texts5k():
    return response_texts(synth_records(5_000))


@pytest.fixture(scope="module")
def tfidf5k(texts5k):
    return tfidf_matrix(texts5k, progress=False).matrix


def test_kcenter_20k_k200(benchmark, X20k):
    r = benchmark.pedantic(kcenter_greedy, args=(X20k, 200), kwargs=dict(progress=False), **ROUNDS)
    assert r.indices.size == 200


def test_kcenter_20k_k200_float16(benchmark, X20k):
    X16 = X20k.astype(np.float16)
    r = benchmark.pedantic(kcenter_greedy, args=(X16, 200), kwargs=dict(progress=False), **ROUNDS)
    assert r.indices.size == 200


def test_tfidf_5k_texts(benchmark, texts5k):
    r = benchmark.pedantic(tfidf_matrix, args=(texts5k,), kwargs=dict(progress=False), **ROUNDS)
    assert r.matrix.shape[0] == 5_000


def test_coverage_5k_k200(benchmark, tfidf5k):
    w = np.random.default_rng(0).uniform(0.2, 1.0, tfidf5k.shape[0])
    r = benchmark.pedantic(coverage_greedy, args=(tfidf5k, 200), kwargs=dict(weights=w, progress=False),
                           **ROUNDS)
    assert r.indices.size == 200


def test_affinity_dense_1500(benchmark, X20k):
    X = X20k[:1500]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = benchmark.pedantic(affinity_propagation, args=(X,), kwargs=dict(progress=False), **ROUNDS)
    assert r.exemplars.size > 0


def test_affinity_sparse_20k(benchmark, X20k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = benchmark.pedantic(affinity_propagation, args=(X20k,),
                               kwargs=dict(n_neighbors=16, progress=False), **ROUNDS)
    assert r.exemplars.size > 0


def test_facility_20k_k200(benchmark, X20k):
    r = benchmark.pedantic(facility_location, args=(X20k, 200), kwargs=dict(n_neighbors=16, progress=False),
                           **ROUNDS)
    assert r.indices.size == 200


def test_kmeans_20k_64(benchmark, X20k):
    r = benchmark.pedantic(kmeans, args=(X20k, 64), kwargs=dict(gpu=False), **ROUNDS)
    assert r.centroids.shape == (64, X20k.shape[1])


def test_vendi_20k(benchmark, X20k):
    r = benchmark.pedantic(vendi_score, args=(X20k,), **ROUNDS)
    assert 1.0 <= r.score <= X20k.shape[1]


def test_ifd_toy_100(benchmark):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from iterselect.scoring import ifd_scores
    from iterselect.scoring.toy import toy_causal_lm, toy_tokenizer

    torch.set_num_threads(1)
    records = synth_records(100)
    tok = toy_tokenizer([r["instruction"] + "\n" + r["output"] for r in records], vocab_size=1024)
    model = toy_causal_lm(tok, "llama", hidden_size=64)
    r = benchmark.pedantic(ifd_scores, args=(model, tok, records), kwargs=dict(max_length=512, progress=False),
                           **ROUNDS)
    assert r.ifd.shape == (100,)
