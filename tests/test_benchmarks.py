"""The benchmark scripts still run: each one, at a tiny size, exits 0 and reports agreement.

These check that the scripts work and that the correctness columns they print hold; their
timings mean nothing at these sizes (speed is measured by running the scripts themselves).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import iterselect

from conftest import SHARED_DATA, shared_file

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench_cache(tmp_path_factory):
    """Where the scripts cache generated data during these tests (not the user's cache)."""
    return tmp_path_factory.mktemp("bench-cache")


def run_benchmark(script: str, *args: str, cache: Path, timeout: int = 300) -> str:
    env = dict(os.environ)
    env["ITERSELECT_BENCH_CACHE"] = str(cache)
    # the subprocess imports the same iterselect as this test process
    package_root = str(Path(iterselect.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")])
    env["ITERSELECT_SHARED"] = str(SHARED_DATA.parent)
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_scoring_benchmark_ifds_agree(bench_cache):
    shared_file("dolly_15k.jsonl.gz")
    out = run_benchmark("scoring.py", "--n", "24", "--chunk", "12", "--threads", "1",
                        "--gpu-part-on-cpu", "--gpu-batch-tokens", "512", "--repeats", "1",
                        cache=bench_cache)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.endswith("max rel. IFD diff"))
    rows = lines[header + 1:header + 5]
    assert [row.split()[0] for row in rows] == ["iterselect", "one-example", "iterselect,",
                                                "published"], out
    diffs = [float(row.split()[-1]) for row in rows]
    assert max(diffs) < 1e-4, out  # every method's IFDs equal ours
    assert "what batching can remove" in out
    assert "not judged (CPU dry run)" in out


def test_scoring_benchmark_realistic_part_runs(bench_cache):
    """The realistic-model part's code on a toy shape: its three methods, their IFD agreement,
    the bf16-vs-float32 line, the floor and the targets."""
    shared_file("dolly_15k.jsonl.gz")
    out = run_benchmark("scoring.py", "--skip-cpu", "--realistic", "16", "--realistic-size", "tiny",
                        "--realistic-chunk", "8", "--threads", "1", cache=bench_cache)
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.endswith("max rel. IFD diff vs float32 engine"))
    bf16, f32, loop = lines[header + 1:header + 4]
    assert "bf16 autocast" in bf16 and "float32" in f32 and loop.startswith("one-example loop"), out
    assert float(f32.split()[-1]) == 0.0 and float(loop.split()[-1]) < 1e-4, out
    assert 0.0 < float(bf16.split()[-1]) < 0.1, out  # bf16 ran, and is close
    assert "bf16 vs float32 IFD: relative difference median" in out
    assert "arithmetic floor:" in out and "targets: bf16 engine >= 5x the float32 loop" in out
    assert "no GPU was available" in out


def test_kcenter_benchmark_picks_identical(bench_cache):
    shared_file("embeddings", "dolly_15k_minilm.npy")
    out = run_benchmark("kcenter.py", "--data", "dolly", "--k", "20", "--ref-seconds", "5",
                        cache=bench_cache)
    # the table is printed again as each row completes; the last print is the whole table
    rows = [line for line in out.split("\n\n")[-1].splitlines() if line.startswith("dolly")]
    assert [row.split()[3] for row in rows] == ["float32", "float16"], out
    assert all("identical (20)" in row for row in rows), out
    path = iterselect._backends.core.simd_info()["path"]
    assert f"our vector path: {path}" in out and all(row.split()[5] == path for row in rows), out


def test_coverage_benchmark_matches_reference(bench_cache):
    shared_file("alpaca_52k.jsonl.gz")
    out = run_benchmark("coverage.py", "--part", "alpaca", "--n", "1000", cache=bench_cache)
    assert "same vocabulary as scikit-learn: True" in out, out
    picks = [line for line in out.splitlines() if "greedy k=50" in line]
    assert len(picks) == 2 and all("identical" in line for line in picks), out


def test_affinity_benchmark_runs(bench_cache):
    shared_file("embeddings", "dolly_15k_minilm.npy")
    shared_file("..", "bench", "synth.py")
    out = run_benchmark("affinity.py", "--sizes", "200", "--sklearn-max", "200",
                        "--sparse-n", "2000", cache=bench_cache)
    assert "identical exemplars and labels" in out, out  # scikit-learn's row
    assert re.search(r"\| sparse affinity propagation \(float32\) \|.*converged=True", out), out


def test_cluster_benchmark_runs(bench_cache):
    shared_file("..", "bench", "synth.py")
    out = run_benchmark("cluster.py", "--n", "3000", "--k", "8", "--repeat", "1",
                        "--sil-sample", "500", "--ref-sample", "500", "--vendi-nxn", "300",
                        cache=bench_cache)
    diffs = [float(x) for x in re.findall(r"\|(?:rel )?diff\| ([0-9.e+-]+)", out)]
    assert len(diffs) == 5 and max(diffs) < 1e-5, out  # silhouette and Vendi against references
