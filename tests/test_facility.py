"""Facility location: the lazy greedy (CPU) and the CUDA kernels (emulated grid) against the
naive numpy greedy, the kNN similarity graph, the exposed kernels, errors, and apricot."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import iterselect
from iterselect import _backends
from iterselect.facility import (FacilityLocationResult, facility_gains, facility_location, facility_location_graph,
                                 facility_objective, facility_update, knn_similarity_graph)
from reference_facility import Columns, dense_objective, naive_facility_greedy
from conftest import require_module

require_module("faiss", "faiss", module_level=True)

EMULATION = "cuda-emulation"
needs_emulation = pytest.mark.skipif(_backends.cuda_module(EMULATION) is None,
                                     reason="iterselect._cuda_emu is not built (ITERSELECT_CUDA_EMULATION=ON)")


def assert_same(result: FacilityLocationResult, ref):
    np.testing.assert_array_equal(result.indices, ref.indices)
    np.testing.assert_array_equal(result.gains, ref.gains)
    np.testing.assert_array_equal(result.current, ref.current)


@pytest.fixture(scope="module")
def dolly_sample(dolly_embeddings) -> np.ndarray:
    return dolly_embeddings[:3000]


# ----------------------------------------------------------------------------- the greedy

@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_greedy_matches_naive_on_dolly(dolly_sample, metric):
    G = knn_similarity_graph(dolly_sample, 30, metric=metric)
    r = facility_location_graph(G, 300, progress=False)
    assert_same(r, naive_facility_greedy(G, 300))
    assert r.evaluations < 0.1 * 300 * G.shape[1]  # laziness skips most of the plain greedy's work
    assert np.all(np.diff(r.gains) <= 0)  # gains only fall
    np.testing.assert_allclose(r.objective, r.gains.sum(), rtol=1e-12)
    assert r.objective == pytest.approx(facility_objective(G, r.indices), rel=1e-12)


def test_greedy_with_quality_and_warm_start_on_dolly(dolly_sample):
    G = knn_similarity_graph(dolly_sample, 20)
    q = np.random.default_rng(3).normal(size=G.shape[0])  # reward-like scores, negative ones too
    pool = [7, 100, 2999]
    for alpha in (0.0, 0.2, 0.9, 1.0):
        r = facility_location_graph(G, 200, quality=q, quality_weight=alpha, selected=pool, progress=False)
        assert_same(r, naive_facility_greedy(G, 200, q, alpha, pool))
        assert not set(r.indices.tolist()) & set(pool)
    # a warm start continues the same greedy: the picks after a prefix are the full run's
    full = facility_location_graph(G, 150, quality=q, quality_weight=0.2, progress=False)
    rest = facility_location_graph(G, 100, quality=q, quality_weight=0.2, selected=full.indices[:50], progress=False)
    np.testing.assert_array_equal(rest.indices, full.indices[50:])
    np.testing.assert_array_equal(rest.gains, full.gains[50:])
    np.testing.assert_array_equal(rest.current, full.current)


@needs_emulation
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_emulated_cuda_equals_cpu_on_dolly(dolly_embeddings, metric):
    G = knn_similarity_graph(dolly_embeddings[:400], 15, metric=metric)
    q = np.random.default_rng(4).uniform(size=400)
    for quality, pool in ((None, None), (q, [3, 50])):
        cpu = facility_location_graph(G, 40, quality=quality, quality_weight=0.4, selected=pool, progress=False)
        emu = facility_location_graph(G, 40, quality=quality, quality_weight=0.4, selected=pool, progress=False,
                                      backend=EMULATION)
        assert emu.backend == EMULATION and emu.evaluations is None
        np.testing.assert_array_equal(emu.indices, cpu.indices)
        np.testing.assert_array_equal(emu.gains, cpu.gains)
        np.testing.assert_array_equal(emu.current, cpu.current)
        assert emu.objective == cpu.objective


@pytest.mark.gpu
def test_cuda_equals_cpu_on_dolly(dolly_embeddings):
    G = knn_similarity_graph(dolly_embeddings[:5000], 30)
    q = np.random.default_rng(6).uniform(size=5000)
    for quality in (None, q):
        cpu = facility_location_graph(G, 500, quality=quality, quality_weight=0.3, selected=[1, 2], progress=False)
        gpu = facility_location_graph(G, 500, quality=quality, quality_weight=0.3, selected=[1, 2], progress=False,
                                      backend="cuda")
        assert gpu.backend == "cuda"
        np.testing.assert_array_equal(gpu.indices, cpu.indices)
        np.testing.assert_array_equal(gpu.gains, cpu.gains)
        np.testing.assert_array_equal(gpu.current, cpu.current)


@st.composite
def graphs(draw):
    n_points = draw(st.integers(1, 25))
    n_cand = draw(st.sampled_from([n_points, draw(st.integers(1, 25))]))
    density = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
    values = draw(st.sampled_from(["small-ints", "floats", "float32"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if values == "small-ints":  # many exact ties
        dense = rng.integers(0, 3, (n_points, n_cand)).astype(np.float64)
    else:
        dense = rng.uniform(0, 1, (n_points, n_cand))
    dense[rng.uniform(size=dense.shape) >= density] = 0.0
    if values == "float32":
        dense = dense.astype(np.float32)
    same_cols = draw(st.lists(st.integers(0, n_cand - 1), max_size=n_cand))
    if same_cols:  # duplicate candidates: equal gains, the lowest index must win
        dense[:, same_cols[1:]] = dense[:, [same_cols[0]]]
    same_rows = draw(st.lists(st.integers(0, n_points - 1), max_size=n_points))
    if same_rows:  # duplicate points
        dense[same_rows[1:]] = dense[same_rows[0]]
    selected = draw(st.lists(st.integers(0, n_cand - 1), unique=True, max_size=n_cand - 1))
    k = draw(st.integers(1, n_cand - len(selected)))
    quality = draw(st.sampled_from([None, "random", "ties", "negative"]))
    if quality == "random":
        quality = rng.uniform(0, 1, n_cand)
    elif quality == "ties":
        quality = rng.integers(0, 2, n_cand).astype(np.float64)
    elif quality == "negative":
        quality = rng.normal(size=n_cand)
    alpha = draw(st.sampled_from([0.0, 0.3, 0.5, 1.0]))
    fmt = draw(st.sampled_from(["csr", "csc", "coo", "dense"]))
    graph = dense if fmt == "dense" else getattr(sp, f"{fmt}_array")(dense)
    return graph, k, quality, alpha, selected


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_greedy_matches_naive_on_generated_graphs(problem):
    graph, k, quality, alpha, selected = problem
    r = facility_location_graph(graph, k, quality=quality, quality_weight=alpha, selected=selected, progress=False)
    assert_same(r, naive_facility_greedy(graph, k, quality, alpha, selected))
    assert len(set(r.indices.tolist()) | set(selected)) == k + len(selected)


@needs_emulation
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_emulated_cuda_matches_naive_on_generated_graphs(problem):
    graph, k, quality, alpha, selected = problem
    r = facility_location_graph(graph, k, quality=quality, quality_weight=alpha, selected=selected, progress=False,
                                backend=EMULATION)
    assert_same(r, naive_facility_greedy(graph, k, quality, alpha, selected))


@pytest.mark.parametrize("backend", ["cpu", pytest.param(EMULATION, marks=needs_emulation)])
def test_degenerate_graphs(backend):
    def run(graph, k, **kw):
        return facility_location_graph(graph, k, progress=False, backend=backend, **kw)

    zero = sp.csr_array((4, 5))  # nothing stored: every gain 0, lowest indices first
    r = run(zero, 5)
    assert r.indices.tolist() == [0, 1, 2, 3, 4] and r.gains.tolist() == [0.0] * 5 and r.objective == 0.0
    one = run(np.array([[0.5]]), 1)
    assert one.indices.tolist() == [0] and one.gains.tolist() == [0.5] and one.current.tolist() == [0.5]
    # a column covering everything, then one stored similarity 0 (stored zeros count as nothing)
    S = sp.csr_array((np.array([1.0, 1.0, 0.0, 1.0]), np.array([1, 1, 0, 1]), np.array([0, 1, 3, 4])), shape=(3, 2))
    r = run(S, 2)
    assert r.indices.tolist() == [1, 0] and r.gains.tolist() == [3.0, 0.0]
    # every candidate picked once, however many ties
    ties = np.ones((3, 6))
    assert sorted(run(ties, 6).indices.tolist()) == list(range(6))
    assert run(ties, 6).gains.tolist() == [3.0, 0, 0, 0, 0, 0]
    # empty rows and columns, rectangular
    R = np.zeros((5, 3))
    R[1, 2] = 0.25
    r = run(R, 2, selected=[2])
    assert r.indices.tolist() == [0, 1] and r.gains.tolist() == [0.0, 0.0]
    assert r.current.tolist() == [0, 0.25, 0, 0, 0]


def test_quality_mixing_follows_qdit():
    # two clusters; candidate 3 is alone but of high quality
    S = np.array([[1.0, 0.9, 0.8, 0.0],
                  [0.9, 1.0, 0.9, 0.0],
                  [0.8, 0.9, 1.0, 0.0],
                  [0.0, 0.0, 0.0, 1.0]])
    q = np.array([0.0, 0.0, 0.0, 4.0])
    # gains: diversity [2.7, 2.8, 2.7, 1.0]; with alpha 0.5: 0.5 * d + 0.5 * q = [1.35, 1.4, 1.35, 2.5]
    r = facility_location_graph(S, 2, quality=q, quality_weight=0.5, progress=False)
    assert r.indices.tolist() == [3, 1]
    np.testing.assert_allclose(r.gains, [2.5, 1.4])
    assert r.objective == pytest.approx(0.5 * (0.9 + 1 + 0.9 + 1) + 0.5 * 4.0)
    assert facility_location_graph(S, 2, progress=False).indices.tolist() == [1, 3]
    # alpha = 1: quality alone, ties to the lowest index; alpha = 0: diversity alone, same gains
    q2 = np.array([1.0, 3.0, 3.0, 2.0])
    by_quality = facility_location_graph(S, 4, quality=q2, quality_weight=1.0, progress=False)
    assert by_quality.indices.tolist() == [1, 2, 3, 0]
    a0 = facility_location_graph(S, 4, quality=q2, quality_weight=0.0, progress=False)
    plain = facility_location_graph(S, 4, progress=False)
    np.testing.assert_array_equal(a0.indices, plain.indices)
    np.testing.assert_array_equal(a0.gains, plain.gains)


def test_lazy_marks_every_candidate_on_dense_graphs():
    # a dense graph: each pick changes points whose rows hold every candidate (the "all stale" branch)
    rng = np.random.default_rng(8)
    S = rng.uniform(0, 1, (120, 120))
    r = facility_location_graph(S, 60, progress=False)
    assert_same(r, naive_facility_greedy(S, 60))


def test_threads_and_index_types_agree(dolly_sample):
    G = knn_similarity_graph(dolly_sample[:1500], 10)
    one = facility_location_graph(G, 100, threads=1, progress=False)
    G64 = G.copy()
    G64.indices, G64.indptr = G64.indices.astype(np.int64), G64.indptr.astype(np.int64)
    for graph, threads in ((G, 3), (G64, 2), (G.tocsc(), None), (G.astype(np.float64), 1)):
        other = facility_location_graph(graph, 100, threads=threads, progress=False)
        np.testing.assert_array_equal(other.indices, one.indices)
        np.testing.assert_array_equal(other.gains, one.gains)  # float32 values widen exactly


def test_non_canonical_graph_is_canonicalized():
    data = np.array([0.5, 0.25, 0.25, 1.0, 0.3])
    indices = np.array([2, 0, 2, 1, 0])  # row 0 unsorted, with a duplicate column (summed)
    G = sp.csr_array((data, indices, np.array([0, 3, 5])), shape=(2, 3))
    assert not G.has_canonical_format
    r = facility_location_graph(G, 3, progress=False)
    assert_same(r, naive_facility_greedy(G, 3))
    assert r.indices.tolist() == [1, 2, 0] and r.gains.tolist() == [1.0, 0.75, 0.0]
    assert not G.has_canonical_format  # the caller's matrix is left alone


# ----------------------------------------------------------------------------- the kNN graph

@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_graph_structure_and_values(dolly_sample, metric):
    X = dolly_sample[:500].astype(np.float64)
    G = knn_similarity_graph(X, 7, metric=metric)
    assert G.shape == (500, 500) and G.dtype == np.float64 and G.has_canonical_format
    assert np.all(np.diff(G.indptr) == 8)
    rows = np.repeat(np.arange(500), 8)
    assert np.all(G.diagonal() > 0)  # every point represents itself
    if metric == "cosine":
        U = X / np.linalg.norm(X, axis=1, keepdims=True)
        expected = np.maximum(np.einsum("ij,ij->i", U[rows], U[G.indices]), 0)
        np.testing.assert_allclose(G.data, expected, atol=1e-12)
        similarity = lambda i: U @ U[i]  # noqa: E731
    else:
        sq = np.sum((X[rows] - X[G.indices]) ** 2, axis=1)
        np.testing.assert_allclose(G.data, sq.max() - sq, atol=1e-12)
        assert G.data.min() == 0.0
        similarity = lambda i: -np.sum((X - X[i]) ** 2, axis=1)  # noqa: E731
    # the stored columns of each row are its 8 most similar points (itself included)
    for i in range(0, 500, 50):
        row = similarity(i)
        stored = G.indices[G.indptr[i]:G.indptr[i + 1]]
        np.testing.assert_allclose(np.sort(row[stored])[::-1], np.sort(row)[::-1][:8], atol=1e-5)


def test_knn_graph_complete_when_neighbours_exceed_points():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(6, 3)).astype(np.float32)
    G = knn_similarity_graph(X, 100, metric="euclidean")
    assert G.nnz == 36 and G.dtype == np.float32
    single = knn_similarity_graph(X[:1], 5)
    assert single.toarray().tolist() == [[1.0]]
    r = facility_location(X[:1], 1, progress=False)
    assert r.indices.tolist() == [0] and r.objective == 1.0


def test_facility_location_builds_and_returns_its_graph(dolly_sample):
    X = dolly_sample[:800]
    r = facility_location(X, 50, n_neighbors=12, progress=False)
    G = knn_similarity_graph(X, 12)
    assert (r.graph != G).nnz == 0
    assert_same(r, naive_facility_greedy(G, 50))
    again = facility_location_graph(r.graph, 50, progress=False)
    np.testing.assert_array_equal(again.indices, r.indices)
    # torch input and float64 input
    torch = require_module("torch", "torch")
    t = facility_location(torch.from_numpy(np.asarray(X)), 50, n_neighbors=12, progress=False)
    np.testing.assert_array_equal(t.indices, r.indices)


# ----------------------------------------------------------------------------- kernels

def test_gain_update_and_objective_kernels():
    rng = np.random.default_rng(5)
    dense = rng.uniform(0, 1, (40, 30))
    dense[rng.uniform(size=dense.shape) > 0.3] = 0
    G = sp.csr_array(dense)
    cols = Columns(G)
    current = rng.uniform(0, 0.5, 40)
    q = rng.normal(size=30)
    np.testing.assert_array_equal(facility_gains(G, current), cols.gains(current))
    np.testing.assert_array_equal(facility_gains(G, current, quality=q, quality_weight=0.3),
                                  cols.gains(current, q, 0.3))
    np.testing.assert_array_equal(facility_gains(G), cols.gains(np.zeros(40)))
    C = G.tocsc()  # the column view read as it is
    np.testing.assert_array_equal(facility_gains(C, current), cols.gains(current))
    cur = current.copy()
    changed = facility_update(C, 7, cur)
    expected = np.maximum(current, dense[:, 7])
    np.testing.assert_array_equal(cur, expected)
    assert changed == np.count_nonzero(expected != current)
    assert facility_update(G, 7, cur) == 0
    picks = [3, 7, 11]
    assert facility_objective(G, picks) == pytest.approx(dense[:, picks].max(axis=1).sum(), rel=1e-15)
    assert facility_objective(G, picks, quality=q, quality_weight=0.25) == pytest.approx(
        0.75 * dense[:, picks].max(axis=1).sum() + 0.25 * q[picks].sum(), rel=1e-15)
    assert facility_objective(G, []) == 0.0
    # the greedy is these kernels in a loop
    r = facility_location_graph(G, 5, progress=False)
    current = np.zeros(40)
    for t, (j, g) in enumerate(zip(r.indices, r.gains)):
        gains = facility_gains(C, current)
        gains[r.indices[:t]] = -np.inf
        assert np.argmax(gains) == j and gains[j] == g
        facility_update(C, j, current)
    np.testing.assert_array_equal(current, r.current)


def test_kernel_errors():
    G = sp.csr_array(np.array([[1.0, 0.0], [0.5, 2.0]]))
    with pytest.raises(TypeError, match="'current' parameter of facility_update"):
        facility_update(G, 0, np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="'index' parameter of facility_update"):
        facility_update(G, 2, np.zeros(2))
    with pytest.raises(ValueError, match="'current' parameter of facility_gains.*finite and >= 0"):
        facility_gains(G, [0.0, -1.0])
    with pytest.raises(ValueError, match="'current'.*2 numbers"):
        facility_gains(G, np.zeros(3))
    with pytest.raises(ValueError, match="'indices' parameter of facility_objective.*duplicates"):
        facility_objective(G, [1, 1])
    core = _backends.core
    indptr = np.array([0, 1, 3], np.int64)
    with pytest.raises(ValueError, match=r"the graph row 1 has column 5 outside \[0, 2\)"):
        core.facility_greedy(indptr, np.array([0, 5, 1], np.int32), np.ones(3), 2, 2, None, 0.5, 1,
                             np.empty(0, np.int64), 1, None)
    with pytest.raises(ValueError, match=r"finite values >= 0 \(row 1, column 0 holds -0.5\)"):
        core.facility_greedy(indptr, np.array([0, 0, 1], np.int32), np.array([1.0, -0.5, 1.0]), 2, 2, None, 0.5, 1,
                             np.empty(0, np.int64), 1, None)
    with pytest.raises(ValueError, match="row 1 lists column 0 more than once"):
        core.facility_greedy(indptr, np.array([0, 0, 0], np.int32), np.ones(3), 2, 2, None, 0.5, 1,
                             np.empty(0, np.int64), 1, None)
    with pytest.raises(ValueError, match=r"k \(3\) must be in \[1, 2\]"):
        core.facility_greedy(indptr, np.array([0, 0, 1], np.int32), np.ones(3), 2, 2, None, 0.5, 3,
                             np.empty(0, np.int64), 1, None)
    with pytest.raises(ValueError, match=r"quality\[1\] \(nan\) must be finite"):
        core.facility_greedy(indptr, np.array([0, 0, 1], np.int32), np.ones(3), 2, 2, np.array([1.0, np.nan]), 0.5,
                             1, np.empty(0, np.int64), 1, None)
    with pytest.raises(ValueError, match=r"indptr\[-1\] \(3\) must equal the length of indices \(2\)"):
        core.facility_gains(indptr, np.array([0, 1], np.int32), np.ones(2), 2, 2, np.zeros(2), None, 0.5, 1)
    with pytest.raises(ValueError, match=r"candidate \(4\) must be in \[0, 1\]"):
        core.facility_update(indptr, np.array([0, 0, 1], np.int32), np.ones(3), 2, 2, 4, np.zeros(2))


# ----------------------------------------------------------------------------- errors, progress

def test_bad_inputs():
    S = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.0]])
    func = "facility_location_graph"
    cases = [
        (dict(k=4), ValueError, rf"'k' parameter of {func} must be an int in the range \[1, 3\]"),
        (dict(k=3, selected=[0]), ValueError, r"'k'.*\[1, 2\]"),
        (dict(k=0), ValueError, "'k'"),
        (dict(k=1.5), TypeError, "'k'"),
        (dict(k=1, selected=[0, 0]), ValueError, "'selected'.*duplicates"),
        (dict(k=1, selected=[3]), ValueError, "'selected'"),
        (dict(k=1, selected=[0, 1, 2]), ValueError, "'selected'.*a candidate left to pick"),
        (dict(k=1, quality=[1.0, 2.0]), ValueError, r"'quality'.*3 scores.*shape \(2,\)"),
        (dict(k=1, quality=[1.0, np.nan, 0.0]), ValueError, "'quality'.*finite.*nan at position 1"),
        (dict(k=1, quality=["a", "b", "c"]), TypeError, "'quality'"),
        (dict(k=1, quality=[1, 2, 3], quality_weight=1.5), ValueError, r"'quality_weight'.*\[0.0, 1.0\]"),
        (dict(k=1, quality_weight=-0.1), ValueError, "'quality_weight'"),
        (dict(k=1, threads=0), ValueError, "'threads'"),
        (dict(k=1, backend="gpu"), ValueError, "'backend'"),
    ]
    for kwargs, exc, match in cases:
        with pytest.raises(exc, match=match):
            facility_location_graph(S, progress=False, **kwargs)
    for bad, match in [(np.array([[1.0, -2.0]]), r"'graph'.*-2.0 at row 0, column 1"),
                       (np.array([[1.0], [np.inf]]), "'graph'.*inf at row 1, column 0"),
                       (sp.csr_array(np.array([[0.0, 1.0], [np.nan, 0.0]])), "'graph'.*nan at row 1"),
                       (np.ones(3), "'graph'.*2-D"),
                       (np.ones((0, 3)), "'graph'.*at least one row")]:
        with pytest.raises(ValueError, match=match):
            facility_location_graph(bad, 1, progress=False)
    with pytest.raises(TypeError, match="'graph'"):
        facility_location_graph(np.array([["a", "b"]]), 1, progress=False)
    X = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match="'n_neighbors' parameter of facility_location"):
        facility_location(X, 2, n_neighbors=0, progress=False)
    with pytest.raises(ValueError, match="'metric'"):
        facility_location(X, 2, metric="manhattan", progress=False)
    with pytest.raises(ValueError, match="'index'"):
        facility_location(X, 2, index="flat", progress=False)
    Xz = X.copy()
    Xz[4] = 0
    with pytest.raises(ValueError, match="'X'.*zero row at index 4"):
        facility_location(Xz, 2, progress=False)
    Xn = X.copy()
    Xn[2, 1] = np.nan
    with pytest.raises(ValueError, match="'X'.*non-finite value in row 2"):
        facility_location(Xn, 2, progress=False)
    with pytest.raises(ValueError, match="'k' parameter of facility_location"):
        facility_location(X, 11, progress=False)
    if not iterselect.has_cuda():
        with pytest.raises(RuntimeError, match="backend='cuda' is unavailable"):
            facility_location_graph(S, 1, backend="cuda", progress=False)


def test_stops_when_progress_callback_raises(dolly_sample):
    G = knn_similarity_graph(dolly_sample, 10)
    M = sp.csr_array(G)

    class Stop(Exception):
        pass

    def callback(done, total):
        raise Stop

    args = (M.indptr.astype(np.int64), M.indices, M.data, *M.shape, None, 0.5, 500, np.empty(0, np.int64))
    with pytest.raises(Stop):
        _backends.core.facility_greedy(*args, 1, callback)
    if _backends.cuda_module(EMULATION) is not None:
        C = sp.csc_array(M)
        columns = (C.indptr.astype(np.int64), C.indices.astype(M.indices.dtype), C.data)
        out = np.empty(500, np.int64), np.empty(500), np.empty(M.shape[0])
        with pytest.raises(Stop):
            _backends.cuda_module(EMULATION).facility_greedy(*args[:3], *columns, *args[5:], *out, block_threads=32,
                                                             max_blocks=4, progress=callback)


def test_progress_bar_runs(dolly_sample):
    r = facility_location(dolly_sample[:500], 20, n_neighbors=5, progress=True)
    assert isinstance(r, FacilityLocationResult) and r.indices.shape == (20,)


# ----------------------------------------------------------------------------- apricot

def assert_agrees_with_apricot(selector, ours: FacilityLocationResult, ref, rel: float = 1e-9) -> None:
    """apricot sums its gains in another order (numba fastmath): its gains equal ours to rounding,
    its picks equal ours up to the first step where the two best gains tie to rounding (there
    the greedy may go either way, as DESIGN.md says of float near-ties)."""
    ranking, gains = np.asarray(selector.ranking), np.asarray(selector.gains)
    diff = np.flatnonzero(ranking != ours.indices)
    t = int(diff[0]) if diff.size else len(ranking)
    np.testing.assert_allclose(gains[:t + 1], ours.gains[:t + 1], rtol=rel)
    if diff.size:
        assert ref.gains[t] - ref.runner_up[t] <= rel * abs(ref.gains[t]), f"step {t} is not a near tie"


def test_equal_to_apricot_on_a_dense_euclidean_case():
    """apricot's metric="euclidean" similarity is max(D) - D over squared distances; the complete
    kNN graph (n_neighbors >= n - 1) stores the same matrix, so the objectives coincide. apricot's
    naive greedy takes the first argmax, as we do (its lazy one breaks exact ties otherwise; the
    benchmark compares that one's objective)."""
    apricot = require_module("apricot", "test")
    rng = np.random.default_rng(11)
    for n, d, k in ((120, 8, 50),):  # apricot compiles its numba kernels again at every fit (seconds each)
        X = rng.normal(size=(n, d))
        ours = facility_location(X, k, n_neighbors=n, metric="euclidean", progress=False)
        ref = naive_facility_greedy(ours.graph, k)
        naive = apricot.FacilityLocationSelection(k, metric="euclidean", optimizer="naive").fit(X)
        assert_agrees_with_apricot(naive, ours, ref)
        D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
        S = D.max() - D
        assert dense_objective(S, ours.indices) == pytest.approx(ours.objective, rel=1e-10)
        assert dense_objective(S, np.asarray(naive.ranking)) == pytest.approx(ours.objective, rel=1e-10)


def test_apricot_reads_rows_where_we_read_columns():
    """On a non-symmetric graph (a kNN graph), apricot's precomputed matrix is our graph transposed."""
    apricot = require_module("apricot", "test")
    X = np.random.default_rng(12).normal(size=(80, 6))
    G = knn_similarity_graph(X, 9)
    ours = facility_location_graph(G, 25, progress=False)
    theirs = apricot.FacilityLocationSelection(25, metric="precomputed", optimizer="naive").fit(G.T.toarray())
    assert_agrees_with_apricot(theirs, ours, naive_facility_greedy(G, 25))
    assert np.sum(np.asarray(theirs.ranking) != ours.indices) <= 2  # (here: one exact tie, step 22)
