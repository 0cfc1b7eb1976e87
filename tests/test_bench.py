"""``iterselect bench``: a tiny run of both suites end to end (the agreement it reports, the
three outputs), the refusals, Ctrl-C keeping what finished, and the time-box arithmetic.

Timings at these sizes mean nothing; speed is measured by running the command itself.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from iterselect.bench import Source, run_bench, settings, synth_embeddings, synth_records
from iterselect.bench import runner, speed
from iterselect.bench.measure import Measured, measure
from iterselect.bench.references import NumpyKCenter, compare_kcenter
from iterselect.cli import main

from conftest import require_module

TINY = ["--n", "300", "--k", "12", "--pool", "300", "--budget", "20", "--box", "60", "--no-progress"]
# the end-to-end run takes the kernels whose references are quick to start; the others (faiss,
# apricot's numba compilation, torch) run in this process below, on the same kind of data
END_TO_END = ("kcenter", "tfidf", "coverage", "affinity", "vendi")
IN_PROCESS = ("kmeans", "silhouette", "facility", "ifd")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Both suites on 300 synthetic rows (speed) and 300 Dolly records (quality)."""
    for module, extra in (("sklearn", "bench"), ("faiss", "bench"), ("vendi_score", "bench"),
                          ("matplotlib", "bench")):
        require_module(module, extra)
    out = tmp_path_factory.mktemp("bench") / "out"
    assert main(["bench", *TINY, "--kernels", ",".join(END_TO_END), "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def _speed_row(results, kernel):
    rows = [r for r in results["speed"] if r["kernel"] == kernel]
    assert len(rows) == 1, results["speed"]
    return rows[0]


def test_every_kernel_is_tested_here():
    assert sorted(END_TO_END + IN_PROCESS) == sorted(speed.KERNELS)


def test_tiny_run_writes_the_three_outputs(tiny_run):
    out, results = tiny_run
    assert results["status"] == "complete" and results["errors"] == []
    assert {r["kernel"] for r in results["speed"]} == set(END_TO_END)
    md = (out / "results.md").read_text()
    assert "## Speed" in md and "## Quality" in md and "### k-center greedy" in md
    for name in ("time_vs_n.png", "memory_vs_n.png", "quality.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert sorted(results["plots"]) == ["memory_vs_n.png", "quality.png", "time_vs_n.png"]
    m = results["machine"]
    assert m["versions"]["iterselect"] and m["threads"]["cpu_count"] and "memory_method" in m
    assert not (out / ".work").exists()  # the workers' files are removed


def _ran(r):
    assert r["ours"]["status"] == "run" and r["reference"]["status"] == "run", r
    assert r["ours"]["seconds"] > 0 and r["ours"]["peak_bytes"] >= 0 and r["ratio"] > 0, r
    return r["agreement"]


def test_tiny_run_agreement(tiny_run):
    """Every kernel agrees with its reference, as the JSON reports it (each reference ran in
    full at this size)."""
    _, results = tiny_run
    kc = _ran(_speed_row(results, "kcenter"))
    assert kc["identical"] is True and kc["picks_compared"] == 12 and kc["max_error"] < 1e-5
    tf = _ran(_speed_row(results, "tfidf"))
    assert tf["identical"] is True and tf["max_error"] < 1e-12
    cov = _ran(_speed_row(results, "coverage"))
    assert cov["identical"] is True and cov["picks_compared"] == 12 and cov["max_error"] < 1e-9
    ap = _ran(_speed_row(results, "affinity"))
    assert ap["identical"] is True, ap  # float64 with scikit-learn's S and noise: the same exemplars
    ve = _ran(_speed_row(results, "vendi"))
    assert ve["max_error"] < 1e-6, ve


def _in_process(job_name, n=300, k=12, **options):
    rows = []
    job = speed.Job(job_name, n, k, 60.0, tuple(x for x in IN_PROCESS if speed.JOB_OF[x] == job_name),
                    Source(), options={"ladder": [n], **options})
    speed.JOBS[job_name](job, rows.append)
    return {r["kernel"]: r for r in rows}


def test_kmeans_and_silhouette_agree_with_scikit_learn():
    require_module("faiss", "bench")
    rows = _in_process("kmeans", clusters=8)
    km = _ran(rows["kmeans"])
    assert 0.8 < km["inertia_ratio"] < 1.25, km
    assert "kMQ draw of 15" in rows["kmeans"]["notes"]
    sil = _ran(rows["silhouette"])
    assert sil["max_error"] < 1e-5, sil


@pytest.mark.slow  # apricot compiles its numba kernels at every fit
def test_facility_agrees_with_apricot():
    require_module("apricot", "bench")
    fl = _ran(_in_process("facility", n=200, k=10, facility_neighbors=16)["facility"])
    assert fl["complete_graph_identical"] is True and 0.9 < fl["objective_ratio"] < 1.1, fl


@pytest.mark.slow  # trains a toy tokenizer and runs a toy model
def test_ifd_agrees_with_the_one_example_loop():
    require_module("torch", "torch")
    require_module("transformers", "torch")
    ifd = _ran(_in_process("ifd", n=40, ifd_examples=40)["ifd"])
    assert ifd["max_error"] < 1e-4 and ifd["examples_compared"] > 0, ifd


def test_tiny_run_quality_table(tiny_run):
    _, results = tiny_run
    q = results["quality"]
    assert q["pool"]["n"] == 300 and q["pool"]["k"] == 20
    rows = {r["selector"]: r["measures"] for r in q["rows"]}
    assert set(rows) == {"random", "longest", "kNN", "k-center", "coverage", "facility location",
                         "AP representation", "kM-Random"}  # no quality scores: no kMQ, DEITA
    assert all(m is not None and m["size"] == 20 for m in rows.values()), q["rows"]
    # each selector is best on the measure it optimises, against a random subset
    assert rows["k-center"]["covering_radius"] < rows["random"]["covering_radius"]
    assert rows["coverage"]["ngram_coverage"] > rows["random"]["ngram_coverage"]
    assert q["pool"]["measures"]["ngram_coverage"] == 1.0 and q["pool"]["measures"]["covering_radius"] == 0.0


def test_refuses_existing_results_and_writing_over_an_input(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")
    assert main(["bench", "--quick", "--out", str(out), "--dry-run"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["bench", "--quick", "--out", str(out), "--dry-run", "--force"]) == 0
    emb = out / "results.json"
    assert main(["bench", "--suite", "speed", "--quick", "--out", str(out), "--force", "--dry-run",
                 "--embeddings", str(emb)]) == 2
    assert "one of the files the benchmark writes" in capsys.readouterr().err
    assert json.loads(emb.read_text()) == {}  # untouched


def test_user_files_cut_the_ladder_and_pair_up(tmp_path, capsys):
    emb = tmp_path / "emb.npy"
    np.save(emb, synth_embeddings(500))
    s = runner.check_settings(settings(suite="speed", ladder=(300, 1000), k=(10,), out=tmp_path / "o",
                                       source=Source(embeddings=str(emb))))
    assert s.ladder == (300,) and s.k == (10,)
    assert main(["bench", "--n", "300", "--embeddings", str(emb), "--out", str(tmp_path / "o"),
                 "--dry-run"]) == 2
    assert "needs both --embeddings and --input" in capsys.readouterr().err
    assert main(["bench", "--suite", "speed", "--n", "1000", "--embeddings", str(emb),
                 "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    assert "fewer than every size" in capsys.readouterr().err


def test_user_records_and_field_mapping(tmp_path):
    """--input with a renamed response field: the TF-IDF and coverage rows run on its texts."""
    records = [{"prompt": r["instruction"], "answer": r["output"]} for r in synth_records(60)]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "o"
    assert main(["bench", "--suite", "speed", "--kernels", "tfidf,coverage", "--n", "50", "--k", "5",
                 "--input", str(path), "--instruction-field", "prompt", "--response-field", "answer",
                 "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["data"]["records"] == str(path) and results["errors"] == []
    tf = _speed_row(results, "tfidf")
    assert tf["n"] == 50 and tf["agreement"]["identical"] is True
    assert _speed_row(results, "coverage")["agreement"]["identical"] is True


def test_ctrl_c_keeps_what_finished(tmp_path, monkeypatch):
    """A run stopped after its first job keeps that job's row in results.json and .md."""
    real = runner._Run.run_job

    def run_job(self, index, job):
        if index > 0:
            raise KeyboardInterrupt
        real(self, index, job)

    monkeypatch.setattr(runner._Run, "run_job", run_job)
    s = settings(quick=True, suite="speed", ladder=(200,), k=(5,), kernels=("kcenter", "vendi"),
                 out=tmp_path / "o", progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_bench(s)
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["status"] == "interrupted"
    assert [r["kernel"] for r in results["speed"]] == ["kcenter"]
    assert "### k-center greedy" in (tmp_path / "o" / "results.md").read_text()
    assert not (tmp_path / "o" / ".work").exists()


# ------------------------------------------------------------------------------ the arithmetic

def _job(box, prior=None, n=10_000):
    return speed.Job("vendi", n, 10, box, ("vendi",), Source(), prior=prior or {})


def test_iteration_box_extrapolates_setup_plus_iterations(monkeypatch):
    calls = []

    def fake_measure(run, iterations):
        calls.append(iterations)
        return f"ran {iterations}", Measured(2.0 + 0.5 * iterations, 100)

    monkeypatch.setattr(speed, "measure", fake_measure)
    out, m = speed._iteration_boxed(_job(box=9.0), None, 100)
    assert out is None and m.extrapolated and calls == [1, 2]
    assert m.seconds == pytest.approx(2.0 + 0.5 * 100) and "setup 2.00 s" in m.how
    calls.clear()
    out, m = speed._iteration_boxed(_job(box=1000.0), None, 100)
    assert out == "ran 100" and not m.extrapolated and calls[-1] == 100


def test_size_box_predicts_from_the_last_size(monkeypatch):
    prior = {"vendi": {"n": 1000, "reference": Measured(3.0, 2**20).to_dict()}}
    ran = []
    monkeypatch.setattr(speed, "measure", lambda run, n: (ran.append(n), Measured(1.0, 0)))
    out, m = speed._size_boxed(_job(box=10.0, prior=prior), "vendi", None, 1.0, 1.0)
    assert out is None and ran == [] and m.seconds == pytest.approx(30.0) and m.peak_bytes == 10 * 2**20
    assert m.how == "measured at N = 1,000, scaled as N^1"
    out, m = speed._size_boxed(_job(box=100.0, prior=prior), "vendi", None, 1.0, 1.0)
    assert ran == [10_000] and not m.extrapolated


def test_kcenter_reference_in_a_box_and_near_ties():
    X = np.array([[0.0, 0.0], [4.0, 0.0], [-4.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=np.float32)
    ref = NumpyKCenter(X, 3)
    ref.run(0.0)  # one step always runs
    assert ref.steps == 1 and not ref.done and ref.full_seconds() == pytest.approx(3 * ref.seconds)
    ref.run(60.0)
    assert ref.done and ref.picks == [0, 1, 2]
    agree = compare_kcenter(X, [0, 1, 2], [4.0, 4.0, 1.0], ref)
    assert agree["identical"] and agree["max_error"] == 0.0
    # 1 and 2 are both at distance 4 from the first center: a different second pick is a tie
    agree = compare_kcenter(X, [0, 2, 1], [4.0, 4.0, 1.0], ref)
    assert not agree["identical"] and agree["first_difference"] == 1 and agree["near_tie"]


def test_peak_memory_counts_what_the_call_allocates():
    before = np.ones(30 * 2**20 // 8)  # allocated before: not counted
    _, m = measure(lambda: np.ones(100 * 2**20 // 8).sum())
    assert 90 * 2**20 < m.peak_bytes < 140 * 2**20
    del before


def test_synthetic_data_is_deterministic():
    a, b = synth_embeddings(1000, seed=1), synth_embeddings(1000, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, synth_embeddings(1000, seed=2))
    assert np.array_equal(synth_embeddings(70_000)[:1000], synth_embeddings(1000))  # prefixes agree
    r = synth_records(15_020, seed=3)
    assert r == synth_records(15_020, seed=3) and r[15015]["instruction"] == r[0]["instruction"]
    assert r[15015]["output"] != r[0]["output"]
