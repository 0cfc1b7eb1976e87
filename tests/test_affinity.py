"""Affinity propagation: scikit-learn equality, the numpy reference, sparse = dense, the CUDA
kernels on the emulated grid = the CPU path, InsBank's scores and history, and bad input."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iterselect import _backends
from iterselect.affinity._run import Options, run_dense_device
from iterselect._arrays import as_matrix
from iterselect.affinity import affinity_propagation, history_matrix, representation_scores
from iterselect.exceptions import ConvergenceWarning

from conftest import ctrl_c_after, needs_emulation, needs_faiss, require_module
from reference_affinity import affinity_reference, representation_reference

sklearn_ap = require_module("sklearn.cluster", "test", module_level=True).affinity_propagation
from sklearn.metrics import pairwise_distances  # noqa: E402

def ap(X, **kw):
    """affinity_propagation without the progress bar and its warnings (tests that check a
    warning call affinity_propagation itself)."""
    kw.setdefault("progress", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning is one too
        return affinity_propagation(X, **kw)


def sk(S, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c, labels, n_iter = sklearn_ap(S, return_n_iter=True, **kw)
    return np.asarray(c, dtype=np.int64), labels, n_iter


def assert_same(a, b, messages=True):
    """Bit-identical results (same float operations in the same order on both paths)."""
    np.testing.assert_array_equal(np.asarray(a.exemplars), np.asarray(b.exemplars))
    np.testing.assert_array_equal(np.asarray(a.labels), np.asarray(b.labels))
    assert (a.n_iter, a.converged) == (b.n_iter, b.converged)
    if messages:
        for x, y in ((a.responsibility, b.responsibility), (a.availability, b.availability)):
            x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
            y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
            np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- scikit-learn, float64

@pytest.mark.parametrize("n, start, random_state", [(300, 0, 0), (600, 1000, 7), (257, 2700, 1)])
def test_equals_sklearn_on_dolly(dolly_embeddings, n, start, random_state):
    S = -pairwise_distances(dolly_embeddings[start:start + n].astype(np.float64))
    c, labels, n_iter = sk(S, random_state=random_state)
    r = ap(S, metric="precomputed", random_state=random_state, dtype=np.float64)
    np.testing.assert_array_equal(r.exemplars, c)
    np.testing.assert_array_equal(r.labels, labels)
    assert r.n_iter == n_iter and r.converged == (n_iter < 200)  # sklearn gives no flag; it stops early iff converged
    assert r.exemplars.dtype == np.int64 and r.labels.dtype == np.int64


def test_equals_sklearn_when_not_converged(dolly_embeddings):
    S = -pairwise_distances(dolly_embeddings[:200].astype(np.float64))
    c, labels, n_iter = sk(S, random_state=0, max_iter=12, damping=0.9)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        r = affinity_propagation(S, metric="precomputed", random_state=0, dtype=np.float64, max_iter=12,
                                 damping=0.9, progress=False)
    assert not r.converged and r.n_iter == n_iter == 12
    np.testing.assert_array_equal(r.exemplars, c)
    np.testing.assert_array_equal(r.labels, labels)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    X=st.tuples(st.integers(2, 40), st.integers(1, 4)).flatmap(
        lambda nd: arrays(np.float64, nd, elements=st.floats(-50, 50, width=32))),
    seed=st.integers(0, 2**32 - 1),
    damping=st.floats(0.5, 0.95),
    pref=st.one_of(st.none(), st.floats(-200, 0)),
    convergence_iter=st.integers(1, 20),
)
def test_equals_sklearn_on_hypothesis_data(X, seed, damping, pref, convergence_iter):
    S = -pairwise_distances(X, metric="sqeuclidean")
    kw = dict(random_state=seed, damping=damping, preference=pref, convergence_iter=convergence_iter, max_iter=60)
    c, labels, n_iter = sk(S, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = affinity_propagation(S, metric="precomputed", dtype=np.float64, progress=False, **kw)
    np.testing.assert_array_equal(r.exemplars, c)
    np.testing.assert_array_equal(r.labels, labels)
    assert r.n_iter == n_iter


def test_sklearn_euclidean_estimator_on_exact_distances():
    """metric='sqeuclidean' is sklearn's affinity='euclidean' when distances are exact (integers)."""
    from sklearn.cluster import AffinityPropagation

    X = np.random.default_rng(3).integers(-20, 20, size=(80, 4)).astype(np.float64)
    est = AffinityPropagation(random_state=4).fit(X)
    r = ap(X, metric="sqeuclidean", random_state=4, dtype=np.float64)
    np.testing.assert_array_equal(r.exemplars, est.cluster_centers_indices_)
    np.testing.assert_array_equal(r.labels, est.labels_)


def test_all_equal_similarities_shortcut_as_sklearn():
    S = np.full((5, 5), -3.0)
    with pytest.warns(UserWarning, match="mutually equal"):
        r = affinity_propagation(S, metric="precomputed", preference=-1.0, progress=False, dtype=np.float64)
    assert r.exemplars.tolist() == [0, 1, 2, 3, 4] and r.n_iter == 0
    r = ap(S, metric="precomputed", preference=-5.0)
    assert r.exemplars.tolist() == [0] and r.labels.tolist() == [0] * 5
    X2 = np.array([[0.0, 1.0], [2.0, 0.0]])  # n = 2: one pair, always "all equal"; median -2.5 > -5
    r = ap(X2, metric="sqeuclidean")
    assert r.exemplars.tolist() == [0, 1] and r.labels.tolist() == [0, 1]
    assert r.exemplars.tolist() == sk(-pairwise_distances(X2, metric="sqeuclidean"))[0].tolist()


# ---------------------------------------------------------------- the numpy reference (messages)

@pytest.mark.parametrize("history", [False, True])
@pytest.mark.parametrize("random_state", [None, 5])
def test_messages_equal_the_reference(dolly_embeddings, history, random_state):
    n = 150
    S = -pairwise_distances(dolly_embeddings[2000:2000 + n].astype(np.float64))
    H = np.random.default_rng(1).normal(scale=0.3, size=(n, n)) if history else None
    ref = affinity_reference(S, damping=0.7, random_state=random_state, history=H, history_weight=0.4,
                             history_decay=0.95)
    r = ap(S, metric="precomputed", dtype=np.float64, damping=0.7, random_state=random_state, history=H,
           history_weight=0.4, history_decay=0.95, return_messages=True)
    np.testing.assert_array_equal(r.exemplars, ref[0])
    np.testing.assert_array_equal(r.labels, ref[1])
    assert r.n_iter == ref[2] and r.converged == ref[3]
    np.testing.assert_array_equal(r.responsibility, ref[4])
    np.testing.assert_array_equal(r.availability, ref[5])


def test_history_weight_zero_is_no_history(dolly_embeddings):
    S = -pairwise_distances(dolly_embeddings[:120].astype(np.float64))
    H = np.ones_like(S) * 50  # would dominate if it were mixed in
    assert_same(ap(S, metric="precomputed", history=H, history_weight=0.0, return_messages=True),
                ap(S, metric="precomputed", return_messages=True))
    moved = ap(S, metric="precomputed", history=H, history_weight=0.9, history_decay=1.0)
    assert moved.exemplars.size == 120  # responsibilities pinned near 45: everyone is an exemplar


def test_exposed_passes_equal_the_run(dolly_embeddings):
    """dense_row_pass / dense_column_pass / dense_finish in a loop give dense_run's messages."""
    core = _backends.core
    n, T = 90, np.float32
    S = (-pairwise_distances(dolly_embeddings[:n].astype(np.float32))).astype(T)
    S.flat[:: n + 1] = np.median(S)
    R, A = np.zeros_like(S), np.zeros_like(S)
    cs, da = np.zeros(n, T), np.zeros(n, T)
    for t in range(25):
        core.affinity_dense_row_pass(S, R, A, None, n, 0.6, t, 0.5, cs, 2)
        core.affinity_dense_column_pass(S, R, A, n, 0.6, cs, da, 2)
    core.affinity_dense_finish(S, R, A, n, 0.6, cs, 2)
    R2, A2 = np.empty_like(S), np.empty_like(S)
    n_iter, _, _ = core.affinity_dense_run(S, R2, A2, None, n, 0.6, 25, 1000, 0.5, 0.99, 2, None)
    assert n_iter == 25
    np.testing.assert_array_equal(R, R2)
    np.testing.assert_array_equal(A, A2)


def test_thread_count_does_not_change_bits(dolly_embeddings):
    X = dolly_embeddings[:400]
    a = ap(X, threads=1, return_messages=True, random_state=0)
    b = ap(X, threads=3, return_messages=True, random_state=0)
    assert_same(a, b)


# ---------------------------------------------------------------- float32, metrics, inputs

def test_float32_agrees_with_float64_on_separated_data():
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=20, size=(6, 8))
    X = np.concatenate([c + rng.normal(scale=0.5, size=(40, 8)) for c in centers])
    a = ap(X, dtype=np.float32, preference=-30.0)
    b = ap(X, dtype=np.float64, preference=-30.0)
    assert a.converged and b.converged and len(a.exemplars) == 6
    np.testing.assert_array_equal(a.exemplars, b.exemplars)
    np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_metrics_build_the_documented_similarity(dolly_embeddings, metric):
    X = dolly_embeddings[:100].astype(np.float64)
    D = pairwise_distances(X, metric="cosine" if metric == "cosine" else "euclidean")
    S = {"euclidean": -D, "sqeuclidean": -D**2, "cosine": -D}[metric]
    r = ap(X, metric=metric, dtype=np.float64, random_state=2)
    ref = affinity_reference(S, random_state=2)
    assert abs(r.preference - np.median(S)) < 1e-12
    np.testing.assert_array_equal(r.exemplars, ref[0])
    np.testing.assert_array_equal(r.labels, ref[1])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_torch_inputs_and_half_precision(dolly_embeddings, dtype):
    torch = require_module("torch", 'torch')
    t = torch.from_numpy(dolly_embeddings[:200].astype(np.float32)).to(getattr(torch, dtype))
    r = ap(t, return_messages=True)
    assert isinstance(r.exemplars, torch.Tensor) and r.exemplars.dtype == torch.int64
    assert isinstance(r.responsibility, torch.Tensor) and r.responsibility.dtype == torch.float32
    widened = t.to(torch.float32).numpy()  # the exact values the kernel sees
    assert_same(r, ap(widened, return_messages=True))


def test_per_sample_preference(dolly_embeddings):
    S = -pairwise_distances(dolly_embeddings[:150].astype(np.float64))
    pref = np.linspace(np.median(S) * 1.5, np.median(S) * 0.5, 150)
    c, labels, _ = sk(S, preference=pref, random_state=0)
    r = ap(S, metric="precomputed", preference=pref, random_state=0, dtype=np.float64)
    np.testing.assert_array_equal(r.exemplars, c)
    np.testing.assert_array_equal(r.labels, labels)
    np.testing.assert_array_equal(r.preference, pref)


# ---------------------------------------------------------------- sparse mode

@needs_faiss
@pytest.mark.parametrize("dtype, random_state, history", [(np.float64, 3, False), (np.float32, None, True)])
def test_sparse_equals_dense_at_full_neighbourhood(dolly_embeddings, dtype, random_state, history):
    n = 110
    X = dolly_embeddings[1700:1700 + n]
    H = np.random.default_rng(2).normal(scale=0.2, size=(n, n)).astype(dtype) if history else None
    dense = ap(X, dtype=dtype, random_state=random_state, history=H, return_messages=True)
    sparse = ap(X, dtype=dtype, random_state=random_state, history=H, return_messages=True, n_neighbors=n - 1)
    assert sparse.mode == "sparse" and dense.mode == "dense"
    assert sparse.preference == dense.preference
    assert_same(dense, sparse)


def test_sparse_on_a_given_complete_graph_equals_dense(dolly_embeddings):
    n = 64
    X = dolly_embeddings[300:300 + n]
    others = np.array([[j for j in range(n) if j != i] for i in range(n)], dtype=np.int64)
    others[::5, -3:] = -1  # missing entries are skipped; the symmetrized graph is still complete
    assert_same(ap(X, knn=others, return_messages=True, random_state=4, dtype=np.float64),
                ap(X, return_messages=True, random_state=4, dtype=np.float64))


@needs_faiss
def test_sparse_precomputed_neighbours_equal_faiss_ones(dolly_embeddings):
    X = dolly_embeddings[:300]
    from iterselect._knn import kneighbors

    nb = kneighbors(X.astype(np.float32), 12, index="exact")
    assert nb.shape == (300, 12) and not np.any(nb == np.arange(300)[:, None])
    assert_same(ap(X, n_neighbors=12, knn="exact", return_messages=True), ap(X, knn=nb, return_messages=True))


@needs_faiss
def test_sparse_labels_follow_the_graph(dolly_embeddings):
    """Each point joins the most similar exemplar among its stored neighbours; points with none
    are compared with every exemplar through X."""
    X = dolly_embeddings[:400].astype(np.float32)
    r = ap(X, n_neighbors=8, return_messages=True)
    R = r.responsibility
    assert 0 < len(r.exemplars) < 400
    D = pairwise_distances(X.astype(np.float64))
    exemplars = set(r.exemplars.tolist())
    for i in range(400):
        ex = r.exemplars[r.labels[i]]
        if i in exemplars:
            assert ex == i
            continue
        cols = R.indices[R.indptr[i]:R.indptr[i + 1]]
        stored = [c for c in cols if c in exemplars]
        pool = stored if stored else r.exemplars.tolist()
        best = min(D[i, pool])
        assert D[i, ex] <= best + 1e-5


@needs_faiss
def test_sparse_scales_and_uses_an_approximate_index(dolly_embeddings):
    X = dolly_embeddings[:3000]
    r = ap(X, n_neighbors=16, knn="ivf", max_iter=100, return_messages=True)
    assert r.labels.shape == (3000,) and r.responsibility.nnz >= 3000 * 17
    h = ap(X, n_neighbors=16, knn="hnsw", max_iter=100)
    assert h.labels.shape == (3000,)


# ---------------------------------------------------------------- representation scores

def test_representation_scores_by_the_formula(dolly_embeddings):
    rng = np.random.default_rng(4)
    R, A = rng.normal(size=(70, 70)), rng.normal(size=(70, 70))
    np.testing.assert_allclose(representation_scores(R, A), representation_reference(R, A), rtol=1e-12, atol=1e-12)
    r = ap(dolly_embeddings[:200], return_messages=True)
    np.testing.assert_allclose(representation_scores(r.responsibility, r.availability),
                               representation_reference(r.responsibility, r.availability), rtol=1e-6, atol=1e-6)
    assert representation_scores(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2))).tolist() == [2.0, 3.0]


@needs_faiss
def test_representation_scores_sparse_and_torch(dolly_embeddings):
    torch = require_module("torch", 'torch')
    n = 90
    X = dolly_embeddings[:n]
    s = ap(X, n_neighbors=n - 1, return_messages=True)
    d = ap(X, return_messages=True)
    np.testing.assert_allclose(representation_scores(s.responsibility, s.availability),
                               representation_scores(d.responsibility, d.availability), rtol=1e-12)
    t = representation_scores(torch.from_numpy(d.responsibility), torch.from_numpy(d.availability))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64


# ---------------------------------------------------------------- history matrix (Eq. 4-5)

# Three old candidates (R_t), the bank keeps 0 and 2, one new sample with cosine similarities
# 0.5, 1.0, 0.5 to them.
R_T = np.array([[-1.0, -2.0, 0.0], [-3.0, 1.0, -4.0], [2.0, -1.0, -2.0]])
COS = np.array([[0.5], [1.0], [0.5]])


def test_history_matrix_paper_by_hand():
    # Eq. 4: w_j = cos_j^2 / sum_l cos_l = [0.25, 1, 0.25] / 2 = [0.125, 0.5, 0.125]
    # correction: the median of R_t's nine entries is -1, min(-1, 0) = -1
    # top-right (Eq. 4): row 0: 0.125*-1 + 0.5*-2 + 0.125*0 = -1.125, -1 -> -2.125
    #                    row 2: 0.125*2 + 0.5*-1 + 0.125*-2 = -0.5,   -1 -> -1.5
    # bottom-left (Eq. 5): col 0: 0.125*-1 + 0.5*-3 + 0.125*2 = -1.375
    #                      col 2: 0.125*0 + 0.5*-4 + 0.125*-2 = -2.25
    # bottom-right: 0 - 1 = -1
    H = history_matrix(R_T, COS, keep=[0, 2])
    assert H.tolist() == [[-1.0, 0.0, -2.125],
                          [2.0, -2.0, -1.5],
                          [-1.375, -2.25, -1.0]]
    # a positive median gives no correction
    H = history_matrix(R_T + 3.0, COS, keep=[0, 2])
    assert H[2, 2] == 0.0 and H[0, 2] == 0.125 * 2 + 0.5 * 1 + 0.125 * 3


def test_history_matrix_published_by_hand():
    # w_j = sim_j / sum_l sim_l = [0.25, 0.5, 0.25] (columns sum to 1); no correction; the
    # bottom-right is the median of the other eight entries
    # top-right: row 0: -0.25 - 1 + 0 = -1.25; row 2: 0.5 - 0.5 - 0.5 = -0.5
    # bottom-left: col 0: -0.25 - 1.5 + 0.5 = -1.25; col 2: 0 - 2 - 0.5 = -2.5
    # median of [-1, 0, 2, -2, -1.25, -2.5, -1.25, -0.5] = (-1.25 - 1) / 2 = -1.125
    H = history_matrix(R_T, COS, keep=[0, 2], convention="published")
    assert H.tolist() == [[-1.0, 0.0, -1.25],
                          [2.0, -2.0, -0.5],
                          [-1.25, -2.5, -1.125]]


@pytest.mark.parametrize("convention", ["paper", "published"])
def test_history_matrix_formula(convention):
    rng = np.random.default_rng(5)
    n_old, n_new = 9, 4
    R = rng.normal(size=(n_old, n_old))
    S = rng.uniform(0.1, 1.0, size=(n_old, n_new))
    keep = [7, 2, 4]
    H = history_matrix(R, S, keep=keep, convention=convention)
    assert H.shape == (7, 7) and H.dtype == np.float64
    paper = convention == "paper"
    W = (S ** 2 if paper else S) / S.sum(axis=0)  # w_jk: old j, new k
    corr = min(np.median(R), 0.0) if paper else 0.0
    for p, kp in enumerate(keep):
        for q, kq in enumerate(keep):
            assert H[p, q] == R[kp, kq]
        for m in range(n_new):
            assert np.isclose(H[p, 3 + m], sum(W[j, m] * R[kp, j] for j in range(n_old)) + corr)
            assert np.isclose(H[3 + m, p], sum(W[j, m] * R[j, kp] for j in range(n_old)))
    if paper:
        assert np.all(H[3:, 3:] == corr)
    else:
        known = np.concatenate([H[:3, :3].ravel(), H[3:, :3].ravel(), H[:3, 3:].ravel()])
        assert np.all(H[3:, 3:] == np.median(known))
    assert history_matrix(R.astype(np.float32), S).shape == (13, 13)
    assert history_matrix(R.astype(np.float32), S).dtype == np.float32
    # a sparse R_t (the sparse mode's) storing every entry gives the same matrix
    import scipy.sparse as sp
    np.testing.assert_allclose(history_matrix(sp.csr_matrix(R), S, keep=keep, convention=convention), H,
                               rtol=1e-12, atol=1e-12)


def _graph_reference(R, U, V, keep, pattern, convention):
    """H at every entry of ``pattern`` by the formulas, summing over R's stored entries only."""
    import scipy.sparse as sp

    R = sp.csr_matrix(R)
    P = len(keep)
    cos = U @ V.T
    sim = cos ** 2 if convention == "paper" else 1.0 - cos
    totals = (cos if convention == "paper" else 1.0 - cos).sum(axis=0)
    W = sim / totals
    out = {}
    stored = pattern.tocoo()
    for r, c in zip(stored.row, stored.col):
        if r < P and c < P:
            out[r, c] = R[keep[r], keep[c]]
        elif r < P:
            row = R[keep[r]]
            out[r, c] = sum(v * W[j, c - P] for j, v in zip(row.indices, row.data))
        elif c < P:
            col = R[:, keep[c]].tocoo()
            out[r, c] = sum(v * W[j, r - P] for j, v in zip(col.row, col.data))
        else:
            out[r, c] = 0.0
    if convention == "paper":
        corr = min(np.median(R.data), 0.0)
        for (r, c) in out:
            if c >= P:
                out[r, c] += corr
    else:
        known = [v for (r, c), v in out.items() if not (r >= P and c >= P)]
        for (r, c) in out:
            if r >= P and c >= P:
                out[r, c] = np.median(known)
    return out


@pytest.mark.parametrize("convention", ["paper", "published"])
def test_history_on_graph_equals_the_formulas(convention):
    import scipy.sparse as sp
    from iterselect.affinity._history import history_on_graph
    from iterselect._knn import kneighbors

    rng = np.random.default_rng(7)
    old, new = rng.normal(size=(30, 6)), rng.normal(size=(12, 6))
    keep = np.array([4, 17, 0, 25, 9])
    # a sparse R_t on the old candidates' 5-NN graph
    old_nb = kneighbors(old.astype(np.float32), 5, index="exact")
    rows = np.repeat(np.arange(30), 5)
    R = sp.csr_matrix((rng.normal(size=150), (rows, old_nb.ravel())), shape=(30, 30))
    grown = np.concatenate([old[keep], new])
    nb = kneighbors(grown.astype(np.float32), 4, index="exact")
    H = history_on_graph(R, old, new, nb, keep=keep, convention=convention)
    U = old / np.linalg.norm(old, axis=1, keepdims=True)
    V = new / np.linalg.norm(new, axis=1, keepdims=True)
    ref = _graph_reference(R, U, V, keep, H, convention)
    assert H.nnz == len(ref)
    for (r, c), v in ref.items():
        assert np.isclose(H[r, c], v, rtol=1e-12, atol=1e-12), (r, c)
    # on the full graph, from a dense R_t, it is history_matrix
    Rd = rng.normal(size=(30, 30))
    full = np.array([[j for j in range(17) if j != i] for i in range(17)])
    old_full = np.array([[j for j in range(30) if j != i] for i in range(30)])
    Hg = history_on_graph(Rd, old, new, full, keep=keep, convention=convention, old_neighbors=old_full)
    cos = U @ V.T
    Hd = history_matrix(Rd, cos if convention == "paper" else 1.0 - cos, keep=keep, convention=convention)
    np.testing.assert_allclose(Hg.toarray(), Hd, rtol=1e-12, atol=1e-12)


def test_history_matrix_feeds_a_run(dolly_embeddings):
    X = dolly_embeddings[:160].astype(np.float64)
    old, new = X[:100], X[100:]
    first = ap(old, return_messages=True, dtype=np.float64)
    keep = first.exemplars
    U = old / np.linalg.norm(old, axis=1, keepdims=True)
    V = new / np.linalg.norm(new, axis=1, keepdims=True)
    H = history_matrix(first.responsibility, U @ V.T, keep=keep)
    grown = np.concatenate([old[keep], new])
    r = ap(grown, history=H, dtype=np.float64, return_messages=True)
    ref = affinity_reference(-pairwise_distances(grown), history=H)
    np.testing.assert_array_equal(r.exemplars, ref[0])


def test_history_matrix_errors():
    R = np.zeros((3, 3))
    with pytest.raises(ValueError, match="'sim_old_new'.*non-zero sum"):
        history_matrix(R, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="'sim_old_new'"):
        history_matrix(R, np.ones((4, 2)))
    with pytest.raises(ValueError, match="'convention' parameter of history_matrix"):
        history_matrix(R, np.ones((3, 2)), convention="cosine")
    with pytest.raises(ValueError, match="'R_old'"):
        history_matrix(np.zeros((3, 4)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="'keep'"):
        history_matrix(R, -np.ones((3, 2)), keep=[0, 0])


# ---------------------------------------------------------------- CUDA kernels on the emulated grid

def _emulated(X, opts_kw, H=None, block_threads=None, max_blocks=None, metric="euclidean"):
    m = as_matrix(X, "X", "test")
    opts = Options(metric=metric, preference=opts_kw.get("preference"), damping=opts_kw.get("damping", 0.5),
                   max_iter=opts_kw.get("max_iter", 200), convergence_iter=opts_kw.get("convergence_iter", 15),
                   random_state=opts_kw.get("random_state"), dtype=np.dtype(opts_kw.get("dtype", np.float32)),
                   history_weight=opts_kw.get("history_weight", 0.5), history_decay=opts_kw.get("history_decay", 0.99),
                   return_messages=True, progress=False, threads=0)
    hm = None if H is None else as_matrix(H, "history", "test")
    return run_dense_device(m, opts, hm, "cuda-emulation", "test", block_threads, max_blocks)


@needs_emulation
@pytest.mark.parametrize("case", [
    dict(n=45, dtype=np.float32),                                   # n not a multiple of 32
    dict(n=20, dtype=np.float64, max_blocks=1, random_state=1),     # n < 32, one block
    dict(n=70, dtype=np.float64, block_threads=64, damping=0.8),    # two warps a block
    dict(n=40, dtype=np.float32, history=True, metric="cosine"),
    dict(n=36, dtype=np.float64, metric="sqeuclidean", preference="array", random_state=2, x64=True),
    dict(n=33, dtype=np.float32, metric="cosine", x64=True),          # float64 rows, float32 messages
])
def test_emulated_cuda_equals_cpu(dolly_embeddings, case):
    case = dict(case)
    n, metric = case.pop("n"), case.pop("metric", "euclidean")
    bt, mb = case.pop("block_threads", None), case.pop("max_blocks", None)
    X = dolly_embeddings[2400:2400 + n]
    if case.pop("x64", False):
        X = X.astype(np.float64) + np.random.default_rng(1).normal(scale=1e-3, size=X.shape)  # double accumulation
    H = np.random.default_rng(0).normal(scale=0.3, size=(n, n)).astype(case["dtype"]) if case.pop("history", False) else None
    if case.get("preference") == "array":
        case["preference"] = np.linspace(-1.5, -0.5, n)
    kw = {k: v for k, v in case.items()}
    rs = kw.pop("random_state", None)
    emu = _emulated(X, dict(kw, random_state=None if rs is None else np.random.RandomState(rs)), H, bt, mb, metric)
    cpu = ap(X, metric=metric, history=H, return_messages=True, random_state=rs, **kw)
    assert emu.n_iter == cpu.n_iter and emu.converged == cpu.converged
    np.testing.assert_array_equal(emu.exemplars, cpu.exemplars)
    np.testing.assert_array_equal(emu.labels, cpu.labels)
    np.testing.assert_array_equal(emu.R, cpu.responsibility)
    np.testing.assert_array_equal(emu.A, cpu.availability)


@needs_emulation
def test_emulated_public_backend_and_scores(dolly_embeddings):
    X = dolly_embeddings[:50]
    e = ap(X, backend="cuda-emulation", return_messages=True, dtype=np.float64, random_state=0)
    c = ap(X, return_messages=True, dtype=np.float64, random_state=0)
    assert e.backend == "cuda-emulation"
    assert_same(e, c)
    mod = _backends.cuda_module("cuda-emulation")
    R, A = np.ascontiguousarray(c.responsibility), np.ascontiguousarray(c.availability)
    out = np.empty(50)
    mod.affinity_representation_scores(R, A, out, block_threads=32, max_blocks=2)
    np.testing.assert_array_equal(out, _backends.core.affinity_representation_scores(R, A, 50, 1))


@needs_emulation
def test_emulated_median_and_range_equal_cpu():
    mod = _backends.cuda_module("cuda-emulation")
    rng = np.random.default_rng(6)
    for dtype, count in ((np.float32, 1001), (np.float64, 1000), (np.float32, 2), (np.float64, 1)):
        v = rng.normal(size=count).astype(dtype)
        v[::7] = v[min(3, count - 1)]  # ties
        expected = np.median(v.astype(np.float64))  # (a + b) / 2 of the middle values, in double
        assert _backends.core.affinity_median(v, 1) == expected
        assert mod.affinity_median(v, block_threads=32, max_blocks=2) == expected
    S = rng.normal(size=(9, 9))
    assert mod.affinity_offdiag_range(S, block_threads=32, max_blocks=2) == _backends.core.affinity_offdiag_range(S, 9)
    off = S[~np.eye(9, dtype=bool)]
    assert _backends.core.affinity_offdiag_range(S, 9) == (off.min(), off.max())


# ---------------------------------------------------------------- real GPU (marker gpu)

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_cuda_equals_cpu(dolly_embeddings, dtype, metric):
    torch = require_module("torch", 'torch')
    X = dolly_embeddings[:3000].astype(np.float32)
    H = np.random.default_rng(0).normal(scale=0.1, size=(3000, 3000)).astype(dtype)
    cpu = ap(X, metric=metric, dtype=dtype, random_state=0, history=H, return_messages=True)
    gpu = ap(torch.from_numpy(X).cuda(), metric=metric, dtype=dtype, random_state=0, history=torch.from_numpy(H).cuda(),
             return_messages=True)
    assert gpu.backend == "cuda" and gpu.responsibility.is_cuda
    np.testing.assert_array_equal(gpu.exemplars.cpu().numpy(), cpu.exemplars)
    np.testing.assert_array_equal(gpu.labels.cpu().numpy(), cpu.labels)
    np.testing.assert_array_equal(gpu.responsibility.cpu().numpy(), cpu.responsibility)
    np.testing.assert_array_equal(gpu.availability.cpu().numpy(), cpu.availability)
    s = representation_scores(gpu.responsibility, gpu.availability)
    np.testing.assert_array_equal(s.cpu().numpy(), representation_scores(cpu.responsibility, cpu.availability))


# ---------------------------------------------------------------- bad input, memory, Ctrl-C

@pytest.mark.parametrize("kwargs, match", [
    (dict(damping=1.2), r"The 'damping' parameter of affinity_propagation must be a float in the range \[0.5, 1.0\)\. Got 1.2 instead\."),
    (dict(damping=1.0), r"'damping'.*\[0.5, 1.0\)"),
    (dict(damping=0.4), r"'damping'"),
    (dict(preference=float("nan")), r"'preference'.*Got nan"),
    (dict(preference=np.array([0.0, np.nan, 0.0, 0.0])), r"'preference'.*position 1"),
    (dict(preference=np.zeros(3)), r"'preference'.*shape \(3,\)"),
    (dict(max_iter=0), r"'max_iter'"),
    (dict(convergence_iter=0), r"'convergence_iter'"),
    (dict(metric="manhattan"), r"'metric'"),
    (dict(dtype=np.int32), r"'dtype'"),
    (dict(history=np.zeros((3, 3))), r"'history'.*\(4, 4\)"),
    (dict(history_weight=1.5), r"'history_weight'"),
    (dict(n_neighbors=4), r"'n_neighbors'.*\[1, 3\]"),
    (dict(n_neighbors=0), r"'n_neighbors'"),
    (dict(knn=np.zeros((4, 2), dtype=np.int64) + 9), r"'knn'"),
    (dict(knn="kdtree", n_neighbors=2), r"'knn'"),
    (dict(knn="ivf"), r"'n_neighbors'.*index name"),
])
def test_bad_parameters_are_named(kwargs, match):
    X = np.arange(8, dtype=np.float64).reshape(4, 2)
    with pytest.raises(ValueError, match=match):
        affinity_propagation(X, progress=False, **kwargs)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"'X_or_S'.*at least 2 row"):
        affinity_propagation(np.zeros((1, 3)), progress=False)
    X = np.ones((5, 2))
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"'X_or_S'.*row 3"):
        affinity_propagation(X, progress=False)
    with pytest.raises(ValueError, match=r"'X_or_S'.*square"):
        affinity_propagation(np.zeros((4, 5)), metric="precomputed", progress=False)
    S = np.zeros((4, 4))
    S[2, 2] = np.inf
    with pytest.raises(ValueError, match=r"'X_or_S'.*row 2"):
        affinity_propagation(S, metric="precomputed", progress=False)
    with pytest.raises(ValueError, match=r"'n_neighbors'.*precomputed"):
        affinity_propagation(np.zeros((4, 4)), metric="precomputed", n_neighbors=2, progress=False)
    with pytest.raises(TypeError, match=r"'random_state'"):
        affinity_propagation(np.ones((4, 2)), random_state=np.random.default_rng(0), progress=False)
    with pytest.raises(ValueError, match=r"'X_or_S'.*zero row at index 1"):
        affinity_propagation(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]), metric="cosine", progress=False)
    with pytest.raises((ValueError, RuntimeError), match="cuda"):
        affinity_propagation(np.ones((4, 2)), backend="cuda", progress=False)


def test_dense_refuses_what_cannot_fit_before_allocating():
    X = np.zeros((1_000_000, 1), dtype=np.float32)
    t = time.time()
    with pytest.raises(MemoryError, match=r"sparse mode \(n_neighbors="):
        affinity_propagation(X, progress=False)
    assert time.time() - t < 5


def test_progress_and_ctrl_c_stop_the_run(monkeypatch):
    import iterselect.affinity._run as run_mod

    calls = []

    class Boom(Exception):
        pass

    from contextlib import contextmanager

    @contextmanager
    def exploding(enabled, total, desc):
        def cb(done, total):
            calls.append(done)
            raise Boom()
        yield cb

    X = np.random.default_rng(8).normal(size=(1500, 16))
    monkeypatch.setattr(run_mod, "progress_callback", exploding)
    with pytest.raises(Boom):
        affinity_propagation(X, max_iter=100000, convergence_iter=100000, progress=True)
    assert len(calls) == 1
    monkeypatch.undo()
    t = time.time()
    with ctrl_c_after(0.5), pytest.raises(KeyboardInterrupt):
        affinity_propagation(X, max_iter=100000, convergence_iter=100000, progress=False)
    assert time.time() - t < 10
