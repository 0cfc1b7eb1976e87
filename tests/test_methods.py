"""The model-in-the-loop methods on a tiny model and 300 Dolly records: a run, a crash after
round 1 then resume (same final selection as the uninterrupted run), errors."""
import json

import numpy as np
import pytest

from conftest import require_module, subprocess_env  # noqa: E402

torch = require_module("torch", "torch", module_level=True)

from iterselect.methods import TrainConfig  # noqa: E402

# no warm-up: IterIT's schedule spans its epochs, and with one step an epoch its first step
# would have a learning rate of 0
TRAIN = TrainConfig(lr=1e-3, max_length=64, batch_tokens=2048)


class Crash(Exception):
    pass


def crash_after(round_index):
    def hook(t, report):
        if t == round_index:
            raise Crash(f"crash after round {t}")
    return hook


@pytest.fixture(scope="session")
def records(dolly_records):
    return dolly_records[:300]


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory):
    from iterselect.scoring.toy import toy_model_and_tokenizer
    model, tok = toy_model_and_tokenizer()
    d = tmp_path_factory.mktemp("toy")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _resume_matches(make, records, toy_dir, tmp_path, reference):
    with pytest.raises(Crash):
        make().run(toy_dir, None, records, tmp_path / "crashed", on_round_end=crash_after(1))
    state = json.loads((tmp_path / "crashed" / "state.json").read_text())
    assert state["rounds_done"] == 2
    seen = []
    resumed = make().run(toy_dir, None, records, tmp_path / "crashed", resume=True,
                         on_round_end=lambda t, r: seen.append(t))
    assert seen == list(range(2, len(reference.reports)))  # no round lost or repeated
    assert resumed.selected.tolist() == reference.selected.tolist()
    assert [r["round"] for r in resumed.reports] == list(range(len(reference.reports)))
    return resumed


# --- DiverseEvol ---------------------------------------------------------------------------

# the toy tokenizer spends 58-94 tokens on the Alpaca preamble, which every record shares
def _de_train():
    from iterselect.methods.diverse_evol import DiverseEvol
    return DiverseEvol.PAPER_RECIPE.with_(epochs=1, lr=1e-3, max_length=128, batch_size=8)


def _diverse_evol():
    from iterselect.methods.diverse_evol import DiverseEvol
    return DiverseEvol(20, 10, 2, train=_de_train(), seed=3, progress=False)


@pytest.fixture(scope="session")
def diverse_evol_run(records, toy_dir, tmp_path_factory):
    return _diverse_evol().run(toy_dir, None, records, tmp_path_factory.mktemp("de"))


def test_diverse_evol_run(diverse_evol_run, records):
    r = diverse_evol_run
    assert r.selected.size == 40 and len(set(r.selected.tolist())) == 40
    assert r.selected[:20].tolist() == _diverse_evol().initial_pool(len(records)).tolist()
    assert [x["pool_size"] for x in r.reports] == [20, 30, 40]
    for rep in r.reports[1:]:
        assert rep["diversity"] >= 1.0 and rep["objective"] > 0
        assert len(rep["added"]) == 10


def test_diverse_evol_resume_and_seed(diverse_evol_run, records, toy_dir, tmp_path):
    _resume_matches(_diverse_evol, records, toy_dir, tmp_path, diverse_evol_run)


def test_diverse_evol_select_round_is_warm_kcenter():
    from iterselect import kcenter_greedy
    from iterselect.methods.diverse_evol import DiverseEvol
    X = np.random.default_rng(0).normal(size=(50, 4))
    got = DiverseEvol(5, 7, 1, progress=False).select_round(X, [1, 2, 3]).indices
    assert got.tolist() == kcenter_greedy(X, 7, selected=[1, 2, 3], progress=False).indices.tolist()


def test_diverse_evol_errors(records, toy_dir, tmp_path):
    from iterselect.methods.diverse_evol import DiverseEvol
    with pytest.raises(ValueError, match="'round_size' parameter of DiverseEvol"):
        DiverseEvol(5, 0, 1)
    with pytest.raises(ValueError, match="more than the 300 records"):
        DiverseEvol(200, 60, 2, train=TRAIN, progress=False).run(toy_dir, None, records, tmp_path)


# --- IterIT --------------------------------------------------------------------------------

def _iterit():
    from iterselect.methods.iterit import IterIT
    # the toy model's IFDs: 114 of 300 below 1, none among the 186 highest; a pool of a * M =
    # 200 holds 14 records below 1
    train = IterIT.PAPER_RECIPE.with_(lr=1e-3, max_length=64, batch_size=5)
    return IterIT(20, 2, candidate_factor=10, seed=1, train=train, progress=False)


@pytest.fixture(scope="session")
def iterit_run(records, toy_dir, tmp_path_factory):
    return _iterit().run(toy_dir, None, records, tmp_path_factory.mktemp("iterit"))


def test_iterit_run(iterit_run, records, toy_dir):
    from iterselect.scoring import ifd_scores, load_model, load_tokenizer
    r = iterit_run
    assert len(r.reports) == 3 and r.reports[0]["candidates"] == 200
    state = json.loads((r.run_dir / "state.json").read_text())["state"]
    cand = state["candidates"]
    assert set(r.selected.tolist()) <= set(cand) and 0 < r.selected.size <= 20
    # the pool is the top 3M by the base model's IFD, IFD >= 1 included (Alg. 1 lines 5-6); the
    # first epoch picks among those below 1 (line 8)
    m, tok = load_model(toy_dir), load_tokenizer(toy_dir)
    ifd = ifd_scores(m, tok, records, max_length=64, progress=False).ifd
    ranked = np.where(np.isnan(ifd), -np.inf, ifd)
    assert sorted(cand) == sorted(np.argsort(-ranked, kind="stable")[:200].tolist())
    first = json.loads((r.run_dir / "rounds" / "round_001.json").read_text())
    assert first["n_high_ifd"] == int(np.sum(ifd[cand] >= 1)) == r.reports[0]["n_high_ifd"]
    # the last epoch's IFD was recomputed with the trained model (checkpoint of epoch 1)
    assert not np.allclose(state["candidate_ifd"], ifd[cand])
    assert r.model_path.endswith("round_002")
    # one model trained continuously: one schedule over both epochs, steps counted across them,
    # the optimizer and the schedule saved with each checkpoint
    trains = [rep["train"] for rep in r.reports[1:]]
    # the schedule spans T epochs of M = 20 samples in batches of 5; line 8 may leave fewer
    assert trains[0]["total_steps"] == trains[1]["total_steps"] == 2 * 4
    assert trains[0]["steps_done"] == -(-r.reports[1]["selected_size"] // 5)
    assert trains[1]["steps_done"] == trains[0]["steps_done"] + -(-r.reports[2]["selected_size"] // 5)
    assert trains[1]["steps_done"] <= trains[1]["total_steps"] and trains[1]["epochs_done"] == 2
    assert (r.run_dir / "models" / "round_002" / "trainer_state.pt").exists()


def test_iterit_resume_and_seed(iterit_run, records, toy_dir, tmp_path):
    _resume_matches(_iterit, records, toy_dir, tmp_path, iterit_run)


def test_iterit_pool_paper_and_published():
    from iterselect.methods.iterit import IterIT
    it = IterIT(2, candidate_factor=2.0)  # a * M = 4
    assert (it.epochs, it.weighting, it.pool, it.decay, it.candidate_factor) == (3, "paper", "paper", 0.1, 2.0)
    ifd = np.array([0.5, 1.2, 0.9, np.nan, 0.7, 0.1, 1.05, 0.7])
    # paper: the 4 highest IFDs, >= 1 included, NaN left out, ties by lowest index
    assert it.candidates(ifd).tolist() == [1, 6, 2, 4]
    # published, after an epoch that picked positions 5 then 0 of cand = all records but the NaN:
    # picks, then IFD >= 1 in their order, then the rest by IFD (ties by position), first a * M
    cand = np.array([0, 1, 2, 4, 5, 6, 7])
    s = ifd[cand]
    assert it.published_pool(cand, s, [4, 0]).tolist() == [5, 0, 1, 6]
    assert IterIT(2, candidate_factor=4.0).published_pool(cand, s, [4, 0]).tolist() == [5, 0, 1, 6, 2, 4, 7]


def test_iterit_published_pool_run(records, toy_dir, tmp_path):
    from iterselect.methods.iterit import IterIT
    r = IterIT(20, 1, pool="published", weighting="sklearn", seed=1, train=TRAIN,
               progress=False).run(toy_dir, None, records, tmp_path / "pub")
    # round 0 keeps every record with an IFD; epoch 1 picks among those below 1, then the pool
    # shrinks to a * M
    assert r.reports[0]["candidates"] == len(records) - r.reports[0]["n_nan"]
    state = json.loads((r.run_dir / "state.json").read_text())["state"]
    assert len(state["candidates"]) == 60 and state["candidates"][:20] == r.selected.tolist()


def test_iterit_no_candidate_below_one(records, toy_dir, tmp_path):
    from iterselect.methods.iterit import IterIT
    with pytest.raises(ValueError, match="60 records of highest IFD.*line 8 leaves no candidate"):
        IterIT(20, 1, train=TRAIN, progress=False).run(toy_dir, None, records, tmp_path / "none")


def test_iterit_errors():
    from iterselect.methods.iterit import IterIT
    with pytest.raises(ValueError, match="'decay' parameter of IterIT"):
        IterIT(10, 1, decay=1.5)
    with pytest.raises(ValueError, match="'pool' parameter of IterIT"):
        IterIT(10, pool="sklearn")
    with pytest.raises(ValueError, match="'weighting' parameter of IterIT"):
        IterIT(10, weighting="published")
    with pytest.raises(TypeError, match="'model' parameter of IterIT.run"):
        IterIT(10, 1).run(3, None, [{"instruction": "a", "output": "b"}], "/tmp/x")


# --- the command line: kill after round 1, resume -----------------------------------------

def test_cli_run_killed_after_round_1_resumes(diverse_evol_run, tmp_path):
    import signal
    import subprocess
    import sys
    import time
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "iterselect.cli", "run", "diverse-evol", "--model", "toy",
            "--run-dir", str(run_dir), "--limit", "300", "--budget", "10", "--initial-size", "20",
            "--rounds", "2", "--seed", "3", "--lr", "1e-3", "--max-length", "128",
            "--epochs", "1", "--batch-size", "8", "--no-progress"]
    env = subprocess_env()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run_dir / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["rounds_done"] >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(state.read_text())["rounds_done"] == 2  # killed during round 2
    assert not (run_dir / "selection.jsonl").exists()
    done = subprocess.run(args + ["--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "round 1:" not in done.stderr and "round 2:" in done.stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report["selected"] == diverse_evol_run.selected.tolist()
    assert (run_dir / "plot.png").read_bytes()[:4] == b"\x89PNG"
    lines = (run_dir / "selection.jsonl").read_text().splitlines()
    assert len(lines) == 40
    again = subprocess.run(args, env=env, capture_output=True, text=True)  # no --resume
    assert again.returncode == 2 and "resume" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


# --- iterative kMQ -------------------------------------------------------------------------

def _kmq():
    from iterselect.methods.kmq import IterativeKMQ
    train = IterativeKMQ.PAPER_RECIPE.with_(epochs=1, lr=1e-3, max_length=64, batch_size=16,
                                            warmup_steps=0)
    return IterativeKMQ(30, 3, 5, max_new_tokens=8, seed=2, train=train, progress=False)


@pytest.fixture(scope="session")
def kmq_run(records, toy_dir, dolly_embeddings, tmp_path_factory):
    return _kmq().run(toy_dir, None, records, dolly_embeddings[:300],
                      tmp_path_factory.mktemp("kmq"))


def test_kmq_run(kmq_run):
    r = kmq_run
    assert r.selected.size == 30 and len(set(r.selected.tolist())) == 30
    assert [x["selected_size"] for x in r.reports] == [10, 20, 30]
    assert r.variant == "kM-Random" and all(x["variant"] == "kM-Random" for x in r.reports)
    w = r.reports[-1]["weights"]
    assert len(w) == 5 and min(w) >= 0 and abs(sum(w) - 1) < 1e-9
    for x in r.reports:  # every iteration scores all of D' (Alg. 1 line 7)
        assert x["n_scored"] + x["n_unscored"] == x["selected_size"]
        assert x["train"]["epochs"] == 1 and x["train"]["batch_size"] == 16
    # the N-th model is returned (Alg. 1 line 11)
    assert r.model_path.endswith("round_002") and r.reports[-1]["model_path"] == r.model_path


def test_kmq_resume_and_seed(kmq_run, records, toy_dir, dolly_embeddings, tmp_path):
    from iterselect.methods.kmq import IterativeKMQ

    class Wrapped:
        def run(self, model, tok, recs, run_dir, **kw):
            return _kmq().run(model, tok, recs, dolly_embeddings[:300], run_dir, **kw)
    _resume_matches(Wrapped, records, toy_dir, tmp_path, kmq_run)
    with pytest.raises(ValueError, match="'embeddings' parameter of IterativeKMQ.run"):
        IterativeKMQ(3, 1, 2).run(toy_dir, None, records, dolly_embeddings[:10], tmp_path / "x")


def test_cli_run_kmq_equals_the_method(kmq_run, dolly_embeddings, tmp_path, capsys):
    from iterselect import cli

    emb = tmp_path / "emb.npy"
    np.save(emb, dolly_embeddings[:300])
    run_dir = tmp_path / "run"
    argv = ["run", "kmq", "--model", "toy", "--run-dir", str(run_dir), "--limit", "300", "--budget", "30",
            "--rounds", "3", "--clusters", "5", "--max-new-tokens", "8", "--seed", "2", "--lr", "1e-3",
            "--max-length", "64", "--epochs", "1", "--batch-size", "16", "--warmup-steps", "0",
            "--embeddings", str(emb), "--no-progress"]
    assert cli.main(argv) == 0
    report = json.loads((run_dir / "report.json").read_text())
    assert report["selected"] == kmq_run.selected.tolist()
    assert report["variant"] == "kM-Random" and report["title"] == "iterative kM-Random"
    err = capsys.readouterr().err  # the log names what runs: kM-Random, not kMQ
    assert "iterative kM-Random: no quality scores" in err
    assert "iterative kM-Random: round 2:" in err and "kMQ:" not in err
    assert (run_dir / "plot.png").read_bytes()[:4] == b"\x89PNG"
    np.save(emb, dolly_embeddings[:200])
    assert cli.main(argv[:-3] + ["--run-dir", str(tmp_path / "run2"), "--embeddings", str(emb)]) == 2
