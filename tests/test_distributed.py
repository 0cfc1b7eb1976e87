"""The distributed selectors on a real local Ray cluster (2 CPUs, 2-4 actors), against the
single-process kernels: the same indices (ties by the lowest index), values bit for bit, every
input form, warm starts, and an actor killed mid-run. The drivers' logic is tried on many more
cases in one process by test_sharded.py; here hypothesis keeps to a few cases, since every call
is several round trips between processes."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import iterselect

from conftest import require_module
from reference_kmeans import lloyd_reference

ray = require_module("ray", "ray", module_level=True)
from iterselect import distributed  # noqa: E402  (needs ray)
from iterselect.distributed._cluster import ShardGroup, release_idle_actors  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One small local cluster for the module; the actors are kept between calls."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        with distributed.reuse_actors():
            yield
    finally:
        ray.shutdown()


SMALL = dict(num_cpus=0.5)  # every actor this size: the pool reuses them across calls (4 fit in 2 CPUs)


def assert_kcenter_same(got, ref):
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_array_equal(got.radii, ref.radii)
    np.testing.assert_array_equal(got.min_distances, ref.min_distances)
    assert got.radii.dtype == ref.radii.dtype and got.min_distances.dtype == ref.min_distances.dtype


# ----------------------------------------------------------------------------- k-center

def test_kcenter_on_dolly_batches_several_picks_per_round_trip(dolly_embeddings):
    X = dolly_embeddings[:2000]
    ref = iterselect.kcenter_greedy(X, 300, metric="cosine", progress=False)
    got = distributed.kcenter_greedy(X, 300, metric="cosine", num_shards=3, **SMALL, progress=False)
    assert_kcenter_same(got, ref)
    s = got.stats
    assert (s.shards, s.picks, s.restarts) == (3, 300, 0)
    assert s.rounds < s.picks and s.bytes_to_shards > 0 and s.bytes_from_shards > 0
    assert len(s.peak_memory) == 3 and min(s.peak_memory) > 0


def test_kcenter_without_min_distances(dolly_embeddings):
    X = dolly_embeddings[:600]
    ref = iterselect.kcenter_greedy(X, 40, progress=False)
    got = distributed.kcenter_greedy(X, 40, num_shards=2, **SMALL, progress=False, min_distances=False)
    np.testing.assert_array_equal(got.indices, ref.indices)
    np.testing.assert_array_equal(got.radii, ref.radii)
    assert got.min_distances is None and got.final_evaluations == 0


def test_kcenter_from_npy_files_and_a_memory_mapped_file(tmp_path, dolly_embeddings):
    X = dolly_embeddings[:900].astype(np.float64)
    whole = tmp_path / "all.npy"
    np.save(whole, X)
    paths = []
    for i, (lo, hi) in enumerate([(0, 250), (250, 600), (600, 900)]):
        paths.append(tmp_path / f"part{i}.npy")
        np.save(paths[-1], X[lo:hi])
    ref = iterselect.kcenter_greedy(X, 120, selected=[5, 400, 899], progress=False)
    assert_kcenter_same(distributed.kcenter_greedy(str(whole), 120, selected=[5, 400, 899], num_shards=2, **SMALL,
                                                   progress=False), ref)
    assert_kcenter_same(distributed.kcenter_greedy(paths, 120, selected=[5, 400, 899], progress=False), ref)


def test_kcenter_from_a_ray_dataset(dolly_embeddings):
    X = dolly_embeddings[:600].astype(np.float32)
    release_idle_actors(ray)  # building the dataset runs Ray tasks: they need the CPUs idle actors hold
    ds = ray.data.from_numpy(X)
    ref = iterselect.kcenter_greedy(X, 50, seed_index=17, progress=False)
    assert_kcenter_same(distributed.kcenter_greedy(ds, 50, seed_index=17, num_shards=2, **SMALL, progress=False), ref)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_kcenter_ties_and_duplicates(data):
    n = data.draw(st.integers(2, 24))
    dtype = data.draw(st.sampled_from([np.float16, np.float32, np.float64]))
    metric = data.draw(st.sampled_from(["euclidean", "cosine"]))
    X = np.array(data.draw(st.lists(st.lists(st.integers(-1, 1), min_size=3, max_size=3), min_size=n, max_size=n)),
                 dtype=dtype)
    if metric == "cosine":
        X[~X.any(axis=1), 0] = 1
    pool = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=min(3, n - 1)))  # k >= 1 left
    k = data.draw(st.integers(1, n - len(pool)))
    kw = dict(metric=metric, selected=pool or None, progress=False)
    got = distributed.kcenter_greedy(X, k, num_shards=data.draw(st.integers(1, 4)), **SMALL,
                                     candidates=data.draw(st.integers(1, 3)), **kw)
    assert_kcenter_same(got, iterselect.kcenter_greedy(X, k, **kw))


def kill_actor(index: int, at_call: int):
    """A fault hook that kills the actor of shard ``index`` (Ray restarts it) once, at the
    group's ``at_call``-th call_all."""
    def hook(group, method, call):
        if call == at_call:
            ray.kill(group.actors[index], no_restart=False)
    return hook


@pytest.mark.parametrize("checkpoint_every", [0, 4])
def test_kcenter_survives_a_killed_actor(monkeypatch, dolly_embeddings, checkpoint_every):
    X = dolly_embeddings[:1200]
    ref = iterselect.kcenter_greedy(X, 150, progress=False)
    monkeypatch.setattr(ShardGroup, "fault_hook", staticmethod(kill_actor(1, 9)))
    got = distributed.kcenter_greedy(X, 150, num_shards=2, **SMALL, candidates=4, checkpoint_every=checkpoint_every,
                                     progress=False)
    assert_kcenter_same(got, ref)
    assert got.stats.restarts >= 1


# ----------------------------------------------------------------------------- coverage, TF-IDF

@pytest.mark.parametrize("weighting", ["sklearn", "paper"])
def test_tfidf_and_coverage_on_dolly(dolly_responses, weighting):
    texts = dolly_responses[:1500]
    ref = iterselect.tfidf_matrix(texts, weighting=weighting, progress=False)
    got = distributed.tfidf_matrix(texts, weighting=weighting, num_shards=3, **SMALL)
    assert got.vocabulary.tolist() == ref.vocabulary.tolist() and got.weighting == weighting
    np.testing.assert_array_equal(got.df, ref.df)
    np.testing.assert_array_equal(got.idf, ref.idf)
    for a in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(got.matrix, a), getattr(ref.matrix, a))
    w = np.random.default_rng(0).random(len(texts))
    want = iterselect.coverage_greedy(ref.matrix, 100, weights=w, selected=[3, 9], progress=False)
    have = distributed.coverage_greedy(ref.matrix, 100, weights=w, selected=[3, 9], num_shards=2, progress=False,
                                       **SMALL)
    for a in ("indices", "gains", "alpha"):
        np.testing.assert_array_equal(getattr(have, a), getattr(want, a))


@pytest.mark.parametrize("weighting", ["sklearn", "paper"])
def test_iterit_select_on_dolly(dolly_responses, weighting):
    texts = dolly_responses[:800]
    ifd = np.random.default_rng(1).uniform(0.2, 1.2, len(texts))
    ifd[::37] = np.nan
    want = iterselect.iterit_select(texts, 60, ifd, weighting=weighting, progress=False)
    have = distributed.iterit_select(texts, 60, ifd, weighting=weighting, num_shards=2, **SMALL, progress=False)
    np.testing.assert_array_equal(have.indices, want.indices)
    np.testing.assert_array_equal(have.gains, want.gains)


def test_coverage_survives_a_killed_actor(monkeypatch):
    X = sp.random_array((300, 40), density=0.2, random_state=2, format="csr")
    want = iterselect.coverage_greedy(X, 60, progress=False)
    monkeypatch.setattr(ShardGroup, "fault_hook", staticmethod(kill_actor(0, 6)))
    have = distributed.coverage_greedy(X, 60, num_shards=2, **SMALL, candidates=2, checkpoint_every=3, progress=False)
    np.testing.assert_array_equal(have.indices, want.indices)
    np.testing.assert_array_equal(have.gains, want.gains)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_coverage_ties_and_duplicates(data):
    n = data.draw(st.integers(2, 20))
    X = np.array(data.draw(st.lists(st.lists(st.sampled_from([0.0, 0.0, 1.0]), min_size=4, max_size=4),
                                    min_size=n, max_size=n)))
    k = data.draw(st.integers(1, n))
    decay = data.draw(st.sampled_from([0.0, 0.5]))
    want = iterselect.coverage_greedy(X, k, decay=decay, progress=False)
    have = distributed.coverage_greedy(X, k, decay=decay, num_shards=data.draw(st.integers(1, 3)), candidates=2,
                                       progress=False, **SMALL)
    np.testing.assert_array_equal(have.indices, want.indices)
    np.testing.assert_array_equal(have.gains, want.gains)


# ----------------------------------------------------------------------------- facility location

def test_facility_location_on_a_knn_graph(dolly_embeddings):
    require_module("faiss", "faiss")
    G = iterselect.knn_similarity_graph(dolly_embeddings[:1000], 10)
    q = np.random.default_rng(3).random(1000)
    kw = dict(quality=q, quality_weight=0.3, selected=[0, 500], progress=False)
    want = iterselect.facility_location_graph(G, 80, **kw)
    have = distributed.facility_location_graph(G, 80, num_shards=3, **SMALL, **kw)
    np.testing.assert_array_equal(have.indices, want.indices)
    np.testing.assert_array_equal(have.gains, want.gains)
    np.testing.assert_array_equal(have.current, want.current)
    assert have.objective == want.objective


# ----------------------------------------------------------------------------- k-means

def test_kmeans_is_float64_lloyd_and_feeds_kmq(dolly_embeddings):
    require_module("faiss", "faiss")
    X = dolly_embeddings[:1500].astype(np.float64)
    init = X[np.random.default_rng(4).choice(1500, 12, replace=False)]
    C, labels, objective = lloyd_reference(X, init, 8)
    got = distributed.kmeans(X, 12, init=init, niter=8, num_shards=3, **SMALL)
    np.testing.assert_array_equal(got.labels, labels)
    np.testing.assert_allclose(got.centroids, C, rtol=1e-12, atol=1e-15)  # shards' sums added in another order
    np.testing.assert_allclose(got.objective, objective, rtol=1e-12)
    sample = iterselect.kmq_sample(got.labels, 100, seed=0)
    np.testing.assert_array_equal(sample.indices, iterselect.kmq_sample(labels, 100, seed=0).indices)


def test_errors_are_checked_before_any_actor_starts():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="The 'k' parameter of kcenter_greedy"):
        distributed.kcenter_greedy(X, 9, progress=False)
    with pytest.raises(ValueError, match="The 'num_shards' parameter of kmeans"):
        distributed.kmeans(X, 2, num_shards=0)
    with pytest.raises(ValueError, match=r"^The 'X' parameter of kcenter_greedy .* zero row at index 2 instead"):
        distributed.kcenter_greedy(np.array([[1.0, 0], [0, 1], [0, 0]]), 2, metric="cosine", num_shards=2, **SMALL,
                                   progress=False)


def test_cli_kcenter_with_ray_writes_the_same_selection(tmp_path, dolly_records, dolly_embeddings):
    import json

    from iterselect import cli

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in dolly_records[:400]))
    np.save(tmp_path / "e.npy", dolly_embeddings[:400])
    outs = []
    for extra in ([], ["--ray"], ["--ray", "auto"]):
        outs.append(tmp_path / f"out{len(outs)}.jsonl")
        assert cli.main(["select", "kcenter", "--budget", "40", "--input", str(data), "--embeddings",
                         str(tmp_path / "e.npy"), "--metric", "cosine", "--output", str(outs[-1]), "--no-progress"]
                        + extra) == 0
    assert outs[0].read_text() == outs[1].read_text() == outs[2].read_text()
