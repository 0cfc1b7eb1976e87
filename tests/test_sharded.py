"""The sharded selectors' pieces in one process (no Ray): the C++ k-center shard, TF-IDF in two
steps, and each distributed driver run on workers held in this process, against the
single-process kernels. Cheap, so hypothesis tries many cases here; test_distributed.py runs
the same drivers on a real Ray cluster."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import iterselect
from iterselect import _backends
from iterselect._arrays import as_matrix
from iterselect.coverage._counts import ngram_counts, ngram_idf, tfidf_weigh
from iterselect.distributed import coverage as dcoverage
from iterselect.distributed import facility as dfacility
from iterselect.distributed import kcenter as dkcenter
from iterselect.distributed._candidates import CandidatePool
from iterselect.distributed._shards import Shard, row_ranges

from reference_kcenter import kcenter_reference

core = _backends.core


class LocalGroup:
    """The drivers' view of a ShardGroup with the workers in this process."""

    def __init__(self, worker_cls, shards, params):
        self.workers = [worker_cls(s, threads=1, **params) for s in shards]

    def call_all(self, method, *args, update=None):
        out = []
        for w in self.workers:
            if update is not None:
                w.apply(update)
            out.append(getattr(w, method)(*args))
        return out

    def call_one(self, i, method, *args):
        return getattr(self.workers[i], method)(*args)


def same(put):
    return put


def assert_same(ref, **got):
    """Each named field of the single-process result ``ref`` equals the given array exactly."""
    for name, value in got.items():
        np.testing.assert_array_equal(value, getattr(ref, name), err_msg=name)


def local_kcenter(X, k, parts, m, **kw):
    """k-center through the distributed driver on in-process shards: (picks, radii, min_dist)."""
    mat = as_matrix(X, "X", "test")
    ranges = row_ranges(mat.shape[0], parts)
    shards = [Shard(lo, hi - lo, "blocks", [mat.host[lo:hi]], dtype=mat.dtype) for lo, hi in ranges]
    metric = kw.get("metric", "euclidean")
    group = LocalGroup(dkcenter.KCenterWorker, shards, dict(metric=metric))
    offsets = np.array([lo for lo, _ in ranges] + [mat.shape[0]], np.int64)
    pool = np.asarray(kw.get("selected") or [], np.int64)
    picks, radii, finished, _, _ = dkcenter._run(group, offsets, k, pool, kw.get("seed_index", 0), m, metric,
                                                 mat.dtype, False)
    out = np.float64 if mat.dtype == "float64" else np.float32
    return (np.asarray(picks), np.asarray(radii).astype(out),
            np.concatenate([f[2] for f in finished]).astype(out))


def assert_kcenter_equal(X, k, parts, m, **kw):
    ref = iterselect.kcenter_greedy(X, k, progress=False, **kw)
    picks, radii, min_d = local_kcenter(X, k, parts, m, **kw)
    assert_same(ref, indices=picks, radii=radii, min_distances=min_d)


# ----------------------------------------------------------------------------- the k-center shard

@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_shard_top_is_the_reference_farthest_point(metric):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 5))
    shard = core.KCenterShard(X, "float64", metric, 1)
    shard.add_centers(X[[7]], np.array([7]))
    shard.refresh_all()
    idx, val, rest, rest_val = shard.top(3)
    _, _, _, states = kcenter_reference(X, 2, metric=metric, seed_index=7, trace=True)
    masked = states[1]
    order = np.lexsort((np.arange(40), -masked))
    assert idx.tolist() == order[:3].tolist() and rest == order[3]
    scale = (lambda d: 2 * d) if metric == "cosine" else (lambda d: d ** 2)
    np.testing.assert_allclose(val, scale(masked[order[:3]]), rtol=1e-12)
    np.testing.assert_allclose(rest_val, scale(masked[order[3]]), rtol=1e-12)


def test_shard_pair_sq_is_the_canonical_distance():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 37)).astype(np.float32)
    d = core.kcenter_pair_sq(X, X[[2, 9]], "float32", "euclidean", 1)
    shard = core.KCenterShard(X, "float32", "euclidean", 1)
    shard.add_centers(X[[2]], np.array([-1]))
    shard.refresh_all()
    idx, val, _, _ = shard.top(30)
    np.testing.assert_array_equal(val, d[idx, 0])  # the same float32 values, widened
    np.testing.assert_allclose(d, ((X[:, None].astype(np.float64) - X[[2, 9]][None]) ** 2).sum(-1), rtol=1e-5)


def test_shard_save_load_replays_only_the_new_centers():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 8)).astype(np.float32)
    a = core.KCenterShard(X, "float32", "euclidean", 1)
    centers = rng.choice(200, 12, replace=False)
    a.add_centers(X[centers[:6]], centers[:6])
    a.refresh_all()
    a.top(5)
    saved = a.save()
    a.add_centers(X[centers[6:]], centers[6:])
    expected = a.top(7)
    b = core.KCenterShard(X, "float32", "euclidean", 1)
    b.load(*saved)
    with pytest.raises(ValueError, match="only 0 were added back"):
        b.top(1)
    b.add_centers(X[centers], centers)
    got = b.top(7)
    for x, y in zip(got, expected):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(b.min_distances(), a.min_distances())


def test_shard_errors():
    X = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="row 0 of the shard has zero norm"):
        core.KCenterShard(X, "float32", "cosine", 1)
    s = core.KCenterShard(np.ones((3, 2), np.float32), "float32", "euclidean", 1)
    with pytest.raises(ValueError, match="local"):
        s.add_centers(np.ones((1, 2), np.float32), np.array([3]))
    with pytest.raises(ValueError, match="columns"):
        s.add_centers(np.ones((1, 3), np.float32), np.array([0]))


# ----------------------------------------------------------------------------- the certificate

def test_candidate_pool_certifies_by_value_then_lower_index():
    answers = [(np.array([0, 1]), np.array([5.0, 3.0]), 2, 3.0),
               (np.array([0]), np.array([3.0]), 1, 2.0)]
    pool = CandidatePool(answers, np.array([0, 10, 20]))
    assert pool.ids.tolist() == [0, 1, 10] and (pool.rest_id, pool.rest_value) == (2, 3.0)
    j = pool.best()
    assert pool.ids[j] == 0 and pool.certified(j)
    pool.taken[j] = True
    j = pool.best()
    assert pool.ids[j] == 1 and pool.certified(j)  # 3.0 ties the rest bound of row 2: index 1 wins
    pool.taken[j] = True
    j = pool.best()
    assert pool.ids[j] == 10 and not pool.certified(j)  # row 2 (3.0) may beat row 10 (3.0)


# ----------------------------------------------------------------------------- k-center driver

def test_kcenter_driver_on_dolly(dolly_embeddings):
    X = dolly_embeddings[:1500]
    assert_kcenter_equal(X, 200, 3, 5, metric="cosine")
    assert_kcenter_equal(X.astype(np.float64), 150, 4, 1, selected=[3, 99, 1000])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_kcenter_driver_ties_and_duplicates(data):
    n = data.draw(st.integers(1, 30))
    d = data.draw(st.integers(1, 4))
    dtype = data.draw(st.sampled_from([np.float16, np.float32, np.float64]))
    metric = data.draw(st.sampled_from(["euclidean", "cosine"]))
    grid = data.draw(st.lists(st.lists(st.integers(-2, 2), min_size=d, max_size=d), min_size=n, max_size=n))
    X = np.array(grid, dtype=dtype)
    if metric == "cosine":
        X[~X.any(axis=1), 0] = 1  # no zero rows
    pool = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n - 1)) if n > 1 else []
    k = data.draw(st.integers(1, n - len(pool)))
    parts = data.draw(st.integers(1, 4))
    m = data.draw(st.integers(1, 3))
    seed = data.draw(st.integers(0, n - 1))
    assert_kcenter_equal(X, k, parts, m, metric=metric, selected=pool or None, seed_index=seed)


# ----------------------------------------------------------------------------- TF-IDF in two steps

@pytest.mark.parametrize("weighting", ["sklearn", "paper"])
def test_counts_then_weights_is_tfidf_matrix_bit_for_bit(dolly_responses, weighting):
    texts = dolly_responses[:4000]
    ref = iterselect.tfidf_matrix(texts, weighting=weighting, progress=False)
    counts = ngram_counts(texts, (1, 3), True)
    assert counts.vocabulary == ref.vocabulary
    np.testing.assert_array_equal(counts.df, ref.df)
    idf = ngram_idf(counts.df, len(texts), weighting)
    np.testing.assert_array_equal(idf, ref.idf)
    for dtype in (np.float64, np.float32):
        got = tfidf_weigh(counts.matrix, idf, dtype, weighting)
        want = iterselect.tfidf_matrix(texts, weighting=weighting, dtype=dtype, progress=False).matrix
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)
        assert got.data.dtype == want.data.dtype


def local_iterit(texts, k, ifd, parts, m, weighting):
    """IterIT through the distributed driver on in-process text shards: (indices, gains)."""
    c = iterselect.coverage._iterit_candidates(texts, k, ifd, 0.1, (1, 3), weighting, False, "t")
    chosen = [c.texts[i] for i in c.candidates]
    shards = dcoverage._text_shards(same, chosen, c.scores[c.candidates], parts)
    group = LocalGroup(dcoverage.CoverageWorker, shards, dict(decay=c.decay, ngram_range=c.ngram_range,
                                                              weighting=weighting))
    vocabulary, _, _, columns = dcoverage._reduce_vocabulary(group.call_all("vocabulary"), len(chosen), weighting)
    group.call_all("start", update=("vocabulary", columns))
    offsets = np.array([s.offset for s in shards] + [len(chosen)], np.int64)
    picks, gains, _, _ = dcoverage._greedy(group, offsets, c.k, np.empty(0, np.int64), c.decay, m, len(vocabulary),
                                           False, "t")
    return c.candidates[picks], gains


@pytest.mark.parametrize("weighting", ["sklearn", "paper"])
def test_iterit_driver_on_text_shards(dolly_responses, weighting):
    texts = dolly_responses[:1200]
    ifd = np.random.default_rng(3).uniform(0.2, 1.2, len(texts))
    want = iterselect.iterit_select(texts, 80, ifd, weighting=weighting, progress=False)
    indices, gains = local_iterit(texts, 80, ifd, 3, 4, weighting)
    np.testing.assert_array_equal(indices, want.indices)
    np.testing.assert_array_equal(gains, want.gains)


def test_paper_weights_drop_ngrams_in_every_text():
    texts = ["aa bb", "aa cc", "aa bb bb"]  # "aa" is in every text: idf 0, no entry
    counts = ngram_counts(texts, (1, 1), True)
    got = tfidf_weigh(counts.matrix, ngram_idf(counts.df, 3, "paper"), np.float64, "paper")
    want = iterselect.tfidf_matrix(texts, (1, 1), weighting="paper", progress=False).matrix
    assert got.nnz == want.nnz == 3  # bb, cc, bb
    np.testing.assert_array_equal(got.toarray(), want.toarray())


def test_counts_are_integers_per_document():
    c = ngram_counts(["b a b", "", "a"], (1, 2), True)
    assert c.vocabulary.tolist() == []  # single letters are not tokens
    c = ngram_counts(["bb aa bb", "", "aa"], (1, 2), True)
    assert c.vocabulary.tolist() == ["aa", "aa bb", "bb", "bb aa"]
    assert c.matrix.toarray().tolist() == [[1, 1, 2, 1], [0, 0, 0, 0], [1, 0, 0, 0]]


# ----------------------------------------------------------------------------- coverage driver

def local_coverage(X, k, parts, m, weights=None, decay=0.1, selected=()):
    X, _, _, _ = iterselect.coverage._as_coverage_csr(X, "test")
    w = None if weights is None else np.asarray(weights, np.float64)
    shards = dcoverage._csr_shards(same, X, w, parts)
    group = LocalGroup(dcoverage.CoverageWorker, shards, dict(decay=decay))
    offsets = np.array([s.offset for s in shards] + [X.shape[0]], np.int64)
    return dcoverage._greedy(group, offsets, k, np.asarray(selected, np.int64), decay, m, X.shape[1], False, "t")


def assert_coverage_equal(X, k, parts, m, **kw):
    ref = iterselect.coverage_greedy(X, k, progress=False, **kw)
    picks, gains, alpha, _ = local_coverage(X, k, parts, m, **kw)
    assert_same(ref, indices=picks, gains=gains, alpha=alpha)


def test_coverage_driver_on_dolly(dolly_responses):
    X = iterselect.tfidf_matrix(dolly_responses[:2000], progress=False).matrix
    w = np.random.default_rng(0).random(2000)
    assert_coverage_equal(X, 150, 3, 4, weights=w)
    assert_coverage_equal(X.astype(np.float32), 100, 2, 1, decay=0.5, selected=[4, 8, 15])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_coverage_driver_ties_and_duplicates(data):
    n = data.draw(st.integers(1, 25))
    cols = data.draw(st.integers(1, 6))
    X = np.array(data.draw(st.lists(st.lists(st.sampled_from([0.0, 0.0, 0.5, 1.0]), min_size=cols, max_size=cols),
                                    min_size=n, max_size=n)))
    weights = data.draw(st.one_of(st.none(), st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=n, max_size=n)))
    decay = data.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    pool = data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n - 1)) if n > 1 else []
    k = data.draw(st.integers(1, n - len(pool)))
    assert_coverage_equal(X, k, data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3)), weights=weights,
                          decay=decay, selected=pool)


# ----------------------------------------------------------------------------- facility driver

def local_facility(G, k, parts, m, quality=None, quality_weight=0.5, selected=()):
    csr = iterselect.facility._graph.similarity_csr(G, "test")
    q = None if quality is None else np.asarray(quality, np.float64)
    shards = dfacility._candidate_shards(same, csr.matrix, q, parts)
    group = LocalGroup(dfacility.FacilityWorker, shards, dict(quality_weight=quality_weight))
    offsets = np.array([s.offset for s in shards] + [csr.shape[1]], np.int64)
    return dfacility._run(group, offsets, k, np.asarray(selected, np.int64), m, quality_weight, csr.shape[0], False)


def assert_facility_equal(G, k, parts, m, **kw):
    ref = iterselect.facility_location_graph(G, k, progress=False, **kw)
    picks, gains, _, current = local_facility(G, k, parts, m, **kw)
    assert_same(ref, indices=picks, gains=gains, current=current)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_facility_driver_ties_and_duplicates(data):
    n_points = data.draw(st.integers(1, 12))
    n_cand = data.draw(st.integers(1, 12))
    G = np.array(data.draw(st.lists(st.lists(st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0]), min_size=n_cand,
                                             max_size=n_cand), min_size=n_points, max_size=n_points)))
    quality = data.draw(st.one_of(st.none(), st.lists(st.sampled_from([-1.0, 0.0, 0.5]), min_size=n_cand,
                                                      max_size=n_cand)))
    alpha = data.draw(st.sampled_from([0.0, 0.3, 1.0]))
    pool = data.draw(st.lists(st.integers(0, n_cand - 1), unique=True, max_size=n_cand - 1)) if n_cand > 1 else []
    k = data.draw(st.integers(1, n_cand - len(pool)))
    assert_facility_equal(G, k, data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3)), quality=quality,
                          quality_weight=alpha, selected=pool)


def test_facility_driver_on_a_knn_graph(dolly_embeddings):
    pytest.importorskip("faiss")
    G = iterselect.knn_similarity_graph(dolly_embeddings[:1500], 15)
    q = np.random.default_rng(1).random(1500)
    assert_facility_equal(G, 120, 3, 4, quality=q, quality_weight=0.2, selected=[1, 2, 3])
    assert_facility_equal(sp.csr_array(G, dtype=np.float64), 80, 2, 2)
