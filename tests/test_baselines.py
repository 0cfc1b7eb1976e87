"""Static baselines: orders, ties, errors, determinism."""
import numpy as np
import pytest

from iterselect.methods.baselines import (deita_select, ifd_topk, kcenter_select, knn_distance,
                                          longest_response, random_select, response_text)


def test_random_is_seeded_and_unique():
    a = random_select(100, 30, seed=5).indices
    assert np.array_equal(a, random_select(100, 30, seed=5).indices)
    assert not np.array_equal(a, random_select(100, 30, seed=6).indices)
    assert len(set(a.tolist())) == 30
    with pytest.raises(ValueError, match="'k' parameter of random_select"):
        random_select(10, 11)


def test_longest_response_ties_by_index_and_formats():
    recs = [{"output": "abc"}, ("p", "abcde"), {"conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": "abcde"}]}, "ab"]
    assert response_text(recs[2]) == "abcde"
    r = longest_response(recs, 4)
    assert r.indices.tolist() == [1, 2, 0, 3]
    assert r.scores.tolist() == [5, 5, 3, 2]


def test_knn_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    d = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(d, np.inf)
    nn = d.min(axis=1)
    r = knn_distance(X, 10, block_size=7)
    assert r.indices.tolist() == np.argsort(-nn, kind="stable")[:10].tolist()
    np.testing.assert_allclose(r.scores, np.sort(nn)[::-1][:10], rtol=1e-9)
    rc = knn_distance(X, 5, metric="cosine")
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    dc = np.linalg.norm(Xn[:, None] - Xn[None], axis=2)
    np.fill_diagonal(dc, np.inf)
    assert rc.indices.tolist() == np.argsort(-dc.min(axis=1), kind="stable")[:5].tolist()


def test_deita_matches_naive_filter():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 8))
    q = rng.random(200)
    r = deita_select(X, 20, quality=q, threshold=0.8)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    kept = []
    for i in np.argsort(-q, kind="stable"):
        if all(Xn[i] @ Xn[j] < 0.8 for j in kept):
            kept.append(i)
        if len(kept) == 20:
            break
    assert r.indices.tolist() == kept
    sims = Xn[r.indices] @ Xn[r.indices].T
    assert (sims[~np.eye(20, dtype=bool)] < 0.8).all()


def test_deita_runs_out():
    X = np.ones((5, 2))
    with pytest.raises(ValueError, match="only 1 samples pass"):
        deita_select(X, 2, quality=np.arange(5.0))
    assert deita_select(X, 2, quality=np.arange(5.0), allow_fewer=True).indices.tolist() == [4]
    with pytest.raises(ValueError, match="'quality'"):
        deita_select(X, 2, quality=[1.0, np.nan, 0, 0, 0])


def test_kcenter_select_is_kcenter_greedy(dolly_embeddings):
    from iterselect import kcenter_greedy
    X = dolly_embeddings[:300]
    r = kcenter_select(X, 20)
    assert r.indices.tolist() == kcenter_greedy(X, 20, progress=False).indices.tolist()
    assert np.all(np.diff(r.scores) <= 0)


def test_ifd_topk_drops_and_counts():
    r = ifd_topk([0.2, 0.9, np.nan, 1.0, 0.9, 0.1], 3)
    assert r.indices.tolist() == [1, 4, 0] and r.n_dropped == 2
    with pytest.raises(ValueError, match="only 4 of 6"):
        ifd_topk([0.2, 0.9, np.nan, 1.0, 0.9, 0.1], 5)
    assert ifd_topk([0.2, 1.5], 2, drop_above_one=False).indices.tolist() == [1, 0]


# --- iterselect select METHOD ---------------------------------------------------------------

def _cli(*argv):
    import contextlib
    import io

    from iterselect.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def _data(tmp_path, n=6):
    import json
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"instruction": f"q{i}", "output": "x" * (i % 4)}) + "\n"
                         for i in range(n)))
    return p


def test_cli_select_longest_writes_subset_and_report(tmp_path):
    import json
    data = _data(tmp_path)
    rc, _, err = _cli("select", "longest", "--budget", "2", "--input", str(data),
                      "--output", str(tmp_path / "o.jsonl"))
    assert rc == 0, err
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["instruction"] for r in rows] == ["q3", "q2"]
    report = json.loads((tmp_path / "o.jsonl.report.json").read_text())
    assert report["indices"] == [3, 2] and report["method"] == "longest"


def test_cli_select_ifd_and_deita_with_scores(tmp_path):
    data = _data(tmp_path)
    np.save(tmp_path / "s.npy", np.array([0.5, np.nan, 0.9, 1.2, 0.1, 0.3]))
    rc, out, err = _cli("select", "ifd", "--budget", "2", "--input", str(data),
                        "--scores", str(tmp_path / "s.npy"))
    assert rc == 0, err
    assert [line.count("q2") + line.count("q0") for line in out.splitlines()] == [1, 1]
    np.save(tmp_path / "e.npy", np.eye(6))
    np.save(tmp_path / "q.npy", np.arange(6.0))
    rc, out, err = _cli("select", "deita", "--budget", "3", "--input", str(data),
                        "--embeddings", str(tmp_path / "e.npy"), "--scores", str(tmp_path / "q.npy"))
    assert rc == 0 and '"q5"' in out.splitlines()[0]


@pytest.mark.parametrize("argv, message", [
    (["select", "random", "--budget", "7"], "--budget must be between 1 and the number of records (6)"),
    (["select", "random", "--budget", "2", "--input", "/no/such.jsonl"], "no such file"),
    (["select", "ifd", "--budget", "2", "--scores", "/no/s.npy"], "/no/s.npy: no such file"),
    (["select", "knn", "--budget", "2", "--embeddings", "BAD"], "row i must embed record i"),
    (["select", "ifd", "--budget", "5", "--scores", "S"], "only 4 of 6"),
    (["run", "iterit", "--model", "nonexistent", "--run-dir", "R", "--budget", "2"], "no such directory"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, argv, message):
    data = _data(tmp_path)
    np.save(tmp_path / "bad.npy", np.zeros((3, 2)))
    np.save(tmp_path / "s.npy", np.array([0.5, np.nan, 0.9, 1.2, 0.1, 0.3]))
    argv = [str(tmp_path / "bad.npy") if a == "BAD" else str(tmp_path / "s.npy") if a == "S"
            else str(tmp_path / "r") if a == "R" else a for a in argv]
    if "--input" not in argv:
        argv += ["--input", str(data)]
    rc, _, err = _cli(*argv)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_cli_malformed_record_names_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"instruction": "a", "output": "b"}\n{broken\n')
    rc, _, err = _cli("select", "longest", "--budget", "1", "--input", str(p))
    assert rc == 2 and f"{p}:2:" in err and len(err.strip().splitlines()) == 1
