"""k-center greedy: every backend and loop against the float64 numpy reference."""
from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iterselect import kcenter_greedy
from iterselect.kcenter import _run_cuda
from iterselect._arrays import as_matrix

from conftest import ctrl_c_after, needs_emulation, require_module
from reference_kcenter import assert_matches_reference, in_dtype, integer_grids, kcenter_reference



def run(X, k, **kw):
    kw.setdefault("progress", False)
    return kcenter_greedy(X, k, **kw)


def assert_same(a, b):
    """Bit-identical results (same float operations in the same order on every path)."""
    np.testing.assert_array_equal(np.asarray(a.indices), np.asarray(b.indices))
    np.testing.assert_array_equal(np.asarray(a.radii), np.asarray(b.radii))
    np.testing.assert_array_equal(np.asarray(a.min_distances), np.asarray(b.min_distances))


# ---------------------------------------------------------------- small exact cases

def test_hand_computed_example():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.1, 0.0]])
    r = run(X, 3)
    assert r.indices.tolist() == [0, 2, 1]
    np.testing.assert_allclose(r.radii, [3.0, 1.0, 0.1])
    np.testing.assert_allclose(r.min_distances, [0, 0, 0, 0.1])
    assert r.indices.dtype == np.int64


def test_warm_start_picks_farthest_from_pool():
    X = np.array([[0.0], [10.0], [4.0], [7.0], [1.0]])
    r = run(X, 2, selected=[0, 1])
    assert r.indices.tolist() == [2, 3]  # 4 is 4 away from the pool; then 7 (3 away) before 1 (1 away)
    np.testing.assert_allclose(r.radii, [3.0, 1.0])


def test_ties_go_to_lowest_index():
    X = np.array([[0.0], [1.0], [-1.0], [1.0], [-1.0]])
    assert run(X, 3).indices.tolist() == [0, 1, 2]
    assert run(X, 3, lazy=False).indices.tolist() == [0, 1, 2]


def test_duplicates_give_radius_zero_and_distinct_picks():
    X = np.repeat(np.array([[1.0, 2.0], [3.0, 1.0]]), 5, axis=0)
    r = run(X, 6)
    assert len(set(r.indices.tolist())) == 6
    assert r.indices.tolist()[:2] == [0, 5]
    assert np.all(r.radii[1:] == 0)
    assert np.all(r.min_distances == 0)


def test_k_equal_to_all_remaining_points():
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    r = run(X, 4, selected=[1, 3])
    assert sorted(r.indices.tolist() + [1, 3]) == list(range(6))
    assert r.radii[-1] == 0


def test_single_point():
    r = run(np.ones((1, 3)), 1)
    assert r.indices.tolist() == [0] and r.radii.tolist() == [0.0]


def test_seed_index():
    X = np.random.default_rng(0).normal(size=(50, 4))
    r = run(X, 5, seed_index=17)
    assert r.indices[0] == 17
    assert_matches_reference(r, X, 5, seed_index=17)


def test_cosine_matches_reference():
    X = np.random.default_rng(1).normal(size=(300, 16))
    r = run(X, 40, metric="cosine")
    assert assert_matches_reference(r, X, 40, metric="cosine") is None
    assert np.all(np.asarray(r.radii) <= 2.0)


def test_radii_are_never_called_gains():
    """k-center reports its covering radii as ``radii``; ``gains`` (larger is better) is not a
    name for them, on the result or on the estimator."""
    r = run(np.random.default_rng(2).normal(size=(20, 3)), 4)
    assert not hasattr(r, "gains")
    require_module("sklearn", "sklearn")
    from iterselect.estimators import KCenterGreedy

    assert not hasattr(KCenterGreedy(2).fit(np.eye(3)), "gains_")


# ---------------------------------------------------------------- hypothesis: ties, duplicates

@settings(max_examples=150, deadline=None)
@given(X=integer_grids(40, 9), data=st.data())
def test_hypothesis_integer_grids_exact(X, data):
    """Small integer coordinates: every distance is exact in float32, so picks (ties included)
    must equal the float64 reference exactly, on both loops and with a pool."""
    n = X.shape[0]
    use_pool = n > 1 and data.draw(st.booleans())
    pool = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n - 1, unique=True)) if use_pool else None
    room = n - (len(pool) if pool else 0)
    k = data.draw(st.integers(1, room))
    seed = data.draw(st.integers(0, n - 1))
    ref_idx, ref_radii, ref_min = kcenter_reference(X, k, pool, "euclidean", seed)
    for lazy in (True, False):
        r = run(X, k, selected=pool, seed_index=seed, lazy=lazy)
        np.testing.assert_array_equal(r.indices, ref_idx)
        np.testing.assert_allclose(r.radii, ref_radii, rtol=1e-6)
        np.testing.assert_allclose(r.min_distances, ref_min, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(X=st.integers(2, 60).flatmap(lambda n: arrays(np.float64, (n, 5), elements=st.floats(-1e3, 1e3, width=64))),
       k=st.integers(1, 5))
def test_hypothesis_float64_matches_reference(X, k):
    k = min(k, X.shape[0])
    assert_matches_reference(run(X, k), X, k, rtol=1e-9, tie_rtol=1e-9)


# ---------------------------------------------------------------- real embeddings, every dtype

@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_dolly_every_dtype_matches_reference(dolly2k, dtype, metric):
    require_module("torch", "torch")
    X, X64 = in_dtype(dolly2k, dtype)  # X64: the exact values the kernel sees
    r = run(X, 200, metric=metric)
    step = assert_matches_reference(r, X64, 200, metric=metric)
    # float64 input must agree exactly; float32 accumulation may only swap a near-tie
    if dtype == "float64":
        assert step is None


def test_dolly_warm_start_matches_reference(dolly2k):
    X = dolly2k.astype(np.float32)
    pool = np.random.default_rng(3).choice(len(X), 300, replace=False)
    r = run(X, 100, selected=pool)
    assert not set(r.indices.tolist()) & set(pool.tolist())
    assert_matches_reference(r, X.astype(np.float64), 100, selected=pool)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_lazy_equals_plain_loop_bit_for_bit(dolly2k, dtype):
    X = dolly2k.astype(dtype)
    for metric in ("euclidean", "cosine"):
        lazy = run(X, 150, metric=metric, lazy=True)
        plain = run(X, 150, metric=metric, lazy=False)
        assert_same(lazy, plain)
        assert lazy.distance_evaluations < plain.distance_evaluations


@pytest.mark.parametrize("lazy", [True, False])
def test_without_min_distances_the_picks_and_radii_are_the_same(dolly2k, lazy):
    X = dolly2k.astype(np.float32)
    full = run(X, 200, metric="cosine", lazy=lazy)
    short = run(X, 200, metric="cosine", lazy=lazy, min_distances=False)
    np.testing.assert_array_equal(short.indices, full.indices)
    np.testing.assert_array_equal(short.radii, full.radii)
    assert short.min_distances is None and short.final_evaluations == 0
    assert short.distance_evaluations == full.distance_evaluations
    if lazy:  # the skipped pass is real work: most distances are only made exact there
        assert full.final_evaluations > full.distance_evaluations // 2


@needs_emulation
def test_without_min_distances_on_the_emulated_grid():
    X = np.random.default_rng(3).normal(size=(90, 6)).astype(np.float32)
    r = run(X, 7, backend="cuda-emulation", min_distances=False)
    np.testing.assert_array_equal(r.indices, run(X, 7).indices)
    assert r.min_distances is None


def test_min_distances_must_be_a_bool():
    with pytest.raises(TypeError, match="'min_distances' parameter of kcenter_greedy must be a bool. Got no instead"):
        kcenter_greedy(np.eye(3), 1, min_distances="no", progress=False)


def test_threads_do_not_change_the_result(dolly2k):
    X = dolly2k.astype(np.float32)
    assert_same(run(X, 100, threads=1, lazy=False), run(X, 100, threads=2, lazy=False))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_lazy_threads_do_not_change_the_result(dtype):
    """Large enough that the lazy refresh batches go parallel (and back to one thread as the
    stale work per batch shrinks): the same picks, radii and min-distances as one thread."""
    X = np.random.default_rng(11).normal(size=(40_000, 48)).astype(dtype)
    one = run(X, 600, threads=1)
    assert_same(one, run(X, 600, threads=2))
    assert_same(one, run(X, 600, threads=2, lazy=False))


# ---------------------------------------------------------------- frameworks in, same kind out

def test_torch_in_torch_out():
    torch = require_module("torch", "torch")
    X = torch.randn(100, 8, generator=torch.Generator().manual_seed(0))
    r = run(X, 10)
    assert isinstance(r.indices, torch.Tensor) and r.indices.dtype == torch.int64
    assert isinstance(r.radii, torch.Tensor) and isinstance(r.min_distances, torch.Tensor)
    np.testing.assert_array_equal(r.indices.numpy(), run(X.numpy(), 10).indices)


def test_ml_dtypes_bfloat16_numpy_input():
    ml_dtypes = require_module("ml_dtypes", "test")
    torch = require_module("torch", "torch")
    X = np.random.default_rng(4).normal(size=(80, 6)).astype(ml_dtypes.bfloat16)
    T = torch.from_numpy(X.astype(np.float32)).to(torch.bfloat16)
    np.testing.assert_array_equal(run(X, 12).indices, run(T, 12).indices.numpy())


def test_non_contiguous_input_is_accepted():
    X = np.random.default_rng(5).normal(size=(40, 10))
    np.testing.assert_array_equal(run(X[:, ::2], 5).indices, run(np.ascontiguousarray(X[:, ::2]), 5).indices)


# ---------------------------------------------------------------- CUDA kernels on the emulated grid

@needs_emulation
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_emulated_cuda_equals_cpu(dolly2k, dtype, metric):
    torch = require_module("torch", "torch")
    t = torch.from_numpy(dolly2k[:300].astype(np.float32)).to(getattr(torch, dtype))
    X = t if dtype == "bfloat16" else t.numpy()
    assert_same(run(X, 12, metric=metric, backend="cuda-emulation"), run(X, 12, metric=metric))


@needs_emulation
@pytest.mark.parametrize("n, block_threads, max_blocks", [
    (100, 64, 0),   # n not a multiple of the rows per block
    (70, 64, 1),    # a single block walks every row
    (20, 32, 0),    # fewer points than a warp
])
def test_emulated_cuda_grid_shapes(n, block_threads, max_blocks):
    X = np.random.default_rng(n).normal(size=(n, 37)).astype(np.float32)  # d not a multiple of 32
    m = as_matrix(X, "X", "test")
    for pool in (np.empty(0, np.int64), np.array([3, 11], np.int64)):
        k = min(8, n - pool.size)
        emu = _run_cuda(m, k, pool, "euclidean", 0, False, "cuda-emulation", block_threads, max_blocks)
        assert_same(emu, run(X, k, selected=pool if pool.size else None))


@needs_emulation
def test_emulated_cuda_warm_start_and_duplicates():
    X = np.repeat(np.random.default_rng(6).normal(size=(10, 5)), 3, axis=0).astype(np.float32)
    pool = [0, 4]
    assert_same(run(X, 15, selected=pool, backend="cuda-emulation"), run(X, 15, selected=pool))


@needs_emulation
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_cosine_zero_rows_same_message_on_every_backend(dtype):
    X = np.random.default_rng(11).normal(size=(3000, 6)).astype(dtype)
    # Zero rows late in the first CPU thread's share and early in the second's: the lowest is named,
    # not the first found.
    X[[2500, 1400, 1501]] = 0
    messages = []
    for backend in ("cpu", "cuda-emulation"):
        with pytest.raises(ValueError) as info:
            run(X, 3, metric="cosine", backend=backend, threads=2)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "1400" in messages[0] and "2500" not in messages[0], messages


@needs_emulation
def test_emulated_cuda_warm_start_from_a_large_pool():
    X = np.random.default_rng(12).normal(size=(400, 70)).astype(np.float32)  # d: three lanes' rounds
    pool = np.random.default_rng(13).choice(400, 150, replace=False)  # tiles of 8 pool points, a partial one
    m = as_matrix(X, "X", "test")
    emu = _run_cuda(m, 20, pool, "cosine", 0, False, "cuda-emulation", 96, 2)
    assert_same(emu, run(X, 20, selected=pool, metric="cosine"))


def test_backend_errors():
    X = np.ones((4, 2))
    with pytest.raises(ValueError, match="backend"):
        run(X, 1, backend="tpu")
    with pytest.raises((ValueError, RuntimeError), match="cuda"):
        run(X, 1, backend="cuda")


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("X, k, kw, exc, match", [
    (np.ones((5, 2)), 0, {}, ValueError, "'k' parameter"),
    (np.ones((5, 2)), 6, {}, ValueError, r"range \[1, 5\]"),
    (np.ones((5, 2)), 4, {"selected": [0, 1]}, ValueError, r"range \[1, 3\]"),
    (np.ones((5, 2)), 2.0, {}, TypeError, "'k' parameter"),
    (np.ones((5, 2)), True, {}, TypeError, "'k' parameter"),
    (np.ones(5), 1, {}, ValueError, "2-D"),
    (np.ones((0, 3)), 1, {}, ValueError, "non-empty"),
    (np.ones((3, 0)), 1, {}, ValueError, "non-empty"),
    (np.ones((5, 2), dtype=np.int64), 1, {}, TypeError, "dtype"),
    (np.array([["a", "b"]]), 1, {}, TypeError, "dtype"),
    (np.ones((5, 2)), 1, {"selected": [0, 0]}, ValueError, "duplicates"),
    (np.ones((5, 2)), 1, {"selected": [7]}, ValueError, r"range \[0, 4\]"),
    (np.ones((5, 2)), 1, {"selected": [-1]}, ValueError, r"range \[0, 4\]"),
    (np.ones((5, 2)), 1, {"selected": [0, 1, 2, 3, 4]}, ValueError, "'selected'"),
    (np.ones((5, 2)), 1, {"seed_index": 5}, ValueError, "'seed_index'"),
    (np.ones((5, 2)), 1, {"metric": "manhattan"}, ValueError, "'metric'"),
    (np.ones((5, 2)), 1, {"threads": 0}, ValueError, "'threads'"),
    (np.zeros((5, 2)), 1, {"metric": "cosine"}, ValueError, "zero"),
])
def test_bad_input(X, k, kw, exc, match):
    with pytest.raises(exc, match=match):
        run(X, k, **kw)


def test_cosine_names_the_lowest_zero_row():
    """Zero rows in both threads' halves: the Python boundary names the lowest, and so does the
    C++ core behind it, where the row that starts the second half is found first (long rows keep
    the first thread busy), every time."""
    from iterselect import _backends

    X = np.random.default_rng(8).normal(size=(4096, 2048)).astype(np.float32)
    X[[2047, 2048, 4000]] = 0.0  # two threads split the rows at 2048
    with pytest.raises(ValueError, match=r"non-zero norm.*Got a zero row at index 2047 instead\."):
        run(X, 2, metric="cosine", threads=2)
    for _ in range(5):
        with pytest.raises(ValueError, match=r"^row 2047 of X has zero norm; the cosine metric is undefined for it$"):
            _backends.core.kcenter_greedy(X, "float32", 2, np.empty(0, np.int64), "cosine", 0, 2, True, True, None)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_non_finite_rows_are_named(bad, dtype):
    X = np.ones((10, 3), dtype=dtype)
    X[7, 1] = bad
    with pytest.raises(ValueError, match="row 7"):
        run(X, 2)


def test_non_finite_bfloat16_rows_are_named():
    torch = require_module("torch", "torch")
    X = torch.ones(6, 4, dtype=torch.bfloat16)
    X[4, 0] = float("nan")
    with pytest.raises(ValueError, match="row 4"):
        run(X, 2)


def test_ctrl_c_interrupts_promptly():
    X = np.random.default_rng(7).normal(size=(20000, 64)).astype(np.float32)
    with ctrl_c_after(0.5), pytest.raises(KeyboardInterrupt):
        run(X, 19000, lazy=False)  # minutes of work if it were not interrupted


def test_progress_callback_exception_stops_the_kernel(monkeypatch):
    import iterselect.kcenter as kc

    class Boom(Exception):
        pass

    from contextlib import contextmanager

    @contextmanager
    def exploding(enabled, total, desc):
        def cb(done, total):
            raise Boom()
        yield cb

    monkeypatch.setattr(kc, "progress_callback", exploding)
    with pytest.raises(Boom):
        kc.kcenter_greedy(np.random.default_rng(8).normal(size=(3000, 8)), 2000, progress=True)



