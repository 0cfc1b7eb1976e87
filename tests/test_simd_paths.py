"""Every vector path of the CPU kernels (scalar, AVX2, AVX-512; chosen at run time, forced here
one by one) gives the same bits, and the same picks as the numpy reference."""
from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iterselect import kcenter_greedy
from iterselect._backends import core

from conftest import require_module, subprocess_env
from reference_kcenter import assert_matches_reference, in_dtype, integer_grids, kcenter_reference

ALL_PATHS = ("scalar", "avx2", "avx512")
PATHS = tuple(core.simd_info()["supported"])


@contextmanager
def simd_path(path):
    before = core.simd_info()["path"]
    core.set_simd(path)
    try:
        yield
    finally:
        core.set_simd(before)


def kcenter_on_every_path(X, k, **kw):
    kw.setdefault("progress", False)
    results = {}
    for path in PATHS:
        with simd_path(path):
            results[path] = kcenter_greedy(X, k, **kw)
    return results


def assert_all_identical(results, evaluations=True):
    first, *rest = results.items()
    for path, r in rest:
        for field in ("indices", "radii", "min_distances"):
            np.testing.assert_array_equal(np.asarray(getattr(r, field)), np.asarray(getattr(first[1], field)),
                                          err_msg=f"{field}: path {path} differs from {first[0]}")
        if evaluations:  # the same work on every path (threads change how it is batched)
            assert r.distance_evaluations == first[1].distance_evaluations


def test_the_paths_this_cpu_supports_are_reported():
    info = core.simd_info()
    assert PATHS[0] == "scalar" and set(PATHS) <= set(ALL_PATHS)
    assert info["path"] in PATHS and info["flags"]


def test_a_path_the_cpu_lacks_or_a_bad_name_is_refused():
    for path in ALL_PATHS:
        if path not in PATHS:
            best = PATHS[-1]
            with pytest.raises(ValueError, match=f"supports at most '{best}'; ask for '{best}' or 'auto' "
                                                 r"\(the default\) instead$"):
                core.set_simd(path)
    with pytest.raises(ValueError, match="'scalar', 'avx2', 'avx512' or 'auto'"):
        core.set_simd("sse9")
    assert core.simd_info()["path"] in PATHS


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_kcenter_dolly_every_path_same_bits_and_reference(dolly2k, dtype, metric):
    require_module("torch", "torch")
    X, X64 = in_dtype(dolly2k[:1500], dtype)
    lazy = kcenter_on_every_path(X, 150, metric=metric)
    plain = kcenter_on_every_path(X, 150, metric=metric, lazy=False)
    assert_all_identical(lazy)
    assert_all_identical(plain)
    assert_all_identical({"lazy": lazy["scalar"], "plain": plain["scalar"]}, evaluations=False)
    step = assert_matches_reference(lazy[PATHS[-1]], X64, 150, metric=metric)
    if dtype == "float64":
        assert step is None


@pytest.mark.parametrize("d", [1, 5, 31, 33, 70, 384])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_kcenter_tails_and_ragged_tiles_every_path(d, dtype):
    """d off the 32-element pattern, n off the 4 x 4 tiles, a warm-start pool, two threads."""
    rng = np.random.default_rng(d)
    X = rng.normal(size=(203, d)).astype(dtype)
    pool = rng.choice(203, 9, replace=False)
    for kw in ({}, {"selected": pool}, {"metric": "cosine", "threads": 2}):
        assert_all_identical(kcenter_on_every_path(X, 41, **kw))


def test_kcenter_parallel_blocked_refresh_every_path():
    """Large enough for the lazy batches to be refreshed on two threads."""
    X = np.random.default_rng(11).normal(size=(6000, 40)).astype(np.float32)
    results = kcenter_on_every_path(X, 300, threads=2)
    assert_all_identical(results)
    results["one thread"] = kcenter_greedy(X, 300, threads=1, progress=False)
    assert_all_identical(results, evaluations=False)


@settings(max_examples=60, deadline=None)
@given(X=integer_grids(48, 70), data=st.data())
def test_hypothesis_every_path_equals_the_reference(X, data):
    """Integer coordinates: distances are exact, so every path must give the reference's picks,
    ties (duplicates are common) to the lowest index."""
    n = X.shape[0]
    k = data.draw(st.integers(1, n))
    seed = data.draw(st.integers(0, n - 1))
    ref_idx, ref_radii, _ = kcenter_reference(X, k, None, "euclidean", seed)
    results = kcenter_on_every_path(X, k, seed_index=seed)
    assert_all_identical(results)
    np.testing.assert_array_equal(results["scalar"].indices, ref_idx)
    np.testing.assert_allclose(results["scalar"].radii, ref_radii, rtol=1e-6)


def _child(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(**env),
                          timeout=120)


def test_environment_variable_forces_a_path():
    code = ("import numpy as np; from iterselect._backends import core; from iterselect import kcenter_greedy;"
            "X = np.random.default_rng(1).normal(size=(300, 45)).astype(np.float32);"
            "r = kcenter_greedy(X, 20, progress=False);"
            "print(core.simd_info()['path'], r.indices.tolist(), r.radii.tobytes().hex())")
    for path in PATHS:
        out = _child(code, ITERSELECT_SIMD=path)
        assert out.returncode == 0, out.stderr
        reported, *result = out.stdout.split(" ", 1)
        assert reported == path
        if path == PATHS[0]:
            expected = result
        assert result == expected


def test_a_bad_environment_variable_is_an_error_naming_it():
    code = ("import numpy as np; from iterselect import kcenter_greedy;"
            "kcenter_greedy(np.ones((4, 2)), 1, progress=False)")
    out = _child(code, ITERSELECT_SIMD="avx1024")
    assert out.returncode != 0
    assert "ValueError: ITERSELECT_SIMD must be 'scalar', 'avx2', 'avx512' or 'auto' (got 'avx1024')" in out.stderr


# ---------------------------------------------------------------- affinity propagation

def affinity_on_every_path(X, **kw):
    from iterselect.affinity import affinity_propagation

    kw.setdefault("progress", False)
    results = {}
    for path in PATHS:
        with simd_path(path), _quiet():
            results[path] = affinity_propagation(X, return_messages=True, **kw)
    return results


@contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ConvergenceWarning is one too
        yield


def assert_affinity_identical(results):
    (first, a), *rest = results.items()
    for path, b in rest:
        for field in ("exemplars", "labels", "responsibility", "availability"):
            np.testing.assert_array_equal(np.asarray(getattr(b, field)), np.asarray(getattr(a, field)),
                                          err_msg=f"{field}: path {path} differs from {first}")
        assert (b.n_iter, b.converged) == (a.n_iter, a.converged)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "sqeuclidean"])
@pytest.mark.parametrize("threads", [1, 2])
def test_affinity_every_path_same_bits(dolly2k, metric, threads):
    """float16 rows (widened), n off every vector width, the similarity built by the blocked kernel."""
    assert_affinity_identical(affinity_on_every_path(dolly2k[:301], metric=metric, threads=threads, max_iter=60))


def test_affinity_float64_every_path_equals_sklearn(dolly_embeddings):
    sklearn_ap = require_module("sklearn.cluster", "test").affinity_propagation
    from sklearn.metrics import pairwise_distances

    S = -pairwise_distances(dolly_embeddings[600:877].astype(np.float64))
    with _quiet():
        exemplars, labels = sklearn_ap(S, random_state=3)
    results = affinity_on_every_path(S, metric="precomputed", dtype=np.float64, random_state=3)
    assert_affinity_identical(results)
    np.testing.assert_array_equal(results["scalar"].exemplars, exemplars)
    np.testing.assert_array_equal(results["scalar"].labels, labels)
