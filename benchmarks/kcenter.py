"""k-center greedy: iterselect against the numpy reference loop, same run, same data.

Data: MiniLM embeddings of Dolly 15k and Alpaca 52k (../shared/data/embeddings) and 1,000,000 x 384
rows from ../shared/bench/synth.py (each real embedding repeated with small noise, renormalized).

The numpy reference is the fastest plain loop numpy allows: per pick one matrix-vector product
(||x||^2 + ||c||^2 - 2 X c), an in-place minimum and an argmax. Its steps all cost the same, so
when it would take longer than --ref-seconds it is run for as many steps as fit and its time for
k steps is extrapolated (marked "~"); half of its time box runs before ours and half after, so a
drifting load on a shared machine weighs on both alike. Picks are compared over the steps both
ran. "distance evals" is the share of the plain loop's n k distances ours computed (while
picking, and after it for the exact min distances when asked for); "of them filtered", the share
the bf16 filter (AMX where available) proved unable to lower a bound and skipped. Each row names
the vector path our kernel took (ITERSELECT_SIMD=scalar|avx2|avx512 forces one), the filter, the
instruction set extensions it executes, and the load average around it.

    python benchmarks/kcenter.py                       # Dolly and Alpaca, k = 1,000 and 10,000
    python benchmarks/kcenter.py --data 1m --k 10000   # the million-row target
    python benchmarks/kcenter.py --data synth:200000 --k 2000 --ref-seconds 30   # a quick look
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _common import (DATA, add_json_option, machine, peak_memory, print_table, synth_embeddings, timed,
                     write_json)

import iterselect
from iterselect._backends import core


class NumpyReference:
    """Plain farthest-first loop in numpy (float32), run in time-boxed parts: ``run(seconds)``
    continues where the last part stopped. ``picks``, and ``step_seconds()`` per pick."""

    def __init__(self, X: np.ndarray, k: int):
        self.X, self.k = X, k
        self.sq = np.einsum("ij,ij->i", X, X)
        self.min_d = np.full(len(X), np.inf, dtype=np.float32)
        self.picks = [0]
        self.seconds = 0.0
        self.steps = 0

    def run(self, seconds: float) -> None:
        X, sq, min_d, picks = self.X, self.sq, self.min_d, self.picks
        t0 = time.perf_counter()
        while self.steps < self.k and time.perf_counter() - t0 <= seconds:
            c = picks[-1]
            d = X @ X[c]
            d *= -2.0
            d += sq
            d += sq[c]
            np.minimum(min_d, d, out=min_d)
            min_d[c] = -1.0  # chosen: min(-1, d) keeps it out of every later argmax
            self.steps += 1
            if len(picks) < self.k:
                picks.append(int(np.argmax(min_d)))
        self.seconds += time.perf_counter() - t0

    def step_seconds(self) -> float:
        return self.seconds / max(self.steps, 1)


def load(name: str) -> np.ndarray:
    if name == "dolly":
        return np.load(DATA / "embeddings" / "dolly_15k_minilm.npy").astype(np.float32)
    if name == "alpaca":
        return np.load(DATA / "embeddings" / "alpaca_52k_minilm.npy").astype(np.float32)
    if name == "1m":
        return synth_embeddings(1_000_000, "float32")
    if name.startswith("synth:"):
        return synth_embeddings(int(name.split(":", 1)[1]), "float32")
    raise SystemExit(f"unknown data set {name!r} (dolly, alpaca, 1m, synth:N)")


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


def load_average() -> float:
    return os.getloadavg()[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="dolly,alpaca", help="comma list of dolly, alpaca, 1m, synth:N")
    ap.add_argument("--k", default="1000,10000", help="comma list of budgets")
    ap.add_argument("--ref-seconds", type=float, default=120.0, help="time box for the numpy reference")
    ap.add_argument("--plain", action="store_true", help="also time the non-lazy C++ loop")
    add_json_option(ap)
    args = ap.parse_args()
    simd = core.simd_info()
    filt = core.kcenter_filter()
    print(f"machine: {machine()}")
    print(f"our vector path: {simd['path']} ({simd['flags']}); this CPU supports {', '.join(simd['supported'])}; "
          f"bf16 filter: {filt['filter']} (ITERSELECT_KCENTER_FILTER=off|scalar|amx chooses)")
    rows, results = [], []
    for name in args.data.split(","):
        X = load(name)
        X16 = X.astype(np.float16)
        for k in (int(v) for v in args.k.split(",")):
            ref = NumpyReference(X, k)
            # float16 rounds the data, so its picks are checked against a reference on those values
            ref16 = NumpyReference(X16.astype(np.float32), k)
            loads = [load_average()]
            ref.run(args.ref_seconds / 2)
            ref16.run(args.ref_seconds / 8)
            # each dtype with every point's final min distance (the default) and without it
            # (min_distances=False: picks and radii only, as DiverseEvol and the CLI run it)
            configs = [("float32 lazy", X, True, ref, True), ("float32 lazy, picks only", X, True, ref, False),
                       ("float16 lazy", X16, True, ref16, True), ("float16 lazy, picks only", X16, True, ref16, False)]
            if args.plain:
                configs.append(("float32 plain", X, False, ref, True))
            timings = []
            for label, data, lazy, _, with_min in configs:
                loads.append(load_average())
                with peak_memory() as mem:
                    r, secs = timed(iterselect.kcenter_greedy, data, k, lazy=lazy, progress=False,
                                    min_distances=with_min)
                timings.append((r, secs, mem["extra"]))
            loads.append(load_average())
            ref.run(args.ref_seconds / 2)  # the second half of the reference's time box
            ref16.run(args.ref_seconds / 8)
            loads.append(load_average())
            ref_total = ref.step_seconds() * k
            ref_note = "" if ref.steps >= k else "~"
            for (label, data, lazy, expected, with_min), (r, secs, extra) in zip(configs, timings):
                evals = (r.distance_evaluations + r.final_evaluations) / (k * len(X))
                filtered = r.filtered_evaluations / max(1, r.distance_evaluations + r.final_evaluations)
                verdict, first_diff, compared = first_difference(data.astype(np.float32), r.indices,
                                                                 expected.picks)
                results.append({"data": name, "n": X.shape[0], "d": X.shape[1], "k": k,
                                "dtype": label.split()[0], "lazy": lazy, "min_distances": with_min,
                                "seconds": secs,
                                "numpy_seconds": ref_total, "numpy_extrapolated": bool(ref_note),
                                "picks_compared": compared, "first_differing_pick": first_diff,
                                "picks_vs_numpy": verdict, "evaluations_fraction": evals,
                                "filtered_fraction": filtered, "filter": filt["filter"],
                                "extra_memory_over_input": extra / data.nbytes, "simd_path": simd["path"],
                                "load_average": [min(loads), max(loads)]})
                rows.append({
                    "data": f"{name} {X.shape[0]}x{X.shape[1]}", "k": k, "ours": label,
                    "path": simd["path"], "ours s": f"{secs:.2f}", "numpy s": f"{ref_note}{ref_total:.1f}",
                    "speed-up": f"{ref_note}{ref_total / secs:.1f}x",
                    "picks vs numpy": verdict,
                    "distance evals": f"{evals:.0%}",
                    "of them filtered": f"{filtered:.0%} ({filt['filter']})",
                    "extra mem / input": f"{extra / data.nbytes:.2f}",
                    "load avg": f"{min(loads):.1f}-{max(loads):.1f}",
                })
                print_table(rows[-1:], list(rows[-1].keys()))
    print()
    print(f"vector path {simd['path']}: {simd['flags']}")
    print_table(rows, list(rows[0].keys()))
    write_json(args.json, {"machine": machine(), "simd": simd, "rows": results})


if __name__ == "__main__":
    main()
