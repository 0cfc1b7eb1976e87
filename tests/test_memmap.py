"""Selectors on a memory-mapped .npy: no second copy in memory.

The bound (README, "Larger than memory"): besides the pages of the file itself, the selectors
allocate at most 128 MiB plus 64 bytes a row (their vectors of length N). A copy of the array,
or a conversion of it to float32, would pass it: at 256 MiB a float16 copy adds 256 MiB against
a bound of 149 MiB. The 256 MiB case runs in CI (a few seconds); the 2 GiB one is marked slow
(about 20 s of CPU and a minute on a busy 2-core machine): `pytest -m slow tests/test_memmap.py`.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import subprocess_env
from iterselect.jobs import load_embeddings

MiB = 2**20
D = 384
PROBE = Path(__file__).with_name("memmap_probe.py")


def bound(rows: int) -> int:
    return 128 * MiB + 64 * rows


def write_npy(path: Path, nbytes: int) -> int:
    """A float16 (rows, 384) .npy of about ``nbytes``, written without mapping it (so this
    process's memory is left alone): one random block of rows, repeated."""
    rows = nbytes // (D * 2)
    block = np.random.default_rng(0).standard_normal((16384, D)).astype(np.float16)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f2", "fortran_order": False, "shape": (rows, D)})
        for start in range(0, rows, block.shape[0]):
            f.write(block[:rows - start].tobytes())
    return rows


@pytest.mark.parametrize("nbytes", [256 * MiB, pytest.param(2048 * MiB, marks=pytest.mark.slow)],
                         ids=["256MiB", "2GiB"])
def test_selectors_on_a_memmap_stay_within_the_bound(tmp_path, nbytes):
    path = tmp_path / "big.npy"
    rows = write_npy(path, nbytes)
    env = subprocess_env()
    proc = subprocess.run([sys.executable, str(PROBE), str(path)], capture_output=True, text=True,
                          env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["rows"] == rows and got["file_bytes"] == rows * D * 2
    extra_anon = got["peak_anon"] - got["base_anon"]
    extra_rss = got["peak_rss"] - got["base_rss"]
    assert extra_anon <= bound(rows), got
    assert extra_rss <= got["file_bytes"] + bound(rows), got


def test_the_cli_maps_embeddings(tmp_path):
    np.save(tmp_path / "e.npy", np.ones((10, 4), dtype=np.float16))
    emb = load_embeddings(tmp_path / "e.npy", 10)
    assert isinstance(emb, np.memmap) and emb.dtype == np.float16


def test_a_memmap_gives_the_in_memory_result(tmp_path):
    from iterselect import kcenter_greedy
    from iterselect.cluster import kmeans
    from iterselect.methods.baselines import deita_select, knn_distance

    X = np.random.default_rng(1).standard_normal((3000, 16)).astype(np.float16)
    np.save(tmp_path / "x.npy", X)
    M = np.load(tmp_path / "x.npy", mmap_mode="r")
    q = np.random.default_rng(2).random(3000)
    assert np.array_equal(kcenter_greedy(M, 20, metric="cosine", progress=False).indices,
                          kcenter_greedy(X, 20, metric="cosine", progress=False).indices)
    a, b = kmeans(M, 8, max_points_per_centroid=64), kmeans(X.astype(np.float32), 8, max_points_per_centroid=64)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.centroids, b.centroids)
    assert np.array_equal(knn_distance(M, 30, block_size=256).indices, knn_distance(X, 30, block_size=3000).indices)
    assert np.array_equal(deita_select(M, 15, quality=q, threshold=0.5).indices, deita_select(X, 15, quality=q, threshold=0.5).indices)
