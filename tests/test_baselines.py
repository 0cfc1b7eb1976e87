"""Static baselines: orders, ties, errors, determinism."""
import numpy as np
import pytest

from iterselect.methods.baselines import (deita_select, graphfilter_select, ifd_topk,
                                          instruction_text, kcenter_quality_select, kcenter_select,
                                          knn_distance, knn_quality_select, longest_response,
                                          random_select, response_text)


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


# --- InsBank's baselines (§4.1) ------------------------------------------------------------

def _mm(v):
    v = np.asarray(v, dtype=np.float64)
    return (v - v.min()) / (v.max() - v.min())


def test_knn_quality_is_the_formula():
    rng = np.random.default_rng(3)
    X, q = rng.normal(size=(80, 6)), rng.normal(size=80)
    d = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(d, np.inf)
    for gamma in (1.0, 2.0, 0.0):
        s = (1 + _mm(d.min(axis=1))) * (1 + _mm(q)) ** gamma
        r = knn_quality_select(X, 12, quality=q, gamma=gamma, block_size=9)
        assert r.indices.tolist() == np.argsort(-s, kind="stable")[:12].tolist()
        np.testing.assert_allclose(r.scores, s[r.indices], rtol=1e-12)
    # gamma = 0 ranks by distance alone: the pure-distance baseline's order
    assert (knn_quality_select(X, 12, quality=q, gamma=0.0).indices.tolist()
            == knn_distance(X, 12).indices.tolist())
    with pytest.raises(ValueError, match="'quality' parameter of knn_quality_select"):
        knn_quality_select(X, 3, quality=q[:5])


def test_kcenter_quality_matches_a_plain_loop():
    rng = np.random.default_rng(4)
    X, q = rng.normal(size=(60, 5)), rng.random(60)
    d_all = np.linalg.norm(X[:, None] - X[None], axis=2)
    qf = (1 + _mm(q)) ** 2.0
    picks = [7]
    for _ in range(9):
        d = d_all[:, picks].min(axis=1)
        s = (1 + _mm(d)) * qf
        s[picks] = -np.inf
        picks.append(int(np.argmax(s)))
    r = kcenter_quality_select(X, 10, quality=q, gamma=2.0, seed_index=7)
    assert r.indices.tolist() == picks and np.isnan(r.scores[0])
    # without quality it is k-center greedy
    flat = kcenter_quality_select(X, 10, quality=np.zeros(60), seed_index=7)
    assert flat.indices.tolist() == kcenter_select(X, 10, seed_index=7).indices.tolist()


# --- IterIT's GraphFilter baseline (§3.3) -------------------------------------------------------

def test_instruction_text():
    assert instruction_text({"instruction": "Sum.", "input": "", "output": "x"}) == "Sum."
    assert instruction_text({"instruction": "Sum.", "input": "1 2", "output": "3"}) == "Sum.\n1 2"
    conv = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"},
                              {"from": "human", "value": "bye"}]}
    assert instruction_text(conv) == "hi\nbye"
    assert instruction_text(("prompt", "response")) == "prompt"


def test_graphfilter_matches_a_plain_reference():
    """Against a plain loop: scikit-learn's TF-IDF of the instructions, gain = IFD x (X @ alpha),
    argmax (lowest index on ties), covered n-grams' alpha set to 0."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from iterselect.datasets import load_dolly
    from iterselect.coverage import tfidf_matrix
    from reference_coverage import naive_coverage_greedy

    records = load_dolly()[:600]
    rng = np.random.default_rng(5)
    ifd = rng.uniform(0.2, 1.3, len(records))
    ifd[[3, 50, 400]] = np.nan
    r = graphfilter_select(records, 60, ifd=ifd)
    keep = np.flatnonzero(~np.isnan(ifd))
    assert r.n_dropped == 3 and r.method == "graphfilter"
    texts = [instruction_text(records[i]) for i in keep]
    X = tfidf_matrix(texts, progress=False).matrix
    Y = TfidfVectorizer(ngram_range=(1, 3)).fit_transform(texts)
    np.testing.assert_allclose(X.toarray(), Y.toarray(), atol=1e-6)  # the instructions' TF-IDF
    ref = naive_coverage_greedy(X, 60, ifd[keep], decay=0.0)
    assert r.indices.tolist() == keep[ref.indices].tolist()
    np.testing.assert_array_equal(r.scores, ref.gains)
    # a plain Python loop on scikit-learn's matrix picks the same records
    Yd, alpha, taken, picks = Y.toarray(), np.ones(Y.shape[1]), np.zeros(len(keep), bool), []
    for _ in range(60):
        g = ifd[keep] * (Yd @ alpha)
        g[taken] = -np.inf
        i = int(np.argmax(g))
        picks.append(i)
        taken[i] = True
        alpha[Yd[i] != 0] = 0.0
    assert r.indices.tolist() == keep[picks].tolist()
    # errors
    with pytest.raises(ValueError, match="'ifd' parameter of graphfilter_select"):
        graphfilter_select(records[:3], 1, ifd=[0.5, -1.0, 0.2])
    with pytest.raises(ValueError, match="only 2 of 3 records have an IFD"):
        graphfilter_select(records[:3], 3, ifd=[0.5, np.nan, 0.2])
    assert graphfilter_select(records[:3], 3, ifd=[0.5, np.nan, 0.2], allow_fewer=True).indices.size == 2


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


def test_cli_select_graphfilter(tmp_path):
    import json
    p = tmp_path / "g.jsonl"
    recs = [{"instruction": t, "output": "x"} for t in
            ["Name the capital of France.", "Name the capital of Spain.", "Sort these numbers.",
             "Sort these words."]]
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    ifd = np.array([0.9, 0.95, 0.5, np.nan])
    np.save(tmp_path / "s.npy", ifd)
    rc, _, err = _cli("select", "graphfilter", "--budget", "2", "--input", str(p),
                      "--scores", str(tmp_path / "s.npy"), "--output", str(tmp_path / "o.jsonl"))
    assert rc == 0, err
    report = json.loads((tmp_path / "o.jsonl.report.json").read_text())
    expected = graphfilter_select(recs, 2, ifd=ifd)
    assert report["indices"] == expected.indices.tolist() and report["n_dropped"] == 1


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
