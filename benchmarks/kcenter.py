"""k-center greedy: iterselect against the numpy reference loop, same run, same data.

Data: MiniLM embeddings of Dolly 15k and Alpaca 52k (../shared/data/embeddings) and 1,000,000 x 384
rows from ../shared/bench/synth.py (each real embedding repeated with small noise, renormalized).

The numpy reference is the fastest plain loop numpy allows: per pick one matrix-vector product
(||x||^2 + ||c||^2 - 2 X c), an in-place minimum and an argmax. Its steps all cost the same, so
when it would take longer than --ref-seconds it is run for as many steps as fit and its time for
k steps is extrapolated (marked "~"). Picks are compared over the steps both ran.

    python benchmarks/kcenter.py                       # Dolly and Alpaca, k = 1,000 and 10,000
    python benchmarks/kcenter.py --data 1m --k 10000   # the million-row target
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import (DATA, add_json_option, machine, peak_memory, print_table, synth_embeddings, timed,
                     write_json)

import iterselect


def numpy_reference(X: np.ndarray, k: int, seconds: float):
    """Plain farthest-first loop in numpy (float32). Returns (picks, seconds per step, steps run)."""
    sq = np.einsum("ij,ij->i", X, X)
    min_d = np.full(len(X), np.inf, dtype=np.float32)
    picks = [0]
    t0 = time.perf_counter()
    for _ in range(1, k + 1):
        c = picks[-1]
        d = X @ X[c]
        d *= -2.0
        d += sq
        d += sq[c]
        np.minimum(min_d, d, out=min_d)
        min_d[c] = -1.0  # chosen: min(-1, d) keeps it out of every later argmax
        if len(picks) == k:
            break
        picks.append(int(np.argmax(min_d)))
        if time.perf_counter() - t0 > seconds:
            break
    elapsed = time.perf_counter() - t0
    return np.array(picks), elapsed / len(picks), len(picks)


def load(name: str) -> np.ndarray:
    if name == "dolly":
        return np.load(DATA / "embeddings" / "dolly_15k_minilm.npy").astype(np.float32)
    if name == "alpaca":
        return np.load(DATA / "embeddings" / "alpaca_52k_minilm.npy").astype(np.float32)
    if name == "1m":
        return synth_embeddings(1_000_000, "float32")
    raise SystemExit(f"unknown data set {name!r} (dolly, alpaca, 1m)")


def first_difference(X, ours, ref):
    """``(text, first differing pick or None, picks compared)``: "identical (m)", or the first
    differing pick and whether it was a float64 near-tie (the exact distances of both candidates
    to the common prefix of centers, relative gap)."""
    m = min(len(ours), len(ref))
    diff = np.flatnonzero(np.asarray(ours[:m]) != np.asarray(ref[:m]))
    if diff.size == 0:
        return f"identical ({m})", None, m
    t = int(diff[0])
    centers = X[np.asarray(ref[:t])].astype(np.float64)

    def exact(i):
        return np.sqrt(((centers - X[i].astype(np.float64)) ** 2).sum(axis=1).min())

    a, b = exact(int(ours[t])), exact(int(ref[t]))
    gap = abs(a - b) / max(a, b)
    verdict = "near-tie" if gap <= 1e-5 else "NOT a near-tie"
    return f"pick {t}/{m}: {verdict} (gap {gap:.1e})", t, m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="dolly,alpaca", help="comma list of dolly, alpaca, 1m")
    ap.add_argument("--k", default="1000,10000", help="comma list of budgets")
    ap.add_argument("--ref-seconds", type=float, default=120.0, help="time box for the numpy reference")
    ap.add_argument("--plain", action="store_true", help="also time the non-lazy C++ loop")
    add_json_option(ap)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    rows, results = [], []
    for name in args.data.split(","):
        X = load(name)
        X16 = X.astype(np.float16)
        for k in (int(v) for v in args.k.split(",")):
            ref_picks, ref_step, ref_steps = numpy_reference(X, k, args.ref_seconds)
            ref_total = ref_step * k
            ref_note = "" if ref_steps >= k else "~"
            # float16 rounds the data, so its picks are checked against a reference on those values
            ref16_picks = numpy_reference(X16.astype(np.float32), k, args.ref_seconds / 4)[0]
            configs = [("float32 lazy", X, True, ref_picks), ("float16 lazy", X16, True, ref16_picks)]
            if args.plain:
                configs.append(("float32 plain", X, False, ref_picks))
            for label, data, lazy, expected in configs:
                with peak_memory() as mem:
                    r, secs = timed(iterselect.kcenter_greedy, data, k, lazy=lazy, progress=False)
                evals = r.distance_evaluations / (k * len(X))
                verdict, first_diff, compared = first_difference(data.astype(np.float32), r.indices, expected)
                results.append({"data": name, "n": X.shape[0], "d": X.shape[1], "k": k,
                                "dtype": label.split()[0], "lazy": lazy, "seconds": secs,
                                "numpy_seconds": ref_total, "numpy_extrapolated": bool(ref_note),
                                "picks_compared": compared, "first_differing_pick": first_diff,
                                "picks_vs_numpy": verdict, "evaluations_fraction": evals,
                                "extra_memory_over_input": mem["extra"] / data.nbytes})
                rows.append({
                    "data": f"{name} {X.shape[0]}x{X.shape[1]}", "k": k, "ours": label,
                    "ours s": f"{secs:.2f}", "numpy s": f"{ref_note}{ref_total:.1f}",
                    "speed-up": f"{ref_note}{ref_total / secs:.1f}x",
                    "picks vs numpy": verdict,
                    "evals while picking": f"{evals:.0%}",
                    "extra mem / input": f"{mem['extra'] / data.nbytes:.2f}",
                })
                print_table(rows[-1:], list(rows[-1].keys())) if len(rows) == 1 else None
    print()
    print_table(rows, list(rows[0].keys()))
    write_json(args.json, {"machine": machine(), "rows": results})


if __name__ == "__main__":
    main()
