"""silhouette (against scikit-learn) and vendi_score (against the vendi-score package)."""
import doctest
import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples, silhouette_score
from sklearn.preprocessing import normalize

import iterselect.metrics as metrics_mod
from iterselect.metrics import silhouette, vendi_score

from conftest import needs_vendi, require_module

try:
    from vendi_score import vendi
except ImportError:  # the silhouette tests need no vendi-score
    vendi = None
# vendi-score imports scipy.sparse.csr, deprecated in recent SciPy
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")



def labelled(n=300, d=8, k=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = 3 * rng.standard_normal((k, d))
    labels = rng.integers(0, k, n)
    labels[7] = k  # a singleton cluster
    X = np.concatenate([centers, rng.standard_normal((1, d))])[labels] + rng.standard_normal((n, d))
    return X, labels


# ------------------------------------------------------------------------------------------
# silhouette
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("block_size", [None, 7])
def test_silhouette_equals_sklearn(metric, block_size):
    X, labels = labelled()
    res = silhouette(X, labels, metric=metric, block_size=block_size, progress=False)
    assert res.score == pytest.approx(silhouette_score(X, labels, metric=metric), abs=1e-12)
    np.testing.assert_allclose(res.values, silhouette_samples(X, labels, metric=metric), atol=1e-12)
    assert res.values[7] == 0.0  # the singleton
    np.testing.assert_array_equal(res.indices, np.arange(len(X)))
    assert float(res) == res.score


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_silhouette_on_real_embeddings_float16(metric, dolly_embeddings):
    emb = dolly_embeddings[:1500]
    labels = np.random.default_rng(0).integers(0, 12, 1500)
    labels[:300] = 0  # a few clusters with real structure: the first rows share a label
    res = silhouette(emb, labels, metric=metric, progress=False)
    ref = silhouette_samples(emb.astype(np.float64), labels, metric=metric)
    np.testing.assert_allclose(res.values, ref, atol=1e-10)


@pytest.mark.parametrize("tile", [1, 64, 1000])
def test_silhouette_symmetric_tiles_and_row_blocks_agree(monkeypatch, tile):
    X, labels = labelled(n=233, d=5, k=9, seed=8)
    ref = silhouette_samples(X, labels)
    np.testing.assert_allclose(silhouette(X, labels, block_size=tile, progress=False).values, ref, atol=1e-12)
    monkeypatch.setattr(metrics_mod, "_SUMS_BYTES", 0)  # force the low-memory row-block pass
    np.testing.assert_allclose(silhouette(X, labels, block_size=tile, progress=False).values, ref, atol=1e-12)
    np.testing.assert_allclose(silhouette(X, labels, metric="cosine", block_size=tile, progress=False).values,
                               silhouette_samples(X, labels, metric="cosine"), atol=1e-12)


def test_silhouette_float32_and_string_labels_and_torch():
    X, labels = labelled(seed=1)
    names = np.array(["a", "b", "c", "d", "e", "f"])[labels]
    ref = silhouette_score(X, labels)
    assert silhouette(X.astype(np.float32), names, progress=False).score == pytest.approx(
        silhouette_score(X.astype(np.float32).astype(np.float64), labels), abs=1e-10)
    torch = require_module("torch", "torch")
    assert silhouette(torch.from_numpy(X), torch.from_numpy(labels), progress=False).score == pytest.approx(ref, abs=1e-12)


def test_silhouette_cosine_zero_row_like_sklearn():
    X, labels = labelled(seed=2)
    X[3] = 0.0
    res = silhouette(X, labels, metric="cosine", progress=False)
    np.testing.assert_allclose(res.values, silhouette_samples(X, labels, metric="cosine"), atol=1e-12)


def test_silhouette_sample_is_sklearn_on_the_subset():
    X, labels = labelled(n=400, seed=3)
    res = silhouette(X, labels, sample_size=120, seed=4, progress=False)
    assert res.indices.shape == (120,) and np.all(np.diff(res.indices) > 0)
    assert res.score == pytest.approx(silhouette_score(X[res.indices], labels[res.indices]), abs=1e-12)
    again = silhouette(X, labels, sample_size=120, seed=4, progress=False)
    np.testing.assert_array_equal(again.indices, res.indices)
    other = silhouette(X, labels, sample_size=120, seed=5, progress=False)
    assert not np.array_equal(other.indices, res.indices)


@pytest.mark.parametrize("metric,block,rowblocks", [("euclidean", 500, False), ("euclidean", 100, True),
                                                    ("cosine", None, False)])
def test_silhouette_never_holds_n_by_n(monkeypatch, metric, block, rowblocks):
    n = 3000
    X, labels = labelled(n=n, d=16, k=6, seed=5)
    if rowblocks:
        monkeypatch.setattr(metrics_mod, "_SUMS_BYTES", 0)
    tracemalloc.start()
    silhouette(X, labels, metric=metric, block_size=block, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < n * n * 8 / 8  # an N x N float64 matrix would be 72 MB; we stay under 9 MB


def test_silhouette_bad_input_names_the_parameter():
    X, labels = labelled(n=50)
    with pytest.raises(ValueError, match=r"The 'labels' parameter of silhouette must be a 1-D array of length 50"):
        silhouette(X, labels[:49])
    with pytest.raises(ValueError, match="'labels' parameter of silhouette must be between 2 and 49 distinct labels.*1 distinct"):
        silhouette(X, np.zeros(50, dtype=int))
    with pytest.raises(ValueError, match="'labels' parameter of silhouette.*50 distinct"):
        silhouette(X, np.arange(50))
    with pytest.raises(ValueError, match="'sample_size' parameter of silhouette.*Got 51"):
        silhouette(X, labels, sample_size=51)
    with pytest.raises(ValueError, match="'metric' parameter of silhouette"):
        silhouette(X, labels, metric="manhattan")
    bad = X.copy()
    bad[2, 0] = np.inf
    with pytest.raises(ValueError, match="'X' parameter of silhouette.*row 2"):
        silhouette(bad, labels)
    with pytest.raises(ValueError, match="'labels' parameter of silhouette must be finite"):
        silhouette(X, np.where(labels == 0, np.nan, labels))


# ------------------------------------------------------------------------------------------
# vendi_score
# ------------------------------------------------------------------------------------------
def vendi_nxn(X, q):
    Xn = normalize(np.asarray(X, dtype=np.float64), axis=1)
    return vendi.score_K(Xn @ Xn.T, q=q)


@needs_vendi
@pytest.mark.parametrize("q", [0.5, 1.0, 2.0, "inf"])
@pytest.mark.parametrize("shape", [(300, 16), (12, 40)])
def test_vendi_equals_the_vendi_package(q, shape):
    X = np.random.default_rng(0).standard_normal(shape)
    X[:, 0] += 2.0  # not centred: a dominant direction
    res = vendi_score(X, q=q)
    assert res.eigenvalues.sum() == pytest.approx(1.0)
    if q == 0.5 and shape[0] > shape[1]:
        # the package also counts the rounding noise of the N - d zero eigenvalues of K / N
        # (~1e-17 each, ~3e-9 each after the square root); without it the two agree exactly
        assert res.score == pytest.approx(vendi_nxn(X, q), rel=1e-6)
        Xn = normalize(X)
        ev = np.linalg.eigvalsh(Xn @ Xn.T / len(X))
        ev = np.where(ev > ev.max() * len(X) * np.finfo(float).eps, ev, 0.0)
        assert res.score == pytest.approx(np.exp(vendi.entropy_q(ev, q=q)), rel=1e-9)
    else:
        assert res.score == pytest.approx(vendi_nxn(X, q), rel=1e-9)


@needs_vendi
def test_vendi_on_real_embeddings_float16(dolly_embeddings):
    emb = dolly_embeddings[:800]
    res = vendi_score(emb)
    assert res.score == pytest.approx(vendi_nxn(emb, 1.0), rel=1e-9)
    assert res.score == pytest.approx(vendi.score_dual(emb.astype(np.float64)), rel=1e-9)


def test_vendi_float32_blocks_are_close(dolly_embeddings):
    emb = dolly_embeddings[:3000]
    exact = vendi_score(emb).score
    fast = vendi_score(emb, dtype="float32").score
    assert fast == pytest.approx(exact, rel=1e-5) and fast != exact
    torch = require_module("torch", "torch")
    g = metrics_mod._gram_framework(torch.from_numpy(emb), "torch", 3000, 384, "vendi_score", "float32")
    Xn = normalize(emb.astype(np.float64))
    np.testing.assert_allclose(g, Xn.T @ Xn, atol=1e-3)


@needs_vendi
def test_vendi_blocks_accumulate_exactly(monkeypatch):
    X = np.random.default_rng(1).standard_normal((101, 5)).astype(np.float32)
    whole = vendi_score(X, q=2.0).score
    monkeypatch.setattr(metrics_mod, "_GRAM_ROWS", 7)
    assert vendi_score(X, q=2.0).score == pytest.approx(whole, rel=1e-12)
    assert vendi_score(X, q=2.0).score == pytest.approx(vendi_nxn(X, 2.0), rel=1e-9)


@needs_vendi
def test_vendi_extremes_and_invariances():
    assert vendi_score(np.eye(7)).score == pytest.approx(7.0)
    assert vendi_score(np.tile([[1.0, 2.0, 3.0]], (50, 1))).score == pytest.approx(1.0)
    X = np.random.default_rng(2).standard_normal((40, 6))
    scaled = X * np.random.default_rng(3).uniform(0.1, 10, (40, 1))
    assert vendi_score(scaled).score == pytest.approx(vendi_score(X).score, rel=1e-12)
    # q = 0 is the numerical rank
    low_rank = np.random.default_rng(4).standard_normal((60, 3)) @ np.random.default_rng(5).standard_normal((3, 10))
    assert vendi_score(low_rank, q=0).score == pytest.approx(3.0)
    assert vendi_score(low_rank, q=float("inf")).score == pytest.approx(vendi_nxn(low_rank, "inf"))


@needs_vendi
def test_vendi_torch_inputs_and_the_framework_path():
    torch = require_module("torch", "torch")
    X = np.random.default_rng(6).standard_normal((64, 8))
    ref = vendi_nxn(X, 1.0)
    assert vendi_score(torch.from_numpy(X)).score == pytest.approx(ref, rel=1e-9)
    bf = torch.from_numpy(X).to(torch.bfloat16)
    assert vendi_score(bf).score == pytest.approx(vendi_nxn(bf.float().numpy(), 1.0), rel=1e-9)
    # the torch path used for CUDA tensors, run here on the CPU
    g = metrics_mod._gram_framework(torch.from_numpy(X), "torch", 64, 8, "vendi_score")
    Xn = normalize(X)
    np.testing.assert_allclose(g, Xn.T @ Xn, atol=1e-12)


def test_vendi_bad_input_names_the_parameter():
    X = np.random.default_rng(7).standard_normal((10, 3))
    X[4] = 0.0
    with pytest.raises(ValueError, match="'X' parameter of vendi_score must be rows of non-zero norm.*index 4"):
        vendi_score(X)
    with pytest.raises(ValueError, match=r"'q' parameter of vendi_score must be a float in the range \[0, inf\]"):
        vendi_score(np.eye(3), q=-1)
    with pytest.raises(TypeError, match="'q' parameter of vendi_score"):
        vendi_score(np.eye(3), q="two")
    with pytest.raises(ValueError, match="'dtype' parameter of vendi_score"):
        vendi_score(np.eye(3), dtype="float16")
    with pytest.raises(ValueError, match="'kernel' parameter of vendi_score"):
        vendi_score(np.eye(3), kernel="rbf")
    with pytest.raises(ValueError, match="'X' parameter of vendi_score"):
        vendi_score(np.ones(3))


def test_docstring_examples_run():
    res = doctest.testmod(metrics_mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0
