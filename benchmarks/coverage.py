#!/usr/bin/env python3
"""Benchmark: TF-IDF featurization + IterIT's greedy coverage, iterselect against the reference.

Part "alpaca": the 52,002 Alpaca responses (../shared/data/alpaca_52k.jsonl.gz), k = 2,600 (5%),
decay 0.1 and 0.0, row weights uniform in [0.2, 1] (seed 0) standing in for IFD. The reference
is scikit-learn's TfidfVectorizer(ngram_range=(1, 3)) followed by a vectorized numpy greedy
(one sparse matrix-vector product per pick, float64, argmax, decay), measured in the same run;
picks are compared (identical, or the first differing step shown to be a near tie).

Part "million": 1,000,000 synthetic documents (Alpaca response sentences reshuffled, made by
../shared/bench/synth.py texts) featurized and 50,000 picked (decay 0.1), in a child process so
its peak memory is its own. The file is generated into --cache once (it derives from Alpaca,
whose licence is non-commercial: it is never committed).

    python benchmarks/coverage.py [--part alpaca|million|all] [--threads N] [--n N]

Data: ../shared/data beside the checkout, or $ITERSELECT_SHARED/data; the synth script is looked up
beside it (../bench/synth.py).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


from iterselect.coverage import coverage_greedy, tfidf_matrix  # noqa: E402

from _common import DATA as SHARED_DATA  # noqa: E402
from _common import add_json_option, write_json  # noqa: E402


def load_outputs(path: Path, limit: int | None = None) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        out = []
        for line in f:
            out.append(json.loads(line)["output"])
            if limit is not None and len(out) == limit:
                break
    return out


def numpy_greedy(X, k, weights, decay):
    """The reference: recompute every gain with one sparse mat-vec per pick (float64)."""
    n, m = X.shape
    alpha = np.ones(m)
    taken = np.zeros(n, dtype=bool)
    picks = np.empty(k, dtype=np.int64)
    gains = np.empty(k)
    runner_up = np.empty(k)
    for t in range(k):
        g = weights * (X @ alpha)
        g[taken] = -np.inf
        i = int(np.argmax(g))
        picks[t], gains[t] = i, g[i]
        g[i] = -np.inf
        runner_up[t] = g.max()
        taken[i] = True
        alpha[X.indices[X.indptr[i]:X.indptr[i + 1]]] *= decay
    return picks, gains, runner_up


def compare_picks(ours, ours_gains, ref, ref_gains, runner_up) -> tuple[str, int | None]:
    """``(text, first differing step or None)``."""
    diff = np.flatnonzero(ours != ref)
    if diff.size == 0:
        return "identical", None
    t = int(diff[0])
    gap = (ref_gains[t] - runner_up[t]) / abs(ref_gains[t])
    return (f"first differs at step {t} (near tie: relative gap {gap:.1e}, gains {ours_gains[t]:.17g} vs "
            f"{ref_gains[t]:.17g})", t)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def row(cells, widths):
    return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"


def part_alpaca(threads, limit=None) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = load_outputs(SHARED_DATA / "alpaca_52k.jsonl.gz", limit)
    n = len(texts)
    k = 2600 if limit is None else max(1, n // 20)
    weights = np.random.default_rng(0).uniform(0.2, 1.0, n)

    t = time.perf_counter()
    ours = tfidf_matrix(texts, threads=threads, progress=False)
    t_ours_tfidf = time.perf_counter() - t
    t = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 3))
    Y = vec.fit_transform(texts)
    t_ref_tfidf = time.perf_counter() - t
    same_vocab = ours.vocabulary.tolist() == vec.get_feature_names_out().tolist()
    Ys = Y.copy()
    Ys.sort_indices()
    max_diff = float(abs(ours.matrix - Ys).max())
    print(f"Alpaca responses: n = {n}, vocabulary {ours.matrix.shape[1]:,} n-grams (1-3), nnz {ours.matrix.nnz:,}; "
          f"same vocabulary as scikit-learn: {same_vocab}; max |difference| {max_diff:.1e}")
    widths = (10, 28, 12, 12, 9, 60)
    print(row(("decay", "stage", "iterselect", "reference", "speed-up", "picks"), widths))
    print(row(["-" * w for w in widths], widths))
    print(row(("", "tf-idf (1-3 grams)", f"{t_ours_tfidf:.2f} s", f"{t_ref_tfidf:.2f} s",
               f"{t_ref_tfidf / t_ours_tfidf:.1f}x", ""), widths))
    out = {"n": n, "k": k, "n_ngrams": int(ours.matrix.shape[1]), "nnz": int(ours.matrix.nnz),
           "same_vocabulary_as_sklearn": same_vocab, "max_abs_difference": max_diff,
           "tfidf_seconds": t_ours_tfidf, "sklearn_tfidf_seconds": t_ref_tfidf, "greedy": []}
    for decay in (0.1, 0.0):
        t = time.perf_counter()
        g = coverage_greedy(ours.matrix, k, weights=weights, decay=decay, threads=threads, progress=False)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        picks, gains, runner_up = numpy_greedy(Y.tocsr(), k, weights, decay)
        t_ref = time.perf_counter() - t
        verdict, first_diff = compare_picks(g.indices, g.gains, picks, gains, runner_up)
        out["greedy"].append({"decay": decay, "k": k, "seconds": t_ours, "numpy_seconds": t_ref,
                              "picks_identical": first_diff is None, "first_differing_step": first_diff,
                              "picks": verdict, "refreshes": int(g.refreshes)})
        print(row((decay, f"greedy k={k}", f"{t_ours:.3f} s", f"{t_ref:.1f} s", f"{t_ref / t_ours:.0f}x",
                   f"{verdict}; {g.refreshes:,} refreshes"), widths))
        e2e_ours, e2e_ref = t_ours_tfidf + t_ours, t_ref_tfidf + t_ref
        print(row((decay, "end to end", f"{e2e_ours:.2f} s", f"{e2e_ref:.1f} s", f"{e2e_ref / e2e_ours:.1f}x", ""),
                  widths))
    print(f"peak RSS of this part: {peak_rss_gib():.2f} GiB; load average now {os.getloadavg()[0]:.1f}")
    return out


def ensure_million(cache: Path) -> Path:
    path = cache / "synth_texts_1m.jsonl.gz"
    if not path.exists():
        synth = SHARED_DATA.parent / "bench" / "synth.py"
        cache.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} with {synth} (once) ...", flush=True)
        subprocess.run([sys.executable, str(synth), "texts", "1000000", str(path)], check=True)
    return path


def part_million(threads, cache: Path) -> dict:
    path = ensure_million(cache)
    t = time.perf_counter()
    texts = load_outputs(path)
    t_load = time.perf_counter() - t
    weights = np.random.default_rng(0).uniform(0.2, 1.0, len(texts))
    t = time.perf_counter()
    r = tfidf_matrix(texts, dtype=np.float32, threads=threads, progress=False)
    t_tfidf = time.perf_counter() - t
    t = time.perf_counter()
    g = coverage_greedy(r.matrix, 50_000, weights=weights, decay=0.1, threads=threads, progress=False)
    t_greedy = time.perf_counter() - t
    print(f"Synthetic: n = {len(texts):,} (loaded from JSON in {t_load:.1f} s, not counted), vocabulary "
          f"{r.matrix.shape[1]:,} n-grams, nnz {r.matrix.nnz:,} (float32 values)")
    widths = (40, 10)
    print(row(("stage", "time"), widths))
    print(row(["-" * w for w in widths], widths))
    print(row(("tf-idf (1-3 grams)", f"{t_tfidf:.1f} s"), widths))
    print(row((f"greedy k=50,000 ({g.refreshes:,} refreshes)", f"{t_greedy:.1f} s"), widths))
    print(row(("total (target < 180 s)", f"{t_tfidf + t_greedy:.1f} s"), widths))
    print(f"peak RSS of this part (texts included): {peak_rss_gib():.2f} GiB; load average now "
          f"{os.getloadavg()[0]:.1f}")
    return {"n": len(texts), "n_ngrams": int(r.matrix.shape[1]), "nnz": int(r.matrix.nnz),
            "tfidf_seconds": t_tfidf, "greedy_k": 50_000, "greedy_seconds": t_greedy,
            "refreshes": int(g.refreshes)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["alpaca", "million", "all"], default="all")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/iterselect-bench"),
                    help="where the million-document file is generated (default /tmp/iterselect-bench)")
    ap.add_argument("--n", type=int, default=None,
                    help="alpaca part: only the first N responses, k = N / 20 (a quick check)")
    add_json_option(ap)
    a = ap.parse_args()
    if a.part == "all":
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"Python {platform.python_version()}, threads {a.threads or 'all'}; load average at start "
              f"{os.getloadavg()[0]:.1f} (other jobs share these CPUs)\n", flush=True)
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for part in ("alpaca", "million"):
                part_json = Path(tmp) / f"{part}.json"
                cmd = [sys.executable, __file__, "--part", part, "--cache", str(a.cache), "--json", str(part_json)]
                if a.threads:
                    cmd += ["--threads", str(a.threads)]
                subprocess.run(cmd, check=True)
                print(flush=True)
                results.update(json.loads(part_json.read_text()))
        write_json(a.json, results)
        return
    if a.part == "alpaca":
        write_json(a.json, {"alpaca": part_alpaca(a.threads, a.n)})
    else:
        write_json(a.json, {"million": part_million(a.threads, a.cache)})


if __name__ == "__main__":
    main()
