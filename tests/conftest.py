"""Shared fixtures: paths to the real data beside the checkout (../shared/data)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(os.environ.get("ITERSELECT_SHARED_DATA",
                                  Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def shared_file(*parts) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present (set ITERSELECT_SHARED_DATA to ../shared/data)")
    return path


@pytest.fixture(scope="session")
def dolly_embeddings() -> np.ndarray:
    """The real MiniLM embeddings of Dolly 15k (float16, 15015 x 384)."""
    return np.load(shared_file("embeddings", "dolly_15k_minilm.npy"))


@pytest.fixture(scope="session")
def dolly2k(dolly_embeddings) -> np.ndarray:
    """The first 2,000 of them."""
    return dolly_embeddings[:2000]


def _cuda_device_present() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    """`gpu` tests need a CUDA device and the real _cuda module; elsewhere they are reported as
    skipped with the reason (never silently passed)."""
    import iterselect

    if iterselect.has_cuda():
        return
    reason = f"needs a CUDA GPU: {iterselect.cuda_unavailable_reason()}"
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
