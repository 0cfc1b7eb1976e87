"""The papers' baselines (kMQ §3.3: kM-Closest, kM-Random, kMQ, Deita, QDIT; DiverseEvol §4.1:
Least-Confidence, Margin-Sampling), each against a plain reference, from Python and from the
command line."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import require_module

from iterselect import cli
from iterselect.cluster import kmeans, kmq_sample
from iterselect.methods import (deita_select, kmeans_closest_select, kmeans_random_select,
                                kmq_select, qdit_select)


def _blobs(seed=0, n_per=(30, 20, 10)):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 9.0], [15.0, 0.0, 9.0], [0.0, 15.0, 9.0]])
    return np.concatenate([c + rng.normal(size=(m, 3)) for c, m in zip(centers, n_per)])


def _largest_remainder(k, sizes):
    """Budgets proportional to size: floors, then the largest remainders (ties: lowest id)."""
    share = [k * s / sum(sizes) for s in sizes]
    base = [int(np.floor(x)) for x in share]
    rest = sorted(range(len(sizes)), key=lambda j: (-(share[j] - base[j]), j))
    for j in rest[:k - sum(base)]:
        base[j] += 1
    return base


def test_kmeans_closest_matches_a_plain_loop():
    X = _blobs()
    for k in (6, 13, 60):
        got = kmeans_closest_select(X, k, n_clusters=3)
        km = kmeans(X, 3, seed=42)  # the paper's seed, as the baseline's default
        labels, cent = km.labels, km.centroids.astype(np.float64)
        budgets = _largest_remainder(k, [int((labels == j).sum()) for j in range(3)])
        expected = []
        for j in range(3):
            members = [i for i in range(len(X)) if labels[i] == j]
            dist = {i: float(np.linalg.norm(X[i] - cent[j])) for i in members}
            expected += sorted(members, key=lambda i: (dist[i], i))[:budgets[j]]
        assert sorted(got.indices.tolist()) == sorted(expected)
        np.testing.assert_allclose(got.scores, np.linalg.norm(X[got.indices] - cent[labels[got.indices]], axis=1))
        assert got.method == "kM-Closest"


def test_kmeans_random_budgets_and_draws():
    X = _blobs()
    got = kmeans_random_select(X, 12, n_clusters=3, seed=7)
    labels = kmeans(X, 3, seed=7).labels
    counts = np.bincount(labels[got.indices], minlength=3).tolist()
    assert counts == _largest_remainder(12, np.bincount(labels).tolist())
    assert np.unique(got.indices).size == 12
    assert got.indices.tolist() == kmq_sample(labels, 12, within="uniform", seed=7).indices.tolist()
    assert got.indices.tolist() == kmeans_random_select(X, 12, n_clusters=3, seed=7).indices.tolist()
    assert got.indices.tolist() != kmeans_random_select(X, 12, n_clusters=3, seed=8).indices.tolist()


def test_kmq_select_draws_by_quality_within_proportional_budgets():
    X = _blobs()
    labels = kmeans(X, 3, seed=42).labels
    q = np.zeros(len(X))
    for j in range(3):  # a few positive-quality points per cluster, more than its budget
        q[np.flatnonzero(labels == j)[:5]] = np.arange(1, 6)
    got = kmq_select(X, 9, quality=q, n_clusters=3)
    assert (q[got.indices] > 0).all()
    assert np.bincount(labels[got.indices], minlength=3).tolist() == _largest_remainder(
        9, np.bincount(labels).tolist())
    assert got.indices.tolist() == kmq_sample(labels, 9, quality=q, seed=42).indices.tolist()
    np.testing.assert_array_equal(got.scores, q[got.indices])


def test_auto_clusters_find_the_blobs():
    from iterselect.methods.cluster_baselines import cluster_embeddings

    km, sil = cluster_embeddings(_blobs(), "auto", candidates=[2, 3, 4, 8])
    assert km.centroids.shape[0] == 3 and max(sil, key=sil.get) == 3


# --- QDIT ---------------------------------------------------------------------------------

def numpy_facility(X, k, *, n_neighbors, metric, quality, quality_weight, selected, progress):
    """Plain greedy facility location on the dense max(cos, 0) matrix, plus quality. Gains
    within 1e-12 of each other are ties (lowest index): two candidates that cover the same
    points have equal gains whose float sums differ in the last bit."""
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = np.maximum(Xn @ Xn.T, 0.0)
    cur = np.zeros(len(X))
    picks, gains = [], []
    for _ in range(k):
        best, best_gain = None, -np.inf
        for j in range(len(X)):
            if j in picks:
                continue
            g = (1 - quality_weight) * np.maximum(S[:, j] - cur, 0).sum() + quality_weight * quality[j]
            if g > best_gain + 1e-12:
                best, best_gain = j, g
        picks.append(best)
        gains.append(best_gain)
        cur = np.maximum(cur, S[:, best])
    return SimpleNamespace(indices=np.array(picks), gains=np.array(gains))


def published_qdit(data, quality, K, alpha):
    """The kMQ paper's published QDIT loop: the whole facility-location value of S + {i}."""
    def cos(a, b):
        return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    subset = []
    while len(subset) < K:
        scores = []
        for i in range(len(data)):
            if i in subset:
                scores.append(-np.inf)
                continue
            cand = subset + [i]
            div = sum(max(cos(v, data[j]) for j in cand) for v in data)
            scores.append((1 - alpha) * div + alpha * quality[i])
        subset.append(int(np.argmax(scores)))
    return subset


def test_qdit_is_the_published_objective_greedy():
    rng = np.random.default_rng(3)
    X = rng.random((25, 4))  # non-negative: every cosine >= 0, so max(cos, 0) is cos
    q = rng.random(25)
    for alpha in (0.0, 0.3, 0.9):
        got = qdit_select(X, 6, quality=q, quality_weight=alpha, n_neighbors=24,
                          selector=numpy_facility)
        assert got.indices.tolist() == published_qdit(X, q, 6, alpha)
        assert got.method == "QDIT" and np.all(np.diff(got.scores) <= 1e-12)


def test_qdit_on_the_facility_kernel_equals_the_numpy_greedy():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 5))
    q = rng.random(60)
    got = qdit_select(X, 10, quality=q, quality_weight=0.4, n_neighbors=59)
    ref = numpy_facility(X, 10, n_neighbors=59, metric="cosine", quality=q, quality_weight=0.4,
                         selected=None, progress=False)
    assert got.indices.tolist() == ref.indices.tolist()
    np.testing.assert_allclose(got.scores, ref.gains, rtol=1e-6)


def test_qdit_kernel_at_exact_ties_picks_one_of_the_references_tied_best():
    """Duplicates, and pairs of points that represent each other, make exact ties whose float
    sums differ in the last bit. The numpy reference calls gains within 1e-12 a tie and takes
    the lowest index; the kernel takes the larger of its own sums (the lowest index only when
    they are bitwise equal), so at such a step the two may take different members of the tie
    (seen: seed 44, step 7, the kernel 39 and the reference 18, gains 2 (1 + s - c_18 - c_39)
    both). Each kernel pick is therefore checked against the reference's gains given the
    kernel's earlier picks: it must be within 1e-12 of the best (one of the tied best), and the
    only one when the best is unique."""
    tie_steps = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        base = rng.normal(size=(30, 5))
        X = np.concatenate([base, base[rng.integers(0, 30, size=15)]])[rng.permutation(45)]
        q = np.round(rng.random(45), 1)  # quality ties as well
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        S = np.maximum(Xn @ Xn.T, 0.0)
        for alpha in (0.0, 0.4):
            got = qdit_select(X, 12, quality=q, quality_weight=alpha, n_neighbors=44)
            cur = np.zeros(len(X))
            for t, j in enumerate(got.indices.tolist()):
                g = (1 - alpha) * np.maximum(S - cur[:, None], 0).sum(axis=0) + alpha * q
                g[got.indices[:t]] = -np.inf
                best = np.flatnonzero(g > g.max() - 1e-12)
                assert j in best, (seed, alpha, t, j, best)
                np.testing.assert_allclose(got.scores[t], g[j], rtol=1e-9, atol=1e-12)
                tie_steps += best.size > 1
                cur = np.maximum(cur, S[:, j])
    assert tie_steps > 0  # the cases do exercise ties


# --- Deita, the published code's distance -------------------------------------------------

def test_deita_sqeuclidean_matches_a_plain_loop():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 4)) * 0.5
    q = rng.random(120)
    got = deita_select(X, 15, quality=q, threshold=0.6, metric="sqeuclidean")
    kept = []
    for i in np.argsort(-q, kind="stable"):
        if all(((X[i] - X[j]) ** 2).sum() >= 0.6 for j in kept):
            kept.append(int(i))
        if len(kept) == 15:
            break
    assert got.indices.tolist() == kept


# --- DiverseEvol's uncertainty baselines --------------------------------------------------

torch = require_module("torch", "torch", module_level=True)

from iterselect.methods import least_confidence_select, margin_select  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hf_offline")


@pytest.fixture(scope="module")
def toy():
    from iterselect.scoring.toy import toy_model_and_tokenizer

    return toy_model_and_tokenizer("llama", seed=2)


@pytest.fixture(scope="module")
def records():
    from iterselect.datasets import load_dolly

    return [r for r in load_dolly()[:300]  # short enough that nothing is truncated
            if len(r["instruction"]) + len(r["input"]) + len(r["output"]) < 300][:24]


def _plain_confidence(model, tok, rec, positions="all"):
    """The published code's loop: one example, every position's sorted logits."""
    from iterselect.scoring import format_examples

    ex = format_examples([rec])[0]
    p = tok(ex.prompt, add_special_tokens=False)["input_ids"]
    r = tok(ex.response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = torch.tensor([p + r])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    top = torch.sort(logits, dim=-1).values
    keep = slice(None) if positions == "all" else slice(len(p) - 1, len(p) + len(r) - 1)
    return (float(top[keep, -1].mean()), float((top[keep, -1] - top[keep, -2]).mean()))


@pytest.mark.parametrize("positions", ["all", "response"])
def test_least_confidence_and_margin_match_a_plain_loop(toy, records, positions):
    model, tok = toy
    selected = [0, 5]
    cand = [i for i in range(len(records)) if i not in selected]
    plain = {i: _plain_confidence(model, tok, records[i], positions) for i in cand}
    lc = least_confidence_select(records, 6, model=model, tokenizer=tok, selected=selected,
                                 positions=positions, batch_tokens=700)
    ref = sorted(cand, key=lambda i: (plain[i][0], i))[:6]
    assert lc.indices.tolist() == ref
    np.testing.assert_allclose(lc.scores, [plain[i][0] for i in ref], rtol=1e-5, atol=1e-5)
    mg = margin_select(records, 6, model=model, tokenizer=tok, selected=selected,
                       positions=positions, batch_tokens=700)
    ref = sorted(cand, key=lambda i: (plain[i][1], i))[:6]
    assert mg.indices.tolist() == ref
    np.testing.assert_allclose(mg.scores, [plain[i][1] for i in ref], rtol=1e-5, atol=1e-5)


def test_uncertainty_errors(toy, records):
    model, tok = toy
    with pytest.raises(ValueError, match="'k' parameter of least_confidence_select"):
        least_confidence_select(records[:3], 3, model=model, tokenizer=tok, selected=[0])
    with pytest.raises(ValueError, match="'margin_of' parameter of token_confidence"):
        margin_select(records[:3], 1, model=model, tokenizer=tok, margin_of="odds")


# --- the command line ---------------------------------------------------------------------

@pytest.fixture()
def small_file(tmp_path):
    X = _blobs()
    rng = np.random.default_rng(1)
    recs = [{"instruction": f"Question {i}?", "output": "word " * (1 + i % 7),
             "quality": float(rng.random())} for i in range(len(X))]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in recs))
    emb = tmp_path / "e.npy"
    np.save(emb, X)
    return data, emb, X, np.array([r["quality"] for r in recs]), recs


def _report(tmp_path, argv):
    out = tmp_path / "out.jsonl"
    assert cli.main(argv + ["--output", str(out), "--no-progress"]) == 0
    return json.loads((tmp_path / "out.jsonl.report.json").read_text())


def test_cli_cluster_baselines_equal_python(small_file, tmp_path):
    data, emb, X, q, _ = small_file
    base = ["--budget", "9", "--input", str(data), "--embeddings", str(emb)]
    rep = _report(tmp_path, ["select", "kmclosest", "--clusters", "3"] + base)
    assert rep["indices"] == kmeans_closest_select(X, 9, n_clusters=3).indices.tolist()
    rep = _report(tmp_path, ["select", "kmrandom", "--clusters", "3", "--seed", "5"] + base)
    assert rep["indices"] == kmeans_random_select(X, 9, n_clusters=3, seed=5).indices.tolist()
    rep = _report(tmp_path, ["select", "kmq", "--clusters", "3", "--quality-field", "quality"] + base)
    assert rep["indices"] == kmq_select(X, 9, quality=q, n_clusters=3).indices.tolist()
    qfile = tmp_path / "q.npy"
    np.save(qfile, q)
    rep = _report(tmp_path, ["select", "deita", "--scores", str(qfile), "--distance",
                             "sqeuclidean", "--threshold", "4"] + base)
    assert rep["indices"] == deita_select(X, 9, quality=q, threshold=4, metric="sqeuclidean").indices.tolist()


def test_cli_qdit(small_file, tmp_path):
    data, emb, X, q, _ = small_file
    argv = ["select", "qdit", "--budget", "5", "--input", str(data), "--embeddings", str(emb),
            "--quality-field", "quality", "--quality-weight", "0.3", "--n-neighbors", "20"]
    rep = _report(tmp_path, argv)
    py = qdit_select(X, 5, quality=q, quality_weight=0.3, n_neighbors=20)
    assert rep["indices"] == py.indices.tolist()
    np.testing.assert_allclose(rep["scores"], py.scores)


def test_cli_uncertainty_baselines(small_file, tmp_path):
    from iterselect.scoring.toy import toy_model_and_tokenizer

    data, _, _, _, recs = small_file
    model, tok = toy_model_and_tokenizer()
    for name, fn in (("least-confidence", least_confidence_select), ("margin", margin_select)):
        rep = _report(tmp_path, ["select", name, "--model", "toy", "--budget", "4", "--input",
                                 str(data)])
        assert rep["indices"] == fn(recs, 4, model=model, tokenizer=tok).indices.tolist()
