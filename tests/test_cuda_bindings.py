"""The array boundary of the CUDA modules (csrc/bindings/device_arrays.hpp), on the emulated one:
every array argument is checked in C++ for kind, memory, dtype, shape, contiguity and, for outputs,
writability, and the error names the argument, what was expected and what was found."""
from __future__ import annotations

import numpy as np
import pytest

from iterselect import _backends

from conftest import missing, needs_emulation, require_module

pytestmark = needs_emulation


@pytest.fixture
def mod():
    return _backends.cuda_module("cuda-emulation")


def kcenter(mod, X, k=5, *, indices=None, values=None, min_sq=None, selected=()):
    n = len(X) if hasattr(X, "__len__") else 50
    acc = np.float64 if getattr(X, "dtype", None) == np.float64 else np.float32
    indices = np.empty(k, np.int64) if indices is None else indices
    values = np.empty(k, acc) if values is None else values
    min_sq = np.empty(n, acc) if min_sq is None else min_sq
    mod.kcenter_greedy(X, k, np.asarray(selected, np.int64), "euclidean", 0, indices, values, min_sq,
                       block_threads=64)
    return indices


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)


def test_numpy_torch_capsules_and_read_only_inputs_are_read(mod, X):
    want = kcenter(mod, X)
    frozen = X.copy()
    frozen.flags.writeable = False  # a read-only input is fine: only outputs must be writable
    np.testing.assert_array_equal(kcenter(mod, frozen), want)
    np.testing.assert_array_equal(kcenter(mod, X.__dlpack__()), want)  # a DLPack capsule itself
    torch = require_module("torch", "torch")
    np.testing.assert_array_equal(kcenter(mod, torch.from_numpy(X)), want)
    out = torch.empty(5, dtype=torch.int64)
    kcenter(mod, X, indices=out)
    np.testing.assert_array_equal(out.numpy(), want)


@pytest.mark.parametrize("bad, exc, message", [
    (lambda X: X.tolist(), TypeError,
     "X must be a DLPack capsule or an array with __dlpack__ or __cuda_array_interface__ (got list)"),
    (lambda X: X.astype(np.int32), ValueError, "X must have dtype float16, bfloat16, float32 or float64 (got int32)"),
    (lambda X: X[:, ::2], ValueError, "X must be C-contiguous (got strides (8, 2) elements for shape (50, 4))"),
    (lambda X: X[0], ValueError, "X must be 2-D with shape (any, any) (got shape (8,))"),
])
def test_bad_inputs_name_argument_expected_and_found(mod, X, bad, exc, message):
    with pytest.raises(exc) as info:
        kcenter(mod, bad(X))
    assert str(info.value) == message


def test_bad_outputs_name_argument_expected_and_found(mod, X):
    with pytest.raises(ValueError, match=r"^min_sq must have shape \(50,\) \(got \(3,\)\)$"):
        kcenter(mod, X, min_sq=np.empty(3, np.float32))
    with pytest.raises(ValueError, match=r"^values must have dtype float32 \(got float64\)$"):
        kcenter(mod, X, values=np.empty(5))
    with pytest.raises(ValueError, match=r"^indices must have dtype int64 \(got int32\)$"):
        kcenter(mod, X, indices=np.empty(5, np.int32))
    frozen = np.empty(50, np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"^min_sq must be writable \(got a read-only array\)$"):
        kcenter(mod, X, min_sq=frozen)


def test_capsules_other_than_fresh_dlpack_are_refused(mod, X):
    torch = require_module("torch", "torch")
    capsule = X.__dlpack__()
    torch.utils.dlpack.from_dlpack(capsule)  # consumes it
    with pytest.raises(ValueError, match="X is a capsule that is not an unused DLPack tensor"):
        kcenter(mod, capsule)


def test_cuda_array_interface_is_device_memory(mod, X):
    class DeviceOnly:  # what numba and older cupy arrays offer: the emulated device cannot read it
        __cuda_array_interface__ = {"shape": (50, 8), "typestr": "<f4", "data": (0, False), "version": 3}

    with pytest.raises(ValueError, match="X must be a host array for the emulated device"):
        kcenter(mod, DeviceOnly())


def test_bfloat16_arrives_as_bfloat16(mod, X):
    torch = require_module("torch", "torch")
    T = torch.from_numpy(X).to(torch.bfloat16)
    from iterselect import kcenter_greedy

    np.testing.assert_array_equal(kcenter(mod, T), kcenter_greedy(T, 5, progress=False).indices.numpy())


def test_affinity_arrays_are_checked(mod):
    S = np.zeros((6, 6), np.float32)
    with pytest.raises(ValueError, match=r"^S must be square \(got shape \(6, 5\)\)$"):
        mod.affinity_offdiag_range(S[:, :5].copy())
    with pytest.raises(ValueError, match=r"^values must have dtype float32 or float64 \(got float16\)$"):
        mod.affinity_median(S.astype(np.float16))
    with pytest.raises(ValueError, match=r"^R must have S's dtype float32 \(got float64\)$"):
        mod.affinity_dense_run(S, np.empty((6, 6)), np.empty((6, 6), np.float32), None, 0.5, 10, 5, 0.5, 0.99)
    with pytest.raises(ValueError, match=r"^A must have shape \(6, 6\) \(got \(5, 5\)\)$"):
        mod.affinity_dense_run(S, np.empty((6, 6), np.float32), np.empty((5, 5), np.float32), None, 0.5, 10, 5, 0.5,
                               0.99)
    with pytest.raises(ValueError, match=r"^z must have one draw per entry of S \(12; got 3\)$"):
        mod.affinity_add_noise(S[:2], np.zeros(3))
    with pytest.raises(ValueError, match=r"^out must have dtype float64 \(got float32\)$"):
        mod.affinity_representation_scores(S, S, np.empty(6, np.float32))


def test_coverage_arrays_are_checked(mod):
    indptr, indices, data = np.array([0, 1, 2], np.int32), np.array([0, 1], np.int32), np.ones(2)
    out = np.empty(2)
    with pytest.raises(ValueError, match=r"^indices must have dtype int32 \(got int64\)$"):
        mod.coverage_row_gains(indptr, indices.astype(np.int64), data, 2, np.ones(2), None, out)
    with pytest.raises(ValueError, match=r"^data must have dtype float32 or float64 \(got int64\)$"):
        mod.coverage_row_gains(indptr, indices, data.astype(np.int64), 2, np.ones(2), None, out)
    with pytest.raises(ValueError, match=r"^data must have shape \(2,\) \(got \(3,\)\)$"):
        mod.coverage_row_gains(indptr, indices, np.ones(3), 2, np.ones(2), None, out)
    with pytest.raises(ValueError, match=r"^alpha must have shape \(2,\) \(got \(3,\)\)$"):
        mod.coverage_row_gains(indptr, indices, data, 2, np.ones(3), None, out)
    # The kernel's own checks: the CPU path's messages.
    with pytest.raises(ValueError, match=r"^X row 1 has column 5 outside \[0, 2\)$"):
        mod.coverage_row_gains(indptr, np.array([0, 5], np.int32), data, 2, np.ones(2), None, out)
    with pytest.raises(ValueError, match=r"X.indptr\[-1\] \(1\) must equal the number of stored entries \(2\)"):
        mod.coverage_row_gains(np.array([0, 1, 1], np.int32), indices, data, 2, np.ones(2), None, out)


def test_the_cuda_module_refuses_host_arrays():
    """The real module (built wherever nvcc is; no GPU needed to reach its checks)."""
    module, reason = _backends._cuda_state()
    if module is None:
        missing("iterselect._cuda", reason, strict=False)  # built only where nvcc is
    X = np.ones((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"^X must be on a CUDA device \(got an array on the CPU\)$"):
        module.kcenter_greedy(X, 1, np.empty(0, np.int64), "euclidean", 0, np.empty(1, np.int64),
                              np.empty(1, np.float32), np.empty(4, np.float32))
    torch = require_module("torch", "torch")
    with pytest.raises(ValueError, match=r"^indptr must be on a CUDA device \(got an array on the CPU\)$"):
        module.coverage_row_gains(torch.zeros(3, dtype=torch.int32), torch.zeros(0, dtype=torch.int32),
                                  torch.zeros(0, dtype=torch.float64), 2, np.ones(2), None, np.ones(2))



def test_facility_arrays_are_checked(mod):
    import scipy.sparse as sp

    G = sp.csr_array(np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.0]]))
    C = sp.csc_array(G)
    rows = (G.indptr.astype(np.int64), G.indices, G.data)
    cols = (C.indptr.astype(np.int64), C.indices.astype(G.indices.dtype), C.data)

    def run(rows=rows, cols=cols, quality=None, out=None):
        out = out or (np.empty(2, np.int64), np.empty(2), np.empty(3))
        mod.facility_greedy(*rows, *cols, quality, 0.5, 2, np.empty(0, np.int64), *out, block_threads=32)
        return out

    want = _backends.core.facility_greedy(*rows, 3, 3, None, 0.5, 2, np.empty(0, np.int64), 1, None)
    for got, expected in zip(run(), want):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match=r"^col_indices must have dtype int32 \(got int64\)$"):
        run(cols=(cols[0], cols[1].astype(np.int64), cols[2]))
    with pytest.raises(ValueError, match=r"^col_data must have dtype float64 \(got float32\)$"):
        run(cols=(cols[0], cols[1], cols[2].astype(np.float32)))
    with pytest.raises(ValueError, match=r"^out_current must have shape \(3,\) \(got \(2,\)\)$"):
        run(out=(np.empty(2, np.int64), np.empty(2), np.empty(2)))
    # The kernel's own checks, on the device: the CPU path's messages.
    with pytest.raises(ValueError, match=r"^quality\[1\] \(nan\) must be finite$"):
        run(quality=np.array([0.0, np.nan, 0.0]))
    negative = G.data.copy()
    negative[2] = -1.0  # row 1, column 0
    with pytest.raises(ValueError, match=r"^the graph must hold finite values >= 0 \(row 1, column 0 holds -1\)$"):
        run(rows=(rows[0], rows[1], negative))
    with pytest.raises(ValueError, match=r"^the graph row 1 lists column 0 more than once$"):
        run(cols=(cols[0], np.array([1, 1, 0, 1, 2, 1, 2], G.indices.dtype), cols[2]))  # column 0: points 1, 1
