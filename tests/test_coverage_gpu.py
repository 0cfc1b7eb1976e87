"""Weighted coverage on a real GPU: the CUDA kernels against the CPU path (marker `gpu`)."""
from __future__ import annotations

import numpy as np
import pytest

from iterselect.coverage import coverage_decay, coverage_gains, coverage_greedy, tfidf_matrix

from conftest import require_module

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def dolly_matrix(dolly_responses):
    return tfidf_matrix(dolly_responses, progress=False).matrix


def on_gpu(X, index_dtype=None, value_dtype=None):
    torch = require_module("torch", "torch")
    indptr, indices = X.indptr, X.indices
    if index_dtype is not None:
        indptr, indices = indptr.astype(index_dtype), indices.astype(index_dtype)
    data = X.data if value_dtype is None else X.data.astype(value_dtype)
    return torch.sparse_csr_tensor(torch.from_numpy(indptr), torch.from_numpy(indices), torch.from_numpy(data),
                                   size=X.shape).cuda()


@pytest.mark.parametrize("index_dtype, value_dtype", [(np.int32, np.float64), (np.int64, np.float32)])
@pytest.mark.parametrize("decay, selected", [(0.1, None), (0.0, [5, 17, 1000, 14000])])
def test_cuda_equals_cpu_on_dolly(dolly_matrix, index_dtype, value_dtype, decay, selected):
    torch = require_module("torch", "torch")
    X = dolly_matrix.astype(value_dtype)
    w = np.random.default_rng(1).uniform(0.2, 1.0, X.shape[0])
    cpu = coverage_greedy(X, 500, weights=w, decay=decay, selected=selected, progress=False)
    gpu = coverage_greedy(on_gpu(X, index_dtype), 500, weights=torch.from_numpy(w).cuda(), decay=decay,
                          selected=selected, progress=False)
    assert gpu.indices.is_cuda and gpu.gains.is_cuda and gpu.alpha.is_cuda
    np.testing.assert_array_equal(gpu.indices.cpu().numpy(), cpu.indices)
    np.testing.assert_array_equal(gpu.gains.cpu().numpy(), cpu.gains)
    np.testing.assert_array_equal(gpu.alpha.cpu().numpy(), cpu.alpha)


def test_cuda_dense_and_coo_tensors(dolly_matrix):
    X = dolly_matrix[:2000]
    X = X[:, np.unique(X.indices)]  # the columns these rows use: the dense form stays small
    cpu = coverage_greedy(X, 100, progress=False)
    T = on_gpu(X)
    for form in (T.to_sparse_coo(), T.to_dense()):
        np.testing.assert_array_equal(coverage_greedy(form, 100, progress=False).indices.cpu().numpy(), cpu.indices)


def test_cuda_gain_and_decay_kernels(dolly_matrix):
    torch = require_module("torch", "torch")
    X = dolly_matrix
    alpha = np.random.default_rng(2).uniform(0, 1, X.shape[1])
    T, a = on_gpu(X), torch.from_numpy(alpha).cuda()
    np.testing.assert_array_equal(coverage_gains(T, a).cpu().numpy(), coverage_gains(X, alpha))
    host = alpha.copy()
    assert coverage_decay(T, 123, a, 0.25) == coverage_decay(X, 123, host, 0.25)
    np.testing.assert_array_equal(a.cpu().numpy(), host)


def test_cuda_errors_are_the_cpu_errors():
    torch = require_module("torch", "torch")
    dense = np.array([[1.0, 0.0, 2.0], [0.5, -2.0, 0.0], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError) as cpu:
        coverage_greedy(dense, 1, progress=False)
    with pytest.raises(ValueError) as gpu:
        coverage_greedy(torch.from_numpy(dense).cuda(), 1, progress=False)
    assert str(gpu.value) == str(cpu.value)


def test_cupy_matrices(dolly_matrix):
    cupy = require_module("cupy", None)
    csp = require_module("cupyx.scipy.sparse", None)
    X = dolly_matrix[:3000]
    r = coverage_greedy(csp.csr_matrix(X), 100, progress=False)
    assert isinstance(r.indices, cupy.ndarray)
    np.testing.assert_array_equal(r.indices.get(), coverage_greedy(X, 100, progress=False).indices)
