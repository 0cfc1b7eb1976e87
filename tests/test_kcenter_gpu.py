"""k-center greedy on a real GPU: the CUDA kernels against the CPU path (marker `gpu`)."""
from __future__ import annotations

import numpy as np
import pytest

from iterselect import kcenter_greedy

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_cuda_equals_cpu(dolly_embeddings, dtype, metric):
    torch = pytest.importorskip("torch")
    X = torch.from_numpy(dolly_embeddings.astype(np.float32)).to(getattr(torch, dtype))
    gpu = kcenter_greedy(X.cuda(), 300, metric=metric, progress=False)
    cpu = kcenter_greedy(X, 300, metric=metric, progress=False)
    assert gpu.indices.is_cuda and gpu.radii.is_cuda
    np.testing.assert_array_equal(gpu.indices.cpu().numpy(), cpu.indices.numpy())
    np.testing.assert_array_equal(gpu.radii.cpu().numpy(), cpu.radii.numpy())
    np.testing.assert_array_equal(gpu.min_distances.cpu().numpy(), cpu.min_distances.numpy())


def test_cuda_warm_start_equals_cpu(dolly_embeddings):
    torch = pytest.importorskip("torch")
    X = torch.from_numpy(dolly_embeddings.astype(np.float32))
    pool = np.random.default_rng(0).choice(len(X), 500, replace=False)
    gpu = kcenter_greedy(X.cuda(), 200, selected=pool, progress=False)
    cpu = kcenter_greedy(X, 200, selected=pool, progress=False)
    np.testing.assert_array_equal(gpu.indices.cpu().numpy(), cpu.indices.numpy())


def test_cupy_input_comes_back_as_cupy(dolly_embeddings):
    cupy = pytest.importorskip("cupy")
    X = cupy.asarray(dolly_embeddings[:2000].astype(np.float32))
    r = kcenter_greedy(X, 50, progress=False)
    assert isinstance(r.indices, cupy.ndarray)
    np.testing.assert_array_equal(r.indices.get(), kcenter_greedy(X.get(), 50, progress=False).indices)


def test_cuda_pool_pass_equals_cpu_for_a_large_pool(dolly_embeddings):
    torch = pytest.importorskip("torch")
    X = torch.from_numpy(dolly_embeddings.astype(np.float32)).to(torch.bfloat16)
    pool = np.random.default_rng(1).choice(len(X), 10000, replace=False)  # two batches of the blocked pass
    for metric in ("euclidean", "cosine"):
        gpu = kcenter_greedy(X.cuda(), 100, selected=pool, metric=metric, progress=False)
        cpu = kcenter_greedy(X, 100, selected=pool, metric=metric, progress=False)
        np.testing.assert_array_equal(gpu.indices.cpu().numpy(), cpu.indices.numpy())
        np.testing.assert_array_equal(gpu.min_distances.cpu().numpy(), cpu.min_distances.numpy())


def test_cuda_zero_row_message_is_the_cpu_message():
    torch = pytest.importorskip("torch")
    X = torch.randn(5000, 16)
    X[[4000, 1234]] = 0
    for device in ("cpu", "cuda"):
        with pytest.raises(ValueError, match="^row 1234 of X has zero norm; the cosine metric is undefined for it$"):
            kcenter_greedy(X.to(device), 3, metric="cosine", progress=False)

