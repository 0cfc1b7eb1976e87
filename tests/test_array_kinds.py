"""Every public array function over every array kind x dtype it claims.

The claim (README, DESIGN): numpy, torch and cupy inputs in float16, bfloat16, float32 and
float64, results back as the input's kind on its device. Each case below calls one public
function on data converted to a kind and dtype, and checks that

* every array in the result is of the input's kind (and on its device; a scipy sparse graph
  stays scipy), and
* its values equal those of the same call on numpy float64 holding the same numbers (the data
  are small integers and quarters, exact in every dtype, so half precision cannot change a pick;
  floats agree to float32 rounding).

The second check is what catches a layer that reads bfloat16's raw bits as integers.

Kinds: numpy (bfloat16 through ``ml_dtypes``) and torch on the CPU always; torch on a CUDA
device and cupy (which has no bfloat16) where present; ``test_device_kinds_present`` says
which were not.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import missing, require_module

DTYPES = ("float16", "bfloat16", "float32", "float64")


# ----------------------------------------------------------------------------- kinds

def _torch():
    return require_module("torch", "torch")


def _cupy_importable() -> bool:
    try:
        import cupy  # noqa: F401

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _torch_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


KINDS = ["numpy", "torch"] + (["torch-cuda"] if _torch_cuda() else []) + (["cupy"] if _cupy_importable() else [])


def convert(values, kind: str, dtype: str):
    """``values`` (numbers exact in ``dtype``) as an array of ``kind`` and ``dtype``."""
    values = np.asarray(values)
    integer = np.issubdtype(values.dtype, np.integer)
    if kind == "numpy":
        if integer:
            return values
        if dtype == "bfloat16":
            ml_dtypes = require_module("ml_dtypes", "test")
            return values.astype(ml_dtypes.bfloat16)
        return values.astype(dtype)
    if kind in ("torch", "torch-cuda"):
        torch = _torch()
        t = torch.as_tensor(values, dtype=torch.int64 if integer else getattr(torch, dtype))
        return t.cuda() if kind == "torch-cuda" else t
    import cupy

    return cupy.asarray(values if integer else values.astype(dtype))


def host(x) -> np.ndarray:
    mod = type(x).__module__.split(".")[0]
    if mod == "torch":
        t = x.detach().cpu()
        return (t.float() if str(t.dtype) == "torch.bfloat16" else t).numpy()
    if mod == "cupy":
        return x.get()
    return np.asarray(x)


def assert_kind(x, kind: str, where: str) -> None:
    mod = type(x).__module__.split(".")[0]
    expected = {"numpy": "numpy", "torch": "torch", "torch-cuda": "torch", "cupy": "cupy"}[kind]
    assert mod == expected, f"{where}: a {type(x).__module__}.{type(x).__name__}, not a {expected} array"
    if kind == "torch":
        assert x.device.type == "cpu", f"{where}: on {x.device}"
    if kind == "torch-cuda":
        assert x.device.type == "cuda", f"{where}: on {x.device}"


def is_array(x) -> bool:
    return isinstance(x, np.ndarray) or type(x).__module__.split(".")[0] in ("torch", "cupy")


def compare(got, ref, kind: str, where: str) -> int:
    """Check ``got`` (from the kind) against ``ref`` (numpy float64); return how many arrays."""
    if dataclasses.is_dataclass(got):
        return sum(compare(getattr(got, f.name), getattr(ref, f.name), kind, f"{where}.{f.name}")
                   for f in dataclasses.fields(got) if f.name != "backend")
    if hasattr(got, "tocsr"):  # a scipy sparse result (a graph) is host memory whatever the input
        np.testing.assert_allclose(got.toarray().astype(np.float64), ref.toarray(), rtol=2e-6, atol=1e-6,
                                   err_msg=where)
        return 1
    if is_array(got):
        assert_kind(got, kind, where)
        g, r = host(got), np.asarray(ref)
        assert g.shape == r.shape, f"{where}: shape {g.shape} != {r.shape}"
        if np.issubdtype(r.dtype, np.integer) or r.dtype == bool:
            np.testing.assert_array_equal(g, r, err_msg=where)
        else:
            np.testing.assert_allclose(g.astype(np.float64), r, rtol=2e-6, atol=1e-6, err_msg=where)
        return 1
    if isinstance(got, (float, np.floating)):
        assert got == pytest.approx(float(ref), rel=2e-6, abs=1e-6), where
    elif isinstance(got, (int, bool, np.integer)):
        assert got == ref, where
    return 0


# ----------------------------------------------------------------------------- the data

rng = np.random.default_rng(7)
X = rng.integers(1, 6, size=(12, 3)).astype(np.float64)  # positive: no zero row, nonnegative
X[:4] += 10.0  # two groups, so clusterings are clear
LABELS = np.array([0, 1] * 6)
QUALITY = rng.integers(1, 16, size=12) / 4.0
IFD = np.array([0.25, 0.5, 0.75, 0.5, 0.25, 0.75, 0.5, 0.25, 0.75, 0.5, 0.25, 1.5])
R4 = rng.integers(-8, 8, size=(4, 4)) / 4.0
A4 = rng.integers(-8, 8, size=(4, 4)) / 4.0
S_OLD_NEW = -rng.integers(1, 8, size=(4, 2)) / 2.0
TEXTS = ["the cat sat", "the dog sat", "a cat ran", "dogs bark", "cats purr", "the end",
         "one two", "two three", "three four", "four five", "five six", "six seven"]


def _ones_float64_beside(x, m: int):
    """Column weights as coverage_decay takes them: numpy for host input, else on x's device."""
    mod = type(x).__module__.split(".")[0]
    if mod == "torch" and x.is_cuda:
        return _torch().ones(m, dtype=_torch().float64, device=x.device)
    if mod == "cupy":
        import cupy

        return cupy.ones(m)
    return np.ones(m)


def _cases():
    import iterselect as it
    from iterselect.methods import baselines

    c = {
        "kcenter_greedy": lambda f: it.kcenter_greedy(f(X), 4, progress=False),
        "kcenter_greedy_cosine": lambda f: it.kcenter_greedy(f(X), 4, metric="cosine", progress=False),
        "affinity_propagation": lambda f: it.affinity_propagation(f(X), metric="sqeuclidean", progress=False,
                                                                  return_messages=True),
        "representation_scores": lambda f: it.representation_scores(f(R4), f(A4)),
        "history_matrix": lambda f: it.history_matrix(f(R4), f(S_OLD_NEW), keep=[3, 1]),
        "coverage_greedy": lambda f: it.coverage_greedy(f(X), 3, weights=f(QUALITY), progress=False),
        "coverage_gains": lambda f: it.coverage_gains(f(X), f(np.array([1.0, 0.5, 0.25])), weights=f(QUALITY)),
        "coverage_decay": lambda f: it.coverage_decay(f(X), 2, _ones_float64_beside(f(X), 3), 0.5),
        "iterit_select": lambda f: it.iterit_select(TEXTS, 3, f(IFD), progress=False),
        "kmq_sample": lambda f: it.kmq_sample(LABELS, 5, quality=f(QUALITY), seed=3),
        "cluster_weights_update": lambda f: it.cluster_weights_update(f(np.array([0.5, 0.5])), LABELS,
                                                                      f(QUALITY)),
        "silhouette": lambda f: it.silhouette(f(X), LABELS, progress=False),
        "vendi_score": lambda f: it.vendi_score(f(X)),
        "knn_distance": lambda f: baselines.knn_distance(f(X), 3),
        "deita_select": lambda f: baselines.deita_select(f(X), 3, quality=f(QUALITY), threshold=0.999),
        "kcenter_select": lambda f: baselines.kcenter_select(f(X), 3),
        "ifd_topk": lambda f: baselines.ifd_topk(f(IFD), 3),
        "kmeans": lambda f: it.kmeans(f(X), 2, seed=1),
        "choose_k": lambda f: it.choose_k(f(X), [2, 3], progress=False),
    }
    try:
        import iterselect.facility as fl
    except ImportError:
        pass
    else:
        c["facility_location"] = lambda f: fl.facility_location(f(X), 3, n_neighbors=4, progress=False)
        c["knn_similarity_graph"] = lambda f: fl.knn_similarity_graph(f(X), 4)
    return c


CASES = _cases()
NEEDS_FAISS = {"kmeans", "choose_k", "facility_location", "knn_similarity_graph"}
# Vectors that keep integer labels as they are: the float argument is what takes the kind.
KIND_OF_RESULT_FROM_INTS = {"kmq_sample"}


def _params():
    for name in CASES:
        for kind in KINDS:
            for dtype in DTYPES:
                if kind == "cupy" and dtype == "bfloat16":
                    continue  # cupy has no bfloat16
                yield pytest.param(name, kind, dtype, id=f"{name}-{kind}-{dtype}")


@pytest.mark.parametrize("name, kind, dtype", list(_params()))
def test_kind_and_dtype(name, kind, dtype):
    if name in NEEDS_FAISS:
        require_module("faiss", "faiss")
    call = CASES[name]
    ref = call(lambda v: np.asarray(convert(v, "numpy", dtype)).astype(np.float64))
    got = call(lambda v: convert(v, kind, dtype))
    if name in KIND_OF_RESULT_FROM_INTS:
        kind = "numpy"  # kmq_sample's result follows its labels (numpy here), not its quality
    n_arrays = compare(got, ref, kind, name)
    if not isinstance(got, int):
        assert n_arrays >= 1, f"{name} returned no array to check"


@pytest.mark.parametrize("kind", ["torch", "torch-cuda", "cupy"])
def test_kmq_sample_result_follows_labels(kind):
    """kmq_sample's picks come back in the kind of its labels."""
    if kind not in KINDS:
        pytest.skip(f"needs {kind}: not available here (see test_device_kinds_present)")
    import iterselect as it

    got = it.kmq_sample(convert(LABELS, kind, "float32"), 5, quality=QUALITY, seed=3)
    ref = it.kmq_sample(LABELS, 5, quality=QUALITY, seed=3)
    compare(got, ref, kind, "kmq_sample")


@pytest.mark.parametrize("kind", ["torch-cuda", "cupy"])
def test_device_kinds_present(kind):
    """Say which device kinds the cases above could not run here."""
    if kind not in KINDS:
        missing(kind, "no CUDA device (or the module) is available here", strict=False)


def test_bfloat16_is_read_as_numbers():
    """The reported bug: bfloat16 [1.0, 2.0] read as its raw bits [16256, 16384]."""
    torch = _torch()
    import iterselect as it

    R = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.bfloat16)
    A = torch.zeros((2, 2), dtype=torch.bfloat16)
    assert it.representation_scores(R, A).tolist() == [2.0, 3.0]
    R_old = torch.tensor([[0.0, -1.0], [-2.0, 0.5]], dtype=torch.bfloat16)
    sim = torch.tensor([[-1.0], [-3.0]], dtype=torch.bfloat16)
    H = it.history_matrix(R_old, sim, keep=[1])
    assert isinstance(H, torch.Tensor)
    # Eq. 4-5: w = sim^2 / sum(sim) = [-0.25, -2.25]; the right column gets min(median(R_t), 0) = -0.5
    assert H.tolist() == [[0.5, -1.125], [-0.875, -0.5]]
    # the published code's: w = sim / sum(sim) = [0.25, 0.75]; bottom-right the median of the rest
    H = it.history_matrix(R_old, sim, keep=[1], convention="published")
    assert H.tolist() == [[0.5, -0.125], [0.125, 0.125]]
