"""k-means (faiss), kMQ sampling, the iterative-kMQ cluster weights and choose_k."""
import doctest
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iterselect._faiss import faiss_num_gpus
from iterselect.cluster import choose_k, cluster_weights_update, kmeans, kmq_sample
from iterselect.metrics import silhouette

from conftest import needs_faiss, require_module

try:
    import faiss
except ImportError:  # the kMQ and weight tests need no faiss
    faiss = None


def blobs(centers, per, sigma=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.asarray(centers, dtype=np.float64)
    X = np.concatenate([c + sigma * rng.standard_normal((per, centers.shape[1])) for c in centers])
    y = np.repeat(np.arange(len(centers)), per)
    return X, y


def same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    pairs = np.unique(np.stack([a, b]), axis=1)
    return pairs.shape[1] == np.unique(a).size == np.unique(b).size


# ------------------------------------------------------------------------------------------
# kmeans
# ------------------------------------------------------------------------------------------
@needs_faiss
def test_kmeans_recovers_blobs_and_inertia_is_sum_of_squared_distances():
    X, y = blobs([[0, 0, 0], [8, 0, 0], [0, 8, 0], [0, 0, 8]], 50)
    res = kmeans(X, 4, seed=3)
    assert res.labels.dtype == np.int64 and res.labels.shape == (200,)
    assert res.centroids.shape == (4, 3) and res.centroids.dtype == np.float32
    assert same_partition(res.labels, y)
    d2 = ((X[:, None, :] - res.centroids[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_array_equal(res.labels, d2.argmin(1))
    assert res.inertia == pytest.approx(d2.min(1).sum(), rel=1e-5)
    assert 1 <= res.objective.size <= 25 and not res.gpu
    assert np.all(np.diff(res.objective) <= 1e-3)  # Lloyd's iterations never increase it


@needs_faiss
def test_kmeans_same_seed_same_result_and_seed_matters():
    X = np.random.default_rng(0).standard_normal((600, 8)).astype(np.float32)
    a, b = kmeans(X, 7, seed=5, niter=10), kmeans(X, 7, seed=5, niter=10)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    assert a.inertia == b.inertia
    c = kmeans(X, 7, seed=6, niter=10)
    assert not np.array_equal(a.centroids, c.centroids)


@needs_faiss
def test_kmeans_nredo_runs_more_and_starts_with_the_single_run():
    X = np.random.default_rng(1).standard_normal((500, 4)).astype(np.float32)
    one = kmeans(X, 12, niter=4, nredo=1, seed=3)
    many = kmeans(X, 12, niter=4, nredo=4, seed=3)
    assert one.objective.size == 4 and many.objective.size == 16
    np.testing.assert_array_equal(many.objective[:4], one.objective)


@needs_faiss
def test_kmeans_subsamples_for_training_but_labels_every_row():
    X = np.random.default_rng(2).standard_normal((3000, 6)).astype(np.float32)
    res = kmeans(X, 5, max_points_per_centroid=20, seed=0)  # trains on 100 rows
    assert res.labels.shape == (3000,)
    d2 = ((X[:, None, :] - res.centroids[None]) ** 2).sum(-1)
    assert res.inertia == pytest.approx(d2.min(1).sum(), rel=1e-5)
    assert res.inertia > res.objective[-1]  # the objective covers only the training sample


@needs_faiss
def test_kmeans_spherical_centroids_are_unit_norm(dolly_embeddings):
    emb = dolly_embeddings[:2000]
    res = kmeans(emb, 10, spherical=True, seed=0)  # float16 input
    np.testing.assert_allclose(np.linalg.norm(res.centroids, axis=1), 1.0, atol=1e-5)
    assert np.bincount(res.labels, minlength=10).min() > 0


@needs_faiss
def test_kmeans_returns_the_inputs_kind():
    torch = require_module("torch", "torch")
    X, y = blobs([[0, 0], [9, 9]], 20)
    res = kmeans(torch.from_numpy(X).to(torch.bfloat16), 2, seed=0)
    assert isinstance(res.labels, torch.Tensor) and res.labels.dtype == torch.int64
    assert isinstance(res.centroids, torch.Tensor) and res.centroids.dtype == torch.float32
    assert same_partition(res.labels.numpy(), y)


@needs_faiss
def test_kmeans_bad_parameters_name_them():
    X = np.zeros((10, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"The 'k' parameter of kmeans must be an int in the range \[1, 10\]\. Got 11"):
        kmeans(X, 11)
    with pytest.raises(ValueError, match="'niter' parameter of kmeans"):
        kmeans(X, 2, niter=0)
    with pytest.raises(ValueError, match="'gpu' parameter of kmeans"):
        kmeans(X, 2, gpu="yes")
    with pytest.raises(TypeError, match="'spherical' parameter"):
        kmeans(X, 2, spherical="no")
    bad = X.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="'X' parameter of kmeans.*row 4"):
        kmeans(bad, 2)


@needs_faiss
@pytest.mark.skipif(faiss is not None and faiss_num_gpus(faiss) > 0,
                    reason="needs faiss without GPU support: this faiss build has it")
def test_kmeans_gpu_true_without_faiss_gpu_is_an_error():
    with pytest.raises(ValueError, match="'gpu' parameter of kmeans.*no GPU support"):
        kmeans(np.zeros((10, 2), dtype=np.float32), 2, gpu=True)


def test_kmeans_without_faiss_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"pip install iterselect\[faiss\]"):
        kmeans(np.zeros((10, 2), dtype=np.float32), 2)
    # the rest of the module works without faiss
    assert kmq_sample(np.array([0, 0, 1, 1]), 2).per_cluster.tolist() == [1, 1]


# ------------------------------------------------------------------------------------------
# kmq_sample: reference allocation (naive water-filling) and invariants
# ------------------------------------------------------------------------------------------
def ref_fill(budget, v, cap):
    """Naive water-filling: cap every cluster that overflows at the current level, repeat."""
    x = np.zeros(len(v))
    active = (v > 0) & (cap > 0)
    left = float(budget)
    while left > 1e-12 and active.any():
        lam = left / v[active].sum()
        over = active & (lam * v >= cap)
        if over.any():
            x[over] = cap[over]
            left -= cap[over].sum()
            active &= ~over
        else:
            x[active] = lam * v[active]
            left = 0.0
    return x, left


def ref_shares(budget, labels, selected, weights, allocation, k):
    size = np.bincount(labels, minlength=k).astype(float)
    avail = np.ones(len(labels), bool)
    avail[selected] = False
    cap = np.bincount(labels[avail], minlength=k).astype(float)
    v = size * weights if allocation == "proportional" else weights.astype(float)
    x, left = ref_fill(budget, v, cap)
    if left > 1e-9:
        zero = (v <= 0) & (cap > 0)
        vz = np.where(zero, size if allocation == "proportional" else 1.0, 0.0)
        xz, _ = ref_fill(left, vz, cap)
        x = x + xz
    return x, cap


@st.composite
def kmq_cases(draw):
    n = draw(st.integers(1, 120))
    k = draw(st.integers(1, 8))
    labels = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    sel_mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    if sel_mask.all():
        sel_mask[draw(st.integers(0, n - 1))] = False
    selected = np.flatnonzero(sel_mask)
    budget = draw(st.integers(1, n - selected.size))
    within = draw(st.sampled_from(["multinomial", "softmax", "uniform"]))
    allocation = draw(st.sampled_from(["proportional", "equal"]))
    quality = None
    if within != "uniform" and draw(st.booleans()):
        lo = 0.0 if within == "multinomial" else -50.0
        vals = st.one_of(st.just(0.0), st.floats(lo, 50.0, allow_nan=False))
        quality = np.array(draw(st.lists(vals, min_size=n, max_size=n)))
    weights = None
    if draw(st.booleans()):
        weights = np.array(draw(st.lists(st.sampled_from([0.0, 0.25, 1.0, 3.0, 7.5]), min_size=k, max_size=k)))
        if not (weights > 0).any():
            weights[0] = 1.0
    seed = draw(st.integers(0, 2**32))
    return dict(labels=labels, selected=selected, budget=budget, within=within, allocation=allocation,
                quality=quality, weights=weights, seed=seed, k=k)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kmq_cases())
def test_kmq_sample_invariants(case):
    labels, selected, budget = case["labels"], case["selected"], case["budget"]
    kw = dict(quality=case["quality"], cluster_weights=case["weights"], selected=selected,
              allocation=case["allocation"], within=case["within"], seed=case["seed"])
    res = kmq_sample(labels, budget, **kw)
    idx, per = res.indices, res.per_cluster
    k = case["k"] if case["weights"] is not None else int(labels.max()) + 1
    # exact budget, no repeats, nothing selected again, counts match
    assert idx.dtype == np.int64 and per.dtype == np.int64
    assert idx.shape == (budget,) and per.sum() == budget
    assert np.unique(idx).size == budget
    assert not np.isin(idx, selected).any()
    assert ((idx >= 0) & (idx < len(labels))).all()
    np.testing.assert_array_equal(np.bincount(labels[idx], minlength=k), per)
    # never more than a cluster has left; within 1 of the ideal (water-filled) share
    w = np.ones(k) if case["weights"] is None else case["weights"]
    ideal, cap = ref_shares(budget, labels, selected, w, case["allocation"], k)
    assert (per <= cap).all()
    assert np.all(np.abs(per - ideal) < 1 + 1e-9), (per, ideal)
    # zero quality is drawn only once the cluster's positive-quality points are all taken
    if case["within"] == "multinomial" and case["quality"] is not None:
        q = case["quality"]
        avail = np.setdiff1d(np.arange(len(labels)), selected)
        for j in np.unique(labels[idx]):
            picked = idx[labels[idx] == j]
            pos_left = avail[(labels[avail] == j) & (q[avail] > 0)]
            if (q[picked] == 0).any():
                assert np.isin(pos_left, picked).all()
    # same seed, same sample
    again = kmq_sample(labels, budget, **kw)
    np.testing.assert_array_equal(again.indices, idx)


def test_kmq_proportional_allocation_is_within_one_of_the_exact_share():
    labels = np.repeat(np.arange(5), [37, 11, 5, 90, 7])
    for budget in (1, 13, 50, 77, 149):
        per = kmq_sample(labels, budget).per_cluster
        ideal = budget * np.bincount(labels) / labels.size
        assert per.sum() == budget
        assert np.all(np.abs(per - ideal) < 1)


def test_kmq_caps_and_redistributes_the_overflow():
    labels = np.repeat([0, 1, 2], [10, 10, 10])
    weights = np.array([100.0, 1.0, 1.0])
    res = kmq_sample(labels, 20, cluster_weights=weights)
    assert res.per_cluster.tolist() == [10, 5, 5]  # cluster 0 capped, the rest shared equally
    # selected points count toward the size, but only what is left can be drawn
    res = kmq_sample(labels, 12, selected=np.arange(8))
    assert res.per_cluster.tolist() == [2, 5, 5]


def test_kmq_zero_weight_clusters_only_after_the_others_are_exhausted():
    labels = np.repeat([0, 1, 2], [4, 6, 10])
    weights = np.array([1.0, 0.0, 0.0])
    assert kmq_sample(labels, 4, cluster_weights=weights).per_cluster.tolist() == [4, 0, 0]
    assert kmq_sample(labels, 12, cluster_weights=weights).per_cluster.tolist() == [4, 3, 5]


def test_kmq_equal_allocation_splits_evenly():
    labels = np.repeat([0, 1, 2, 3], [100, 50, 3, 20])
    per = kmq_sample(labels, 40, allocation="equal").per_cluster
    assert per.tolist() == [13, 12, 3, 12]  # 3 is capped, its overflow split, remainder to id 0


def test_kmq_indices_interleave_clusters_in_draw_order():
    labels = np.repeat([0, 1], [6, 3])
    res = kmq_sample(labels, 6)
    assert res.per_cluster.tolist() == [4, 2]
    assert labels[res.indices].tolist() == [0, 1, 0, 0, 1, 0]


def test_kmq_positive_quality_before_zero_quality():
    labels = np.zeros(6, dtype=np.int64)
    q = np.array([0.0, 0.0, 5.0, 1e-9, 0.0, 2.0])
    for seed in range(50):
        assert sorted(kmq_sample(labels, 3, quality=q, seed=seed).indices.tolist()) == [2, 3, 5]


def freq_of_first(labels, q, within, trials=4000):
    n = len(labels)
    counts = np.zeros(n)
    for seed in range(trials):
        counts[kmq_sample(labels, 1, quality=q, within=within, seed=seed).indices[0]] += 1
    return counts / trials


def test_kmq_multinomial_draw_probabilities_are_proportional_to_quality():
    q = np.array([1.0, 2.0, 3.0, 4.0])
    f = freq_of_first(np.zeros(4, dtype=np.int64), q, "multinomial")
    np.testing.assert_allclose(f, q / q.sum(), atol=0.03)


def test_kmq_multinomial_pairs_follow_successive_sampling():
    q = np.array([1.0, 2.0, 7.0])
    p = q / q.sum()
    exact = {}
    for i in range(3):
        for j in range(3):
            if i != j:
                key = frozenset((i, j))
                exact[key] = exact.get(key, 0.0) + p[i] * p[j] / (1 - p[i])
    counts = {}
    trials = 4000
    for seed in range(trials):
        key = frozenset(kmq_sample(np.zeros(3, np.int64), 2, quality=q, seed=seed).indices.tolist())
        counts[key] = counts.get(key, 0) + 1
    for key, pr in exact.items():
        assert counts.get(key, 0) / trials == pytest.approx(pr, abs=0.03)


def test_kmq_softmax_is_stable_for_large_scores():
    q = np.array([1000.0, 1001.0, 999.0, -1e6])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = freq_of_first(np.zeros(4, dtype=np.int64), q, "softmax")
    e = np.exp(q - q.max())
    np.testing.assert_allclose(f, e / e.sum(), atol=0.03)


def test_kmq_uniform_and_missing_quality_are_uniform():
    f = freq_of_first(np.zeros(4, dtype=np.int64), None, "uniform")
    np.testing.assert_allclose(f, 0.25, atol=0.03)
    f = freq_of_first(np.zeros(4, dtype=np.int64), np.zeros(4), "multinomial")
    np.testing.assert_allclose(f, 0.25, atol=0.03)


def test_kmq_different_seeds_differ():
    labels = np.repeat(np.arange(10), 100)
    a = kmq_sample(labels, 100, seed=1).indices
    b = kmq_sample(labels, 100, seed=2).indices
    assert not np.array_equal(np.sort(a), np.sort(b))


def test_kmq_accepts_torch_labels():
    torch = require_module("torch", "torch")
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    res = kmq_sample(labels, 3, quality=torch.ones(6, dtype=torch.float32), seed=0)
    assert res.per_cluster.tolist() == [1, 2, 0]  # shares 1, 1.5, 0.5: the tie goes to id 1
    np.testing.assert_array_equal(np.bincount(labels.numpy()[res.indices], minlength=3), res.per_cluster)


def test_kmq_bad_input_names_the_parameter():
    labels = np.array([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"The 'budget' parameter of kmq_sample must be an int in the range \[1, 5\]\. Got 9 instead\."):
        kmq_sample(labels, 9)
    with pytest.raises(ValueError, match=r"'budget' parameter of kmq_sample must be an int in the range \[1, 3\]"):
        kmq_sample(labels, 4, selected=[0, 1])
    with pytest.raises(ValueError, match="'budget'"):
        kmq_sample(labels, 0)
    with pytest.raises(ValueError, match="'quality' parameter of kmq_sample.*length 5"):
        kmq_sample(labels, 2, quality=np.ones(4))
    with pytest.raises(ValueError, match="'quality' parameter of kmq_sample must be finite.*nan"):
        kmq_sample(labels, 2, quality=np.array([1.0, np.nan, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="'quality' parameter of kmq_sample must be non-negative.*-1.0 at position 3"):
        kmq_sample(labels, 2, quality=np.array([1.0, 1.0, 1.0, -1.0, 1.0]))
    # negative quality is fine for softmax
    kmq_sample(labels, 2, quality=np.array([1.0, 1.0, 1.0, -1.0, 1.0]), within="softmax")
    with pytest.raises(ValueError, match="'quality' parameter of kmq_sample must be None when within='uniform'"):
        kmq_sample(labels, 2, quality=np.ones(5), within="uniform")
    with pytest.raises(ValueError, match="'labels' parameter of kmq_sample must be non-negative.*-1 at position 1"):
        kmq_sample(np.array([0, -1, 1]), 1)
    with pytest.raises(TypeError, match="'labels' parameter of kmq_sample"):
        kmq_sample(np.array([0.0, 1.0]), 1)
    with pytest.raises(ValueError, match="'labels' parameter of kmq_sample"):
        kmq_sample(np.zeros((2, 2), dtype=int), 1)
    with pytest.raises(ValueError, match="'cluster_weights' parameter of kmq_sample.*at least 3"):
        kmq_sample(labels, 2, cluster_weights=np.ones(2))
    with pytest.raises(ValueError, match="'cluster_weights' parameter of kmq_sample.*positive"):
        kmq_sample(labels, 2, cluster_weights=np.zeros(3))
    with pytest.raises(ValueError, match="'cluster_weights' parameter of kmq_sample must be non-negative"):
        kmq_sample(labels, 2, cluster_weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="'selected' parameter of kmq_sample.*duplicates"):
        kmq_sample(labels, 2, selected=[1, 1])
    with pytest.raises(ValueError, match="'selected' parameter of kmq_sample.*range"):
        kmq_sample(labels, 2, selected=[7])
    with pytest.raises(ValueError, match="'within' parameter of kmq_sample"):
        kmq_sample(labels, 2, within="gumbel")
    with pytest.raises(ValueError, match="'allocation' parameter of kmq_sample"):
        kmq_sample(labels, 2, allocation="sqrt")
    with pytest.raises(ValueError, match="'seed' parameter of kmq_sample"):
        kmq_sample(labels, 2, seed=-1)


# ------------------------------------------------------------------------------------------
# cluster_weights_update (Eq. 5-6)
# ------------------------------------------------------------------------------------------
def _eq6_reference(w_prev, labels, scores, transform):
    """Eq. 5 by a loop over clusters, then Eq. 6 on transform(s), then divided by the sum."""
    k = len(w_prev)
    s = [np.mean([sc for lab, sc in zip(labels, scores) if lab == j]) for j in range(k)]
    t = [transform(x) for x in s]
    w = [t[j] / sum(t) * w_prev[j] for j in range(k)]
    return np.array(s), np.array(w) / sum(w)


def test_cluster_weights_update_is_eq5_eq6():
    w = np.array([0.5, 0.25, 0.25])
    labels = np.array([0, 0, 1, 2, 2, 2])
    scores = np.array([1.0, 3.0, 4.0, 1.0, 2.0, 3.0])
    s, ref = _eq6_reference(w, labels, scores, lambda x: x)
    res = cluster_weights_update(w, labels, scores, rule="ratio")
    np.testing.assert_allclose(res.cluster_scores, [2.0, 4.0, 2.0])
    np.testing.assert_allclose(res.cluster_scores, s)
    np.testing.assert_allclose(res.weights, ref)
    np.testing.assert_allclose(res.factors, s / s.sum())
    assert res.counts.tolist() == [2, 1, 3] and res.shift == 0.0


def test_cluster_weights_update_exp_rule_is_eq6_on_exp_scores():
    """The default: Eq. 6 with s_j -> exp(s_j), the published code's transform; negative and
    large scores give positive, finite weights."""
    rng = np.random.default_rng(0)
    w = rng.random(5) + 0.1
    labels = rng.integers(0, 5, 40)
    labels[:5] = np.arange(5)
    for scale in (1.0, 30.0, 800.0):  # 800: exp overflows unless done in log space
        scores = rng.normal(size=40) * scale - scale
        _, ref = _eq6_reference(w, labels, scores / scale, lambda x: np.exp(x))
        res = cluster_weights_update(w, labels, scores)
        assert res.rule == "exp"
        assert np.isfinite(res.weights).all() and (res.weights >= 0).all()
        assert abs(res.weights.sum() - 1) < 1e-12
        if scale == 1.0:
            np.testing.assert_allclose(res.weights, ref, rtol=1e-12)


def test_cluster_weights_update_published_rule_is_the_published_softmax():
    """for-ai/iterative-data-selection: mean reward difference per cluster, exp, divided by the
    sum; the previous weights are not used."""
    labels = [0, 0, 1, 2]
    scores = [-3.0, -1.0, 0.5, 2.0]
    means = np.array([-2.0, 0.5, 2.0])
    expected = np.exp(means) / np.exp(means).sum()
    for w_prev in (np.ones(3), np.array([0.9, 0.05, 0.05])):
        res = cluster_weights_update(w_prev, labels, scores, rule="published")
        np.testing.assert_allclose(res.weights, expected)


def test_cluster_weights_update_shift_rule_zeroes_the_lowest_cluster():
    res = cluster_weights_update(np.ones(3), [0, 1, 2, 2], [-2.0, 1.0, 0.0, 2.0], rule="shift")
    assert res.shift == 2.0
    np.testing.assert_allclose(res.cluster_scores, [-2.0, 1.0, 1.0])
    np.testing.assert_allclose(res.weights, [0.0, 0.5, 0.5])
    assert (res.weights >= 0).all()


def test_cluster_weights_update_ratio_rule_refuses_negative_means():
    with pytest.raises(ValueError, match="rule='exp' handles negative means"):
        cluster_weights_update(np.ones(2), [0, 1], [-1.0, 1.0], rule="ratio")
    with pytest.raises(ValueError, match="'rule' parameter of cluster_weights_update"):
        cluster_weights_update(np.ones(2), [0, 1], [1.0, 1.0], rule="softmax")


def test_cluster_weights_update_all_equal_or_zero_scores_keep_proportions():
    w = np.array([0.2, 0.3, 0.5])
    for rule in ("exp", "shift", "ratio"):
        for scores in ([0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]):
            if rule == "ratio" and scores[0] < 0:
                continue
            res = cluster_weights_update(w, [0, 1, 2], scores, rule=rule)
            np.testing.assert_allclose(res.weights, w / w.sum())
            assert np.isfinite(res.weights).all()


def test_cluster_weights_update_unscored_cluster_gets_the_mean():
    res = cluster_weights_update(np.ones(3), [0, 2], [1.0, 3.0], rule="ratio")
    np.testing.assert_allclose(res.cluster_scores, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(res.weights, [1 / 6, 2 / 6, 3 / 6])
    assert res.counts.tolist() == [1, 0, 1]
    res = cluster_weights_update(np.ones(3), [0, 2], [1.0, 3.0])
    np.testing.assert_allclose(res.weights, np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum())


def test_cluster_weights_update_feeds_kmq_sample():
    labels = np.repeat([0, 1], [50, 50])
    w = cluster_weights_update(np.ones(2), [0, 1], [1.0, 3.0], rule="ratio").weights
    assert kmq_sample(labels, 20, cluster_weights=w).per_cluster.tolist() == [5, 15]


def test_cluster_weights_update_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match=r"'labels' parameter of cluster_weights_update must be a 1-D array of length 3"):
        cluster_weights_update(np.ones(2), [0, 1], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"'labels' parameter of cluster_weights_update must be cluster ids in the range \[0, 1\]"):
        cluster_weights_update(np.ones(2), [0, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="'scores' parameter of cluster_weights_update must be finite"):
        cluster_weights_update(np.ones(2), [0, 1], [1.0, np.nan])
    with pytest.raises(ValueError, match="'weights' parameter of cluster_weights_update.*positive"):
        cluster_weights_update(np.zeros(2), [0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="'weights' parameter of cluster_weights_update must be non-negative"):
        cluster_weights_update(np.array([1.0, -1.0]), [0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="'scores' parameter of cluster_weights_update.*non-empty"):
        cluster_weights_update(np.ones(2), [], [])


# ------------------------------------------------------------------------------------------
# choose_k
# ------------------------------------------------------------------------------------------
@needs_faiss
def test_choose_k_finds_the_number_of_blobs_and_reports_every_score():
    X, y = blobs([[0, 0], [10, 0], [0, 10], [10, 10]], 60, sigma=0.8, seed=1)
    res = choose_k(X, [2, 3, 4, 5, 6], sample_size=150, seed=0, progress=False)
    assert res.k == 4 and same_partition(res.kmeans.labels, y)
    assert res.candidates.tolist() == [2, 3, 4, 5, 6] and res.indices.shape == (150,)
    for c, s in zip(res.candidates, res.scores):
        lab = kmeans(X, int(c), seed=0).labels
        assert s == pytest.approx(silhouette(X, lab, sample_size=150, seed=0, progress=False).score)
    assert res.scores.argmax() == 2


@needs_faiss
def test_choose_k_bad_candidates():
    X = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(ValueError, match=r"'candidates' parameter of choose_k must be an int in the range \[2, 19\]"):
        choose_k(X, [1, 3], progress=False)
    with pytest.raises(ValueError, match="'candidates' parameter of choose_k must be values without duplicates"):
        choose_k(X, [3, 3], progress=False)
    with pytest.raises(TypeError, match="'candidates' parameter of choose_k"):
        choose_k(X, 3, progress=False)


@needs_faiss  # the kmeans and choose_k examples run faiss
def test_docstring_examples_run():
    import importlib

    for name in ("_kmeans", "_kmq", "_weights", "_choose_k"):
        module = importlib.import_module(f"iterselect.cluster.{name}")
        res = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.attempted > 0 and res.failed == 0, name
