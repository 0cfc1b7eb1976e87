"""Nothing lost, nothing silently wrong: the cases of a hostile or careless user.

Output onto input, resume with other inputs, two processes on one run directory, overflow to
inf, refusing a memory-mapped matrix before reading it, Ctrl-C checkpoints in the kNN graph,
messages that name the user's paths and flags, and kills inside a kMQ round.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from iterselect import cli
from iterselect.runs import RunDirectory, RunError, claim_run

from conftest import require_module, subprocess_env

N = 60


@pytest.fixture
def data(tmp_path):
    """60 records (JSONL) and their (60, 8) float32 embeddings."""
    path = tmp_path / "same.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Question {i}?", "input": "",
                                        "output": "word " * (i % 7 + 1), "quality": i % 5})
                            + "\n" for i in range(N)))
    emb = np.random.default_rng(0).standard_normal((N, 8)).astype(np.float32)
    emb_path = tmp_path / "emb.npy"
    np.save(emb_path, emb)
    return path, emb_path, emb


def run_cli(*argv):
    return cli.main([str(a) for a in argv])


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("iterselect: error: ")
    return err[0]


# ------------------------------------------------------------------ 1. output onto input

@pytest.mark.parametrize("method", ["random", "kcenter", "longest"])
def test_output_onto_input_is_refused(data, method, capsys):
    path, emb_path, _ = data
    before = path.read_bytes()
    extra = ["--embeddings", emb_path] if method == "kcenter" else []
    assert run_cli("select", method, "--budget", 5, "--input", path, "--output", path, *extra,
                   "--no-progress") == 2
    assert "same file as --input" in error_line(capsys)
    assert path.read_bytes() == before


def test_report_onto_input_or_output_is_refused(data, tmp_path, capsys):
    path, _, _ = data
    before = path.read_bytes()
    assert run_cli("select", "random", "--budget", 5, "--input", path, "--output",
                   tmp_path / "o.jsonl", "--report", path) == 2
    assert "--report" in error_line(capsys) and path.read_bytes() == before
    out = tmp_path / "o.jsonl"
    assert run_cli("select", "random", "--budget", 5, "--input", path, "--output", out,
                   "--report", out) == 2
    assert "same file as --output" in error_line(capsys) and not out.exists()


def test_hard_and_symbolic_links_to_the_input_are_the_input(data, tmp_path, capsys):
    path, _, _ = data
    before = path.read_bytes()
    hard, soft = tmp_path / "hard.jsonl", tmp_path / "soft.jsonl"
    os.link(path, hard)
    soft.symlink_to(path)
    for out in (hard, soft):
        assert run_cli("select", "random", "--budget", 5, "--input", path, "--output", out,
                       "--force") == 2
        assert "same file as --input" in error_line(capsys)
    assert path.read_bytes() == before


def test_existing_output_needs_force(data, tmp_path, capsys):
    path, _, _ = data
    out = tmp_path / "picked.jsonl"
    out.write_text("keep me\n")
    assert run_cli("select", "random", "--budget", 5, "--input", path, "--output", out) == 2
    assert "--force" in error_line(capsys) and out.read_text() == "keep me\n"
    assert run_cli("select", "random", "--budget", 5, "--input", path, "--output", out,
                   "--force") == 0
    assert len(out.read_text().splitlines()) == 5


def _selector_args(method, emb_path, scores):
    """The inputs each selector needs beyond --input (the scores file doubles as IFD scores)."""
    emb = ["--embeddings", emb_path]
    return {"kcenter": emb, "knn": emb, "deita": [*emb, "--scores", scores], "ifd": ["--scores", scores],
            "graphfilter": ["--scores", scores], "kmclosest": [*emb, "--clusters", 2],
            "kmrandom": [*emb, "--clusters", 2], "kmq": [*emb, "--clusters", 2, "--scores", scores],
            "qdit": [*emb, "--quality-scores", scores, "--n-neighbors", 5],
            "least-confidence": ["--model", "toy"], "margin": ["--model", "toy"]}.get(method, [])


ALL_SELECTORS = ["kcenter", "random", "longest", "knn", "deita", "ifd", "graphfilter", "kmclosest",
                 "kmrandom", "kmq", "qdit", "least-confidence", "margin"]


@pytest.mark.parametrize("method", ALL_SELECTORS)
def test_every_selector_refuses_its_inputs_and_existing_outputs(data, tmp_path, method, capsys):
    path, emb_path, _ = data
    scores = tmp_path / "scores.npy"
    np.save(scores, np.linspace(0.1, 0.9, N))
    extra = _selector_args(method, emb_path, scores)
    before = path.read_bytes()
    assert run_cli("select", method, "--budget", 4, "--input", path, "--output", path,
                   "--no-progress", *extra) == 2
    assert "same file as --input" in error_line(capsys) and path.read_bytes() == before
    for flag in ("--embeddings", "--scores", "--quality-scores"):
        if flag in extra:
            given = extra[extra.index(flag) + 1]
            assert run_cli("select", method, "--budget", 4, "--input", path, "--output", given,
                           "--force", "--no-progress", *extra) == 2
            assert "same file as" in error_line(capsys)
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n")
    assert run_cli("select", method, "--budget", 4, "--input", path, "--output", out,
                   "--no-progress", *extra) == 2
    assert "--force" in error_line(capsys) and out.read_text() == "keep me\n"


def test_run_output_onto_input_is_refused_before_the_run_directory(data, tmp_path, capsys):
    path, _, _ = data
    before = path.read_bytes()
    run_dir = tmp_path / "run"
    assert run_cli("run", "diverse-evol", "--model", "toy", "--input", path, "--budget", 5,
                   "--run-dir", run_dir, "--output", path) == 2
    assert "same file as --input" in error_line(capsys)
    assert path.read_bytes() == before and not run_dir.exists()


def test_a_run_never_writes_its_selection_over_an_input(data, tmp_path, capsys):
    path, _, _ = data
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    inside = run_dir / "selection.jsonl"  # the default output, given as the input
    inside.write_bytes(path.read_bytes())
    assert run_cli("run", "kmq", "--model", "toy", "--input", inside, "--budget", 5,
                   "--run-dir", run_dir) == 2
    assert "same file as --input" in error_line(capsys)


# ------------------------------------------------------------------ 2. resume checks its inputs

def _kmq(path, emb_path, run_dir, *extra):
    return ["run", "kmq", "--model", "toy", "--input", path, "--embeddings", emb_path,
            "--budget", 6, "--rounds", 1, "--clusters", 2, "--max-new-tokens", 4, "--epochs", 1,
            "--warmup-steps", 0, "--run-dir", run_dir, "--no-progress", *extra]


def test_resume_with_other_inputs_is_refused_naming_them(data, tmp_path, capsys):
    path, emb_path, emb = data
    run_dir = tmp_path / "run"
    assert run_cli(*_kmq(path, emb_path, run_dir)) == 0
    capsys.readouterr()
    other = tmp_path / "other.jsonl"
    lines = path.read_text().splitlines()
    other.write_text("\n".join(lines[::-1]) + "\n")  # same records, other order: same size
    assert run_cli(*_kmq(other, emb_path, run_dir, "--resume")) == 2
    line = error_line(capsys)
    assert "--input: same size, other contents" in line and str(path) in line
    shifted = tmp_path / "shifted.npy"
    np.save(shifted, emb + 1)
    assert run_cli(*_kmq(path, shifted, run_dir, "--resume")) == 2
    assert "--embeddings: same size, other contents" in error_line(capsys)
    assert run_cli(*_kmq(path, emb_path, run_dir, "--resume")) == 0  # the same inputs resume


def test_claim_names_every_changed_input(tmp_path):
    with claim_run(tmp_path / "r", method="m", resume=False,
                   inputs={"a": {"size": 1, "hash": "x"}, "b": {"size": 2, "hash": "y"}}):
        RunDirectory(tmp_path / "r", method="m", config={}).commit({}, {})
    with pytest.raises(RunError, match=r"a: 1 -> 3 bytes; b: not given now"):
        claim_run(tmp_path / "r", method="m", resume=True, inputs={"a": {"size": 3, "hash": "z"}})


def test_model_fingerprint_tells_weights_apart():
    require_module("transformers", "torch")
    from iterselect._fingerprint import model_fingerprint
    from iterselect.scoring.toy import toy_model_and_tokenizer

    a, b, c = (toy_model_and_tokenizer(seed=s)[0] for s in (0, 0, 1))
    assert model_fingerprint(a) == model_fingerprint(b) != model_fingerprint(c)


def test_state_never_stores_an_object_repr(data, tmp_path):
    path, emb_path, _ = data
    run_dir = tmp_path / "run"
    assert run_cli(*_kmq(path, emb_path, run_dir)) == 0
    state = (run_dir / "state.json").read_text()
    assert " object>" not in state
    assert json.loads(state)["config"]["model"]["class"] == "GPT2LMHeadModel"


# ------------------------------------------------------------------ 3. one process a directory

HOLD = textwrap.dedent("""
    import sys, time
    from iterselect._lock import lock_directory
    lock = lock_directory(sys.argv[1])
    print("locked", flush=True)
    time.sleep(600)
""")


def _holder(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                            text=True, env=subprocess_env())
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_locked_run_directory_names_its_owner_and_a_killed_owner_frees_it(tmp_path):
    proc = _holder(tmp_path / "run")
    try:
        with pytest.raises(RunError, match=f"in use by process {proc.pid} on {socket.gethostname()}"):
            RunDirectory(tmp_path / "run", method="m", config={})
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run = RunDirectory(tmp_path / "run", method="m", config={})  # stale: the owner is gone
    run.commit({}, {})
    run.close()


def test_the_cli_refuses_a_run_directory_in_use(data, tmp_path, capsys):
    path, emb_path, _ = data
    proc = _holder(tmp_path / "run")
    try:
        assert run_cli(*_kmq(path, emb_path, tmp_path / "run")) == 2
        assert f"in use by process {proc.pid}" in error_line(capsys)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_stale_and_foreign_lock_files(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    RunDirectory(tmp_path / "a", method="m", config={}).close()  # taken over
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / ".lock").write_text(json.dumps({"pid": 4242, "host": "elsewhere"}))
    with pytest.raises(RunError, match=r"process 4242 on elsewhere.*delete .*\.lock"):
        RunDirectory(tmp_path / "b", method="m", config={})


def test_the_lock_is_released_with_the_run(tmp_path):
    run = RunDirectory(tmp_path, method="m", config={})
    assert (tmp_path / ".lock").exists()
    run.close()
    assert not (tmp_path / ".lock").exists()


# ------------------------------------------------------------------ 4. overflow

def _points():
    return np.random.default_rng(3).standard_normal((200, 8))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_kcenter_refuses_overflow_and_float64_gives_the_answer(metric):
    from iterselect import kcenter_greedy

    X = _points()
    with pytest.raises(ValueError, match=r"overflow|fit in float32.*pass it as float64"):
        kcenter_greedy((X * 1e30).astype(np.float32), 5, metric=metric, progress=False)
    big = kcenter_greedy(X * 2.0**100, 5, metric=metric, progress=False)  # float64: exact scaling
    small = kcenter_greedy(X, 5, metric=metric, progress=False)
    assert big.indices.tolist() == small.indices.tolist()
    assert np.all(np.isfinite(big.radii))


def test_kcenter_refuses_overflow_of_a_torch_tensor():
    torch = require_module("torch", "torch")
    from iterselect import kcenter_greedy

    with pytest.raises(ValueError, match="fit in float32"):
        kcenter_greedy(torch.from_numpy(_points() * 1e30).float(), 5, progress=False)


def test_kmeans_refuses_overflow_instead_of_aborting():
    require_module("faiss", "faiss")
    from iterselect import kmeans

    for X in ((_points() * 1e30).astype(np.float32), _points() * 1e200):
        with pytest.raises(ValueError, match="faiss's k-means computes in float32"):
            kmeans(X, 4)


@pytest.mark.parametrize("mode", ["dense", "sparse"])
def test_affinity_refuses_overflow(mode):
    from iterselect import affinity_propagation

    kw = {"n_neighbors": 10} if mode == "sparse" else {}
    if mode == "sparse":
        require_module("faiss", "faiss")
    with pytest.raises(ValueError, match="overflow|fit in float32"):
        affinity_propagation((_points() * 1e30).astype(np.float32), progress=False, **kw)


def test_affinity_refuses_similarities_whose_messages_overflow():
    from iterselect import affinity_propagation

    X = _points()[:40]
    S = -((X[:, None] - X[None]) ** 2).sum(-1)
    with pytest.raises(ValueError, match="messages.*dtype=np.float64"):
        affinity_propagation((S * 1e36).astype(np.float32), metric="precomputed", progress=False)
    big = affinity_propagation(S * 2.0**120, metric="precomputed", dtype=np.float64, progress=False)
    small = affinity_propagation(S, metric="precomputed", dtype=np.float64, progress=False)
    assert big.exemplars.tolist() == small.exemplars.tolist()


def test_vendi_refuses_overflowing_norms_and_is_scale_free_below():
    from iterselect import vendi_score

    X = _points()
    with pytest.raises(ValueError, match="squared row norms"):
        vendi_score(X * 1e200)
    assert vendi_score((X * 1e30).astype(np.float32)).score == pytest.approx(
        vendi_score(X.astype(np.float32)).score, rel=1e-9)


def test_coverage_refuses_gains_that_overflow():
    from iterselect import coverage_greedy

    X = np.abs(_points())
    with pytest.raises(ValueError, match="'weights' parameter.*fit in float64"):
        coverage_greedy(X, 3, weights=np.full(200, 1e308), progress=False)
    with pytest.raises(ValueError, match="'X' parameter.*fit in float64"):
        coverage_greedy(X * 1e307, 3, progress=False)


# ------------------------------------------------------------------ 5. refuse before reading

def test_dense_ap_on_a_memmap_refuses_before_reading_it(tmp_path, monkeypatch):
    import iterselect._arrays as arrays
    import iterselect.affinity._run as run
    from iterselect import affinity_propagation

    S = np.lib.format.open_memmap(tmp_path / "S.npy", mode="w+", dtype=np.float32, shape=(600, 600))
    S[:] = -1.0
    S.flush()
    reads = []
    real = arrays.check_finite_rows
    monkeypatch.setattr(arrays, "check_finite_rows", lambda *a: reads.append(1) or real(*a))
    monkeypatch.setattr(run, "host_available", lambda: 1 << 20)
    with pytest.raises(MemoryError, match="sparse mode"):
        affinity_propagation(np.load(tmp_path / "S.npy", mmap_mode="r"), metric="precomputed",
                             progress=False)
    assert reads == []  # refused on its size alone


def test_finiteness_is_checked_in_blocks_bounded_in_bytes(monkeypatch):
    import iterselect._arrays as arrays

    class Spy(np.ndarray):
        sizes: list = []

        def __getitem__(self, key):
            block = super().__getitem__(key)
            Spy.sizes.append(block.nbytes)
            return block

    monkeypatch.setattr(arrays, "_BLOCK_BYTES", 4096)
    X = np.zeros((100, 300), dtype=np.float32)
    X[77, 5] = np.nan
    with pytest.raises(ValueError, match="row 77"):
        arrays.check_finite_rows(X.view(Spy), "float32", "X", "f")
    assert Spy.sizes and max(Spy.sizes) <= 4096


# ------------------------------------------------------------------ 6. Ctrl-C while building the graph

def test_the_knn_graph_is_built_in_interruptible_chunks(monkeypatch):
    faiss = require_module("faiss", "faiss")
    import types

    import iterselect._knn as knn

    calls = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def add(self, x):
            calls.append(("add", len(x)))
            self.inner.add(x)

        def search(self, x, k):
            calls.append(("search", len(x)))
            return self.inner.search(x, k)

    X = np.random.default_rng(1).standard_normal((3000, 16)).astype(np.float32)
    whole = knn.kneighbors(X, 8, index="exact")
    proxy = types.SimpleNamespace(IndexFlatL2=lambda d: Counting(faiss.IndexFlatL2(d)),
                                  IndexFlatIP=lambda d: Counting(faiss.IndexFlatIP(d)),
                                  omp_set_num_threads=faiss.omp_set_num_threads)
    monkeypatch.setattr(knn, "_faiss", lambda func: proxy)
    monkeypatch.setattr(knn, "WORK_PER_CALL", 3000 * 16 * 100)  # 100 queries a call
    monkeypatch.setattr(knn, "MIN_ROWS_PER_CALL", 1)
    chunked = knn.kneighbors(X, 8, index="exact")
    searches = [rows for kind, rows in calls if kind == "search"]
    assert len(searches) == 30 and max(searches) == 100  # Python sees Ctrl-C between calls
    assert np.array_equal(whole, chunked)


# ------------------------------------------------------------------ 7. messages

def test_write_errors_name_the_users_path(tmp_path, monkeypatch):
    import iterselect._files as files

    def refuse(prefix, dir):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "g47rmt9a"))

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    target = tmp_path / "ro_dir" / "out.jsonl"
    with pytest.raises(PermissionError) as info:
        with files.atomic_file(target) as f:
            f.write("x")
    assert info.value.filename == str(target)


def test_the_cli_says_resume_as_a_flag(data, tmp_path, capsys):
    path, emb_path, _ = data
    run_dir = tmp_path / "run"
    assert run_cli(*_kmq(path, emb_path, run_dir)) == 0
    capsys.readouterr()
    assert run_cli(*_kmq(path, emb_path, run_dir)) == 2
    line = error_line(capsys)
    assert "--resume" in line and "resume=True" not in line


@pytest.mark.parametrize("content,expected", [
    (np.full((N, 8), np.nan, dtype=np.float32), "must be finite"),
    (np.ones((N, 8), dtype=np.int64), "dtype"),
    (np.full((N, 8), 1e30, dtype=np.float32), "pass it as float64"),
])
def test_bad_embeddings_content_names_the_file(data, tmp_path, capsys, content, expected):
    path, _, _ = data
    bad = tmp_path / "bad.npy"
    np.save(bad, content)
    assert run_cli("select", "kcenter", "--budget", 3, "--input", path, "--embeddings", bad,
                   "--no-progress") == 2
    line = error_line(capsys)
    assert line.startswith(f"iterselect: error: {bad}: ") and expected in line
    assert "parameter of" not in line


def test_tensors_that_require_grad_are_accepted():
    torch = require_module("torch", "torch")
    from iterselect import coverage_greedy, deita_select, ifd_topk, kcenter_greedy

    X = torch.rand(30, 6, requires_grad=True)
    q = torch.rand(30, requires_grad=True)
    assert kcenter_greedy(X, 3, progress=False).indices.tolist() == \
        kcenter_greedy(X.detach(), 3, progress=False).indices.tolist()
    assert ifd_topk(q, 3).indices.tolist() == ifd_topk(q.detach().numpy(), 3).indices.tolist()
    assert coverage_greedy(X, 3, progress=False).indices.tolist() == \
        coverage_greedy(X.detach().numpy(), 3, progress=False).indices.tolist()
    assert deita_select(X, 3, quality=q).indices.tolist() == \
        deita_select(X.detach().numpy(), 3, quality=q.detach().numpy()).indices.tolist()


@pytest.mark.parametrize("method", [m for m in ALL_SELECTORS if m not in ("least-confidence", "margin")])
def test_every_selector_prints_its_summary_on_standard_error(data, tmp_path, method, capsys):
    path, emb_path, _ = data
    scores = tmp_path / "scores.npy"
    np.save(scores, np.linspace(0.1, 0.9, N))
    out = tmp_path / "out.jsonl"
    assert run_cli("select", method, "--budget", 4, "--input", path, "--output", out,
                   "--no-progress", *_selector_args(method, emb_path, scores)) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("selected 4 of 60 records")


def test_too_many_clusters_leave_no_run_directory(data, tmp_path, capsys):
    path, emb_path, _ = data
    run_dir = tmp_path / "run"
    assert run_cli(*_kmq(path, emb_path, run_dir)[:-1], "--clusters", N + 1) == 2
    assert "--clusters" in error_line(capsys) and not run_dir.exists()


def test_a_run_that_fails_before_its_first_round_leaves_no_run_directory(data, tmp_path, capsys,
                                                                        monkeypatch):
    from iterselect.methods import IterativeKMQ

    def fail(self, embeddings, n_clusters=None):
        raise ValueError("k-means failed")

    monkeypatch.setattr(IterativeKMQ, "cluster", fail)
    path, emb_path, _ = data
    assert run_cli(*_kmq(path, emb_path, tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip().splitlines()  # after the note that the run is kM-Random
    assert err[-1].startswith("iterselect: error: ") and "k-means failed" in err[-1]
    assert not (tmp_path / "run").exists()


def test_outputs_are_written_with_the_users_umask(data, tmp_path):
    path, _, _ = data
    old = os.umask(0o027)
    try:
        assert run_cli("select", "random", "--budget", 3, "--input", path, "--output",
                       tmp_path / "o.jsonl") == 0
    finally:
        os.umask(old)
    assert oct((tmp_path / "o.jsonl").stat().st_mode & 0o777) == oct(0o640)


def test_a_missing_optional_dependency_is_one_line_naming_the_extra(data, capsys, monkeypatch):
    import iterselect.methods.baselines as baselines

    def missing(*a, **k):
        raise ModuleNotFoundError("No module named 'tokenizers'", name="tokenizers")

    monkeypatch.setattr(baselines, "random_select", missing)
    path, _, _ = data
    assert run_cli("select", "random", "--budget", 3, "--input", path) == 2
    assert "pip install 'iterselect[torch]'" in error_line(capsys)


# ------------------------------------------------------------------ 8. kills inside a kMQ round

KILL_ON_CALL = textwrap.dedent("""
    import os, signal, sys, importlib
    module, cls, attr, nth = sys.argv[1:5]
    owner = getattr(importlib.import_module(module), cls)
    real, calls = getattr(owner, attr), [0]
    def killing(*a, **k):
        calls[0] += 1
        if calls[0] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a, **k)
    setattr(owner, attr, killing)
    from iterselect.cli import main
    sys.exit(main(sys.argv[5:]))
""")


def _kmq_rounds(path, emb_path, run_dir, *extra):
    return ["run", "kmq", "--model", "toy", "--input", str(path), "--embeddings", str(emb_path),
            "--budget", "12", "--rounds", "3", "--clusters", "2", "--max-length", "48",
            "--max-new-tokens", "4", "--lr", "1e-3", "--epochs", "1", "--warmup-steps", "0",
            "--run-dir", str(run_dir), "--no-progress",
            *extra]


@pytest.mark.parametrize("where", [
    # one optimizer step and one generation batch an iteration: the third call is iteration 2's
    ("torch.optim", "AdamW", "step", 3),                          # inside iteration 2's training
    ("transformers.generation.utils", "GenerationMixin", "generate", 3),  # inside its generation
])
def test_kmq_killed_inside_a_round_resumes_to_the_same_selection(data, tmp_path, where):
    require_module("transformers", "torch")
    path, emb_path, _ = data
    assert run_cli(*_kmq_rounds(path, emb_path, tmp_path / "whole")) == 0
    run_dir = tmp_path / "killed"
    env = subprocess_env(HF_HUB_OFFLINE="1")
    killed = subprocess.run([sys.executable, "-c", KILL_ON_CALL, *map(str, where),
                             *_kmq_rounds(path, emb_path, run_dir)], env=env, capture_output=True,
                            text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert json.loads((run_dir / "state.json").read_text())["rounds_done"] == 2
    assert run_cli(*_kmq_rounds(path, emb_path, run_dir, "--resume")) == 0
    assert (run_dir / "selection.jsonl").read_text() == (tmp_path / "whole" / "selection.jsonl").read_text()


def test_checkpoints_get_the_users_umask_and_errors_name_them(tmp_path):
    class Model:
        def save_pretrained(self, d):
            (d / "w.bin").write_text("w")

    class Full:
        def save_pretrained(self, d):
            raise OSError(28, "No space left on device", str(d / "w.bin"))

    run = RunDirectory(tmp_path, method="m", config={})
    old = os.umask(0o027)
    try:
        path = run.save_model(Model(), None, 0)
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o750)
    with pytest.raises(OSError) as info:
        run.save_model(Full(), None, 1)
    assert info.value.filename == str(run.model_path(1))
    run.close()
