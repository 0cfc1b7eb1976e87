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
