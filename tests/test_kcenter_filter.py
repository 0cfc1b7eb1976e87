"""k-center's bf16 filter (csrc/kcenter/bf16_filter.hpp): pairs it proves unable to lower a
point's bound are not computed exactly, and nothing else changes. Every mode this machine
offers ('scalar' everywhere: the same blocks and bound in software; 'amx' where AMX-BF16 is
available) gives the picks, radii, min distances and evaluation counts of 'off', bit for bit."""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iterselect import kcenter_greedy
from iterselect._backends import core

MODES = tuple(core.kcenter_filter()["supported"])
FILTERING = tuple(m for m in MODES if m != "off")


@contextmanager
def filter_mode(mode):
    before = core.kcenter_filter()["filter"]
    core.set_kcenter_filter(mode)
    try:
        yield
    finally:
        core.set_kcenter_filter(before)


def run_every_mode(X, k, **kw):
    kw.setdefault("progress", False)
    out = {}
    for mode in MODES:
        with filter_mode(mode):
            out[mode] = kcenter_greedy(X, k, **kw)
    return out


def assert_same_as_off(results):
    off = results["off"]
    assert off.filtered_evaluations == 0
    for mode, r in results.items():
        np.testing.assert_array_equal(r.indices, off.indices, err_msg=mode)
        np.testing.assert_array_equal(r.radii, off.radii, err_msg=mode)
        if off.min_distances is not None:
            np.testing.assert_array_equal(r.min_distances, off.min_distances, err_msg=mode)
        assert (r.distance_evaluations, r.final_evaluations) == (off.distance_evaluations, off.final_evaluations)
        assert 0 <= r.filtered_evaluations <= r.distance_evaluations + r.final_evaluations


def test_modes_are_reported_and_chosen():
    info = core.kcenter_filter()
    assert MODES[:2] == ("off", "scalar") and set(MODES) <= {"off", "scalar", "amx"}
    assert info["filter"] in MODES
    with filter_mode("scalar"):
        assert core.kcenter_filter()["filter"] == "scalar"
    with filter_mode("auto"):
        assert core.kcenter_filter()["filter"] == ("amx" if "amx" in MODES else "off")


def test_a_bad_or_unavailable_mode_is_refused():
    with pytest.raises(ValueError, match="'off', 'scalar', 'amx' or 'auto'"):
        core.set_kcenter_filter("bf8")
    if "amx" not in MODES:
        with pytest.raises(ValueError,
                           match=r"does not offer AMX-BF16; ask for 'off' or 'auto' \(the default\) instead$"):
            core.set_kcenter_filter("amx")
    assert core.kcenter_filter()["filter"] in MODES


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_dolly_every_mode_identical_and_the_filter_works(dolly2k, dtype, metric):
    """Real embeddings, enough centers for the final pass to go through the filter: it rules
    out most pairs there, and changes nothing."""
    X = np.asarray(dolly2k[:1500], dtype=dtype)
    results = run_every_mode(X, 200, metric=metric)
    assert_same_as_off(results)
    for mode in FILTERING:
        r = results[mode]
        assert r.filtered_evaluations > 0.5 * r.final_evaluations, mode


def test_float64_is_never_filtered():
    X = np.random.default_rng(0).normal(size=(600, 40))
    results = run_every_mode(X, 150)
    assert_same_as_off(results)
    assert all(r.filtered_evaluations == 0 for r in results.values())


def test_threads_pool_and_picks_only():
    X = np.random.default_rng(5).normal(size=(3000, 70)).astype(np.float32)
    pool = np.arange(0, 3000, 97)
    assert_same_as_off(run_every_mode(X, 180, selected=pool, threads=2))
    assert_same_as_off(run_every_mode(X, 180, min_distances=False))


@st.composite
def awkward_rows(draw):
    """Duplicates, exact ties on a grid, near-ties, huge and tiny magnitudes, zero rows."""
    n = draw(st.integers(140, 260))
    d = draw(st.sampled_from([3, 31, 32, 33, 64, 100]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["grid", "normal", "near", "huge", "tiny"]))
    if kind == "grid":
        X = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
    elif kind == "near":  # copies of a few rows moved by one float32 ulp here and there
        base = rng.normal(size=(5, d)).astype(np.float32)
        X = base[rng.integers(0, 5, n)]
        X = np.where(rng.random(X.shape) < 0.1, np.nextafter(X, np.float32(np.inf)), X)
    else:
        scale = {"normal": 1.0, "huge": 1e14, "tiny": 1e-18}[kind]
        X = (rng.normal(size=(n, d)) * scale).astype(np.float32)
    dup = rng.integers(0, n, size=n // 5)
    X[dup] = X[rng.integers(0, n, size=len(dup))]
    return X


@settings(max_examples=40, deadline=None)
@given(X=awkward_rows(), data=st.data())
def test_hypothesis_every_mode_identical(X, data):
    """k above 64: the final pass's rows need more centers than the filter's threshold."""
    k = data.draw(st.integers(65, len(X)))
    metric = data.draw(st.sampled_from(["euclidean", "cosine"]))
    if metric == "cosine":
        X = X[np.linalg.norm(X.astype(np.float64), axis=1) > 0]
        if len(X) < 65:
            return
        k = min(k, len(X))
    assert_same_as_off(run_every_mode(X, k, metric=metric, seed_index=data.draw(st.integers(0, len(X) - 1))))
