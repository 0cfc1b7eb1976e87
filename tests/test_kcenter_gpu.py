"""k-center greedy on a real GPU: the CUDA kernels against the CPU path (marker `gpu`)."""
from __future__ import annotations

import numpy as np
import pytest

from iterselect import kcenter_greedy

from conftest import require_module

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_cuda_equals_cpu(dolly_embeddings_full, dtype, metric):
    torch = require_module("torch", "torch")
    X = torch.from_numpy(dolly_embeddings_full.astype(np.float32)).to(getattr(torch, dtype))
    gpu = kcenter_greedy(X.cuda(), 300, metric=metric, progress=False)
    cpu = kcenter_greedy(X, 300, metric=metric, progress=False)
    assert gpu.indices.is_cuda and gpu.radii.is_cuda
    np.testing.assert_array_equal(gpu.indices.cpu().numpy(), cpu.indices.numpy())
    np.testing.assert_array_equal(gpu.radii.cpu().numpy(), cpu.radii.numpy())
    np.testing.assert_array_equal(gpu.min_distances.cpu().numpy(), cpu.min_distances.numpy())


def test_cuda_warm_start_equals_cpu(dolly_embeddings_full):
    torch = require_module("torch", "torch")
    X = torch.from_numpy(dolly_embeddings_full.astype(np.float32))
    pool = np.random.default_rng(0).choice(len(X), 500, replace=False)
    gpu = kcenter_greedy(X.cuda(), 200, selected=pool, progress=False)
    cpu = kcenter_greedy(X, 200, selected=pool, progress=False)
    np.testing.assert_array_equal(gpu.indices.cpu().numpy(), cpu.indices.numpy())


def test_cupy_input_comes_back_as_cupy(dolly_embeddings_full):
    cupy = require_module("cupy", None)
    X = cupy.asarray(dolly_embeddings_full[:2000].astype(np.float32))
    r = kcenter_greedy(X, 50, progress=False)
    assert isinstance(r.indices, cupy.ndarray)
    np.testing.assert_array_equal(r.indices.get(), kcenter_greedy(X.get(), 50, progress=False).indices)


def test_cuda_pool_pass_equals_cpu_for_a_large_pool(dolly_embeddings):
    torch = require_module("torch", "torch")
    X = torch.from_numpy(dolly_embeddings.astype(np.float32)).to(torch.bfloat16)
    pool = np.random.default_rng(1).choice(len(X), 10000, replace=False)  # two batches of the blocked pass
    for metric in ("euclidean", "cosine"):
        gpu = kcenter_greedy(X.cuda(), 100, selected=pool, metric=metric, progress=False)
        cpu = kcenter_greedy(X, 100, selected=pool, metric=metric, progress=False)
        np.testing.assert_array_equal(gpu.indices.cpu().numpy(), cpu.indices.numpy())
        np.testing.assert_array_equal(gpu.min_distances.cpu().numpy(), cpu.min_distances.numpy())


def test_cuda_zero_row_message_is_the_cpu_message():
    torch = require_module("torch", "torch")
    X = torch.randn(5000, 16)
    X[[4000, 1234]] = 0
    messages = []
    for device in ("cpu", "cuda"):
        with pytest.raises(ValueError) as info:
            kcenter_greedy(X.to(device), 3, metric="cosine", progress=False)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "1234" in messages[0] and "4000" not in messages[0], messages

